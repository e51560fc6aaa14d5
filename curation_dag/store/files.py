"""Reading the files under the storage root, in a local folder or on object storage.

A local root is read by Polars, PyArrow, NumPy and DuckDB directly. A URL root (`s3://bucket/prefix`,
any fsspec protocol) is read through its fsspec filesystem, so the root's one configuration (for S3 the
standard AWS variables: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...) serves every read: Parquet as
PyArrow datasets, which Polars scans and DuckDB queries lazily, by row group. Writes go through
`atomic_path` (store/atomic.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from upath import UPath


def is_local(path: Path) -> bool:
    """True for a path on this machine's file system; False for a URL's (`UPath` of object storage)."""
    return isinstance(path, Path)


def _paths(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """One path or several, each a `Path` (local) or a `UPath` (a URL's)."""
    paths = [paths] if isinstance(paths, str | Path | UPath) else paths
    return [path if isinstance(path, Path | UPath) else UPath(path) for path in paths]


def dataset(paths: Sequence[str | Path]) -> ds.Dataset:
    """Parquet files as one dataset of their unified schema (as DuckDB's `union_by_name`: a column one file
    lacks reads as null there)."""
    paths = _paths(paths)
    if all(map(is_local, paths)):
        files, filesystem = [str(path) for path in paths], None
    else:
        files, filesystem = [path.path for path in paths], paths[0].fs
    schema = pa.unify_schemas([pq.read_schema(file, filesystem=filesystem) for file in files])
    return ds.dataset(files, schema=schema, format="parquet", filesystem=filesystem)


def scan_parquet(paths: str | Path | Sequence[str | Path]) -> pl.LazyFrame:
    """A lazy scan of Parquet files, in the order given."""
    paths = _paths(paths)
    if all(map(is_local, paths)):
        return pl.scan_parquet([str(path) for path in paths])
    return pl.scan_pyarrow_dataset(dataset(paths))


def read_parquet(path: str | Path, columns: Sequence[str] | None = None) -> pl.DataFrame:
    scan = scan_parquet(path)
    return (scan.select(columns) if columns is not None else scan).collect()


def parquet_file(path: str | Path) -> pq.ParquetFile:
    """One Parquet file, to read its metadata or stream its row groups."""
    [path] = _paths(path)
    return pq.ParquetFile(str(path)) if is_local(path) else pq.ParquetFile(path.path, filesystem=path.fs)


def load_array(path: str | Path, mmap: bool = False) -> np.ndarray:
    """A `.npy` array; memory-mapped when asked and the file is local, else read whole."""
    [path] = _paths(path)
    if is_local(path):
        return np.load(path, mmap_mode="r" if mmap else None)
    with path.open("rb") as handle:
        return np.load(handle)
