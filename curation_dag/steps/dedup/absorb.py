"""The on-disk state of the incremental dedup assets: per absorbed drop, a decision table and the
compact keys later drops are matched against; a ledger of absorbed drops is written last.

Absorbing a drop reads only that drop's data plus compact keys of earlier drops (content hashes,
LSH band keys, and the signatures and roots of the earlier documents it collides with), never
earlier text. Files of a drop missing from the ledger (a crash mid-absorb) are simply rewritten.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

import numpy as np
import polars as pl

from curation_dag.steps.dedup.minhash import MinHashConfig, estimated_jaccard, read_signatures
from curation_dag.steps.dedup.resolve import pairs_with_earlier, pairs_within, resolve
from curation_dag.store.atomic import atomic_path
from curation_dag.store.files import load_array, read_parquet, scan_parquet
from curation_dag.store.ledger import Entry, Ledger, write_parquet

# An ordinal orders every document by arrival: the drop's absorption index, then its row in the drop.
_ROW_BITS = 32


class SettingsChanged(ValueError):
    """The dedup settings differ from those the absorbed drops were processed with."""


class OutOfOrder(ValueError):
    """near_duplicates' drops are not the first drops of exact_duplicates, in the same order."""


def ordinals(index: int, count: int) -> np.ndarray:
    return (np.int64(index) << _ROW_BITS) + np.arange(count, dtype=np.int64)


class DuplicateCounts(TypedDict):
    documents: int
    duplicates: int
    by_source: dict[str, list[int]]  # source -> [documents, duplicates]


class ExactEntry(Entry, DuplicateCounts):
    index: int  # the drop's position in arrival order: the high bits of its ordinals


class NearEntry(Entry, DuplicateCounts):
    prefix: int  # exact_duplicates' index of the drop
    settings: str  # the MinHash settings its signatures were made with


def duplicate_counts(decisions: pl.DataFrame, column: str = "duplicate_of") -> DuplicateCounts:
    """Ledger fields: documents and duplicates of a drop, in all and by source."""
    counts = decisions.group_by("source").agg(pl.len(), pl.col(column).is_not_null().sum())
    return DuplicateCounts(
        documents=decisions.height,
        duplicates=int(decisions[column].is_not_null().sum()),
        by_source={source: [int(n), int(d)] for source, n, d in counts.sort("source").iter_rows()},
    )


def absorb_exact(folder: Path, key: str, documents: pl.DataFrame) -> pl.DataFrame:
    """Exact duplicates of one drop (`doc_id`, `source`, `content_hash`, in arrival order).

    A document whose normalized text was seen before, in an earlier drop or earlier in this one,
    is a duplicate of that first, kept document.
    """
    ledger = Ledger(folder)
    index = len(ledger.drops)
    new = documents.select("doc_id", "source", "content_hash").with_columns(
        pl.Series("ordinal", ordinals(index, documents.height)), pl.lit(key).alias("drop")
    )
    first_here = new.group_by("content_hash").agg(
        pl.col("doc_id").first().alias("first_doc_id"), pl.col("ordinal").min().alias("first_ordinal")
    )
    earlier = ledger.scan_decisions()
    kept_before = (
        earlier.filter(pl.col("duplicate_of").is_null())
        .select("content_hash", pl.col("doc_id").alias("earlier_doc_id"), pl.col("drop").alias("earlier_drop"))
        .join(new.lazy().select("content_hash").unique(), on="content_hash")
        .collect()
        if earlier is not None
        else pl.DataFrame(schema={"content_hash": pl.String, "earlier_doc_id": pl.String, "earlier_drop": pl.String})
    )
    decisions = (
        new.join(first_here, on="content_hash", how="left")
        .join(kept_before, on="content_hash", how="left")
        .select(
            "doc_id",
            "ordinal",
            "source",
            "drop",
            "content_hash",
            pl.when(pl.col("earlier_doc_id").is_not_null())
            .then(pl.col("earlier_doc_id"))
            .when(pl.col("first_ordinal") < pl.col("ordinal"))
            .then(pl.col("first_doc_id"))
            .alias("duplicate_of"),
            pl.when(pl.col("earlier_doc_id").is_not_null())
            .then(pl.col("earlier_drop"))
            .when(pl.col("first_ordinal") < pl.col("ordinal"))
            .then(pl.col("drop"))
            .alias("duplicate_of_drop"),
        )
        .sort("ordinal")
    )
    write_parquet(decisions, ledger.decision_file(key))
    ledger.commit(ExactEntry(key=key, index=index, **duplicate_counts(decisions)))
    return decisions


def absorb_near(
    folder: Path,
    key: str,
    documents: pl.DataFrame,
    signatures: np.ndarray,
    band_keys: np.ndarray,
    threshold: float,
    prefix: int,
    settings: str,
) -> pl.DataFrame:
    """Near duplicates of one drop's eligible documents (`doc_id`, `source`, `ordinal`, in arrival
    order, with their MinHash signatures and LSH band keys), against earlier drops and each other.

    LSH candidates are verified by the signatures' estimated Jaccard (>= threshold) before they
    link two documents; links resolve with union-find (`dedup.resolve`). `prefix` is the drop's
    position in arrival order, the high bits of its ordinals. `settings` identifies the MinHash
    settings: signatures made with other settings cannot be compared, so a change is refused.
    """
    ledger = Ledger(folder)
    if ledger.drops and ledger.drops[-1]["settings"] != settings:
        raise SettingsChanged(
            f"the MinHash settings changed since drop {ledger.drops[-1]['key']} was absorbed, and signatures "
            f"made with different settings cannot be compared. To apply the new settings to every drop, delete "
            f"{folder} and re-materialize minhash_signatures for all drops, then near_duplicates"
        )
    ordinal = documents["ordinal"].to_numpy()
    within = pairs_within(band_keys)
    within = within[estimated_jaccard(signatures[within[:, 0]], signatures[within[:, 1]]) >= threshold]
    earlier = pl.DataFrame(schema={"member": pl.Int64, "ordinal": pl.Int64, "root": pl.Int64})
    if ledger.drops:
        bands = [_state(folder, e["prefix"]) / "bands.parquet" for e in ledger.drops]
        candidates = pairs_with_earlier(band_keys, scan_parquet(bands))
        if candidates.height:
            members, others = candidates["member"].to_numpy(), candidates["ordinal"].to_numpy()
            verified = estimated_jaccard(signatures[members], _rows(folder, others, "signatures")) >= threshold
            earlier = pl.DataFrame(
                {
                    "member": members[verified],
                    "ordinal": others[verified],
                    "root": _rows(folder, others[verified], "roots"),
                }
            )
    new_root, earlier_root = resolve(len(ordinal), within, earlier)

    linked_earlier = earlier_root >= 0
    duplicate = linked_earlier | (new_root != np.arange(len(ordinal)))
    root_ordinal = np.where(linked_earlier, earlier_root, ordinal[new_root])
    root_signatures = signatures[new_root]
    if linked_earlier.any():
        root_signatures[linked_earlier] = _rows(folder, earlier_root[linked_earlier], "signatures")
    roots = pl.DataFrame({"ordinal": root_ordinal}).join(
        _identities(ledger, documents.with_columns(pl.lit(key).alias("drop")), root_ordinal), on="ordinal", how="left"
    )
    duplicate_mask = pl.Series(duplicate)
    decisions = documents.select("doc_id", "ordinal", "source").with_columns(
        pl.lit(key).alias("drop"),
        pl.when(duplicate_mask).then(roots["doc_id"]).alias("duplicate_of"),
        pl.when(duplicate_mask).then(roots["drop"]).alias("duplicate_of_drop"),
        pl.when(duplicate_mask).then(pl.Series(estimated_jaccard(signatures, root_signatures))).alias("jaccard"),
    )
    state = _state(folder, prefix)
    for name, array in (("ordinals", ordinal), ("signatures", signatures), ("roots", root_ordinal)):
        with atomic_path(state / f"{name}.npy") as temporary, open(temporary, "wb") as handle:
            np.save(handle, array)
    per_doc = band_keys.shape[1]
    write_parquet(
        pl.DataFrame({"band_key": band_keys.ravel(), "ordinal": np.repeat(ordinal, per_doc)}), state / "bands.parquet"
    )
    write_parquet(decisions, ledger.decision_file(key))
    ledger.commit(NearEntry(key=key, prefix=prefix, settings=settings, **duplicate_counts(decisions)))
    return decisions


def absorb_exact_drops(
    folder: Path, keys: list[str], documents_of: Callable[[str], Path], log: Callable[[str], None]
) -> list[pl.DataFrame]:
    """Absorb the drops `keys`, in order, into exact_duplicates' `folder`; `documents_of` names a drop's
    raw_documents file. Returns the decisions of each."""
    absorbed = []
    for key in keys:
        documents = read_parquet(documents_of(key), columns=["doc_id", "source", "content_hash"])
        absorbed.append(absorb_exact(folder, key, documents))
        log(f"absorbed {key}: {absorbed[-1]['duplicate_of'].is_not_null().sum()} exact duplicates")
    return absorbed


def absorb_near_drops(
    folder: Path,
    exact: Ledger,
    signed: set[str],
    signatures_of: Callable[[str], Path],
    config: MinHashConfig,
    log: Callable[[str], None],
) -> list[pl.DataFrame]:
    """Absorb into near_duplicates' `folder` the documents exact dedup kept of each drop it absorbed
    since, in its order; `signatures_of` names a drop's minhash_signatures file. Near duplicates follow
    arrival order strictly: at the first drop not in `signed` (no signatures yet), it and every later
    drop wait. Returns the decisions of each drop absorbed."""
    near = Ledger(folder)
    if near.keys != exact.keys[: len(near.keys)]:
        raise OutOfOrder(f"{folder} does not follow exact_duplicates' drop order; delete it to rebuild")
    absorbed = []
    for entry in exact.drops[len(near.drops) :]:
        if entry["key"] not in signed:
            log(f"drop {entry['key']} has no minhash_signatures: it and every later drop wait")
            break
        kept = read_parquet(exact.committed(entry["key"])).filter(pl.col("duplicate_of").is_null())
        signed_docs, signatures, band_keys = read_signatures(signatures_of(entry["key"]), kept["doc_id"])
        eligible = (signed_docs["n_shingles"] > 0).to_numpy()
        documents = kept.filter(pl.Series(eligible)).select("doc_id", "ordinal", "source")
        absorbed.append(
            absorb_near(
                folder,
                entry["key"],
                documents,
                signatures[eligible],
                band_keys[eligible],
                config.threshold,
                prefix=entry["index"],
                settings=str(config),
            )
        )
    return absorbed


def _state(folder: Path, prefix: int) -> Path:
    return folder / "state" / f"{prefix:06d}"


def _rows(folder: Path, wanted: np.ndarray, name: str) -> np.ndarray:
    """Rows of earlier drops' `<name>.npy` by document ordinal, read through memory maps."""
    prefixes = wanted >> _ROW_BITS
    result = None
    for prefix in np.unique(prefixes):
        state = _state(folder, int(prefix))
        values = load_array(state / f"{name}.npy", mmap=True)
        picked = prefixes == prefix
        if result is None:
            result = np.empty((len(wanted), *values.shape[1:]), dtype=values.dtype)
        result[picked] = values[np.searchsorted(load_array(state / "ordinals.npy"), wanted[picked])]
    return result


def _identities(ledger: Ledger, documents: pl.DataFrame, wanted: np.ndarray) -> pl.DataFrame:
    """`doc_id` and `drop` of the given ordinals, from this drop or the decisions of earlier ones."""
    frames = [documents.select("ordinal", "doc_id", "drop")]
    earlier = ledger.scan_decisions()
    if earlier is not None:
        wanted = pl.Series(np.unique(wanted))
        frames.append(
            earlier.filter(pl.col("ordinal").is_in(wanted.implode())).select("ordinal", "doc_id", "drop").collect()
        )
    return pl.concat(frames).unique("ordinal")
