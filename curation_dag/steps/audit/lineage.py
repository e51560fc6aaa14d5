"""The lineage audit: why a document is or is not in a mixture, what a mixture is made of, and
how two mixtures differ. Everything is read from files written at materialization time: the
pipeline's ledgers and, for a mixture, its materialization folder (candidates snapshot, decisions,
manifest, run record; store/layout.py names them).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from upath import UPath

from curation_dag.steps.mixtures.selection import FUNNEL
from curation_dag.steps.quality.rules import Rule, rule_sets
from curation_dag.steps.takedowns import removal as takedowns
from curation_dag.store import layout
from curation_dag.store.files import read_parquet, scan_parquet
from curation_dag.store.layout import CANDIDATES, DECISIONS, MANIFEST, RUN, SUMMARY, Layout
from curation_dag.store.ledger import Ledger

PROVENANCE = ["source", "drop_id", "shard", "row", "source_id", "n_chars", "content_hash"]
# The pipeline asset behind each fact that `explain` reports.
FACT_ASSETS = {
    "provenance": layout.RAW_DOCUMENTS,
    "signals": layout.QUALITY_SIGNALS,
    "exact": layout.EXACT_DUPLICATES,
    "near": layout.NEAR_DUPLICATES,
    "semantic": layout.SEMANTIC_DUPLICATES,
    "cluster": layout.SEMANTIC_CLUSTERS,
    "scores": layout.QUALITY_SCORES,
}


class AuditError(ValueError):
    """The thing asked about is not there; the message says what exists instead."""


def mixture_folder(storage_root: str | Path, reference: str) -> Path:
    """`name` (its latest materialization) or `name@<hash prefix>` (an earlier one)."""
    name, _, prefix = reference.partition("@")
    stored = Layout.at(storage_root)
    root = stored.mixture(name)
    if not root.is_dir():
        known = sorted(p.name for p in stored.asset(layout.MIXTURES).glob("*") if p.is_dir())
        raise AuditError(f"no mixture {name!r} under {root.parent}; built mixtures: {known or 'none'}")
    if not prefix:
        return root / stored.current(name).read_text().strip()
    matches = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(prefix)]
    if len(matches) != 1:
        found = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise AuditError(f"{reference}: {len(matches)} materializations of {name} match; there are {found}")
    return matches[0]


def materializations(storage_root: str | Path, name: str) -> list[str]:
    """The materialization folders of a mixture, oldest first."""
    root = Layout.at(storage_root).mixture(name)
    folders = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    return [p.name for p in sorted(folders, key=lambda p: (p / RUN).stat().st_mtime)]


def _row(files: list, doc_id: str, column: str = "doc_id") -> dict | None:
    if not files:
        return None
    found = scan_parquet(files).filter(pl.col(column) == doc_id).collect()
    return found.row(0, named=True) if found.height else None


def provenance(storage_root: str | Path, doc_id: str) -> dict:
    """Where a document came from: source, drop, shard, row and the source file's id."""
    source, drop_id = doc_id.split("/")[:2] if doc_id.count("/") >= 2 else ("", "")
    path = Layout.at(storage_root).documents(f"{source}/{drop_id}") if source else None
    row = _row([path], doc_id) if path and path.is_file() else None
    if row is None and (taken := takedowns.log_of(storage_root).entry_for(doc_id)):
        row = taken["document"]  # its text is purged; the log keeps where it came from
    if row is None:
        raise AuditError(
            f"no document {doc_id!r}: ids look like <source>/<drop_id>/<shard>#<row> (see {layout.RAW_DOCUMENTS})"
        )
    return {key: row[key] for key in PROVENANCE}


def explain(storage_root: str | Path, doc_id: str, rules: tuple[Rule, ...], mixture: Path | None = None) -> dict:
    """Every fact about one document: provenance, signals, each stage's decision with its evidence
    (and the matched document's provenance), and a mixture's verdict. With a mixture, the facts are
    those recorded when it was built; without, the pipeline's current ledgers. The quality decisions
    name the bounds of `rules`, the configured quality rules."""
    root = UPath(storage_root)
    facts: dict = {"doc_id": doc_id, "provenance": provenance(root, doc_id)}
    if taken := takedowns.log_of(root).entry_for(doc_id):
        facts["taken_down"] = {key: taken[key] for key in ("takedown", "requested_at", "requested_by", "reason")}
    if mixture is not None:
        candidate = _row([mixture / CANDIDATES], doc_id)
        if candidate is None:
            raise AuditError(f"{doc_id} was not a candidate of {mixture.parent.name} (not in its pool)")
    else:
        candidate = _current_facts(root, doc_id)
    facts["signals"] = {k: v for k, v in candidate.items() if k not in _DECISION_COLUMNS}
    facts["decisions"] = _decisions(root, candidate, rules)
    if mixture is not None:
        verdict = _row([mixture / DECISIONS], doc_id)
        run = _read_json(mixture / RUN)
        facts["mixture"] = {
            "name": mixture.parent.name,
            "materialization": mixture.name,
            "manifest_sha256": run.get("manifest_sha256"),
            "run_id": run.get("run_id"),
            **verdict,
        }
        facts["produced_by"] = {fact: run.get("upstream", {}).get(asset) for fact, asset in FACT_ASSETS.items()}
    return facts


_DECISION_COLUMNS = {
    "doc_id", "exact_duplicate_of", "near_duplicate_of", "near_jaccard", "semantic_duplicate_of", "semantic_cosine",
    "semantic_not_judged",
}  # fmt: skip


def _current_facts(root: Path, doc_id: str) -> dict:
    """The pipeline's current view of a document, as the `candidates` model joins it: after the
    takedowns, or, for a document taken down, as the ledgers recorded it."""
    current = takedowns.log_of(root).entry_for(doc_id) is None

    def stage(asset: str) -> dict:
        files = [str(p) for p in Ledger(Layout.at(root).asset(asset)).decision_files()]
        table = takedowns.view(root, asset, files) if current and files else files
        if isinstance(table, pl.DataFrame):
            found = table.filter(pl.col("doc_id") == doc_id)
            return found.row(0, named=True) if found.height else {}
        return _row(table, doc_id) or {}

    stages = (layout.QUALITY_SCORES, layout.EXACT_DUPLICATES, layout.NEAR_DUPLICATES, layout.SEMANTIC_DUPLICATES)
    scores, exact, near, semantic = (stage(asset) for asset in stages)
    return {
        **scores,
        "exact_duplicate_of": exact.get("duplicate_of"),
        "near_duplicate_of": near.get("duplicate_of"),
        "near_jaccard": near.get("jaccard"),
        "semantic_duplicate_of": semantic.get("semantic_duplicate_of"),
        "semantic_cosine": semantic.get("cosine"),
        "semantic_not_judged": semantic.get("not_judged"),
    }


def _decisions(root: Path, candidate: dict, rules: tuple[Rule, ...]) -> list[dict]:
    """One entry per pipeline stage: its verdict on the document and the evidence."""
    decisions = []
    for stage, column, similarity in (
        ("exact", "exact_duplicate_of", None),
        ("near", "near_duplicate_of", "near_jaccard"),
        ("semantic", "semantic_duplicate_of", "semantic_cosine"),
    ):
        matched = candidate.get(column)
        entry = {"stage": stage, "duplicate": matched is not None}
        if matched is not None:
            entry |= {"duplicate_of": matched, "matched_provenance": provenance(root, matched)}
            if similarity:
                entry["jaccard" if stage == "near" else "cosine"] = candidate.get(similarity)
        if stage == "semantic" and candidate.get("semantic_not_judged"):
            entry["not_judged"] = candidate["semantic_not_judged"]
        decisions.append(entry)
    for rule_set, members in rule_sets(rules).items():
        if rule_set in candidate:
            failure = candidate.get(f"{rule_set}_failure")
            rule = next((r for r in members if r.name == failure), None)
            decisions.append(
                {
                    "stage": f"quality:{rule_set}",
                    "passes": candidate[rule_set],
                    "first_failure": failure,
                    "value": candidate.get(rule.signal) if rule else None,
                    "passes_when": rule.describe() if rule else None,
                }
            )
    decisions.append(
        {"stage": "cluster", "cluster": candidate.get("cluster"), "prototypicality": candidate.get("prototypicality")}
    )
    return decisions


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def audit(mixture: Path) -> dict:
    """What a mixture is made of and what made it."""
    run, summary = _read_json(mixture / RUN), _read_json(mixture / SUMMARY)
    manifest = read_parquet(mixture / MANIFEST)
    decisions = read_parquet(mixture / DECISIONS)
    tokens = manifest.with_columns(total=pl.col("tokens") * pl.col("repeats"))
    funnel = (
        decisions.with_columns(pl.col("stage").fill_null("kept"))
        .group_by("stage")
        .agg(
            documents=pl.len(),
            # Tokens are counted from the budget stage on; earlier stages removed documents uncounted.
            tokens=pl.when(pl.col("tokens").is_not_null().any()).then(
                (pl.col("tokens") * pl.col("repeats").clip(1)).sum()
            ),
        )
    )
    removed = takedowns.log_of(Layout.of_materialization(mixture).root).removed()
    taken = manifest.filter(removed.mask(pl.col("doc_id")))["doc_id"].sort().to_list()
    return {
        "mixture": mixture.parent.name,
        "materialization": mixture.name,
        "manifest_sha256": run.get("manifest_sha256") or summary.get("manifest_sha256"),
        # Documents of the manifest taken down since: their texts are purged from its documents file.
        "taken_down": [{"doc_id": doc_id, "takedown": removed.doc_ids[doc_id]} for doc_id in taken],
        "run_id": run.get("run_id"),
        "materialized_at": run.get("materialized_at"),
        "spec_file": run.get("spec_file"),
        "drops": run.get("drops", []),
        "recipes": run.get("recipes", {}),
        "upstream": run.get("upstream", {}),
        "candidates": decisions.height,
        "documents": manifest.height,
        "copies": int(manifest["repeats"].sum()),
        "tokens": int(tokens["total"].sum()),
        "budget_tokens": summary.get("budget_tokens"),
        "funnel": [row for stage in FUNNEL for row in funnel.filter(pl.col("stage") == stage).to_dicts()],
        "by_source": summary.get("by_source", []),
        "by_cluster": tokens.group_by("cluster")
        .agg(documents=pl.len(), tokens=pl.col("total").sum())
        .sort("tokens", descending=True)
        .to_dicts(),  # fmt: skip
        "by_language": summary.get("by_language", []),
    }


def diff(before: Path, after: Path) -> dict:
    """Documents and tokens added and removed from `before` to `after`: added ones grouped by source
    and cluster, removed ones by the reason `after` gives, by source and by cluster."""
    old = read_parquet(before / MANIFEST).with_columns(total=pl.col("tokens") * pl.col("repeats"))
    new = read_parquet(after / MANIFEST).with_columns(total=pl.col("tokens") * pl.col("repeats"))
    verdicts = read_parquet(after / DECISIONS).select("doc_id", "stage", "reason")
    added = new.join(old, on="doc_id", how="anti")
    removed = old.join(new, on="doc_id", how="anti").join(verdicts, on="doc_id", how="left")
    taken_down = takedowns.log_of(Layout.of_materialization(after).root).removed()
    removed = removed.with_columns(
        why=pl.when(taken_down.mask(pl.col("doc_id")))
        .then(pl.lit("taken down"))
        .when(pl.col("stage").is_null())
        .then(pl.lit("no longer a candidate"))
        .otherwise(pl.concat_str("stage", pl.lit(": "), pl.col("reason").str.replace(r" of .*| \(.*|: .*", "")))
    )

    def grouped(frame: pl.DataFrame, by: str) -> list[dict]:
        return frame.group_by(by).agg(documents=pl.len(), tokens=pl.col("total").sum()).sort(by).to_dicts()

    return {
        "before": f"{before.parent.name}@{before.name}",
        "after": f"{after.parent.name}@{after.name}",
        "added": {
            "documents": added.height,
            "tokens": int(added["total"].sum()),
            "doc_ids": added["doc_id"].sort().to_list(),
            "by_source": grouped(added, "source"),
            "by_cluster": grouped(added, "cluster"),
        },  # fmt: skip
        "removed": {
            "documents": removed.height,
            "tokens": int(removed["total"].sum()),
            "doc_ids": removed["doc_id"].sort().to_list(),
            "by_reason": grouped(removed, "why"),
            "by_source": grouped(removed, "source"),
            "by_cluster": grouped(removed, "cluster"),
        },  # fmt: skip
        "tokens_before": int(old["total"].sum()),
        "tokens_after": int(new["total"].sum()),
    }
