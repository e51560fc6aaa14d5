"""Shared fixtures: the shipped demo drops, crafted drops, a real Dagster instance, ../shared/data, a
PostgreSQL server, a Redis server and an S3 server."""

import glob
import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from curation_dag.steps.ingest.drops import COMPLETE_MARKER

PROJECT = Path(__file__).resolve().parents[1]
DEMO_DROPS = PROJECT / "demo_data" / "drops"
RECIPES = PROJECT / "dbt_like_recipes"
SOURCES_FILE = RECIPES / "sources.yml"
SHARED_DATA = PROJECT.parent / "shared" / "data"
# The embedders' distilled static model and int8 transformer, made once per checkout (about a minute).
MODEL_CACHE = str(PROJECT / ".pytest_cache" / "models")


@pytest.fixture
def shared_data() -> Path:
    """The evaluation corpora beside the project; tests that need them skip on machines without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the evaluation corpora in {SHARED_DATA}, absent on this machine")
    return SHARED_DATA


QUIET = {"check": True, "stdout": subprocess.DEVNULL}  # a server command: its errors reach the test output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server (Debian's `postgresql`, which `make test` installs) on a free loopback
    port, in a temporary folder removed afterwards: its `createdb` command and its connection as the
    DAGSTER_PG_* variables that deploy/dagster.postgres.yaml reads, but the database. PostgreSQL refuses
    to run as root, so as root it runs as `postgres`. A failing command's stderr shows in the test output."""
    initdb = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    if initdb is None:
        pytest.skip("needs PostgreSQL's initdb and pg_ctl (Debian: apt-get install postgresql), absent here")
    bin_dir = Path(initdb).resolve().parent
    as_server = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="curation-postgres-"))
    port = free_port()
    data, options = folder / "data", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    server = [*as_server, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log")]
    try:
        if as_server:
            shutil.chown(folder, "postgres")
        subprocess.run([*as_server, initdb, "-D", data, "-U", "curation", "-A", "trust"], **QUIET)
        subprocess.run([*server, "-o", options, "-w", "start"], **QUIET)
        createdb = [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "curation"]
        yield (
            createdb,
            {
                "DAGSTER_PG_HOST": "127.0.0.1",
                "DAGSTER_PG_PORT": str(port),
                "DAGSTER_PG_USERNAME": "curation",
                "DAGSTER_PG_PASSWORD": "unused-with-trust-authentication",
            },
        )
    finally:
        subprocess.run([*server, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres(postgres_server, request) -> dict[str, str]:
    """A database of its own on the PostgreSQL server, for one test: the DAGSTER_PG_* variables."""
    createdb, connection = postgres_server
    database = re.sub(r"\W", "_", request.node.name)[:60].lower()
    subprocess.run([*createdb, database], **QUIET)
    return {**connection, "DAGSTER_PG_DB": database}


@pytest.fixture(scope="session")
def redis_broker():
    """A throwaway Redis server (Debian's `redis-server`, which `make test` installs) on a free loopback
    port, with nothing saved to disk: its URL, for celery's broker and results."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("needs redis-server (Debian: apt-get install redis-server), absent here")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        while not listening(port):  # within a second, as a rule
            if process.poll() is not None:
                pytest.fail(f"redis-server exited with status {process.returncode} before it listened")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def s3_server() -> dict[str, str]:
    """moto's standalone S3 server (a dev dependency) on a free loopback port: the standard AWS variables
    that point s3fs, PyArrow and Polars at it."""
    port = free_port()
    process = subprocess.Popen(
        [Path(sys.executable).parent / "moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while not listening(port):
            if process.poll() is not None:
                pytest.fail(f"moto_server exited with status {process.returncode} before it listened")
            time.sleep(0.05)
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def s3_root(s3_server, monkeypatch) -> str:
    """A storage root in a new, empty bucket of the S3 server, with this process's AWS variables set to reach
    it; `s3_server` gives the same variables to other processes."""
    import s3fs

    for name, value in s3_server.items():
        monkeypatch.setenv(name, value)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(bucket)
    return f"s3://{bucket}/store"


@pytest.fixture(scope="session")
def static_embedder():
    """The CPU fast path, distilled from the bundled MiniLM once per checkout into MODEL_CACHE
    (about a minute the first time), then loaded from there."""
    from curation_dag.resources import EmbedderResource

    embedder = EmbedderResource(device="cpu", cache_dir=MODEL_CACHE)
    embedder.setup_for_execution(dg.build_init_resource_context())
    return embedder


@pytest.fixture(scope="session")
def demo_pipeline(tmp_path_factory, static_embedder):
    """Every pipeline asset, ingest to quality scores, materialized once per session on the six
    demo drops (as `make demo` does): the instance, the storage root and the `dg.materialize` kwargs."""
    from curation_dag.assets.dedup import exact_duplicates, minhash_signatures, near_duplicates
    from curation_dag.assets.embed import embeddings
    from curation_dag.assets.ingest import raw_documents
    from curation_dag.assets.quality import quality_scores, quality_signals
    from curation_dag.assets.semantic import semantic_clusters, semantic_duplicates
    from curation_dag.resources import DropsResource, EmbedderResource, RecipesResource, StorageResource

    root = tmp_path_factory.mktemp("demo_pipeline") / "store"
    recipes = RecipesResource(folder=str(RECIPES))
    resources = {
        "storage": StorageResource(root=str(root)),
        "recipes": recipes,
        "drops": DropsResource(drops_root=str(DEMO_DROPS), recipes=recipes),
        "embedder": EmbedderResource(device="cpu", cache_dir=static_embedder.cache_dir),
    }
    drops = (f"{drop.parent.name}/{drop.name}" for drop in DEMO_DROPS.glob("*/*") if drop.is_dir())
    keys = sorted(drops, key=lambda key: (key.split("/")[1], key))  # in arrival order, as the sensor adds them
    with dg.DagsterInstance.ephemeral() as instance:
        run = dict(instance=instance, resources=resources)
        instance.add_dynamic_partitions("drops", keys)
        for key in keys:
            per_drop = dg.materialize([raw_documents, minhash_signatures, quality_signals], partition_key=key, **run)
            assert per_drop.success
        assert dg.materialize([exact_duplicates, near_duplicates], **run).success
        for key in keys:
            assert dg.materialize([embeddings], partition_key=key, **run).success
        assert dg.materialize([semantic_clusters, semantic_duplicates, quality_scores], **run).success
        yield instance, root, run


# Two mixtures sized for two or three demo drops, for tests that run the pipeline on a few drops.
SMALL_MIXTURES = {
    "balanced": """description: Licences and docs, half and half.
budget_tokens: 30000
pool: candidates
weights: {licenses: 0.5, python_docs: 0.5}
max_repeats: 2
seed: 1
""",
    "prose": """description: Docs that pass the FineWeb rules.
budget_tokens: 20000
pool: candidates
weights: {python_docs: 1.0}
filters: {rule_sets: [fineweb]}
max_repeats: 2
seed: 1
""",
}


def small_recipes(folder: Path) -> Path:
    """A copy of the shipped recipes whose mixtures are SMALL_MIXTURES."""
    shutil.copytree(RECIPES, folder, ignore=shutil.ignore_patterns("mixtures"))
    (folder / "mixtures").mkdir()
    for name, spec in SMALL_MIXTURES.items():
        (folder / "mixtures" / f"{name}.yml").write_text(spec)
    return folder


@pytest.fixture
def chromium() -> str:
    """The headless browser of the browser tests, or a skip saying how to get it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip(
            "Chromium not installed: `make test` installs Debian's chromium with apt-get where it can; "
            "install it to run this test"
        )
    return browser


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def write_jsonl(path: Path, records: list, compress: bool = False) -> Path:
    """Write JSON Lines: dicts are dumped, bytes are written as the raw line."""
    lines = b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(lines, mtime=0) if compress else lines)
    return path


def mark_complete(drop_dir: Path) -> Path:
    drop_dir.mkdir(parents=True, exist_ok=True)
    (drop_dir / COMPLETE_MARKER).touch()
    return drop_dir


@pytest.fixture
def bad_drop(tmp_path) -> Path:
    """One drop with every class of bad input, beside good rows in every format."""
    drop = tmp_path / "drops" / "crafted" / "d1"
    write_jsonl(
        drop / "a.jsonl",
        [
            {"id": "g1", "text": "Hello world", "lang": "en"},
            b'{"id": "m1", "text": "unterminated',
            b'{"id": "u1", "text": "caf\xff"}',
            {"id": "x1"},
            {"id": "x2", "text": None},
            {"id": "x3", "text": 42},
            {"id": "e1", "text": "  \n\t "},
            {"id": "big", "text": "a" * 1001},
            {"id": "g1", "text": "same id again"},
            b"",
            {"id": "g2", "text": "  line one\r\nline two  "},
            b"[1, 2]",
            {"text": "no id"},
            {"id": ["list"], "text": "id is a list"},
        ],
    )
    good = write_jsonl(drop / "tmp.jsonl", [{"id": f"t{i}", "text": f"document {i} " * 50} for i in range(40)], True)
    (drop / "b.jsonl.gz").write_bytes(good.read_bytes()[:-300])  # cut inside the gzip stream
    good.unlink()
    pq.write_table(pa.table({"body": ["x", "y", "z"], "id": ["p1", "p2", "p3"]}), drop / "c.parquet")
    (drop / "d.csv").write_text("id,text\n1,hello\n")
    lines = b"".join(json.dumps({"id": f"z{i}", "text": f"zstd {i}"}).encode() + b"\n" for i in range(2))
    (drop / "e.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    pq.write_table(
        pa.table({"text": ["parquet one", "parquet two"], "id": [7, 8], "lang": ["de", "fr"]}), drop / "f.parquet"
    )
    (drop / "g.parquet").write_bytes(b"PAR1 this is not parquet")
    return mark_complete(drop)
