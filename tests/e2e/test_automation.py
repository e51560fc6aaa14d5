"""Declarative automation end to end: the real evaluator, tick by tick, as drops arrive and recipes change.

Each tick's run requests are executed before the next tick, as the daemon's runs finish between its
ticks; the test asserts exactly which asset partitions every tick requests.
"""

import shutil

import dagster as dg
import pytest

from curation_dag.definitions import build_definitions
from tests.conftest import DEMO_DROPS, small_recipes

FIRST, SECOND, THIRD = "licenses/2026-11-01", "python_docs/2026-11-01", "licenses/2026-11-15"
MIXTURES = ["mixture_balanced", "mixture_prose"]


class Deployment:
    """A code location over a drops folder filled drop by drop, and a real instance: the drop sensor
    and the automation evaluator tick, and each tick's runs are executed before the next."""

    def __init__(self, tmp_path, embedder, instance):
        self.drops, self.recipes, self.store = tmp_path / "drops", tmp_path / "recipes", tmp_path / "store"
        small_recipes(self.recipes)
        self.embedder, self.instance, self.cursor = embedder, instance, None
        self.reload()

    def reload(self):
        """Load the code location again, as `dagster dev` does after a recipe edit."""
        self.defs = build_definitions(str(self.recipes), str(self.drops), str(self.store), self.embedder)

    def arrive(self, key):
        shutil.copytree(DEMO_DROPS / key, self.drops / key)
        sensor = self.defs.resolve_sensor_def("new_drops")
        with dg.build_sensor_context(instance=self.instance, resources=self.defs.resources) as context:
            result = sensor(context)
        for request in result.dynamic_partitions_requests:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        for request in result.run_requests:
            self.execute(sensor.asset_selection, request.partition_key)

    def execute(self, selection, partition_key):
        result = dg.materialize(
            list(self.defs.assets),
            selection=selection,
            partition_key=partition_key,
            instance=self.instance,
            resources=self.defs.resources,
        )
        assert result.success

    def tick(self) -> set[str]:
        """One evaluation of every automation condition; runs what it requests; names what it requested."""
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        runs = {}  # as the daemon groups them: one run per partition key
        for key in self.defs.resolve_asset_graph().get_all_asset_keys():
            for partition in result.get_requested_partitions(key):
                runs.setdefault(partition, []).append(key)
        for partition, keys in runs.items():
            self.execute(keys, partition)
        return {key.to_user_string() + (f"[{partition}]" if partition else "")
                for partition, keys in runs.items() for key in keys}  # fmt: skip

    def settle(self) -> list[set[str]]:
        """Tick until a tick requests nothing: what each tick requested, the last (empty) one included."""
        ticks = [self.tick()]
        while ticks[-1]:
            assert len(ticks) < 15, ticks
            ticks.append(self.tick())
        return ticks


@pytest.fixture
def deployment(tmp_path, static_embedder, instance):
    return Deployment(tmp_path, static_embedder, instance)


def test_automation_requests_exactly_what_new_data_and_recipe_edits_change(deployment):
    assert deployment.tick() == set()  # the first evaluation: nothing registered yet

    deployment.arrive(FIRST)
    deployment.arrive(SECOND)
    assert deployment.settle() == [
        {"exact_duplicates"},
        {"near_duplicates"},
        {f"embeddings[{FIRST}]", f"embeddings[{SECOND}]"},
        {"semantic_clusters"},
        {"semantic_duplicates", "quality_scores"},
        {"candidates"},
        {"cluster_summary", *MIXTURES},
        set(),
    ]

    # A third drop: its own partitions (the sensor ran them), the incremental assets, the mixtures.
    # quality_scores and candidates also run once early, on the new drop's signals and raw texts;
    # the drop is not clustered yet, so they write the same data and nothing downstream follows.
    deployment.arrive(THIRD)
    assert deployment.settle() == [
        {"exact_duplicates", "quality_scores"},
        {"near_duplicates"},
        {f"embeddings[{THIRD}]", "candidates"},
        {"semantic_clusters"},
        {"semantic_duplicates", "quality_scores"},
        {"candidates"},
        {"cluster_summary", *MIXTURES},
        set(),
    ]

    # Nothing new: an idle tick, and a re-run that writes the same data, request nothing.
    assert deployment.tick() == set()
    deployment.execute([dg.AssetKey("near_duplicates")], None)
    assert deployment.tick() == set()

    # An edited mixture spec rebuilds that mixture only.
    prose = deployment.recipes / "mixtures" / "prose.yml"
    prose.write_text(prose.read_text().replace("seed: 1", "seed: 2"))
    deployment.reload()
    assert deployment.settle() == [{"mixture_prose"}, set()]

    # An edited SQL model rebuilds that model and what depends on it: here nothing else.
    summary = deployment.recipes / "models" / "cluster_summary.sql"
    summary.write_text(  # a new column
        summary.read_text().replace("count(*) AS documents", "count(*) AS documents, sum(chars) AS size")
    )
    deployment.reload()
    assert deployment.settle() == [{"cluster_summary"}, set()]

    # A new SQL model is a new asset, built as soon as it is seen.
    (deployment.recipes / "models" / "sources_summary.sql").write_text(
        "SELECT source, count(*) AS documents FROM {{ ref('candidates') }} GROUP BY source ORDER BY source\n"
    )
    deployment.reload()
    assert deployment.settle() == [{"sources_summary"}, set()]
