"""The drop sensor: each complete drop becomes a partition once; incomplete drops wait."""

import dagster as dg

from curation_dag.automation.sensors import new_drops_sensor
from curation_dag.resources import DropsResource, RecipesResource, StorageResource
from tests.conftest import mark_complete, write_jsonl


def tick(instance, resource):
    """One sensor evaluation, with its partition requests applied as the Dagster daemon does."""
    storage = StorageResource(root=str(resource.drops_root) + "-store")
    with dg.build_sensor_context(instance=instance, resources={"drops": resource, "storage": storage}) as context:
        result = new_drops_sensor(context)
    if isinstance(result, dg.SensorResult):
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_each_complete_drop_is_added_once_and_incomplete_drops_wait(instance, tmp_path):
    sources = tmp_path / "sources.yml"
    sources.write_text("sources:\n  - name: web\n  - name: books\n")
    drops = tmp_path / "drops"
    write_jsonl(mark_complete(drops / "web" / "2026-11-01") / "a.jsonl", [{"text": "x"}])
    write_jsonl(mark_complete(drops / "books" / "2026-11-01") / "a.jsonl", [{"text": "x"}])
    write_jsonl(drops / "web" / "2026-11-15" / "a.jsonl", [{"text": "still arriving"}])
    resource = DropsResource(drops_root=str(drops), recipes=RecipesResource(folder=str(tmp_path)))

    first = tick(instance, resource)
    assert [r.partition_key for r in first.run_requests] == ["books/2026-11-01", "web/2026-11-01"]
    assert [r.run_key for r in first.run_requests] == ["books/2026-11-01", "web/2026-11-01"]
    assert instance.get_dynamic_partitions("drops") == ["books/2026-11-01", "web/2026-11-01"]

    again = tick(instance, resource)
    assert isinstance(again, dg.SkipReason) and "no new complete drops" in again.skip_message

    mark_complete(drops / "web" / "2026-11-15")
    third = tick(instance, resource)
    assert [r.partition_key for r in third.run_requests] == ["web/2026-11-15"]
    assert instance.get_dynamic_partitions("drops") == ["books/2026-11-01", "web/2026-11-01", "web/2026-11-15"]


def test_badly_named_drops_are_refused_with_a_message(instance, tmp_path):
    sources = tmp_path / "sources.yml"
    sources.write_text("sources:\n  - name: web\n")
    mark_complete(tmp_path / "drops" / "web" / "bad name")
    result = tick(
        instance, DropsResource(drops_root=str(tmp_path / "drops"), recipes=RecipesResource(folder=str(tmp_path)))
    )
    assert isinstance(result, dg.SkipReason) and "1 folder(s) refused for their names" in result.skip_message
    assert instance.get_dynamic_partitions("drops") == []
