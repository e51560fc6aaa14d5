"""Dedup: MinHash signatures per drop; exact and near duplicates absorbed drop by drop, in arrival order."""

import time
from pathlib import Path

import dagster as dg
import polars as pl

from curation_dag.automation.conditions import on_new_data
from curation_dag.checks.dedup import duplicate_check_specs, duplicate_checks
from curation_dag.metadata import file_digest, markdown_table
from curation_dag.partitions import drops_partitions, pending_drops
from curation_dag.resources import RecipesResource, StorageResource
from curation_dag.steps.dedup import summary
from curation_dag.steps.dedup.absorb import OutOfOrder, SettingsChanged, absorb_exact_drops, absorb_near_drops
from curation_dag.steps.dedup.config import RateBand
from curation_dag.steps.dedup.minhash import sign_file
from curation_dag.store.layout import EXACT_DUPLICATES, MINHASH_SIGNATURES, NEAR_DUPLICATES, RAW_DOCUMENTS
from curation_dag.store.ledger import Ledger, exclusive

LARGEST_GROUPS = 5


@dg.asset(
    partitions_def=drops_partitions,
    deps=[RAW_DOCUMENTS],
    group_name="dedup",
    kinds={"numpy", "parquet"},
    code_version="1",
    automation_condition=on_new_data(),
)
def minhash_signatures(
    context: dg.AssetExecutionContext, storage: StorageResource, recipes: RecipesResource
) -> dg.MaterializeResult:
    """MinHash signatures and LSH band keys of every document of one drop."""
    key, config = context.partition_key, recipes.dedup().minhash
    documents, signatures = _documents(storage, key), storage.layout.signatures(key)
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


@dg.asset(
    deps=[RAW_DOCUMENTS],
    group_name="dedup",
    kinds={"polars", "parquet"},
    code_version="1",
    pool="dedup_state",
    automation_condition=on_new_data(),
    check_specs=duplicate_check_specs(EXACT_DUPLICATES),
)
def exact_duplicates(
    context: dg.AssetExecutionContext, storage: StorageResource, recipes: RecipesResource
) -> dg.MaterializeResult:
    """Identical texts across all drops, absorbed in arrival order; the earliest copy is kept."""
    folder = storage.layout.asset(EXACT_DUPLICATES)
    with exclusive(folder):
        pending = pending_drops(context, dg.AssetKey(RAW_DOCUMENTS), Ledger(folder).keys)
        absorbed = absorb_exact_drops(folder, pending, lambda key: _documents(storage, key), context.log.info)
    return _result(EXACT_DUPLICATES, Ledger(folder), absorbed, recipes.dedup().exact_rate, storage)


@dg.asset(
    deps=[MINHASH_SIGNATURES, EXACT_DUPLICATES],
    group_name="dedup",
    kinds={"numpy", "polars"},
    code_version="1",
    pool="dedup_state",
    automation_condition=on_new_data(),
    check_specs=duplicate_check_specs(NEAR_DUPLICATES),
)
def near_duplicates(
    context: dg.AssetExecutionContext, storage: StorageResource, recipes: RecipesResource
) -> dg.MaterializeResult:
    """Near-duplicate texts (MinHash LSH, verified Jaccard) across all drops; the earliest is kept."""
    config, layout = recipes.dedup(), storage.layout
    exact = Ledger(layout.asset(EXACT_DUPLICATES))
    folder = layout.asset(NEAR_DUPLICATES)
    with exclusive(folder):
        signed = context.instance.get_materialized_partitions(dg.AssetKey(MINHASH_SIGNATURES))
        try:
            absorbed = absorb_near_drops(
                folder,
                exact,
                signed,
                lambda key: storage.upstream(layout.signatures(key), MINHASH_SIGNATURES, key),
                config.minhash,
                context.log.warning,
            )
        except (OutOfOrder, SettingsChanged) as error:
            raise dg.Failure(description=str(error)) from None
    return _result(NEAR_DUPLICATES, Ledger(folder), absorbed, config.near_rate, storage)


def _documents(storage: StorageResource, key: str) -> Path:
    """A drop's raw_documents file, checked (storage.upstream)."""
    return storage.upstream(storage.layout.documents(key), RAW_DOCUMENTS, key)


def _result(
    asset: str, ledger: Ledger, absorbed: list[pl.DataFrame], band: RateBand, storage: StorageResource
) -> dg.MaterializeResult:
    """Metadata and checks shared by exact and near duplicates; checks cover the newly absorbed drops."""
    new = summary.newly_absorbed(absorbed)
    decisions = [str(p) for p in ledger.decision_files()]
    rates = summary.rates_by_drop(ledger)
    new_rates = rates.filter(pl.col("drop").is_in(new["drop"].unique().to_list()))
    largest = (
        markdown_table(summary.largest_groups(decisions, storage.layout.documents, LARGEST_GROUPS))
        if decisions
        else "no drops absorbed yet"
    )
    return dg.MaterializeResult(
        metadata={
            "absorbed_now": dg.MetadataValue.json(new["drop"].unique(maintain_order=True).to_list()),
            "drops_absorbed": len(ledger.drops),
            "duplicates_now": int(new["duplicate_of"].is_not_null().sum()),
            "by_drop": dg.MetadataValue.md(markdown_table(rates)),
            "by_source": dg.MetadataValue.md(markdown_table(summary.rates_by_source(ledger))),
            "largest_groups": dg.MetadataValue.md(largest),
            "decisions": dg.MetadataValue.path(str(ledger.decisions)),
        },
        data_version=dg.DataVersion(ledger.digest()),
        check_results=duplicate_checks(asset, new, decisions, new_rates, band),
    )
