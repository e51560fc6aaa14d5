"""One stage of the pipeline in a process of its own, for tests/e2e/test_crash_safety.py, which kills it.

    python -m tests.e2e.crash_runner STAGE WORK MODEL_CACHE [--kill-at N]

WORK holds drops/, recipes/ and store/; DAGSTER_HOME names a persistent instance. With --kill-at N,
the process cuts the Nth temporary file it is about to rename into place under store/ to half its
size, as a write stopped midway, and SIGKILLs itself. It prints how many files it renamed into place.
"""

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import dagster as dg

from curation_dag.automation.run_recovery import recover_dead_runs
from curation_dag.definitions import build_definitions
from curation_dag.resources import EmbedderResource

PER_DROP = ["raw_documents", "minhash_signatures", "quality_signals"]
STAGES = {
    "ingest": [PER_DROP],
    "dedup": [["exact_duplicates", "near_duplicates"]],
    "curate": [
        ["embeddings"],
        ["semantic_clusters", "semantic_duplicates", "quality_scores", "candidates", "cluster_summary"],
    ],
    "mixture": [["mixture_balanced"]],
}


def count_renames(store: Path, kill_at: int | None):
    """Wrap os.replace, which atomic_path renames with; return a function giving the count so far."""
    real, count = os.replace, [0]

    def replace(source, destination, **kwargs):
        path = Path(source)
        if path.name.startswith(".") and path.name.endswith(".tmp") and store in path.resolve().parents:
            count[0] += 1
            if count[0] == kill_at:
                path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
                os.kill(os.getpid(), signal.SIGKILL)
        return real(source, destination, **kwargs)

    os.replace = replace
    return lambda: count[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("work", type=Path)
    parser.add_argument("model_cache")
    parser.add_argument("--kill-at", type=int)
    args = parser.parse_args()
    work = args.work.resolve()
    renames = count_renames(work / "store", args.kill_at)
    defs = build_definitions(
        str(work / "recipes"),
        str(work / "drops"),
        str(work / "store"),
        EmbedderResource(device="cpu", cache_dir=args.model_cache),
    )
    keys = sorted(f"{drop.parent.name}/{drop.name}" for drop in (work / "drops").glob("*/*"))
    with dg.DagsterInstance.get() as instance:
        recover_dead_runs(instance)  # as `curate demo` does: a killed earlier run holds its pool slots
        instance.add_dynamic_partitions("drops", [k for k in keys if not instance.has_dynamic_partition("drops", k)])
        for selection in STAGES[args.stage]:
            partitions = keys if defs.resolve_assets_def(selection[0]).partitions_def else [None]
            for partition in partitions:
                result = dg.materialize(
                    list(defs.assets),
                    selection=selection,
                    partition_key=partition,
                    instance=instance,
                    resources=defs.resources,
                    raise_on_error=False,
                )
                if not result.success:
                    errors = [event.step_failure_data.error.message for event in result.get_step_failure_events()]
                    sys.exit(f"{args.stage}: {selection} {partition or ''} failed: {' '.join(errors)}")
    print(json.dumps({"renames": renames()}))


if __name__ == "__main__":
    main()
