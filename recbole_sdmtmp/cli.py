"""Train and test SD-MTMP (or any RecBole model) on an Amazon dataset under the shared protocol.

The same command three ways: ``python run_recbole_sdmtmp.py`` in the checkout, and after an
install ``run_recbole_sdmtmp`` (a console script) or ``python -m recbole_sdmtmp``.

    python run_recbole_sdmtmp.py --dataset Instrument
    python run_recbole_sdmtmp.py --dataset Instrument --model SASRec
    python run_recbole_sdmtmp.py --dataset Instrument --embedding_size=64 --ablation=w/o-A
    python run_recbole_sdmtmp.py --dataset Instrument --checkpoint saved/SDMTMP-....pth
    python run_recbole_sdmtmp.py --dataset Instrument --nproc 2   # 2 processes (gloo on CPU, NCCL on GPUs)
    python run_recbole_sdmtmp.py --dataset Gift_Cards          # any Amazon 5-core category
    python run_recbole_sdmtmp.py --dataset MyShop --raw-file reviews.csv \
        --columns user=customer_id,item=sku,rating=stars,time=created_at,text=body --kcore 5

Missing atomic files (and, for SD-MTMP, topic files) are prepared from the raw file first
(``python -m dataset_preprocess``; with --columns/--format/--time-format/--kcore, or a raw file
that is not Amazon JSON, the conversion is redone when those options change). Every
``--key=value`` is a RecBole config override.
"""

import argparse
import json
import sys
from pathlib import Path

import recbole_sdmtmp  # noqa: F401  (RecBole compatibility fixes first)
from dataset_preprocess.atomic_io import atomic_write_json
from dataset_preprocess.pipeline import INPUT_ERRORS, resolve_source
from dataset_preprocess.readers.own_file import FORMATS
from dataset_preprocess.registry import lookup
from recbole_sdmtmp import console
from recbole_sdmtmp.config import build_config, ensure_prepared
from recbole_sdmtmp.data.topic_fit import current_topic_fit
from recbole_sdmtmp.registry import needs_topics
from recbole_sdmtmp.runner import run
from recbole_sdmtmp.checkpoints import CheckpointMismatch, check_checkpoint
from recbole_sdmtmp.settings import check_command_line, check_files, check_settings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="run_recbole_sdmtmp.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", "-d", default="Instrument",
                        help="Instrument, DigitalMusic, Office, any Amazon 5-core category (Gift_Cards...), "
                             "or the name of your own dataset (with --raw-file)")
    parser.add_argument("--model", "-m", default="SDMTMP", help="SDMTMP or a RecBole model name (SASRec, GRU4Rec...)")
    parser.add_argument("--config_files", default="", help="space-separated extra YAML files, applied last")
    parser.add_argument("--checkpoint", default=None, help="evaluate this saved model on the test split, no training")
    parser.add_argument("--raw-file", default=None,
                        help="the raw reviews: Amazon .json(.gz) if not in a searched folder, or your own "
                             ".csv/.tsv/.jsonl/.parquet")
    parser.add_argument("--columns", default=None, metavar="KEY=COLUMN,...",
                        help="column mapping of your own file: user=...,item=...,rating=...,time=...,text=...")
    parser.add_argument("--format", dest="file_format", choices=FORMATS, default=None,
                        help="format of your own file (default: from the suffix)")
    parser.add_argument("--time-format", default=None, help="strptime format of a date column")
    parser.add_argument("--kcore", type=int, default=None, metavar="K", help="keep the K-core of the reviews")
    parser.add_argument("--nproc", type=int, default=1, help="processes on this machine (torch.distributed)")
    parser.add_argument("--world_size", type=int, default=-1, help="processes on all machines (default: nproc)")
    parser.add_argument("--ip", default="localhost", help="address of the machine of rank 0")
    parser.add_argument("--port", default=None, help="port of rank 0 (default: a free one; same on every machine)")
    parser.add_argument("--group_offset", type=int, default=0, help="global rank of this machine's first process")
    return parser.parse_known_args(argv)


def own_options(args) -> dict:
    """The reading options given on the command line (empty for a plain Amazon dataset)."""
    return {key: value for key, value in (("columns", args.columns), ("file_format", args.file_format),
                                          ("time_format", args.time_format), ("kcore", args.kcore))
            if value is not None}


def main(argv=None) -> int:
    argv_before = sys.argv  # given back: a caller in the same process (a test, a script) keeps its own
    try:
        return run_command(argv)
    finally:
        sys.argv = argv_before


def run_command(argv=None) -> int:
    args, overrides = parse_args(argv)
    # RecBole's Config reads every --key=value from sys.argv: leave it only the overrides.
    sys.argv = sys.argv[:1] + overrides
    console.show_stages()  # the preparation's stage lines, before RecBole's logger exists
    options = own_options(args)
    try:  # settings as --key=value, YAML files that read (their keys are checked with the model's)
        check_command_line(overrides)
        check_files(args.config_files.split())
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    source = None
    if args.raw_file is not None or options:
        try:  # resolved once: the name the preparation will write, and the file it reads
            source = resolve_source(args.dataset, args.raw_file, download=False, columns=args.columns,
                                    file_format=args.file_format, time_format=args.time_format)
        except INPUT_ERRORS + (ValueError,) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        dataset = source.name
    else:  # an Amazon category's RecBole name, or a dataset of the user's own already prepared
        amazon = lookup(args.dataset)
        dataset = amazon.name if amazon is not None else args.dataset
    try:
        # progress bars only on a terminal (a command-line --show_progress still wins)
        settings = None if sys.stderr.isatty() else {"show_progress": False}
        config = build_config(args.model, dataset, args.config_files.split(), settings)  # unknown model, bad setting
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        check_settings(config, args.config_files.split())  # every key known, numbers in range
        ensure_prepared(config, raw_file=args.raw_file, source=source, **options)
        if needs_topics(config):  # the training split's topic fit, made or installed before training
            current_topic_fit(config)
    except INPUT_ERRORS + (ValueError,) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:  # a checkpoint is evaluated only as what it was trained as (recbole_sdmtmp.checkpoints)
        if args.checkpoint is not None:
            check_checkpoint(args.checkpoint, config)
        result = run(config, checkpoint=args.checkpoint, nproc=args.nproc, world_size=args.world_size, ip=args.ip,
                     port=args.port, group_offset=args.group_offset)
    except CheckpointMismatch as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if result is None:  # a machine without rank 0 of a several-machine run
        return 0
    if result.checkpoint and args.checkpoint is None:  # a training run: its summary beside the checkpoint
        atomic_write_json(Path(result.checkpoint).with_suffix(".json"), result.to_dict())
    print(json.dumps({"test_result": result.test_result, "epochs": result.epochs,
                      "train_seconds_per_epoch": result.train_seconds_per_epoch,
                      "peak_rss_mb": round(result.peak_rss_mb), "checkpoint": result.checkpoint}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
