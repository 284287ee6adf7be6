"""``python -m dataset_preprocess NAME``: raw reviews -> RecBole atomic files -> topics.

NAME is any Amazon 5-core category (2014 or 2018 release, see
:mod:`dataset_preprocess.registry`), or any name for a review file of the user's own given with
``--raw-file`` (CSV, TSV, JSON lines or Parquet, ``--columns`` to map its columns; see
:mod:`dataset_preprocess.own_file`).

:func:`prepare_dataset` is the same pipeline for Python callers (the run script calls it when a
dataset's atomic files are missing). A conversion whose source checksum and options have not
changed is reused, so running it again is cheap (every option that changes the output is part
of that check); nothing is written when the raw file is missing or bad, or the output cannot be
written where asked (exit status 2, one paragraph naming the file and line, or the path).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from dataset_preprocess.amazon import (
    ON_BAD_LINE_CHOICES, BadRawFile, BadReviewLine, EmptyReviewFile, OnBadLine, ReadReport,
    existing_summary, inter_path, kcore_filter, read_reviews, sha256_file, side_files_current, summary_path,
    write_atomic_files,
)
from dataset_preprocess.own_file import (
    FORMATS, SUFFIX_FORMATS, BadColumns, OwnFileSpec, detect_format, parse_columns,
    read_own_file,
)
from dataset_preprocess.loadcheck import LoadMismatch
from dataset_preprocess.outputs import OutputError, check_output
from dataset_preprocess.rawio import DEFAULT_MAX_LINE_BYTES, check_raw_path
from dataset_preprocess.registry import (
    PAPER_DATASETS, AmazonDataset, RawDataMissing, find_raw_file, lookup, resolve,
)

if TYPE_CHECKING:
    from dataset_preprocess.topics import TopicConfig

logger = logging.getLogger(__name__)


class NotEnoughText(ValueError):
    """Too few review sentences to build topics."""


# Every error that means "this input cannot be converted": one paragraph, exit status 2.
INPUT_ERRORS = (RawDataMissing, BadRawFile, BadReviewLine, BadColumns, EmptyReviewFile,
                NotEnoughText, LoadMismatch, OutputError)

# CLI option -> TopicConfig field; options left out keep TopicConfig's defaults.
TOPIC_OPTIONS = {
    "encoder": "encoder",
    "encoder_precision": "encoder_precision",
    "seed": "seed",
    "min_cluster_size": "min_cluster_size",
    "min_samples": "min_samples",
    "umap_neighbors": "umap_n_neighbors",
    "umap_components": "umap_n_components",
    "cache_dir": "cache_dir",
    "umap_sample": "umap_sample",
    "pca_components": "pca_components",
    "topic_cache_dir": "topic_cache_dir",
}


NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


@dataclass
class Source:
    """What to convert: an Amazon category (``amazon``) or a file of the user's own (``own``)."""

    name: str
    raw: Path
    amazon: AmazonDataset | None = None
    own: OwnFileSpec | None = None


def resolve_source(name: str, raw_file: str | os.PathLike[str] | None = None,
                   raw_dirs: Sequence[str | os.PathLike[str]] = (), download: bool = True,
                   columns: str | dict[str, str | None] | None = None,
                   file_format: str | None = None, time_format: str | None = None) -> Source:
    """Decide how ``name`` is read.

    An Amazon category (any alias) with no column mapping or format, and a raw file (if any) in
    Amazon JSON lines, is read by :mod:`dataset_preprocess.amazon` and found with
    :func:`~dataset_preprocess.registry.find_raw_file`. Anything else needs ``raw_file``: it is
    read by :mod:`dataset_preprocess.own_file` (format from ``file_format`` or the suffix) and
    the dataset keeps ``name`` as given. Raises ValueError (unknown name without a file, a name
    that is not a file name), BadColumns or RawDataMissing.
    """
    mapping = parse_columns(columns) if isinstance(columns, str) else dict(columns or {})
    if raw_file is not None:
        check_raw_path(Path(raw_file))
    amazon = lookup(name)
    own_requested = bool(mapping) or file_format is not None or time_format is not None
    if raw_file is not None and not own_requested:
        own_requested = not _amazon_suffix(Path(raw_file))
    if amazon is not None and not own_requested:
        raw = find_raw_file(amazon, raw_file=raw_file, raw_dirs=raw_dirs, download=download)
        return Source(amazon.name, raw, amazon=amazon)
    if raw_file is None:
        if amazon is None:
            resolve(name)  # raises the "unknown dataset" error that lists every valid name
        raise ValueError(f"a column mapping or format for {name!r} needs the file: --raw-file")
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"dataset name {name!r}: use letters, digits, '_', '-' and '.', "
                         "starting with a letter or digit (it becomes a folder and file names)")
    raw = Path(raw_file)
    if not raw.is_file():
        raise RawDataMissing(f"The raw file given for {name}, {raw}, does not exist.")
    spec = OwnFileSpec(detect_format(raw, file_format), mapping, time_format)
    return Source(name, raw, own=spec)


def _amazon_suffix(path: Path) -> bool:
    """A .json / .json.gz file: Amazon JSON lines (other suffixes are the user's own formats)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return not suffixes or suffixes[-1] not in SUFFIX_FORMATS or suffixes[-1] == ".json"


def read_source(source: Source, on_bad_line: OnBadLine = "error", kcore: int | None = None,
                max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
                ) -> tuple[pd.DataFrame, ReadReport, dict[str, Any]]:
    """The reviews of ``source`` (k-core filtered if ``kcore``), the report, and the options
    recorded in the summary as asked for (empty for a plain Amazon conversion; the column
    mapping as resolved against the file is in the summary's ``columns``)."""
    options: dict[str, Any] = {}
    if source.own is not None:
        reviews, report, columns = read_own_file(source.raw, source.own, on_bad_line=on_bad_line,
                                                 max_line_bytes=max_line_bytes)
        report.columns = columns
        options = source.own.options()
    else:
        reviews, report = read_reviews(source.raw, on_bad_line=on_bad_line,
                                       max_line_bytes=max_line_bytes)
    if kcore:
        reviews = kcore_filter(reviews, kcore, report)
    return reviews, report, {**options, **_output_options(kcore, max_line_bytes)}


def prepare_dataset(name: str, out_dir: str | os.PathLike[str] = "dataset",
                    raw_file: str | os.PathLike[str] | None = None,
                    raw_dirs: Sequence[str | os.PathLike[str]] = (),
                    on_bad_line: OnBadLine = "error", download: bool = True, topics: bool = True,
                    topic_config: TopicConfig | None = None, force: bool = False, *,
                    columns: str | dict[str, str | None] | None = None,
                    file_format: str | None = None, time_format: str | None = None,
                    kcore: int | None = None,
                    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                    written: dict[str, Any] | None = None) -> Path:
    """Convert dataset ``name`` into ``<out_dir>/<Name>/`` and return that directory.

    ``name`` is an Amazon category (any alias), or any name for a file of the user's own given
    as ``raw_file`` (with ``columns``, ``file_format``, ``time_format``; see
    :mod:`dataset_preprocess.own_file`). ``kcore`` keeps the k-core (iterated until stable).
    Writes ``<Name>.inter`` and ``<Name>.summary.json`` (skipped when an earlier conversion of
    the same source file with the same options is intact, unless ``force``), then builds the
    topics unless ``topics`` is false. Raises :class:`RawDataMissing`, :class:`BadRawFile`,
    :class:`BadReviewLine`, :class:`BadColumns` or :class:`EmptyReviewFile` before writing
    anything. ``written``, if given, receives the summary of this conversion (or of the one
    reused), as a concurrent conversion may replace the file right after.
    """
    if kcore is not None and kcore < 1:
        raise ValueError(f"--kcore must be at least 1, not {kcore}")
    source = resolve_source(name, raw_file, raw_dirs, download, columns, file_format,
                            time_format)
    name = source.name
    dataset_dir = Path(out_dir) / name
    check_output(dataset_dir, [inter_path(dataset_dir, name).name,
                               summary_path(dataset_dir, name).name])
    source_sha256 = _source_sha256(source.raw)
    expected_options = _expected_options(source, kcore, max_line_bytes)
    summary = None if force else existing_summary(name, dataset_dir, source_sha256,
                                                  on_bad_line, expected_options)
    if summary is not None:
        logger.info("%s is up to date with %s (same sha256 and options); use force to convert "
                    "again", inter_path(dataset_dir, name), source.raw)
        if not topics:
            if written is not None:
                written.update(summary)
            return dataset_dir
    logger.info("reading %s", source.raw)
    reviews, report, options = read_source(source, on_bad_line, kcore, max_line_bytes)
    if topics:
        _check_enough_text(reviews, name, topic_config)
    if summary is None:
        summary = write_atomic_files(source.amazon, reviews, report, dataset_dir,
                                     source_sha256, name=name, options=options)
        logger.info("wrote %s", inter_path(dataset_dir, name))
    if written is not None:
        written.update(summary)
    if topics:
        _build_topics(reviews, dataset_dir, name, topic_config)
    return dataset_dir


def ensure_dataset(name: str, out_dir: str | os.PathLike[str] = "dataset",
                   raw_file: str | os.PathLike[str] | None = None, topics: bool = True,
                   **options: Any) -> Path:
    """Convert and build topics only where needed; return the dataset folder.

    The conversion is redone when no intact summary records the same source and options
    (:func:`prepare_dataset` decides); the topics are rebuilt when a side-file is missing or
    older than the summary (a new conversion makes old topics stale). ``options`` are
    :func:`prepare_dataset`'s keyword arguments.
    """
    from dataset_preprocess.topic_files import topic_file_paths

    source = resolve_source(name, raw_file, options.get("raw_dirs", ()),
                            options.get("download", True), options.get("columns"),
                            options.get("file_format"), options.get("time_format"))
    dataset_dir = Path(out_dir) / source.name
    expected = _expected_options(source, options.get("kcore"),
                                 options.get("max_line_bytes", DEFAULT_MAX_LINE_BYTES))
    up_to_date = existing_summary(source.name, dataset_dir, _source_sha256(source.raw),
                                  options.get("on_bad_line", "error"), expected) is not None
    need_topics = False
    if topics:
        paths = [p for key, p in topic_file_paths(dataset_dir, source.name).items()
                 if key != "summary"]
        need_topics = not (up_to_date and side_files_current(paths, dataset_dir, source.name))
    if up_to_date and not need_topics:
        logger.info("%s: atomic files%s up to date", source.name, " and topics" if topics else "")
        return dataset_dir
    return prepare_dataset(source.name if source.own is None else name, out_dir=out_dir,
                           raw_file=raw_file, topics=need_topics, **options)


def _output_options(kcore: int | None, max_line_bytes: int) -> dict[str, Any]:
    """The options besides the reader's that change the output, as the summary records them
    (defaults left out, so that conversions made before an option existed stay reusable)."""
    options: dict[str, Any] = {}
    if kcore:
        options["kcore"] = kcore
    if max_line_bytes != DEFAULT_MAX_LINE_BYTES:  # which lines are too long
        options["max_line_bytes"] = max_line_bytes
    return options


def _expected_options(source: Source, kcore: int | None,
                      max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> dict[str, Any]:
    """Every option that changes the output, as a reusable summary must have recorded it (see
    :func:`read_source`); the bad-line policy is compared apart (:func:`existing_summary`)."""
    options: dict[str, Any] = source.own.options() if source.own is not None else {}
    return {**options, **_output_options(kcore, max_line_bytes)}


def _source_sha256(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError as exc:
        raise BadRawFile(path, f"cannot be read ({exc.strerror or exc})") from None


def _check_enough_text(reviews: pd.DataFrame, name: str, config: TopicConfig | None) -> None:
    """Refuse (before anything is written) a dataset with too few sentences for topics."""
    from dataset_preprocess.sentences import split_reviews
    from dataset_preprocess.topics import TopicConfig, minimum_sentences

    config = config or TopicConfig()
    n_sentences = len(split_reviews(reviews))
    if n_sentences < minimum_sentences(config):
        raise NotEnoughText(
            f"{name}: {n_sentences} review sentences, but topic modelling needs at least "
            f"{minimum_sentences(config)} (2 x --min-cluster-size {config.min_cluster_size}, "
            f"or --umap-neighbors {config.umap_n_neighbors} + 1); nothing was written. Map a "
            "text column with --columns text=NAME, lower --min-cluster-size, or pass "
            "--no-topics for the atomic files alone (SD-MTMP then needs --ablation=w/o-H).")


def _build_topics(reviews: pd.DataFrame, dataset_dir: Path, name: str,
                  config: TopicConfig | None) -> None:
    from dataset_preprocess.review_vectors import build_review_vectors, recorded_inter_sha256
    from dataset_preprocess.topics import TopicConfig, build_topics

    logger.info("building topics for %s", name)
    config = config or TopicConfig()
    build_topics(reviews, out_dir=dataset_dir, name=name, config=config)
    # Per-review vectors for the review-aware baselines: the topics' sentences, from the cache.
    build_review_vectors(reviews, dataset_dir, name, encoder=config.encoder,
                         cache_dir=config.cache_dir, batch_size=config.batch_size,
                         inter_sha256=recorded_inter_sha256(dataset_dir, name))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dataset_preprocess",
        description="Convert an Amazon 5-core review file, or a review file of your own, into "
                    "RecBole atomic files (<out-dir>/<Name>/<Name>.inter and .summary.json), "
                    "then build its topics.")
    parser.add_argument("name", help=f"dataset: {', '.join(PAPER_DATASETS)}, any Amazon 5-core "
                                     "category by its file name (Gift_Cards, Books, ...; aliases "
                                     "such as Musical_Instruments or 'gift cards' work too), or "
                                     "any name for your own --raw-file")
    parser.add_argument("--raw-file", help="raw review file: Amazon .json(.gz), or your own "
                                           ".csv/.tsv/.jsonl/.parquet (optionally .gz); skips "
                                           "the search")
    parser.add_argument("--raw-dir", action="append", default=[], dest="raw_dirs",
                        help="directory to search for the raw file first (repeatable)")
    parser.add_argument("--out-dir", default="dataset", help="output root (default: dataset)")
    parser.add_argument("--on-bad-line", choices=ON_BAD_LINE_CHOICES, default="error",
                        help="stop at a bad raw line (default) or skip and count it")
    parser.add_argument("--max-line-bytes", type=int, default=DEFAULT_MAX_LINE_BYTES,
                        help="longest raw line accepted, in bytes (default: 1 MiB)")
    parser.add_argument("--kcore", type=int, metavar="K",
                        help="keep the K-core: drop users and items with fewer than K reviews, "
                             "repeated until every user and item has at least K")
    parser.add_argument("--no-download", action="store_true",
                        help="do not try to download a raw file that is not found")
    parser.add_argument("--force", action="store_true",
                        help="convert again even if the existing files match the source")
    own = parser.add_argument_group("a review file of your own")
    own.add_argument("--columns", metavar="KEY=COLUMN,...",
                     help="column mapping, keys user, item, rating, time, text, e.g. "
                          "'user=customer_id,item=sku,rating=stars,time=created_at,text=body'; "
                          "a key left out is looked for under its usual names, else it is an "
                          "error; rating=none means no rating (every rating is 1), text=none no "
                          "review text")
    own.add_argument("--format", dest="file_format", choices=FORMATS,
                     help="file format (default: from the suffix)")
    own.add_argument("--time-format", help="strptime format of a date column, e.g. %%d/%%m/%%Y "
                                           "or %%Y%%m%%d, or 'unix' for Unix seconds (default: "
                                           "Unix seconds or ISO 8601; a number that is also a "
                                           "date such as 20150304 needs this)")
    topic = parser.add_argument_group("topics")
    topic.add_argument("--no-topics", action="store_true", help="skip the topic step")
    topic.add_argument("--encoder", help="sentence-transformers model name or path")
    topic.add_argument("--encoder-precision", choices=("fp32", "bf16"),
                       help="fp32 (default) or bf16 autocast: faster, but other topics "
                            "(docs/PREPROCESSING.md)")
    topic.add_argument("--seed", type=int)
    topic.add_argument("--min-cluster-size", type=int, help="HDBSCAN min_cluster_size")
    topic.add_argument("--min-samples", type=int, help="HDBSCAN min_samples")
    topic.add_argument("--umap-neighbors", type=int, help="UMAP n_neighbors")
    topic.add_argument("--umap-components", type=int, help="UMAP n_components")
    topic.add_argument("--cache-dir", help="sentence-embedding cache directory")
    topic.add_argument("--umap-sample", type=int, metavar="N",
                       help="fit UMAP on N sentences and place the rest (default: all; faster, "
                            "see docs/PREPROCESSING.md)")
    topic.add_argument("--pca-components", type=int, metavar="N",
                       help="PCA to N dimensions before UMAP (default: none)")
    topic.add_argument("--topic-cache-dir",
                       help="cache of fitted topics, keyed by every input of the fit (default: "
                            "'topics' beside --cache-dir; '' for none)")
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
    warnings = [f"warning: {w}" for w in summary.get("warnings", [])]
    return "\n".join([
        f"{name}: {summary['reviews']:,} reviews, {summary['users']:,} users, "
        f"{summary['items']:,} items ({match})",
        f"time range: {first} .. {last}; {summary['source_format']} format; "
        f"empty texts: {summary['empty_text']}; duplicates dropped: "
        f"{summary['duplicates_dropped']}; skipped lines: {skipped}{kcore}",
        *warnings,
        f"files: {inter_path(dataset_dir, name)}, {summary_path(dataset_dir, name)}",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.raw_file is None and lookup(args.name) is None:
        try:
            resolve(args.name)
        except ValueError as exc:
            parser.error(str(exc))
    if args.kcore is not None and args.kcore < 1:
        parser.error(f"--kcore must be at least 1, not {args.kcore}")
    if args.max_line_bytes < 1:
        parser.error(f"--max-line-bytes must be positive, not {args.max_line_bytes}")
    logging.basicConfig(level=logging.INFO, datefmt="%H:%M:%S",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    summary: dict[str, Any] = {}
    try:
        dataset_dir = prepare_dataset(
            args.name, out_dir=args.out_dir, raw_file=args.raw_file, raw_dirs=args.raw_dirs,
            on_bad_line=args.on_bad_line, download=not args.no_download,
            topics=not args.no_topics, topic_config=_topic_config(args), force=args.force,
            columns=args.columns, file_format=args.file_format, time_format=args.time_format,
            kcore=args.kcore, max_line_bytes=args.max_line_bytes, written=summary)
    except INPUT_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # a name or option that does not fit (see resolve_source)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary, dataset_dir))
    return 0
