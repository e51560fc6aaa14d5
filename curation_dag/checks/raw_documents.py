"""Data-quality checks on `raw_documents`: the accounting invariant and the expectation suite."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from curation_dag.checks.expectations import Expectation, ExpectationSuite
from curation_dag.steps.ingest.documents import DOCUMENTS_SCHEMA
from curation_dag.store.files import parquet_file

ACCOUNTING = "every_input_row_accounted_for"

RAW_DOCUMENTS_SUITE = ExpectationSuite(
    name="raw_documents_expectations",
    description="doc_id unique and not null, text not empty, content_hash a SHA-256, schema as declared.",
    expectations=(
        Expectation("ExpectTableColumnsToMatchOrderedList", {"column_list": DOCUMENTS_SCHEMA.names}),
        Expectation("ExpectColumnValuesToNotBeNull", {"column": "doc_id"}),
        Expectation("ExpectColumnValuesToBeUnique", {"column": "doc_id"}),
        Expectation("ExpectColumnValuesToBeBetween", {"column": "text", "min_value": 1}),
        Expectation("ExpectColumnValueLengthsToEqual", {"column": "content_hash", "value": 64}),
    ),
)


def accounting_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        ACCOUNTING,
        asset=asset,
        blocking=True,
        description="Input rows = accepted + quarantined, read back from the files.",
    )


def check_accounting(asset: str, input_rows: int, documents: Path, quarantine: Path) -> dg.AssetCheckResult:
    """Compare the rows the readers saw with the rows that landed in the two output files."""
    accepted = parquet_file(documents).metadata.num_rows
    quarantined = parquet_file(quarantine).metadata.num_rows
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=ACCOUNTING,
        passed=input_rows == accepted + quarantined,
        metadata={"input_rows": input_rows, "accepted": accepted, "quarantined": quarantined},
    )


def check_expectations(asset: str, documents: Path) -> dg.AssetCheckResult:
    """Validate the written file. The frame keeps every column, but `text` holds each text's length
    in characters, measured from the file batch by batch, so memory stays bounded by a batch."""
    shard = parquet_file(documents)
    lengths = [pc.utf8_length(batch["text"]).cast(pa.int64()) for batch in shard.iter_batches(columns=["text"])]
    frame = shard.read(columns=[name for name in shard.schema_arrow.names if name != "text"]).to_pandas()
    if "text" in shard.schema_arrow.names:
        text_lengths = pa.chunked_array(lengths, type=pa.int64()).to_pandas()
        frame.insert(shard.schema_arrow.names.index("text"), "text", text_lengths)
    return RAW_DOCUMENTS_SUITE.validate(asset, frame)
