"""The weekly re-curation: refit the clusters when the data has drifted, then rebuild what follows."""

import dagster as dg

from curation_dag.assets.semantic import semantic_clusters
from curation_dag.automation.conditions import SCHEDULE_STATUS
from curation_dag.store.layout import SEMANTIC_CLUSTERS

recuration_job = dg.define_asset_job(
    "recuration_job",
    selection=dg.AssetSelection.assets(semantic_clusters).downstream(),
    config={"ops": {SEMANTIC_CLUSTERS: {"config": {"refit": "on_drift"}}}},
    description="Re-curate: refit the clusters on every drop when one has drifted (refit: always forces it), "
    "then rebuild the semantic duplicates, quality scores, recipe models and mixtures.",
)
# New drops join the current clusters as they come; the schedule refits once their drift says so,
# so that the clusters, and the mixtures pruned by them, follow the data.
weekly_recuration = dg.ScheduleDefinition(
    name="weekly_recuration",
    job=recuration_job,
    cron_schedule="0 3 * * 1",
    default_status=SCHEDULE_STATUS,
    description="Runs recuration_job every Monday at 03:00 UTC.",
)
