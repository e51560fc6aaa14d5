"""Configurable resources: storage paths, the recipes folder, the drops folder and the embedder."""

from curation_dag.resources.drops import DropsResource
from curation_dag.resources.embedder import EmbedderResource
from curation_dag.resources.recipes import RecipesResource
from curation_dag.resources.storage import StorageResource

__all__ = ["DropsResource", "EmbedderResource", "RecipesResource", "StorageResource"]
