"""settings.py: the environment read once, a bad value named with what to set."""

import pytest

from curation_dag.settings import Settings
from tests.conftest import DEMO_DROPS, RECIPES


def test_settings_name_a_bad_choice_and_select_the_embedder_for_every_job():
    assert Settings.from_environment({"CURATION_EMBEDDER": "minilm"}).embedder == "minilm"
    assert Settings.from_environment({}).embedder == "static"
    with pytest.raises(ValueError, match="CURATION_EMBEDDER='fast': set it to one of static, minilm"):
        Settings.from_environment({"CURATION_EMBEDDER": "fast"})
    with pytest.raises(ValueError, match="CURATION_DEVICE='gpu'"):
        Settings.from_environment({"CURATION_DEVICE": "gpu"})


def test_the_executor_setting_gives_every_job_its_executor():
    from curation_dag.definitions import build_definitions, executor_for
    from curation_dag.resources import EmbedderResource

    broker = {"CURATION_CELERY_BROKER": "redis://127.0.0.1:6379/0"}
    with pytest.raises(ValueError, match="CURATION_EXECUTOR=celery needs CURATION_CELERY_BROKER, a Redis URL"):
        Settings.from_environment({"CURATION_EXECUTOR": "celery"})
    with pytest.raises(ValueError, match="CURATION_CELERY_BROKER='127.0.0.1:6379': set it to a Redis URL"):
        Settings.from_environment({"CURATION_EXECUTOR": "celery", "CURATION_CELERY_BROKER": "127.0.0.1:6379"})
    with pytest.raises(ValueError, match="CURATION_EXECUTOR='ray': set it to one of default, celery, k8s"):
        Settings.from_environment({"CURATION_EXECUTOR": "ray"})
    folders = {"recipes_folder": str(RECIPES), "drops_root": str(DEMO_DROPS), "storage_root": ".curation"}
    for environment, name in (
        ({}, "multi_or_in_process_executor"),
        ({"CURATION_EXECUTOR": "celery", **broker}, "celery"),
        ({"CURATION_EXECUTOR": "k8s"}, "k8s"),
    ):
        executor = executor_for(Settings.from_environment(environment))
        defs = build_definitions(**folders, embedder=EmbedderResource(), executor=executor)
        assert {defs.resolve_job_def(job).executor_def.name for job in ("curation_job", "mixtures_job")} == {name}
