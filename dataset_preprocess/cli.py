"""``python -m dataset_preprocess NAME``: raw Amazon reviews -> RecBole atomic files -> topics.

:func:`prepare_dataset` is the same pipeline for Python callers (the run script calls it when a
dataset's atomic files are missing). A conversion whose source checksum has not changed is
reused, so running it again is cheap; nothing is written when the raw file is missing or bad.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from dataset_preprocess.amazon import (
    ON_BAD_LINE_CHOICES, BadRawFile, BadReviewLine, EmptyReviewFile, OnBadLine, existing_summary,
    inter_path, read_reviews, sha256_file, summary_path, write_atomic_files,
)
from dataset_preprocess.registry import DATASETS, RawDataMissing, find_raw_file, resolve

if TYPE_CHECKING:
    from dataset_preprocess.topics import TopicConfig

logger = logging.getLogger(__name__)

# CLI option -> TopicConfig field; options left out keep TopicConfig's defaults.
TOPIC_OPTIONS = {
    "encoder": "encoder",
    "seed": "seed",
    "min_cluster_size": "min_cluster_size",
    "min_samples": "min_samples",
    "umap_neighbors": "umap_n_neighbors",
    "umap_components": "umap_n_components",
    "cache_dir": "cache_dir",
}


def prepare_dataset(name: str, out_dir: str | os.PathLike[str] = "dataset",
                    raw_file: str | os.PathLike[str] | None = None,
                    raw_dirs: Sequence[str | os.PathLike[str]] = (),
                    on_bad_line: OnBadLine = "error", download: bool = True, topics: bool = True,
                    topic_config: TopicConfig | None = None, force: bool = False) -> Path:
    """Convert dataset ``name`` into ``<out_dir>/<Name>/`` and return that directory.

    Writes ``<Name>.inter`` and ``<Name>.summary.json`` (skipped when an earlier conversion of
    the same source file is intact, unless ``force``), then builds the topics unless ``topics``
    is false. Raises :class:`RawDataMissing`, :class:`BadReviewLine` or
    :class:`EmptyReviewFile` before writing anything.
    """
    dataset = resolve(name)
    raw = find_raw_file(dataset, raw_file=raw_file, raw_dirs=raw_dirs, download=download)
    dataset_dir = Path(out_dir) / dataset.name
    source_sha256 = sha256_file(raw)
    summary = None if force else existing_summary(dataset.name, dataset_dir, source_sha256,
                                                  on_bad_line)
    if summary is not None:
        logger.info("%s is up to date with %s (same sha256); use force to convert again",
                    inter_path(dataset_dir, dataset.name), raw)
        if not topics:
            return dataset_dir
    logger.info("reading %s", raw)
    reviews, report = read_reviews(raw, on_bad_line=on_bad_line)
    if summary is None:
        write_atomic_files(dataset, reviews, report, dataset_dir, source_sha256)
        logger.info("wrote %s", inter_path(dataset_dir, dataset.name))
    if topics:
        _build_topics(reviews, dataset_dir, dataset.name, topic_config)
    return dataset_dir


def _build_topics(reviews: pd.DataFrame, dataset_dir: Path, name: str,
                  config: TopicConfig | None) -> None:
    from dataset_preprocess.topics import TopicConfig, build_topics

    logger.info("building topics for %s", name)
    build_topics(reviews, out_dir=dataset_dir, name=name, config=config or TopicConfig())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dataset_preprocess",
        description="Convert an Amazon 5-core review file into RecBole atomic files "
                    "(<out-dir>/<Name>/<Name>.inter and .summary.json), then build its topics.")
    parser.add_argument("name", help=f"dataset: {', '.join(DATASETS)} (aliases such as "
                                     "Musical_Instruments or digital-music work too)")
    parser.add_argument("--raw-file", help="raw review file (.json or .json.gz); skips the search")
    parser.add_argument("--raw-dir", action="append", default=[], dest="raw_dirs",
                        help="directory to search for the raw file first (repeatable)")
    parser.add_argument("--out-dir", default="dataset", help="output root (default: dataset)")
    parser.add_argument("--on-bad-line", choices=ON_BAD_LINE_CHOICES, default="error",
                        help="stop at a bad raw line (default) or skip and count it")
    parser.add_argument("--no-download", action="store_true",
                        help="do not try to download a raw file that is not found")
    parser.add_argument("--force", action="store_true",
                        help="convert again even if the existing files match the source")
    topic = parser.add_argument_group("topics")
    topic.add_argument("--no-topics", action="store_true", help="skip the topic step")
    topic.add_argument("--encoder", help="sentence-transformers model name or path")
    topic.add_argument("--seed", type=int)
    topic.add_argument("--min-cluster-size", type=int, help="HDBSCAN min_cluster_size")
    topic.add_argument("--min-samples", type=int, help="HDBSCAN min_samples")
    topic.add_argument("--umap-neighbors", type=int, help="UMAP n_neighbors")
    topic.add_argument("--umap-components", type=int, help="UMAP n_components")
    topic.add_argument("--cache-dir", help="sentence-embedding cache directory")
    return parser


def _topic_config(args: argparse.Namespace) -> TopicConfig | None:
    given = {field: getattr(args, option) for option, field in TOPIC_OPTIONS.items()
             if getattr(args, option) is not None}
    if args.no_topics or not given:
        return None
    from dataset_preprocess.topics import TopicConfig

    return TopicConfig(**given)


def format_summary(summary: dict[str, Any], dataset_dir: Path) -> str:
    """A few lines for people: counts, time range, problems found, where the files are."""
    published = summary.get("published_counts")
    if published is None:
        match = "a dataset of your own: no published counts"
    else:
        verb = "match" if summary["matches_published_counts"] else "differ from"
        counts = ", ".join(f"{published[k]:,} {k}" for k in ("reviews", "users", "items")
                           if k in published)
        match = f"lines read {verb} the published {published['release']} 5-core counts: {counts}"
    skipped = ", ".join(f"{k}={v}" for k, v in summary["skipped"].items()) or "none"
    first, last = summary["time_range_iso"]
    name = summary["dataset"]
    kcore = ""
    if summary.get("kcore"):
        removed = summary["kcore_removed"]
        kcore = (f"; {summary['kcore']}-core removed {removed['reviews']} reviews, "
                 f"{removed['users']} users, {removed['items']} items")
    return "\n".join([
        f"{name}: {summary['reviews']:,} reviews, {summary['users']:,} users, "
        f"{summary['items']:,} items ({match})",
        f"time range: {first} .. {last}; {summary['source_format']} format; "
        f"empty texts: {summary['empty_text']}; duplicates dropped: "
        f"{summary['duplicates_dropped']}; skipped lines: {skipped}{kcore}",
        f"files: {inter_path(dataset_dir, name)}, {summary_path(dataset_dir, name)}",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        name = resolve(args.name).name
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, datefmt="%H:%M:%S",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        dataset_dir = prepare_dataset(
            name, out_dir=args.out_dir, raw_file=args.raw_file, raw_dirs=args.raw_dirs,
            on_bad_line=args.on_bad_line, download=not args.no_download,
            topics=not args.no_topics, topic_config=_topic_config(args), force=args.force)
    except (RawDataMissing, BadRawFile, BadReviewLine, EmptyReviewFile) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = json.loads(summary_path(dataset_dir, name).read_text(encoding="utf-8"))
    print(format_summary(summary, dataset_dir))
    return 0
