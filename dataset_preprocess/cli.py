"""``python -m dataset_preprocess NAME``: raw reviews -> RecBole atomic files -> topics.

NAME is any Amazon 5-core category (2014 or 2018 release, see
:mod:`dataset_preprocess.registry`), or any name for a review file of the user's own given with
``--raw-file`` (CSV, TSV, JSON lines or Parquet, ``--columns`` to map its columns; see
:mod:`dataset_preprocess.readers.own_file`). ``--review-vectors`` writes only the per-review
vectors of datasets already prepared.

The command line only: the pipeline is :mod:`dataset_preprocess.pipeline`. Exit status 2, one
paragraph naming the file and line or the path, for an input that cannot be converted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataset_preprocess.pipeline import INPUT_ERRORS, build_review_vectors_for_prepared, prepare_dataset
from dataset_preprocess.readers.amazon import ON_BAD_LINE_CHOICES, inter_path, summary_path
from dataset_preprocess.readers.own_file import FORMATS
from dataset_preprocess.readers.rawio import DEFAULT_MAX_LINE_BYTES
from dataset_preprocess.registry import PAPER_DATASETS, lookup, resolve
from dataset_preprocess.topics.pinned import PINNED_FITS_DIR, pin_fit
from dataset_preprocess.topics.training_fit import pin_training_fits

if TYPE_CHECKING:
    from dataset_preprocess.topics.fit import TopicConfig

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
    "umap_epochs": "umap_n_epochs",
    "batch_tokens": "batch_tokens",
    "encoder_processes": "encoder_processes",
    "topic_cache_dir": "topic_cache_dir",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dataset_preprocess",
        description="Convert an Amazon 5-core review file, or a review file of your own, into "
                    "RecBole atomic files (<out-dir>/<Name>/<Name>.inter and .summary.json), "
                    "then build its topics.")
    parser.add_argument("name", nargs="+", help=f"dataset: {', '.join(PAPER_DATASETS)}, any Amazon 5-core "
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
    parser.add_argument("--review-vectors", action="store_true",
                        help="only write <Name>.review_vec.{npy,tsv,json} of already prepared "
                             "datasets (NAME may be several; no conversion, no re-clustering)")
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
                                           "or %%Y%%m%%d, or a unit for numbers: unix (seconds), "
                                           "unix_ms, unix_days, excel (Excel serial days) "
                                           "(default: ISO 8601, or numbers that are plausible "
                                           "as Unix seconds or milliseconds of a review; any "
                                           "other number, such as 20150304, needs this)")
    own.add_argument("--quotes", choices=("on", "off"),
                     help="whether \" quotes a field (default: on for CSV, off for TSV, where a "
                          "quote is an ordinary character)")
    topic = parser.add_argument_group("topics")
    topic.add_argument("--no-topics", action="store_true", help="skip the topic step")
    topic.add_argument("--encoder", help="sentence-transformers model name or path")
    topic.add_argument("--encoder-precision",
                       choices=("fastest", "fp32", "bf16", "auto", "onnx-int8", "openvino-int8"),
                       help="fastest (default): the fastest encoder that passed the encoder gate "
                            "(docs/ENCODER_GATE.md: no int8 one did, so fp32; a pinned fit is "
                            "installed under it); fp32: the vectors of every committed result; "
                            "onnx-int8, openvino-int8: the int8 encoders, about 3x faster, other "
                            "topic statistics (pip install -e .[int8], else fp32); bf16 autocast; "
                            "auto: bf16 where the hardware has bf16 units, else fp32 "
                            "(docs/PREPROCESSING.md)")
    topic.add_argument("--batch-tokens", type=int, metavar="N",
                       help="about N tokens per encoder batch (default 768; 0: batches of 16 "
                            "sentences, the earlier plan, the same fp32 vectors)")
    topic.add_argument("--encoder-processes", type=int, metavar="N",
                       help="encoder processes on the CPU (default 0: one per core, at most 4, "
                            "when there are 4,000 sentences or more to encode)")
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
    topic.add_argument("--umap-epochs", type=int, metavar="N",
                       help="UMAP optimisation epochs (default: UMAP's own, 200 above 10,000 "
                            "sentences)")
    topic.add_argument("--refit-topics", action="store_true",
                       help="fit topics even where a pinned fit of these inputs exists")
    topic.add_argument("--pin-topics", action="store_true",
                       help="after preparing, pin this fit and the training-split fits runs made "
                            "(fits/<protocol>-*: copy them to --pinned-fits) so that other machines "
                            "read them instead of fitting their own")
    topic.add_argument("--pinned-fits", default=str(PINNED_FITS_DIR), metavar="DIR",
                       help=f"folder of pinned topic fits (default: {PINNED_FITS_DIR}); a dataset's "
                            "pin is installed instead of a fit when it was made from the same raw "
                            "file, .inter and settings")
    topic.add_argument("--topic-cache-dir",
                       help="cache of fitted topics, keyed by every input of the fit (default: "
                            "'topics' beside --cache-dir; '' for none)")
    return parser


def _topic_config(args: argparse.Namespace) -> TopicConfig | None:
    given = {field: getattr(args, option) for option, field in TOPIC_OPTIONS.items()
             if getattr(args, option) is not None}
    if args.no_topics or not given:
        return None
    from dataset_preprocess.topics.fit import TopicConfig

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
    if (summary.get("time_unit") or "").startswith("Unix milliseconds"):
        warnings.insert(0, f"warning: times read as {summary['time_unit']}")
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
    if args.review_vectors:
        return review_vectors_main(args)
    if len(args.name) > 1:
        parser.error("one dataset at a time (several only with --review-vectors)")
    args.name = args.name[0]
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
            quotes=None if args.quotes is None else args.quotes == "on",
            kcore=args.kcore, max_line_bytes=args.max_line_bytes, written=summary,
            pinned_fits=None if args.refit_topics or args.no_topics else args.pinned_fits)
        if args.pin_topics and not args.no_topics:
            from dataset_preprocess.topics.fit import TopicConfig

            pin_fit(dataset_dir, summary["dataset"], _topic_config(args) or TopicConfig(), Path(args.pinned_fits))
            for folder in pin_training_fits(dataset_dir, summary["dataset"], Path(args.pinned_fits)):
                print(f"pinned the training-split topic fit {folder}")
    except INPUT_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # a name or option that does not fit (see resolve_source)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # any path the OS refuses (a name too long, ...): one paragraph
        print(f"error: {_os_error(exc)}", file=sys.stderr)
        return 2
    print(format_summary(summary, dataset_dir))
    return 0


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc} (the operating system refused this path)"


def review_vectors_main(args: argparse.Namespace) -> int:
    """The review vectors of prepared datasets, from the sentence-embedding cache."""
    logging.basicConfig(level=logging.INFO, datefmt="%H:%M:%S",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in args.name:
        try:
            meta = build_review_vectors_for_prepared(name, args.out_dir, args.cache_dir, args.encoder)
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{name}: {meta['n_rows']} review vectors of dimension {meta['embedding_dim']} "
              f"({meta['n_reviews_without_text']} reviews without text have no row)")
    return 0
