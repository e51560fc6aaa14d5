"""Recipe models: one asset per SQL model of `dbt_like_recipes/models`, its column tests as blocking checks."""

from pathlib import Path

import dagster as dg

from curation_dag.automation.conditions import on_new_data
from curation_dag.checks.sql import sql_check
from curation_dag.metadata import file_digest, markdown_table
from curation_dag.resources import StorageResource
from curation_dag.steps.recipes.files import RecipeError
from curation_dag.steps.recipes.models import (
    RecipeModel,
    SourceNotReady,
    check_queries,
    load_models,
    model_order,
    run_model,
)
from curation_dag.steps.recipes.sandbox import DUCKDB_POOL
from curation_dag.store.files import parquet_file, scan_parquet
from curation_dag.store.layout import TAKEDOWNS

PREVIEW_ROWS = 5


def model_assets(folder: str) -> list[dg.AssetsDefinition]:
    """An asset per model of `<folder>/models`, in dependency order; a bad recipe raises RecipeError here,
    so the code location fails to load with the file, line and problem instead of failing mid-run."""
    models = load_models(Path(folder))
    return [_model_asset(models[name]) for name in model_order(models)]


def _model_asset(model: RecipeModel) -> dg.AssetsDefinition:
    @dg.asset(
        name=model.name,
        # A model reading pipeline sources reads them as the takedowns leave them.
        deps=[dg.AssetKey(name) for name in (*model.refs, *model.sources, *([TAKEDOWNS] if model.sources else []))],
        group_name="recipes",
        kinds={"duckdb", "sql"},
        code_version=model.code_version,
        description=model.description,
        pool=DUCKDB_POOL,
        automation_condition=on_new_data(),
        check_specs=[
            dg.AssetCheckSpec(test.name, asset=model.name, blocking=True, description=test.describe())
            for test in model.tests
        ],
    )
    def recipe_model(storage: StorageResource) -> dg.MaterializeResult:
        try:
            output = run_model(model, storage.root)
            queries = check_queries(model, storage.root)
        except (RecipeError, SourceNotReady) as error:
            raise dg.Failure(description=str(error)) from None
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": parquet_file(output).metadata.num_rows,
                "dagster/column_schema": dg.TableSchema(
                    columns=[
                        dg.TableColumn(
                            field.name, str(field.type), description=model.column_descriptions.get(field.name)
                        )
                        for field in parquet_file(output).schema_arrow
                    ]
                ),
                "preview": dg.MetadataValue.md(markdown_table(scan_parquet(output).head(PREVIEW_ROWS).collect())),
                "sql": dg.MetadataValue.md(f"```sql\n{model.sql.strip()}\n```"),
                "recipe": dg.MetadataValue.path(str(model.path)),
                "output": dg.MetadataValue.path(str(output)),
            },
            data_version=dg.DataVersion(file_digest(output)),
            check_results=[sql_check(model.name, query.name, query.sql, **query.tables) for query in queries],
        )

    return recipe_model
