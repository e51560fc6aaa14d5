"""Quality signals and rules: ours against datatrove's Gopher, C4 and FineWeb filters, in one run, same documents.

The corpus is a fixed, seeded mix of real English-ish documents from ../shared/data: web pages,
Reuters news, StackExchange/arXiv/patents, Wikipedia, e-mail, Gutenberg books, and Python source,
man pages, Python and Perl docs and Debian copyright notices, so every rule set both keeps and drops.
Documents longer than MAX_CHARS are cut at the last line break before it, so that 17 books and a few
long source files do not dominate the timings (no document then reaches Gopher's 100,000-word cap).

Datatrove (a benchmark-only dependency) runs GopherRepetitionFilter, GopherQualityFilter,
C4QualityFilter and FineWebQualityFilter at their defaults, in the order of its FineWeb recipe, by
calling each filter's .filter() on its own Document (C4's rewrites the text), on every document:
one Python process, as one datatrove task. Its split_into_words cache is left as it is: within a
document the later filters reuse the first one's spaCy tokens unless C4's sentence splits evicted them.
Ours is one text_signals + rule_passes call on the whole batch, as the pipeline makes it; polars
uses every core, so ours is also timed in a subprocess with POLARS_MAX_THREADS=1. Every timing is a
median of --repeats, the three timings interleaved within each repeat, after a warm-up of both sides.

Agreement compares, per rule set, our set decision with datatrove's keep/drop of the same document
(C4: the document decision only; datatrove's C4 also drops lines from the documents it keeps).

    python benchmarks/quality.py [--docs 20000] [--repeats 3] [--out /tmp]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl

PROJECT = Path(__file__).resolve().parents[1]
DATA = PROJECT.parent / "shared" / "data"
MAX_CHARS = 100_000
SEED = 20261122
RULE_SETS = ("gopher_quality", "gopher_repetition", "c4", "fineweb")
WARM_UP_DOCS = 50
EXAMPLES_PER_CELL = 3
SNIPPET_CHARS = 400

# Share of --docs taken from each corpus (capped at its size); reuters21578 fills the rest.
SHARES = {
    "web_pages_fulltext": 0.06,
    "web_pages_main": 0.06,
    "cc_web_samples": 0.01,
    "misc_domain_samples": 0.07,
    "wikipedia_en_gensim": 0.01,
    "gutenberg_books": 0.001,
    "enron1_spam_ham": 0.10,
    "code_python_stdlib": 0.025,
    "deb_manpages": 0.03,
    "deb_python_docs": 0.015,
    "deb_copyright_files": 0.015,
    "deb_perl_pod": 0.005,
}
FILLER = "reuters21578"


def load(data: Path, n_docs: int) -> pl.DataFrame:
    """A seeded sample of each corpus at its share of n_docs, texts cut to MAX_CHARS at a line break."""
    rows = []
    wanted = {corpus: max(1, round(share * n_docs)) for corpus, share in SHARES.items()}
    for corpus in [*SHARES, FILLER]:
        with gzip.open(data / corpus / "docs.jsonl.gz", "rt", encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle]
        want = n_docs - len(rows) if corpus == FILLER else wanted[corpus]
        picked = sorted(random.Random(f"{SEED}:{corpus}").sample(range(len(records)), min(want, len(records))))
        for i in picked:
            text = records[i]["text"]
            truncated = len(text) > MAX_CHARS
            if truncated:
                cut = text.rfind("\n", 0, MAX_CHARS)
                text = text[: cut if cut > 0 else MAX_CHARS]
            rows.append({"id": f"{corpus}:{records[i]['id']}", "corpus": corpus, "text": text, "truncated": truncated})
    return pl.DataFrame(rows)


def datatrove_filters() -> dict:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    return {
        "gopher_repetition": GopherRepetitionFilter(),
        "gopher_quality": GopherQualityFilter(),
        "c4": C4QualityFilter(),
        "fineweb": FineWebQualityFilter(),
    }


def run_datatrove(filters: dict, ids: list[str], texts: list[str]) -> tuple[float, dict[str, list]]:
    """Seconds for every filter on every document, and each filter's results; C4 rewrites its Document's text."""
    from datatrove.data import Document

    documents = [[Document(text=text, id=doc_id) for _ in filters] for doc_id, text in zip(ids, texts, strict=True)]
    steps = list(filters.values())
    results = []
    started = time.perf_counter()
    for own_documents in documents:
        results.append([step.filter(doc) for step, doc in zip(steps, own_documents, strict=True)])
    seconds = time.perf_counter() - started
    return seconds, {name: [r[k] for r in results] for k, name in enumerate(filters)}


def run_ours(texts: pl.Series) -> tuple[float, pl.DataFrame, pl.DataFrame]:
    from curation_dag.steps.quality.rules import rule_passes, text_signals

    started = time.perf_counter()
    signals = text_signals(texts)
    passes = rule_passes(signals)
    return time.perf_counter() - started, signals, passes


def time_ours_in_subprocess(texts_file: Path, threads: int) -> float:
    env = {**os.environ, "POLARS_MAX_THREADS": str(threads)}
    command = [sys.executable, __file__, "--time-ours", str(texts_file)]
    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    if finished.returncode:
        raise SystemExit(f"timing ours with POLARS_MAX_THREADS={threads} failed:\n{finished.stderr}")
    return float(finished.stdout.strip().splitlines()[-1])


def datatrove_measures(text: str, rule_set: str) -> dict:
    """The quantities datatrove's filter of rule_set compares with its thresholds, computed with its own helpers."""
    from datatrove.pipeline.filters.c4_filters import CITATION_REGEX, END_PUNCTUATION, POLICY_SUBSTRINGS
    from datatrove.pipeline.filters.gopher_quality_filter import STOP_WORDS
    from datatrove.pipeline.filters.gopher_repetition_filter import (
        find_all_duplicate,
        find_duplicates,
        find_top_duplicate,
        get_n_grams,
    )
    from datatrove.utils.text import PUNCTUATION_SET, TERMINAL_PUNCTUATION, split_into_sentences, split_into_words

    words = split_into_words(text, "eng")
    if rule_set == "gopher_quality":
        kept = [w for w in words if any(ch not in PUNCTUATION_SET for ch in w)]
        lines = text.splitlines() or [""]
        return {
            "words": len(words),
            "non_symbol_words": len(kept),
            "mean_word_length": float(np.mean([len(w) for w in kept])) if kept else None,
            "hash_per_word": text.count("#") / max(len(words), 1),
            "ellipsis_per_word": (text.count("...") + text.count("…")) / max(len(words), 1),
            "bullet_lines": sum(s.lstrip().startswith(("•", "-")) for s in lines) / len(lines),
            "ellipsis_end_lines": sum(s.rstrip().endswith(("...", "…")) for s in lines) / len(lines),
            "alpha_words": sum(any(c.isalpha() for c in w) for w in words) / max(len(words), 1),
            "stop_words": len(set(STOP_WORDS) & set(words)),
        }
    if rule_set == "gopher_repetition":
        paragraphs = re.split(r"\n{2,}", text.strip())
        lines = re.split("\n+", text)
        para_dups, para_chars = find_duplicates(paragraphs)
        line_dups, line_chars = find_duplicates(lines)
        measures = {
            "dup_para_frac": para_dups / len(paragraphs),
            "dup_para_char_frac": para_chars / len(text),
            "dup_line_frac": line_dups / len(lines),
            "dup_line_char_frac": line_chars / len(text),
        }
        for n in (2, 3, 4):
            grams = get_n_grams(words, n)
            measures[f"top_{n}_gram"] = find_top_duplicate(grams) / len(text) if grams else 0.0
        for n in range(5, 11):
            measures[f"duplicated_{n}_n_grams"] = find_all_duplicate(words, n) / len(text)
        return measures
    if rule_set == "c4":
        # The line filter of C4QualityFilter, counting instead of returning at the first document-level drop.
        counts = Counter()
        for line in text.splitlines():
            line = line.strip()
            line_words = line.split()
            if any(len(w) > 1000 for w in line_words):
                continue
            line = CITATION_REGEX.sub("", line)
            if not line.endswith(END_PUNCTUATION) or line.endswith("..."):
                continue
            if len(line_words) < 3:
                continue
            lowered = line.lower()
            counts["lorem_ipsum_lines"] += "lorem ipsum" in lowered
            if "javascript" in lowered:
                continue
            counts["curly_bracket_lines"] += "{" in line
            if any(p in lowered for p in POLICY_SUBSTRINGS):
                continue
            counts["kept_lines"] += 1
            counts["sentences"] += len(split_into_sentences(line, "eng"))
        return dict(counts)
    lines = [line for line in text.split("\n") if line.strip()]
    stops = tuple(TERMINAL_PUNCTUATION)
    return {
        "line_punct_ratio": sum(line.endswith(stops) for line in lines) / max(len(lines), 1),
        "short_line_ratio": sum(len(line) <= 30 for line in lines) / max(len(lines), 1),
        "char_dup_ratio": find_duplicates(lines)[1] / max(len(text.replace("\n", "")), 1),
        "list_ratio": text.count("\n") / max(len(words), 1),
    }


def counted(cell: list[tuple[str, str]], indices: np.ndarray) -> list[tuple[str, str, int]]:
    """How many of the indexed documents fall in each (datatrove reason, our first failing rule) cell."""
    return [(reason, rule, n) for (reason, rule), n in Counter(cell[i] for i in indices).most_common()]


def compare(corpus: pl.DataFrame, results: dict[str, list], signals: pl.DataFrame, passes: pl.DataFrame) -> dict:
    """Per rule set: confusion counts, (datatrove reason, our first failing rule) counts, disagreeing examples."""
    from curation_dag.steps.quality.rules import RULES

    report = {}
    for rule_set in RULE_SETS:
        theirs = np.array([r is True for r in results[rule_set]])
        reasons = ["kept" if r is True else r[1] for r in results[rule_set]]
        if passes[rule_set].null_count():
            print(f"warning: {passes[rule_set].null_count()} null decisions in our {rule_set}; counted as drops")
        ours = passes[rule_set].fill_null(False).to_numpy()
        rules = [rule for rule in RULES if rule.rule_set == rule_set]
        rule_table = passes.select(rule.name for rule in rules).fill_null(False).iter_rows()
        failing = [[rule.name for rule, passed in zip(rules, row, strict=True) if not passed] for row in rule_table]
        cell = [(reason, names[0] if names else "none") for reason, names in zip(reasons, failing, strict=True)]
        disagreeing = np.flatnonzero(ours != theirs)
        signal_names = list(dict.fromkeys(rule.signal for rule in rules))
        shown: Counter = Counter()
        examples = []
        for i in disagreeing.tolist():
            shown[cell[i]] += 1
            if shown[cell[i]] > EXAMPLES_PER_CELL:
                continue
            text = corpus["text"][i]
            examples.append(
                {
                    "id": corpus["id"][i],
                    "datatrove": reasons[i],
                    "ours_failing": failing[i],
                    "our_signals": signals.select(signal_names).row(i, named=True),
                    "datatrove_measures": datatrove_measures(text, rule_set),
                    "chars": len(text),
                    "text_start": text[:SNIPPET_CHARS],
                }
            )
        report[rule_set] = {
            "datatrove_keeps": float(theirs.mean()),
            "ours_keeps": float(ours.mean()),
            "agreement": float((ours == theirs).mean()),
            "both_keep": int((ours & theirs).sum()),
            "both_drop": int((~ours & ~theirs).sum()),
            "only_ours_drops": int((~ours & theirs).sum()),
            "only_datatrove_drops": int((ours & ~theirs).sum()),
            "disagreements_by_reason": counted(cell, disagreeing),
            "disagreements_by_corpus": Counter(corpus["corpus"].gather(disagreeing).to_list()).most_common(),
            "both_drop_by_reason": counted(cell, np.flatnonzero(~ours & ~theirs)),
            "examples": examples,
        }
    return report


def print_composition(corpus: pl.DataFrame) -> None:
    table = corpus.group_by("corpus", maintain_order=True).agg(
        docs=pl.len(),
        megabytes=pl.col("text").str.len_bytes().sum() / 1e6,
        median=pl.col("text").str.len_chars().median(),
        truncated=pl.col("truncated").sum(),
    )
    print("| corpus | docs | MB of text | median chars | cut to 100k chars |")
    print("|---|---:|---:|---:|---:|")
    for corpus_name, docs, megabytes, median, truncated in table.iter_rows():
        print(f"| {corpus_name} | {docs:,} | {megabytes:.1f} | {median:,.0f} | {truncated} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp"), help="folder for the disagreement examples")
    parser.add_argument("--time-ours", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_ours:
        texts = pl.read_parquet(args.time_ours)["text"]
        run_ours(texts.head(WARM_UP_DOCS))
        print(run_ours(texts)[0])
        return

    corpus = load(args.data, args.docs)
    ids, texts = corpus["id"].to_list(), corpus["text"].to_list()
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    print(f"{len(texts):,} documents, {megabytes:.1f} MB of text (seed {SEED}); timings: median of {args.repeats}\n")
    print_composition(corpus)

    filters = datatrove_filters()
    run_datatrove(filters, ids[:WARM_UP_DOCS], texts[:WARM_UP_DOCS])
    run_ours(corpus["text"].head(WARM_UP_DOCS))
    theirs_seconds, ours_seconds, single_seconds = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        texts_file = Path(scratch) / "texts.parquet"
        corpus.select("text").write_parquet(texts_file)
        for repeat in range(args.repeats):
            seconds, results = run_datatrove(filters, ids, texts)
            theirs_seconds.append(seconds)
            seconds, signals, passes = run_ours(corpus["text"])
            ours_seconds.append(seconds)
            single_seconds.append(time_ours_in_subprocess(texts_file, threads=1))
            print(
                f"repeat {repeat + 1}: datatrove {theirs_seconds[-1]:.2f} s, ours {ours_seconds[-1]:.2f} s,"
                f" ours on one thread {single_seconds[-1]:.2f} s",
                flush=True,
            )

    report = compare(corpus, results, signals, passes)
    args.out.mkdir(parents=True, exist_ok=True)
    report_file = args.out / "quality_disagreements.json"
    report_file.write_text(json.dumps(report, indent=1, ensure_ascii=False))

    theirs, ours, single = (statistics.median(s) for s in (theirs_seconds, ours_seconds, single_seconds))
    print(f"\nCommand: `{' '.join(['.venv/bin/python', *sys.argv])}` ({os.cpu_count()} cores)\n")
    print("| method | threads | seconds | docs/s | MB/s | throughput / datatrove |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, threads, seconds in (
        (f"datatrove {importlib.metadata.version('datatrove')}: 4 filters, .filter() per document", 1, theirs),
        ("curation_dag text_signals + rule_passes", pl.thread_pool_size(), ours),
        ("curation_dag text_signals + rule_passes, POLARS_MAX_THREADS=1", 1, single),
    ):
        print(
            f"| {name} | {threads} | {seconds:.2f} | {len(texts) / seconds:,.0f} | {megabytes / seconds:.2f}"
            f" | {theirs / seconds:.2f}x |"
        )
    print(
        "\n| rule set | datatrove keeps | ours keeps | agreement | both keep | both drop | only ours drops"
        " | only datatrove drops |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for rule_set, row in report.items():
        print(
            f"| {rule_set} | {row['datatrove_keeps']:.3f} | {row['ours_keeps']:.3f} | {row['agreement']:.4f}"
            f" | {row['both_keep']:,} | {row['both_drop']:,} | {row['only_ours_drops']:,}"
            f" | {row['only_datatrove_drops']:,} |"
        )
    if "code" in passes.columns:
        print(f"\nThe code rule set has no datatrove counterpart; it keeps {passes['code'].mean():.3f} of these.")
    print("\nDisagreements by datatrove's reason / our first failing rule ('kept' / 'none': that side keeps):\n")
    for rule_set, row in report.items():
        listed = ", ".join(f"{reason} / {rule}: {n}" for reason, rule, n in row["disagreements_by_reason"]) or "none"
        print(f"- {rule_set}: {listed}")
    print(f"\nCounts, both sides' drop reasons and disagreeing examples (signals, text starts): {report_file}")


if __name__ == "__main__":
    main()
