"""The mixture audit report: a self-contained page with every table and plot, also in a real headless Chromium."""

import base64
import io
import json
import re
import subprocess

import numpy as np
import polars as pl
import pytest
from PIL import Image

from curation_dag.steps.mixtures.report import REPORT, render_report, report_metadata
from curation_dag.steps.quality.rules import RULES

PLOTS = ("funnel-plot", "sources-plot", "clusters-plot", "cluster-sizes-plot", "signals-plot")
TABLES = (
    "header-table",
    "funnel-table",
    "sources-table",
    "clusters-table",
    "languages-table",
    "recipes-table",
    "upstream-table",
)
KEPT_BLUE = (0x4F, 0x6B, 0xED)  # the report's colour for kept documents, in every plot


@pytest.fixture
def materialization(tmp_path):
    """A small mixture folder following the contract of steps/mixtures/build.py: 60 candidates of three
    sources (one outside the weights), removed at every stage or kept, in 8 clusters (some with none)."""
    rng = np.random.default_rng(0)
    n = 60
    doc_ids = [f"d{i:02d}" for i in range(n)]
    sources = ["web", "code"] * 27 + ["other"] * 6
    stages = ["weights"] * 6 + ["exact"] * 4 + ["near"] * 3 + ["semantic"] * 5 + ["filter"] * 8 + ["pruning"] * 4
    stages = [None] * (n - len(stages) - 6) + ["budget"] * 6 + stages[::-1]  # the out-of-weights ones are last
    clusters = [None if i % 13 == 0 else int(rng.integers(0, 8)) for i in range(n)]
    tokens = [
        int(t) if stage in (None, "budget") else None for stage, t in zip(stages, rng.integers(50, 400, n), strict=True)
    ]
    repeats = [(2 if i % 5 == 0 else 1) if stage is None else 0 for i, stage in enumerate(stages)]
    candidates = pl.DataFrame(
        {
            "doc_id": doc_ids,
            "source": sources,
            "drop": ["2026-11-01"] * n,
            "chars": rng.integers(200, 5000, n),
            "language": ["en"] * 50 + ["de"] * 10,
            "language_score": rng.uniform(0.5, 1, n),
            "gopher_quality": [stage != "filter" for stage in stages],
            "gopher_quality_failure": ["gopher_word_count" if stage == "filter" else None for stage in stages],
            "cluster": clusters,
            "prototypicality": rng.uniform(0, 1, n),
            "gopher_words": rng.lognormal(5, 1.2, n),
            "gopher_mean_word_length": rng.normal(5, 1, n),
            "gopher_alpha_word_frac": rng.beta(8, 2, n),
            "gopher_dup_line_frac": rng.beta(1, 8, n),
            "fineweb_line_punct_frac": rng.beta(3, 3, n),
            "code_mean_line_length": rng.lognormal(3.5, 0.5, n),
        }
    )
    decisions = pl.DataFrame(
        {
            "doc_id": doc_ids,
            "verdict": ["kept" if stage is None else "removed" for stage in stages],
            "stage": stages,
            "reason": [None if stage is None else f"removed by {stage}" for stage in stages],
            "repeats": repeats,
            "tokens": tokens,
            "duplicate_of": [None] * n,
            "similarity": [None] * n,
            "rule": ["gopher_word_count" if stage == "filter" else None for stage in stages],
            "value": [12.0 if stage == "filter" else None for stage in stages],
        },
        schema_overrides={"tokens": pl.Int64, "duplicate_of": pl.String, "similarity": pl.Float64},
    )
    kept = decisions.filter(pl.col("verdict") == "kept").join(candidates, on="doc_id")
    manifest = kept.select(
        "doc_id", "repeats", position=pl.int_range(pl.len()), tokens="tokens", source="source", cluster="cluster"
    )
    copies = manifest.with_columns(total=pl.col("tokens") * pl.col("repeats"))
    total = int(copies["total"].sum())
    weights = {"web": 0.6, "code": 0.4}
    by_source = (
        copies.group_by("source")
        .agg(documents=pl.len(), tokens=pl.col("total").sum())
        .with_columns(share=(pl.col("tokens") / total).round(4), weight=pl.col("source").replace_strict(weights))
        .sort("source")
    )
    funnel = decisions.group_by("stage").agg(documents=pl.len()).with_columns(pl.col("stage").fill_null("kept"))
    by_language = copies.join(candidates.select("doc_id", "language"), on="doc_id").group_by("language")
    summary = {
        "manifest_sha256": "ab12" * 16,
        "candidates": n,
        "tokens": total,
        "budget_tokens": total + 40,
        "funnel": funnel.to_dicts(),
        "by_source": by_source.to_dicts(),
        "by_language": by_language.agg(tokens=pl.col("total").sum()).sort("tokens", descending=True).to_dicts(),
        "by_cluster": copies.group_by("cluster").agg(tokens=pl.col("total").sum()).sort("cluster").to_dicts(),
    }
    run = {
        "mixture": "synthetic",
        "spec_file": "dbt_like_recipes/mixtures/synthetic.yml",
        "materialized_at": "2026-11-20T10:00:00+00:00",
        "run_id": "run-1234",
        "recipes": {"mixtures/synthetic.yml": "cd34" * 16, "models/candidates.sql": "ef56" * 16},
        "upstream": {
            "candidates": {"code_version": "v1", "data_version": "dv1", "run_id": "run-1000"},
            "raw_documents": {
                "partitions": {"web/2026-11-01": {"code_version": "v2", "data_version": "dv2", "run_id": "run-0999"}}
            },
        },
        "drops": ["web/2026-11-01", "code/2026-11-01"],
    }
    folder = tmp_path / "store" / "mixtures" / "synthetic" / "ab12ab12ab12ab12"
    folder.mkdir(parents=True)
    manifest.write_parquet(folder / "manifest.parquet")
    decisions.write_parquet(folder / "decisions.parquet")
    candidates.write_parquet(folder / "candidates.parquet")
    (folder / "summary.json").write_text(json.dumps(summary, indent=1))
    (folder / "run.json").write_text(json.dumps(run, indent=1))
    return folder


def test_report_has_every_table_and_plot_and_needs_no_network(materialization):
    path = render_report(materialization, RULES)
    page = path.read_text()

    assert path == materialization / REPORT
    assert "<h1>Mixture synthetic <code>" + "ab12" * 16 in page
    for element in (*PLOTS, *TABLES):
        assert f'id="{element}"' in page, element
    assert "http://" not in page and "https://" not in page and "<script" not in page and "url(" not in page
    images = re.findall(r'<img id="([^"]+)" alt="([^"]+)" src="data:image/png;base64,([^"]+)">', page)
    assert sorted(plot for plot, _, _ in images) == sorted(PLOTS)
    for plot, alt, png in images:
        with Image.open(io.BytesIO(base64.b64decode(png))) as image:
            assert image.format == "PNG" and image.width >= 600 and image.height >= 150, (plot, image.size)
        assert alt
    funnel = page[page.index('id="funnel-table"') : page.index("</table>", page.index('id="funnel-table"'))]
    for stage, removed in {"weights": 6, "exact": 4, "filter": 8, "budget": 6, "kept": 24}.items():
        assert re.search(f"<td[^>]*>{stage}</td><td[^>]*>{removed}</td>", funnel), stage
    assert "run-1234" in page and "2026-11-20T10:00:00+00:00" in page and "cd34" * 16 in page
    assert "web/2026-11-01" in page and "dv2" in page


def test_report_without_run_record_or_candidates_says_not_recorded(materialization):
    (materialization / "run.json").unlink()
    (materialization / "candidates.parquet").unlink()

    page = render_report(materialization, RULES).read_text()

    assert "Mixture synthetic" in page  # the folder's parent names the mixture
    assert page.count("not recorded") >= 4  # materialized at, spec file, drops, signals, recipes
    assert 'id="signals-plot"' not in page and 'id="recipes-table"' not in page
    for element in ("funnel-plot", "funnel-table", "sources-plot", "clusters-plot", "cluster-sizes-plot"):
        assert f'id="{element}"' in page, element


def test_report_of_a_folder_that_is_not_a_materialization_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no summary.json, manifest.parquet, decisions.parquet; pass"):
        render_report(tmp_path, RULES)


def test_report_metadata_gives_the_key_tables_and_the_funnel_plot(materialization):
    metadata = report_metadata(materialization)

    assert metadata["funnel_markdown"].startswith("| stage | documents | remaining | tokens |")
    assert "| kept | 24 |" in metadata["funnel_markdown"]
    assert metadata["shares_markdown"].startswith("| source | documents | tokens | share | weight |")
    assert "| web |" in metadata["shares_markdown"] and "60.0%" in metadata["shares_markdown"]
    assert metadata["clusters_markdown"].startswith("| cluster | tokens | share | kept documents | candidates |")
    png = metadata["funnel_plot_markdown"].removeprefix("![funnel](data:image/png;base64,").removesuffix(")")
    with Image.open(io.BytesIO(base64.b64decode(png))) as image:
        assert image.format == "PNG"


def test_report_renders_in_headless_chromium(chromium, materialization, tmp_path):
    url = render_report(materialization, RULES).as_uri()
    screenshot = tmp_path / "report.png"
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    flags = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]

    shot = subprocess.run(
        [*flags, f"--screenshot={screenshot}", "--window-size=1280,4000", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)

    print(f"screenshot of the rendered report: {screenshot}")
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    assert dom.returncode == 0, dom.stderr[-2000:]
    for element in (*PLOTS, *TABLES):
        assert f'id="{element}"' in dom.stdout, element
    with Image.open(screenshot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert pixels.shape == (4000, 1280, 3)
    assert pixels.std() > 10  # not a blank page
    blue = (np.abs(pixels - np.array(KEPT_BLUE)).sum(axis=2) < 30).sum()
    assert blue > 20_000, f"the plots' bars are missing from the screenshot ({blue} blue pixels)"
