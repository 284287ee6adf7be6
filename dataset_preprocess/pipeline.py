"""The preparation pipeline: raw reviews -> RecBole atomic files -> topics -> review vectors.

:func:`resolve_source` decides how a dataset is read, :func:`read_source` reads it,
:func:`prepare_dataset` converts it and builds its topics, and :func:`ensure_dataset` is the one
place that decides what of a prepared dataset is current (the run script, the comparisons and
the tuning all call it; ``python -m dataset_preprocess`` is :mod:`dataset_preprocess.cli`).

A conversion whose source checksum and options have not changed is reused, so running it again
is cheap (every option that changes the output is part of that check); nothing is written when
the raw file is missing or bad, or the output cannot be written where asked.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from dataset_preprocess import verify
from dataset_preprocess.loadcheck import LoadMismatch
from dataset_preprocess.outputs import OutputError, check_output
from dataset_preprocess.readers.amazon import (
    BadRawFile, BadReviewLine, EmptyReviewFile, OnBadLine, ReadReport, existing_summary,
    inter_path, kcore_filter, read_reviews, sha256_file, side_files_current, summary_path,
    write_atomic_files,
)
from dataset_preprocess.readers.own_file import (
    SUFFIX_FORMATS, BadColumns, OwnFileSpec, detect_format, parse_columns, read_own_file,
)
from dataset_preprocess.readers.rawio import DEFAULT_MAX_LINE_BYTES, check_raw_path
from dataset_preprocess.registry import AmazonDataset, RawDataMissing, find_raw_file, lookup, resolve
from dataset_preprocess.topics.files import topic_file_paths
from dataset_preprocess.topics.review_vectors import (
    build_review_vectors, recorded_inter_sha256, review_vectors_current,
)

if TYPE_CHECKING:
    from dataset_preprocess.topics.fit import TopicConfig

logger = logging.getLogger(__name__)

# The options of prepare_dataset that say how a raw file is read (a file of the user's own).
READING_OPTIONS = ("columns", "file_format", "time_format", "quotes")


class NotEnoughText(ValueError):
    """Too few review sentences to build topics."""


# Every error that means "this input cannot be converted": one paragraph, exit status 2.
INPUT_ERRORS = (RawDataMissing, BadRawFile, BadReviewLine, BadColumns, EmptyReviewFile,
                NotEnoughText, LoadMismatch, OutputError, verify.DamagedData)

# CLI option -> TopicConfig field; options left out keep TopicConfig's defaults.
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
                   file_format: str | None = None, time_format: str | None = None,
                   quotes: bool | None = None) -> Source:
    """Decide how ``name`` is read.

    An Amazon category (any alias) with no column mapping or format, and a raw file (if any) in
    Amazon JSON lines, is read by :mod:`dataset_preprocess.readers.amazon` and found with
    :func:`~dataset_preprocess.registry.find_raw_file`. Anything else needs ``raw_file``: it is
    read by :mod:`dataset_preprocess.readers.own_file` (format from ``file_format`` or the suffix) and
    the dataset keeps ``name`` as given. Raises ValueError (unknown name without a file, a name
    that is not a file name), BadColumns or RawDataMissing.
    """
    mapping = parse_columns(columns) if isinstance(columns, str) else dict(columns or {})
    if raw_file is not None:
        check_raw_path(Path(raw_file))
    amazon = lookup(name)
    own_requested = (bool(mapping) or file_format is not None or time_format is not None
                     or quotes is not None)
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
    spec = OwnFileSpec(detect_format(raw, file_format), mapping, time_format, quotes)
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
                    quotes: bool | None = None, kcore: int | None = None,
                    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                    written: dict[str, Any] | None = None, source: Source | None = None,
                    source_sha256: str | None = None,
                    pinned_fits: str | os.PathLike[str] | None = None,
                    review_vectors: bool = True) -> Path:
    """Convert dataset ``name`` into ``<out_dir>/<Name>/`` and return that directory.

    ``name`` is an Amazon category (any alias), or any name for a file of the user's own given
    as ``raw_file`` (with ``columns``, ``file_format``, ``time_format``; see
    :mod:`dataset_preprocess.readers.own_file`). ``kcore`` keeps the k-core (iterated until stable).
    Writes ``<Name>.inter`` and ``<Name>.summary.json`` (skipped when an earlier conversion of
    the same source file with the same options is intact, unless ``force``), then builds the
    topics unless ``topics`` is false. Raises :class:`RawDataMissing`, :class:`BadRawFile`,
    :class:`BadReviewLine`, :class:`BadColumns` or :class:`EmptyReviewFile` before writing
    anything. ``written``, if given, receives the summary of this conversion (or of the one
    reused), as a concurrent conversion may replace the file right after. ``source`` and
    ``source_sha256``: the source as :func:`ensure_dataset` already resolved and hashed it.
    ``pinned_fits``: a folder of pinned topic fits (:mod:`dataset_preprocess.topics.pinned`); the
    dataset's pin is installed instead of a fit where it was made from these inputs and settings.
    ``review_vectors``: with the topics, also the per-review vectors of the review-aware
    baselines (RGCL, RRPU, MISSRec), an encoding of every review sentence.
    """
    if kcore is not None and kcore < 1:
        raise ValueError(f"--kcore must be at least 1, not {kcore}")
    if source is None:
        source = resolve_source(name, raw_file, raw_dirs, download, columns, file_format,
                                time_format, quotes)
    name = source.name
    dataset_dir = Path(out_dir) / name
    check_output(dataset_dir, [inter_path(dataset_dir, name).name,
                               summary_path(dataset_dir, name).name])
    source_sha256 = source_sha256 or _source_sha256(source.raw)
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
        _build_topics(reviews, dataset_dir, name, topic_config, pinned_fits, review_vectors)
    return dataset_dir


def ensure_dataset(name: str, out_dir: str | os.PathLike[str] = "dataset",
                   raw_file: str | os.PathLike[str] | None = None, topics: bool = True,
                   review_vectors: bool = False, source: Source | None = None,
                   **options: Any) -> Path:
    """Convert, build topics and review vectors only where needed; return the dataset folder.

    The one place that decides what of a prepared dataset is current. Given a raw file or
    reading options (or ``source``, already resolved), the conversion is current when an intact
    summary records the same source checksum and options (the raw file is hashed once, here);
    without them, a dataset whose atomic files exist is used as it is (its raw file need not be
    there any more). Topics (when ``topics``) are current when every side-file exists and is no
    older than the summary (a new conversion makes old topics stale); review vectors (when
    ``review_vectors``) when they were built for the current ``.inter``. ``options`` are
    :func:`prepare_dataset`'s keyword arguments.
    """
    given = (source is not None or raw_file is not None
             or any(options.get(key) is not None for key in READING_OPTIONS))
    if source is None and given:
        source = resolve_source(name, raw_file, options.get("raw_dirs", ()),
                                options.get("download", True), options.get("columns"),
                                options.get("file_format"), options.get("time_format"),
                                options.get("quotes"))
    amazon = lookup(name)
    dataset_name = source.name if source is not None else amazon.name if amazon is not None else name
    dataset_dir = Path(out_dir) / dataset_name
    source_sha256 = None
    if given:
        source_sha256 = _source_sha256(source.raw)
        expected = _expected_options(source, options.get("kcore"),
                                     options.get("max_line_bytes", DEFAULT_MAX_LINE_BYTES))
        converted = existing_summary(dataset_name, dataset_dir, source_sha256,
                                     options.get("on_bad_line", "error"), expected) is not None
    else:
        converted = inter_path(dataset_dir, dataset_name).is_file()
    need_topics = topics and not (converted and side_files_current(
        [p for key, p in topic_file_paths(dataset_dir, dataset_name).items() if key != "summary"],
        dataset_dir, dataset_name))
    # Checked before trusted: a file changed or cut short since it was written is rebuilt from
    # the raw file when that is at hand, else refused (dataset_preprocess.verify).
    inter_bad, topics_bad = verify.dataset_problem(dataset_dir, dataset_name,
                                                   topics and converted and not need_topics)
    if converted and inter_bad:
        converted = False
    if topics_bad:
        need_topics = True
    if source is None and (inter_bad or topics_bad or (need_topics and amazon is None)):
        recorded = verify.raw_source_at_hand(dataset_dir, dataset_name)
        if recorded is None and amazon is None and (inter_bad or topics_bad or converted):
            problems = [p for p in (inter_bad, topics_bad) if p] or [
                f"{dataset_dir} holds {dataset_name}'s atomic files but no topic files"]
            raise verify.refusal(dataset_name, problems)
        if recorded is not None:
            source, source_sha256, options = _recorded_source(dataset_name, recorded, options)
    for problem in (inter_bad, topics_bad):
        if problem:
            logger.warning("%s; rebuilding it from the raw file", problem)
    if not converted or need_topics:
        logger.info("preparing %s in %s", dataset_name, out_dir)
        prepare_dataset(name, out_dir=out_dir, raw_file=raw_file, topics=need_topics,
                        source=source, source_sha256=source_sha256, review_vectors=False, **options)
    else:
        logger.info("%s: atomic files%s up to date", dataset_name, " and topics" if topics else "")
    if review_vectors and not review_vectors_current(dataset_dir, dataset_name):
        logger.info("writing the review vectors of %s (missing or stale)", dataset_name)
        build_review_vectors_for_prepared(dataset_name, out_dir=out_dir)
    return dataset_dir


def _recorded_source(name: str, summary: dict[str, Any], options: dict[str, Any]
                     ) -> tuple[Source, str, dict[str, Any]]:
    """The source, its sha256 and the options of the conversion ``summary`` records, to redo it
    exactly (the raw file is there, unchanged: :func:`dataset_preprocess.verify.raw_source_at_hand`)."""
    recorded = dict(summary.get("options") or {})
    source = resolve_source(name, raw_file=summary["source_file"], download=False,
                            columns=recorded.get("columns"), file_format=recorded.get("format"),
                            time_format=recorded.get("time_format"), quotes=recorded.get("quotes"))
    redo = {**options, "on_bad_line": summary.get("on_bad_line", "error"),
            "kcore": recorded.get("kcore"),
            "max_line_bytes": recorded.get("max_line_bytes", DEFAULT_MAX_LINE_BYTES)}
    return source, summary["source_sha256"], redo


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
    from dataset_preprocess.topics.sentences import split_reviews
    from dataset_preprocess.topics.fit import TopicConfig, minimum_sentences

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
                  config: TopicConfig | None, pinned_fits: str | os.PathLike[str] | None = None,
                  review_vectors: bool = True) -> None:
    from dataset_preprocess.topics.fit import TopicConfig, build_topics, sentence_encoder
    from dataset_preprocess.topics.pinned import install_pinned_fit

    config = config or TopicConfig()
    if pinned_fits is None or install_pinned_fit(dataset_dir, name, config, Path(pinned_fits)) is None:
        logger.info("building topics for %s", name)
        build_topics(reviews, out_dir=dataset_dir, name=name, config=config)
    elif config.encoder_precision == "fastest":  # a pin installed: its encoder's vectors
        pinned = json.loads((dataset_dir / f"{name}.topics.json").read_text(encoding="utf-8"))
        config = dataclasses.replace(config, encoder_precision=pinned.get(
            "encoder_settings", {}).get("precision", "fp32"))
    if not review_vectors:
        return
    # Per-review vectors for the review-aware baselines: the topics' sentences, from the cache.
    build_review_vectors(reviews, dataset_dir, name, cache_dir=config.cache_dir,
                         sentence_encoder=sentence_encoder(config),
                         inter_sha256=recorded_inter_sha256(dataset_dir, name))


def prepared_reviews(name: str, out_dir: str | Path = "dataset") -> pd.DataFrame:
    """The reviews of the prepared dataset ``<out_dir>/<name>``, text included, re-read from the raw
    file and with the options ``<name>.summary.json`` records, checked to be exactly the ``.inter``
    interactions (the atomic files hold no text)."""
    dataset_dir = Path(out_dir) / name
    summary_file = summary_path(dataset_dir, name)
    if not summary_file.is_file():
        raise FileNotFoundError(f"{summary_file} is missing: prepare the dataset first with "
                                f"python -m dataset_preprocess {name}")
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    options = dict(summary.get("options") or {})
    source = resolve_source(name, raw_file=summary["source_file"], download=False,
                            columns=options.get("columns"), file_format=options.get("format"),
                            time_format=options.get("time_format"), quotes=options.get("quotes"))
    reviews, _, _ = read_source(source, summary.get("on_bad_line", "error"), options.get("kcore"))
    inter = pd.read_csv(dataset_dir / summary["inter_file"], sep="\t", dtype=str,
                        usecols=["user_id:token", "item_id:token"], keep_default_na=False,
                        quoting=csv.QUOTE_NONE)
    pairs = set(zip(inter["user_id:token"], inter["item_id:token"]))
    read = set(zip(reviews["user_id"].astype(str), reviews["item_id"].astype(str)))
    if pairs != read or len(reviews) != len(inter):
        raise ValueError(f"{name}: the reviews re-read from {summary['source_file']} are not the "
                         f"{len(inter)} interactions of {summary['inter_file']}; convert again with "
                         f"python -m dataset_preprocess {name} --force")
    return reviews


def build_review_vectors_for_prepared(name: str, out_dir: str | Path = "dataset", cache_dir: str | Path | None = None,
                       encoder: str | None = None) -> dict:
    """The review vectors of an already prepared dataset ``<out_dir>/<name>``, without re-clustering.

    Reads the raw file and options recorded in ``<name>.summary.json`` (as the conversion did),
    checks the reviews are exactly the ``.inter`` pairs, and takes encoder and cache directory
    from ``<name>.topics.json`` when the topics exist (so the warm cache is used).
    """
    dataset_dir = Path(out_dir) / name
    reviews = prepared_reviews(name, out_dir)
    summary = json.loads(summary_path(dataset_dir, name).read_text(encoding="utf-8"))
    topics_meta = dataset_dir / f"{name}.topics.json"
    meta = json.loads(topics_meta.read_text(encoding="utf-8")) if topics_meta.is_file() else {}
    topic_config = meta.get("config", {})
    # The encoder as the topics resolved it (precision, batch plan), so the cache has the vectors.
    settings = meta.get("encoder_settings", {
        "precision": topic_config.get("encoder_precision", "fp32"), "batch_tokens": 0})
    from dataset_preprocess.topics.embedding_cache import SentenceEncoder

    chosen = SentenceEncoder(encoder or topic_config.get("encoder", "all-MiniLM-L6-v2"),
                             batch_size=topic_config.get("batch_size", 64),
                             precision=settings["precision"], batch_tokens=settings["batch_tokens"])
    return build_review_vectors(
        reviews, dataset_dir, name,
        cache_dir=cache_dir or topic_config.get("cache_dir", "cache/embeddings"),
        inter_sha256=summary.get("inter_sha256"), sentence_encoder=chosen, show_progress=True,
    )
