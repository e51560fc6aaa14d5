"""Dedup: MinHash signatures per drop; exact and near duplicates absorbed drop by drop, in arrival order."""

import time

import dagster as dg
import polars as pl

from curation_dag.assets.ingest import raw_documents
from curation_dag.automation.conditions import on_new_data
from curation_dag.checks.sql import sql_check
from curation_dag.metadata import file_digest, markdown_table
from curation_dag.partitions import drops_partitions, pending_drops
from curation_dag.resources import RecipesResource, StorageResource
from curation_dag.steps.dedup.absorb import SettingsChanged, absorb_exact, absorb_near
from curation_dag.steps.dedup.config import RateBand
from curation_dag.steps.dedup.minhash import read_signatures, sign_file
from curation_dag.store.ledger import Ledger, exclusive

LARGEST_GROUPS = 5
_DECISION_KEYS = {"doc_id": pl.String, "ordinal": pl.Int64, "drop": pl.String, "duplicate_of": pl.String}
# Violations: a duplicate whose duplicate_of is unknown, itself a duplicate, or not earlier.
KEPT_AND_EARLIER = """
SELECT d.doc_id, d.duplicate_of FROM new d LEFT JOIN decisions k ON k.doc_id = d.duplicate_of
WHERE d.duplicate_of IS NOT NULL AND (k.doc_id IS NULL OR k.duplicate_of IS NOT NULL OR k.ordinal >= d.ordinal)
"""


@dg.asset(
    partitions_def=drops_partitions,
    deps=[raw_documents],
    group_name="dedup",
    kinds={"numpy", "parquet"},
    code_version="1",
    automation_condition=on_new_data(),
)
def minhash_signatures(
    context: dg.AssetExecutionContext, storage: StorageResource, recipes: RecipesResource
) -> dg.MaterializeResult:
    """MinHash signatures and LSH band keys of every document of one drop."""
    config = recipes.dedup().minhash
    documents = storage.upstream_file("raw_documents", context.partition_key, "documents.parquet")
    signatures = storage.asset_dir("minhash_signatures", context.partition_key) / "signatures.parquet"
    started = time.perf_counter()
    count = sign_file(documents, signatures, config)
    seconds = time.perf_counter() - started
    bands, rows = config.band_shape()
    return dg.MaterializeResult(
        metadata={
            "documents": count,
            "docs_per_second": round(count / seconds, 1) if seconds else None,
            "bands_x_rows": f"{bands} x {rows}",
            "settings": dg.MetadataValue.json(config.model_dump()),
            "signatures": dg.MetadataValue.path(str(signatures)),
        },
        data_version=dg.DataVersion(file_digest(signatures)),
    )


def _check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            "duplicate_of_is_kept_and_earlier",
            asset=asset,
            blocking=True,
            description="Every duplicate_of names a kept document that arrived earlier.",
        ),
        dg.AssetCheckSpec(
            "no_self_duplicates", asset=asset, blocking=True, description="No document duplicates itself."
        ),
        dg.AssetCheckSpec(
            "duplicate_rate_within_band",
            asset=asset,
            description="Each new drop's duplicate rate is inside the band of dedup.yml (a warning).",
        ),
    ]


def _result(
    asset: str, ledger: Ledger, absorbed: list[pl.DataFrame], band: RateBand, storage: StorageResource
) -> dg.MaterializeResult:
    """Metadata and checks shared by exact and near duplicates; checks cover the newly absorbed drops."""
    new = pl.concat(absorbed) if absorbed else pl.DataFrame(schema=_DECISION_KEYS)
    everything = [str(p) for p in ledger.decision_files()]
    rates = pl.DataFrame(
        [
            {
                "drop": e["key"],
                "documents": e["documents"],
                "duplicates": e["duplicates"],
                "rate": round(e["duplicates"] / e["documents"], 4) if e["documents"] else 0.0,
            }
            for e in ledger.drops
        ],
        schema={"drop": pl.String, "documents": pl.Int64, "duplicates": pl.Int64, "rate": pl.Float64},
    )
    new_rates = rates.filter(pl.col("drop").is_in(new["drop"].unique().to_list()))
    checks = [
        sql_check(
            asset,
            "duplicate_of_is_kept_and_earlier",
            KEPT_AND_EARLIER,
            new=new,
            decisions=everything,
        ),
        sql_check(asset, "no_self_duplicates", "SELECT doc_id FROM new WHERE duplicate_of = doc_id", new=new),
        sql_check(
            asset,
            "duplicate_rate_within_band",
            f"SELECT * FROM rates WHERE rate < {band.low} OR rate > {band.high}",
            severity=dg.AssetCheckSeverity.WARN,
            rates=new_rates,
        ),
    ]
    by_source: dict[str, list[int]] = {}
    for entry in ledger.drops:
        for source, (documents, duplicates) in entry["by_source"].items():
            totals = by_source.setdefault(source, [0, 0])
            totals[0] += documents
            totals[1] += duplicates
    sources = pl.DataFrame(
        [
            {"source": s, "documents": n, "duplicates": d, "rate": round(d / n, 4)}
            for s, (n, d) in sorted(by_source.items())
        ],
        schema={"source": pl.String, "documents": pl.Int64, "duplicates": pl.Int64, "rate": pl.Float64},
    )
    return dg.MaterializeResult(
        metadata={
            "absorbed_now": dg.MetadataValue.json(new["drop"].unique(maintain_order=True).to_list()),
            "drops_absorbed": len(ledger.drops),
            "duplicates_now": int(new["duplicate_of"].is_not_null().sum()),
            "by_drop": dg.MetadataValue.md(markdown_table(rates)),
            "by_source": dg.MetadataValue.md(markdown_table(sources)),
            "largest_groups": dg.MetadataValue.md(_largest_groups(everything, storage)),
            "decisions": dg.MetadataValue.path(str(ledger.folder / "decisions")),
        },
        data_version=dg.DataVersion(ledger.digest()),
        check_results=checks,
    )


def _largest_groups(decisions: list[str], storage: StorageResource) -> str:
    """The kept documents with the most duplicates, with a preview of their text."""
    if not decisions:
        return "no drops absorbed yet"
    groups = (
        pl.scan_parquet(decisions)
        .filter(pl.col("duplicate_of").is_not_null())
        .group_by("duplicate_of", "duplicate_of_drop")
        .agg(pl.len().alias("duplicates"))
        .sort("duplicates", "duplicate_of", descending=[True, False])
        .head(LARGEST_GROUPS)
        .collect()
    )
    previews = []
    for doc_id, drop in groups.select("duplicate_of", "duplicate_of_drop").iter_rows():
        documents = storage.asset_dir("raw_documents", drop) / "documents.parquet"
        text = pl.scan_parquet(documents).filter(pl.col("doc_id") == doc_id).select("text").collect()
        previews.append(text["text"][0][:100] if text.height else "")
    return markdown_table(
        groups.select("duplicate_of", "duplicates").with_columns(pl.Series("preview", previews, dtype=pl.String))
    )


@dg.asset(
    deps=[raw_documents],
    group_name="dedup",
    kinds={"polars", "parquet"},
    code_version="1",
    pool="dedup_state",
    automation_condition=on_new_data(),
    check_specs=_check_specs("exact_duplicates"),
)
def exact_duplicates(
    context: dg.AssetExecutionContext, storage: StorageResource, recipes: RecipesResource
) -> dg.MaterializeResult:
    """Identical texts across all drops, absorbed in arrival order; the earliest copy is kept."""
    folder = storage.asset_dir("exact_duplicates")
    absorbed = []
    with exclusive(folder):
        for key in pending_drops(context, raw_documents.key, Ledger(folder).keys):
            documents = pl.read_parquet(
                storage.upstream_file("raw_documents", key, "documents.parquet"),
                columns=["doc_id", "source", "content_hash"],
            )
            absorbed.append(absorb_exact(folder, key, documents))
            context.log.info(f"absorbed {key}: {absorbed[-1]['duplicate_of'].is_not_null().sum()} exact duplicates")
    return _result("exact_duplicates", Ledger(folder), absorbed, recipes.dedup().exact_rate, storage)


@dg.asset(
    deps=[minhash_signatures, exact_duplicates],
    group_name="dedup",
    kinds={"numpy", "polars"},
    code_version="1",
    pool="dedup_state",
    automation_condition=on_new_data(),
    check_specs=_check_specs("near_duplicates"),
)
def near_duplicates(
    context: dg.AssetExecutionContext, storage: StorageResource, recipes: RecipesResource
) -> dg.MaterializeResult:
    """Near-duplicate texts (MinHash LSH, verified Jaccard) across all drops; the earliest is kept."""
    config = recipes.dedup()
    exact = Ledger(storage.asset_dir("exact_duplicates"))
    folder = storage.asset_dir("near_duplicates")
    with exclusive(folder):
        near = Ledger(folder)
        if near.keys != exact.keys[: len(near.keys)]:
            raise dg.Failure(description=f"{folder} does not follow exact_duplicates' drop order; delete it to rebuild")
        signed = context.instance.get_materialized_partitions(minhash_signatures.key)
        absorbed = []
        for entry in exact.drops[len(near.drops) :]:
            if entry["key"] not in signed:  # near duplicates follow arrival order strictly: later drops wait
                context.log.warning(f"drop {entry['key']} has no minhash_signatures: it and every later drop wait")
                break
            kept = pl.read_parquet(exact.committed(entry["key"])).filter(pl.col("duplicate_of").is_null())
            path = storage.upstream_file("minhash_signatures", entry["key"], "signatures.parquet")
            signed_docs, signatures, band_keys = read_signatures(path, kept["doc_id"])
            eligible = (signed_docs["n_shingles"] > 0).to_numpy()
            try:
                absorbed.append(
                    absorb_near(
                        folder,
                        entry["key"],
                        kept.filter(pl.Series(eligible)).select("doc_id", "ordinal", "source"),
                        signatures[eligible],
                        band_keys[eligible],
                        config.minhash.threshold,
                        prefix=entry["index"],
                        settings=str(config.minhash),
                    )
                )
            except SettingsChanged as error:
                raise dg.Failure(description=str(error)) from None
    return _result("near_duplicates", Ledger(folder), absorbed, config.near_rate, storage)
