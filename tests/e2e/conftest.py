"""Every test here runs the project end to end (the CLI, the UI, killed processes, automation ticks):
marked slow, so `pytest -m "not slow"` is the quick loop while editing. `make test` runs them all."""

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.slow)
