"""Build demo_data/drops reproducibly from redistributable files on this machine."""

import gzip
import json
import shutil
from pathlib import Path
from pydoc_data.topics import topics

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

OUT = Path(__file__).resolve().parent / "drops"
DROPS = ("2026-11-01", "2026-11-15")
STDLIB = Path("/root/.pyenv/versions/3.11.7/lib/python3.11")
SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "__pycache__"}
DOC = Path("/usr/share/doc")
NOT_DEBIAN = ("google-cloud-cli", "kubectl", "nodejs")  # from non-Debian apt repos
CODE_SCHEMA = pa.schema([("path", pa.string()), ("content", pa.string()), ("n_lines", pa.int64())])


def read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def spread(items: list, n: int) -> list:
    """Take n items at an even stride through the sorted list."""
    return items[:: len(items) // n][:n]


def halves(items: list) -> list[list]:
    mid = (len(items) + 1) // 2
    return [items[:mid], items[mid:]]


def jsonl(records: list[dict]) -> bytes:
    lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return "".join(lines).encode()


def new_drop(source: str, drop_id: str) -> Path:
    drop = OUT / source / drop_id
    drop.mkdir(parents=True)
    return drop


def python_code() -> None:
    rels = (p.relative_to(STDLIB) for p in sorted(STDLIB.rglob("*.py")))
    files = [
        rel.as_posix()
        for rel in rels
        if not SKIP_DIRS & set(rel.parts)
        and not rel.parts[0].startswith("config-")
        and (STDLIB / rel).stat().st_size < 25_000
    ]
    picked = spread(sorted(files), 80)
    for d, drop_id in enumerate(DROPS):
        drop = new_drop("python_code", drop_id)
        for i, paths in enumerate(halves(picked[d::2])):
            texts = [read_text(STDLIB / p) for p in paths]
            n_lines = [len(t.splitlines()) for t in texts]
            table = pa.table([paths, texts, n_lines], schema=CODE_SCHEMA)
            pq.write_table(table, drop / f"part-{i:05d}.parquet", compression="zstd")
        (drop / "_SUCCESS").touch()


def python_docs() -> None:
    for drop_id, names in zip(DROPS, halves(sorted(topics)), strict=True):
        records = [{"id": n, "text": topics[n], "title": topics[n].strip().splitlines()[0]} for n in names]
        drop = new_drop("python_docs", drop_id)
        data = zstandard.ZstdCompressor(level=19).compress(jsonl(records))
        (drop / "part-00000.jsonl.zst").write_bytes(data)
        (drop / "_SUCCESS").touch()


def licenses() -> None:
    pkgs = [
        d.name
        for d in sorted(DOC.iterdir())
        if not d.is_symlink()
        and not d.name.startswith(NOT_DEBIAN)
        and (d / "copyright").is_file()
        and (d / "copyright").stat().st_size <= 40_000
    ]
    picked = spread(pkgs, 120)
    first, second = (
        [{"id": p, "text": read_text(DOC / p / "copyright"), "package": p} for p in picked[d::2]] for d in range(2)
    )
    # Exact copies of three 2026-11-01 documents, then the two bad records.
    tail = [{**r, "id": f"{r['package']}-copy"} for r in first[10:40:10]]
    tail += [
        {"id": "empty-notice", "text": " \n\t \n", "package": "empty-notice"},
        {**second[0], "text": "This record reuses an id from earlier in the drop.\n"},
    ]
    for drop_id, records in zip(DROPS, (first, second), strict=True):
        drop = new_drop("licenses", drop_id)
        shards = halves(records)
        if records is second:
            shards[-1] += tail
        for i, shard in enumerate(shards):
            data = gzip.compress(jsonl(shard), compresslevel=9, mtime=0)
            (drop / f"part-{i:05d}.jsonl.gz").write_bytes(data)
        (drop / "_SUCCESS").touch()


def count(path: Path) -> int:
    if path.suffix == ".parquet":
        return pq.read_table(path).num_rows
    raw = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(raw)
    else:
        data = zstandard.ZstdDecompressor().decompress(raw)
    return len([json.loads(line) for line in data.decode().split("\n") if line])


def summary() -> None:
    print("| source | drop | shards | records | bytes |")
    print("|---|---|---:|---:|---:|")
    for drop in sorted(p.parent for p in OUT.glob("*/*/_SUCCESS")):
        shards = sorted(drop.glob("part-*"))
        records = sum(count(p) for p in shards)
        size = sum(p.stat().st_size for p in shards)
        print(f"| {drop.parent.name} | {drop.name} | {len(shards)} | {records} | {size} |")


if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    shutil.copyfile(STDLIB / "LICENSE.txt", OUT.parent / "LICENSE-PSF-2.0.txt")
    python_code()
    python_docs()
    licenses()
    summary()
