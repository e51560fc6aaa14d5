"""Great Expectations suites as Dagster asset checks: in memory, ephemeral, imported only when run."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:  # pandas loads only when a suite runs
    import pandas as pd


@dataclass(frozen=True)
class Expectation:
    """One expectation by its Great Expectations 1.x class name, e.g. `ExpectColumnValuesToBeUnique`."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExpectationSuite:
    """A named list of expectations that becomes one blocking asset check."""

    name: str
    description: str
    expectations: tuple[Expectation, ...]

    def check_spec(self, asset: dg.AssetKey | str) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(self.name, asset=asset, description=self.description, blocking=True)

    def validate(self, asset: dg.AssetKey | str, frame: pd.DataFrame) -> dg.AssetCheckResult:
        """Run the suite on `frame`; metadata gives each expectation's outcome, counts and examples."""
        gx = _great_expectations()
        suite = gx.ExpectationSuite(
            name=self.name, expectations=[getattr(gx.expectations, e.name)(**e.kwargs) for e in self.expectations]
        )
        result = _batch(frame).validate(suite, result_format="SUMMARY")
        outcomes = [_outcome(r) for r in result.results]
        failed = [o["expectation"] for o in outcomes if not o["success"]]
        return dg.AssetCheckResult(
            asset_key=asset,
            check_name=self.name,
            passed=bool(result.success),
            description=f"failed: {', '.join(failed)}" if failed else f"{len(outcomes)} expectations met",
            metadata={
                "rows": len(frame),
                "failed_expectations": len(failed),
                "outcomes": dg.MetadataValue.json(outcomes),
            },
        )


@functools.cache
def _great_expectations():
    # Importing great_expectations takes about 7 s, so it happens on the first validation only.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    return gx


@functools.cache
def _dataframe_batch_definition():
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = _great_expectations().get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("curation_dag")
    return source.add_dataframe_asset("frames").add_batch_definition_whole_dataframe("whole_frame")


def _batch(frame: pd.DataFrame):
    return _dataframe_batch_definition().get_batch(batch_parameters={"dataframe": frame})


def _outcome(result) -> dict[str, Any]:
    details = result.result or {}
    outcome = {
        "expectation": result.expectation_config.type,
        "column": result.expectation_config.kwargs.get("column"),
        "success": bool(result.success),
    }
    for key in ("element_count", "unexpected_count", "unexpected_percent", "observed_value"):
        if key in details:
            outcome[key] = _plain(details[key])
    if details.get("partial_unexpected_list"):
        outcome["unexpected_examples"] = [_plain(v) for v in details["partial_unexpected_list"][:10]]
    return outcome


def _plain(value: Any) -> Any:
    """JSON-safe values for metadata: NaN (pandas' missing value) becomes None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value
