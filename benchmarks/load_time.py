"""How long the code location takes to load: `import curation_dag.definitions` in a fresh interpreter,
as `dagster dev` and every run worker do, for this checkout and a baseline git revision in the same
run (a temporary worktree), alternating so both see the same machine load. Medians of `--runs`.

    python benchmarks/load_time.py [--baseline dde69ac] [--runs 7]
"""

from __future__ import annotations

import argparse
import ast
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
PROBE = "import sys; import curation_dag.definitions; print(sorted({m.split('.')[0] for m in sys.modules}))"


def load_seconds(checkout: Path) -> tuple[float, set[str]]:
    """One load in a fresh interpreter, its working folder the checkout (so its package is the one imported)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=checkout, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, set(ast.literal_eval(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="dde69ac", help="git revision to compare with (before the restructure)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        baseline = Path(folder) / "baseline"
        worktree = ["git", "worktree", "add", "-q", "--detach", str(baseline), args.baseline]
        subprocess.run(worktree, cwd=PROJECT, check=True)
        try:
            times: dict[str, list[float]] = {"this checkout": [], f"baseline {args.baseline}": []}
            heavy = {}
            for _ in range(args.runs):
                for name, checkout in zip(times, (PROJECT, baseline), strict=True):
                    seconds, modules = load_seconds(checkout)
                    times[name].append(seconds)
                    heavy[name] = sorted(modules & {"matplotlib", "pandas", "torch", "sentence_transformers", "faiss"})
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=PROJECT, check=True)
    print("| checkout | median load (s) | min | max | heavy modules imported |\n|---|---:|---:|---:|---|")
    for name, values in times.items():
        print(
            f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} | "
            f"{', '.join(heavy[name]) or 'none'} |"
        )
    ours, theirs = (statistics.median(v) for v in times.values())
    print(f"\nratio (this / baseline): {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
