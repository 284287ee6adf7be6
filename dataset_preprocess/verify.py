"""A prepared dataset checked before it is trusted: the ``.inter`` against its summary, the topic
side-files against the record of their fit.

The runner, ``tune``, ``compare`` and ``recommend`` read whatever lies in the dataset folder; a
``.inter`` cut short by a full disk, or a ``review_topic`` file copied half, would be trained on
without a word. :func:`inter_problem` compares the ``.inter`` with the sha256 and row count its
summary recorded, :func:`topic_problem` the side-files with their fit's ``topics.json`` (the
sha256 of each, for fits that record it; otherwise every topic's sentence, user and item counts,
and the shape of the topic vectors). :func:`dataset_problem` is both, and
:func:`raw_source_at_hand` the raw file the summary names when it is still there unchanged, from
which :func:`dataset_preprocess.pipeline.ensure_dataset` rebuilds what is damaged; without it a
damaged dataset is :class:`DamagedData`.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataset_preprocess.topics.files import REVIEW_TOPIC_HEADER, topic_file_paths


class DamagedData(ValueError):
    """A prepared file is not what was written, and its raw file is not at hand to rebuild it."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_summary(dataset_dir: Path, name: str) -> dict[str, Any] | None:
    """The conversion's summary, None where there is none; raises DamagedData if unreadable."""
    path = Path(dataset_dir) / f"{name}.summary.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DamagedData(f"{path} cannot be read ({exc}); convert the dataset again with "
                          f"python -m dataset_preprocess {name} --force") from None
    if not isinstance(summary, dict):
        raise DamagedData(f"{path} is not a summary (a JSON {type(summary).__name__}); convert "
                          f"the dataset again with python -m dataset_preprocess {name} --force")
    return summary


def inter_problem(dataset_dir: Path, name: str) -> str | None:
    """Why ``<name>.inter`` is not the file its summary describes, or None (also when there is
    no summary to compare with: a dataset written by hand)."""
    dataset_dir = Path(dataset_dir)
    inter = dataset_dir / f"{name}.inter"
    try:
        summary = read_summary(dataset_dir, name)
    except DamagedData as exc:
        return str(exc)
    if summary is None or not inter.is_file() or "inter_sha256" not in summary:
        return None
    if _sha256(inter) == summary["inter_sha256"]:
        return None
    with open(inter, "rb") as fh:
        rows = max(sum(1 for _ in fh) - 1, 0)
    return (f"{inter} holds {rows:,} rows, but its summary recorded {summary.get('reviews', '?'):,} "
            "and another sha256: the file was changed or cut short after the conversion")


def topic_problem(dataset_dir: Path, name: str) -> str | None:
    """Why the topic side-files are not the ones their fit wrote, or None (also when there are
    none: whether they are needed is decided elsewhere)."""
    paths = topic_file_paths(Path(dataset_dir), name)
    if not paths["meta"].is_file():
        return None
    try:
        meta = json.loads(paths["meta"].read_text(encoding="utf-8"))
        topics = meta["topics"]
        shape = (int(meta["n_topics"]), int(meta["embedding_dim"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{paths['meta']} cannot be read as a topic fit's record ({exc})"
    for key in ("review_topic", "topic_vec"):
        if not paths[key].is_file():
            return f"{paths[key]} is missing, though {paths['meta'].name} records its fit"
    recorded = meta.get("side_files") or {}
    if recorded:
        for key in ("review_topic", "topic_vec"):
            if recorded.get(key) != _sha256(paths[key]):
                return (f"{paths[key]} is not the file its fit wrote (its sha256 differs from "
                        f"the one {paths['meta'].name} records)")
        return None
    return _counts_problem(paths, topics, shape)


def _counts_problem(paths: dict[str, Path], topics: list, shape: tuple[int, int]) -> str | None:
    """For fits that recorded no sha256: every topic's sentences, users and items, as recorded."""
    try:
        vectors = np.load(paths["topic_vec"], allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        return f"{paths['topic_vec']} cannot be read ({exc})"
    if vectors.shape != shape:
        return f"{paths['topic_vec']} has shape {vectors.shape}, its record says {shape}"
    if not topics:  # a record without per-topic counts (written by hand): nothing more to compare
        return None
    try:
        frame = pd.read_csv(paths["review_topic"], sep="\t", dtype=str, keep_default_na=False,
                            quoting=csv.QUOTE_NONE, engine="c")
        if tuple(frame.columns) != REVIEW_TOPIC_HEADER:
            return f"{paths['review_topic']} has the header {list(frame.columns)}"
        frame.columns = ["user_id", "item_id", "topic_id", "sentences"]
        frame["topic_id"] = frame["topic_id"].astype(np.int64)
        frame["sentences"] = frame["sentences"].astype(np.float64)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        return (f"{paths['review_topic']} cannot be read ({exc}): it was changed or cut short "
                "after the fit")
    counts = frame.groupby("topic_id").agg(size=("sentences", "sum"), n_users=("user_id", "nunique"),
                                           n_items=("item_id", "nunique"))
    for topic in topics:
        tid = topic["topic_id"]
        got = (tuple(int(counts.at[tid, key]) for key in ("size", "n_users", "n_items"))
               if tid in counts.index else (0, 0, 0))
        want = (topic["size"], topic["n_users"], topic["n_items"])
        if got != want:
            return (f"{paths['review_topic']}: topic {tid} has {got[0]} sentences, {got[1]} users "
                    f"and {got[2]} items, but its fit recorded {want[0]}, {want[1]} and "
                    f"{want[2]}: the file was changed or cut short after the fit")
    if len(counts) > len(topics):
        return f"{paths['review_topic']} has topics its fit did not record"
    return None


def dataset_problem(dataset_dir: Path, name: str, topics: bool) -> tuple[str | None, str | None]:
    """(the .inter's problem, the topic side-files' problem), each None when there is none."""
    return inter_problem(dataset_dir, name), topic_problem(dataset_dir, name) if topics else None


def raw_source_at_hand(dataset_dir: Path, name: str) -> dict[str, Any] | None:
    """The summary of ``name`` when the raw file it names is still there with the same sha256
    (the conversion can then be redone exactly), else None."""
    try:
        summary = read_summary(dataset_dir, name)
    except DamagedData:
        return None
    if summary is None or not summary.get("source_file"):
        return None
    raw = Path(summary["source_file"])
    try:
        if not raw.is_file() or _sha256(raw) != summary.get("source_sha256"):
            return None
    except OSError:
        return None
    return summary


def refusal(name: str, problems: list[str]) -> DamagedData:
    """The one paragraph for a damaged dataset whose raw file is not at hand."""
    return DamagedData(f"{'; '.join(problems)}. The raw file of {name} is not at hand (its "
                       "summary names none, or it has changed), so nothing was rebuilt and nothing "
                       f"trained: convert it again with python -m dataset_preprocess {name} "
                       "--raw-file FILE --force (or restore the dataset folder)")
