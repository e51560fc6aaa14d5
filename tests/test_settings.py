"""settings.py: the environment read once, a bad value named with what to set."""

import pytest

from curation_dag.settings import Settings


def test_settings_name_a_bad_choice_and_select_the_embedder_for_every_job():
    assert Settings.from_environment({"CURATION_EMBEDDER": "minilm"}).embedder == "minilm"
    assert Settings.from_environment({}).embedder == "static"
    with pytest.raises(ValueError, match="CURATION_EMBEDDER='fast': set it to one of static, minilm"):
        Settings.from_environment({"CURATION_EMBEDDER": "fast"})
    with pytest.raises(ValueError, match="CURATION_DEVICE='gpu'"):
        Settings.from_environment({"CURATION_DEVICE": "gpu"})
