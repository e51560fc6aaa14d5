"""Configurable resources: storage paths and the drops folder."""

from curation_dag.resources.drops import DropsResource
from curation_dag.resources.storage import StorageResource

__all__ = ["DropsResource", "StorageResource"]
