"""curation_dag: a declarative, Dagster-orchestrated data-curation DAG for LLM training data."""
