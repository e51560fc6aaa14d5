"""Every setting the environment gives the project, read here and nowhere else.

The defaults run the shipped demo from the project folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from curation_dag.resources.embedder import CpuBackend, Device

# Where a run's steps execute (README, "Scale out"): Dagster's default (in the run's process, or a
# process per step), celery workers, or a Kubernetes pod per step.
Executor = Literal["default", "celery", "k8s"]


@dataclass(frozen=True)
class Settings:
    storage_root: str = ".curation"  # CURATION_STORAGE_ROOT: every asset's outputs (store/layout.py)
    recipes: str = "dbt_like_recipes"  # CURATION_RECIPES: sources, configs, SQL models and mixtures
    drops_root: str = "demo_data/drops"  # CURATION_DROPS_ROOT: one folder per source, one per drop below
    model_cache: str | None = None  # CURATION_MODEL_CACHE: the embedders' files; <local storage root>/models if unset
    device: Device = "auto"  # CURATION_DEVICE: auto takes a GPU when one is visible
    embedder: CpuBackend = "static"  # CURATION_EMBEDDER: every job's CPU backend (a GPU runs MiniLM)
    automation: bool = True  # CURATION_AUTOMATION=off starts the sensors and the schedule stopped
    executor: Executor = "default"  # CURATION_EXECUTOR: where every job's steps execute
    celery_broker: str | None = None  # CURATION_CELERY_BROKER: the celery executor's broker and results backend

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        default = cls()
        storage_root = environ.get("CURATION_STORAGE_ROOT", default.storage_root)
        return cls(
            storage_root=storage_root,
            recipes=environ.get("CURATION_RECIPES", default.recipes),
            drops_root=environ.get("CURATION_DROPS_ROOT", default.drops_root),
            model_cache=environ.get("CURATION_MODEL_CACHE", os.path.join(_local(storage_root), "models")),
            device=_choice(environ, "CURATION_DEVICE", default.device, get_args(Device)),
            embedder=_choice(environ, "CURATION_EMBEDDER", default.embedder, get_args(CpuBackend)),
            automation=environ.get("CURATION_AUTOMATION", "on").lower() != "off",
            executor=(executor := _choice(environ, "CURATION_EXECUTOR", default.executor, get_args(Executor))),
            celery_broker=_broker(environ.get("CURATION_CELERY_BROKER") or None, executor),
        )


def _choice(environ: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]):
    value = environ.get(name, default)
    if value not in choices:
        raise ValueError(f"{name}={value!r}: set it to one of {', '.join(choices)}, or leave it unset for {default}")
    return value


def dagster_home() -> Path:
    """Sets DAGSTER_HOME, for `curate` run outside the Makefile, to `.curation/dagster_home` unless it is
    set, and creates the folder: the Dagster instance the commands use."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".curation/dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    return home


def _local(storage_root: str) -> str:
    """The storage root, or the default's local folder where the root is a URL (object storage)."""
    return Settings.storage_root if "://" in storage_root else storage_root


def _broker(url: str | None, executor: str) -> str | None:
    if executor == "celery" and url is None:
        raise ValueError(
            "CURATION_EXECUTOR=celery needs CURATION_CELERY_BROKER, a Redis URL such as redis://127.0.0.1:6379/0"
        )
    if url is not None and not url.startswith(("redis://", "rediss://")):
        raise ValueError(f"CURATION_CELERY_BROKER={url!r}: set it to a Redis URL such as redis://127.0.0.1:6379/0")
    return url
