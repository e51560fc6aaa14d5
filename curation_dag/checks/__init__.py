"""Data-quality checks: great-expectations suites and invariants as asset checks."""
