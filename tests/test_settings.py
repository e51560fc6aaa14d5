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


def test_a_celery_broker_gives_every_job_the_celery_executor():
    from curation_dag.definitions import build_definitions, executor_for
    from curation_dag.resources import EmbedderResource

    assert Settings.from_environment({}).celery_broker is None
    broker = Settings.from_environment({"CURATION_CELERY_BROKER": "redis://127.0.0.1:6379/0"}).celery_broker
    with pytest.raises(ValueError, match="CURATION_CELERY_BROKER='127.0.0.1:6379': set it to a Redis URL"):
        Settings.from_environment({"CURATION_CELERY_BROKER": "127.0.0.1:6379"})
    folders = {"recipes_folder": str(RECIPES), "drops_root": str(DEMO_DROPS), "storage_root": ".curation"}
    for executor, name in ((executor_for(broker), "celery"), (executor_for(None), "multi_or_in_process_executor")):
        defs = build_definitions(**folders, embedder=EmbedderResource(), executor=executor)
        assert {defs.resolve_job_def(job).executor_def.name for job in ("curation_job", "mixtures_job")} == {name}
