"""Thin asset wrappers, one module per curation step."""
