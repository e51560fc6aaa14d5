"""Configurable resources: storage paths, the recipes folder and the drops folder."""

from curation_dag.resources.drops import DropsResource
from curation_dag.resources.recipes import RecipesResource
from curation_dag.resources.storage import StorageResource

__all__ = ["DropsResource", "RecipesResource", "StorageResource"]
