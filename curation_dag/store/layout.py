"""Where every output lives: one folder per asset under the storage root, one per drop below a
per-drop asset, and every file name. Nothing else in the project spells a path under the root.

The root is a `upath.UPath`: a local folder (the default) is a plain `pathlib.Path`, and a URL
(`s3://bucket/prefix`, any fsspec protocol) names object storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from upath import UPath

# The assets, by the name of their folder (and their Dagster asset key).
RAW_DOCUMENTS = "raw_documents"
MINHASH_SIGNATURES = "minhash_signatures"
EXACT_DUPLICATES = "exact_duplicates"
NEAR_DUPLICATES = "near_duplicates"
EMBEDDINGS = "embeddings"
SEMANTIC_CLUSTERS = "semantic_clusters"
SEMANTIC_DUPLICATES = "semantic_duplicates"
QUALITY_SIGNALS = "quality_signals"
QUALITY_SCORES = "quality_scores"
TAKEDOWNS = "takedowns"
RECIPE_MODELS = "recipe_models"
MIXTURES = "mixtures"
TOKEN_COUNTS = "token_counts"

# Per-drop assets and the file each writes in its drop's folder.
PER_DROP_FILE = {
    RAW_DOCUMENTS: "documents.parquet",
    MINHASH_SIGNATURES: "signatures.parquet",
    QUALITY_SIGNALS: "signals.parquet",
}

QUARANTINE = "quarantine.parquet"
DROP_FILES = "files.json"
CENTROIDS = "centroids.npy"
TRANSFORMER_VECTORS = "transformer_vectors"  # under semantic_duplicates: its confirmations' vectors, per drop
FIT = "fit.json"
CLUSTER_COMPLEXITY = "cluster_complexity.parquet"
TAKEDOWN_LOG = "log.jsonl"
CURRENT = "CURRENT"  # in a mixture's folder: names its latest materialization
# In a mixture materialization's folder, `<mixtures>/<name>/<16 hex of its manifest hash>/`:
RUN = "run.json"  # the run that built it
MANIFEST = "manifest.parquet"
DECISIONS = "decisions.parquet"
CANDIDATES = "candidates.parquet"  # the pool as it was read, so the audit stays exact after later drops
SUMMARY = "summary.json"
REPORT = "report.html"
MIXTURE_DOCUMENTS = "documents"  # documents.parquet or documents.jsonl, by the spec's format


@dataclass(frozen=True)
class Layout:
    """The paths of every output under one storage root."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> Layout:
        return cls(UPath(root))

    @classmethod
    def of_materialization(cls, folder: Path) -> Layout:
        """The layout under whose mixtures the materialization `folder` lies."""
        return cls.at(folder.parents[2])

    def asset(self, name: str, drop: str | None = None) -> Path:
        """An asset's folder, or its folder for one drop (`<source>/<drop_id>`)."""
        return self.root / name / drop if drop else self.root / name

    def per_drop_file(self, asset: str, drop: str) -> Path:
        return self.asset(asset, drop) / PER_DROP_FILE[asset]

    def per_drop_files(self, asset: str) -> list[Path]:
        """The file of every drop a per-drop asset has written, sorted by path."""
        return sorted(self.asset(asset).glob(f"*/*/{PER_DROP_FILE[asset]}"))

    # raw_documents
    def documents(self, drop: str) -> Path:
        return self.per_drop_file(RAW_DOCUMENTS, drop)

    def quarantine(self, drop: str) -> Path:
        return self.asset(RAW_DOCUMENTS, drop) / QUARANTINE

    def drop_files(self, drop: str) -> Path:
        """The files of a drop as they were ingested, with their digests (steps/ingest/drop_files.py)."""
        return self.asset(RAW_DOCUMENTS, drop) / DROP_FILES

    # minhash_signatures, embeddings, quality_signals
    def signatures(self, drop: str) -> Path:
        return self.per_drop_file(MINHASH_SIGNATURES, drop)

    def embeddings(self, drop: str, model_id: str) -> Path:
        return self.asset(EMBEDDINGS, drop) / f"{model_id}.parquet"

    def embedded_models(self, drop: str) -> list[str]:
        """The model ids a drop's vectors were made with."""
        return sorted(path.stem for path in self.asset(EMBEDDINGS, drop).glob("*.parquet"))

    def embeddings_files(self, model_id: str) -> list[Path]:
        """Every drop's vectors from one model, sorted by path."""
        return sorted(self.asset(EMBEDDINGS).glob(f"*/*/{model_id}.parquet"))

    # semantic_duplicates: the transformer's vectors of the candidates it confirmed, per drop judged
    def transformer_vectors(self, drop: str, model_id: str) -> Path:
        return self.asset(SEMANTIC_DUPLICATES) / TRANSFORMER_VECTORS / drop / f"{model_id}.parquet"

    def transformer_vectors_files(self, model_id: str) -> list[Path]:
        """Every judged drop's transformer vectors from one model, sorted by path."""
        return sorted((self.asset(SEMANTIC_DUPLICATES) / TRANSFORMER_VECTORS).glob(f"*/*/{model_id}.parquet"))

    def signals(self, drop: str) -> Path:
        return self.per_drop_file(QUALITY_SIGNALS, drop)

    # semantic_clusters, quality_scores
    def centroids(self) -> Path:
        return self.asset(SEMANTIC_CLUSTERS) / CENTROIDS

    def fit(self) -> Path:
        return self.asset(SEMANTIC_CLUSTERS) / FIT

    def cluster_complexity(self) -> Path:
        return self.asset(QUALITY_SCORES) / CLUSTER_COMPLEXITY

    # takedowns, recipe models, mixtures, token counts
    def takedown_log(self) -> Path:
        return self.asset(TAKEDOWNS) / TAKEDOWN_LOG

    def recipe_model(self, name: str) -> Path:
        return self.asset(RECIPE_MODELS) / f"{name}.parquet"

    def mixture(self, name: str) -> Path:
        """A mixture's folder: one folder per materialization, named by its manifest hash, and CURRENT."""
        return self.asset(MIXTURES) / name

    def current(self, name: str) -> Path:
        return self.mixture(name) / CURRENT

    def materialization(self, name: str, digest: str) -> Path:
        """A mixture materialization's folder, named by the first 16 hex digits of its manifest hash."""
        return self.mixture(name) / digest[:16]

    def mixture_documents(self) -> list[Path]:
        """The documents file of every materialization of every mixture, sorted by path."""
        return sorted(self.asset(MIXTURES).glob(f"*/*/{MIXTURE_DOCUMENTS}.*"))

    def token_counts(self, tokenizer: str) -> Path:
        return self.asset(TOKEN_COUNTS) / tokenizer
