"""The curation_dag code location: every asset, check, resource, sensor, schedule and job, wired in one place.

Paths and the device come from the environment (settings.py), with defaults that run the shipped
demo from the project folder.
"""

import dagster as dg

from curation_dag.assets.dedup import exact_duplicates, minhash_signatures, near_duplicates
from curation_dag.assets.embed import embeddings
from curation_dag.assets.ingest import raw_documents
from curation_dag.assets.mixtures import mixture_assets
from curation_dag.assets.quality import quality_scores, quality_signals
from curation_dag.assets.recipe_models import model_assets
from curation_dag.assets.semantic import semantic_clusters, semantic_duplicates
from curation_dag.assets.takedowns import takedowns
from curation_dag.automation.run_recovery import dead_runs_sensor
from curation_dag.automation.schedules import recuration_job, weekly_recuration
from curation_dag.automation.sensors import automation_sensor, new_drops_sensor
from curation_dag.resources import DropsResource, EmbedderResource, RecipesResource, StorageResource
from curation_dag.settings import Settings

curation_job = dg.define_asset_job(
    "curation_job",
    selection=dg.AssetSelection.assets(raw_documents, minhash_signatures, quality_signals),
    description="Curate one data drop: every per-drop step, from raw shards on.",
)
dedup_job = dg.define_asset_job(
    "dedup_job",
    selection=dg.AssetSelection.assets(exact_duplicates, near_duplicates),
    description="Absorb every curated drop not yet deduplicated, in arrival order.",
)
embed_job = dg.define_asset_job(
    "embed_job",
    selection=dg.AssetSelection.assets(embeddings),
    description="Embed one deduplicated drop.",
)
semantic_job = dg.define_asset_job(
    "semantic_job",
    selection=dg.AssetSelection.assets(semantic_clusters, semantic_duplicates, quality_scores),
    description="Cluster every embedded drop not yet clustered, find semantic duplicates (SemDeDup) and add the "
    "model-based quality scores.",
)
mixtures_job = dg.define_asset_job(
    "mixtures_job",
    selection=dg.AssetSelection.groups("recipes", "mixtures"),
    description="Build every recipe model, then every training mixture.",
)
takedown_job = dg.define_asset_job(
    "takedown_job",
    selection=dg.AssetSelection.assets(takedowns) | dg.AssetSelection.groups("recipes", "mixtures"),
    description="Take documents down (config: doc_ids, content_hashes or drops, reason, requested_by), then rebuild "
    "every recipe model and mixture without them.",
)

PIPELINE = [
    raw_documents,
    minhash_signatures,
    exact_duplicates,
    near_duplicates,
    embeddings,
    semantic_clusters,
    semantic_duplicates,
    quality_signals,
    quality_scores,
    takedowns,
]


def _versioned(asset: dg.AssetsDefinition, versions: dict[str, str]) -> dg.AssetsDefinition:
    """`asset` with the code version of the recipe settings its output depends on, where it has one."""
    return asset.map_asset_specs(
        lambda spec: spec.replace_attributes(code_version=versions.get(spec.key.to_user_string(), spec.code_version))
    )


def executor_for(settings: Settings) -> dg.ExecutorDefinition | None:
    """Where a launched run executes its steps: Dagster's default (a process per step), a task for the
    celery workers of the settings' broker (also the results backend), or a Kubernetes job per step (its
    image, namespace and environment come from the run launcher of Dagster's Helm chart, deploy/helm/)."""
    if settings.executor == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured({"broker": settings.celery_broker, "backend": settings.celery_broker})
    if settings.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return None


def build_definitions(
    recipes_folder: str,
    drops_root: str,
    storage_root: str,
    embedder: EmbedderResource,
    executor: dg.ExecutorDefinition | None = None,
):
    """The code location for one recipes folder, drops root and storage root.

    Recipe models (models/*.sql) and mixtures (mixtures/*.yml) are compiled here, and the pipeline
    assets' settings hashed into their code versions: a broken recipe fails the code location's load,
    naming the file and line, before any run starts."""
    recipes = RecipesResource(folder=recipes_folder)
    versions = recipes.code_versions()
    models = model_assets(recipes_folder)
    return dg.Definitions(
        assets=[*(_versioned(asset, versions) for asset in PIPELINE), *models, *mixture_assets(recipes_folder, models)],
        jobs=[curation_job, dedup_job, embed_job, semantic_job, mixtures_job, takedown_job, recuration_job],
        schedules=[weekly_recuration],
        sensors=[new_drops_sensor, automation_sensor, dead_runs_sensor],
        executor=executor,
        resources={
            "storage": StorageResource(root=storage_root),
            "recipes": recipes,
            "drops": DropsResource(drops_root=drops_root, recipes=recipes),
            "embedder": embedder,
        },
    )


_settings = Settings.from_environment()
defs = build_definitions(
    recipes_folder=_settings.recipes,
    drops_root=_settings.drops_root,
    storage_root=_settings.storage_root,
    embedder=EmbedderResource(device=_settings.device, cpu_backend=_settings.embedder, cache_dir=_settings.model_cache),
    executor=executor_for(_settings),
)
