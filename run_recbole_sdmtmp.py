"""Train and test SD-MTMP (or any RecBole model) on an Amazon dataset under the shared protocol.

    python run_recbole_sdmtmp.py --dataset Instrument
    python run_recbole_sdmtmp.py --dataset Instrument --model SASRec
    python run_recbole_sdmtmp.py --dataset Instrument --embedding_size=64 --ablation=w/o-A
    python run_recbole_sdmtmp.py --dataset Instrument --checkpoint saved/SDMTMP-....pth

Missing atomic files (and, for SD-MTMP, topic files) are prepared from the raw Amazon file first
(``python -m dataset_preprocess``). Every ``--key=value`` is a RecBole config override.
"""

import argparse
import json
import sys
from pathlib import Path

import recbole_sdmtmp  # noqa: F401  (RecBole compatibility fixes first)
from dataset_preprocess.amazon import BadReviewLine, EmptyReviewFile
from dataset_preprocess.atomic_io import atomic_write_json
from dataset_preprocess.registry import RawDataMissing, resolve
from recbole_sdmtmp.data.preparation import ensure_prepared
from recbole_sdmtmp.runner import build_config, run


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", "-d", default="Instrument", help="Instrument, DigitalMusic, Office (or aliases)")
    parser.add_argument("--model", "-m", default="SDMTMP", help="SDMTMP or a RecBole model name (SASRec, GRU4Rec...)")
    parser.add_argument("--config_files", default="", help="space-separated extra YAML files, applied last")
    parser.add_argument("--checkpoint", default=None, help="evaluate this saved model on the test split, no training")
    parser.add_argument("--raw-file", default=None, help="the raw Amazon .json(.gz), if not in a searched folder")
    return parser.parse_known_args(argv)


def main(argv=None) -> int:
    args, overrides = parse_args(argv)
    # RecBole's Config reads every --key=value from sys.argv: leave it only the overrides.
    sys.argv = sys.argv[:1] + overrides
    try:
        dataset = resolve(args.dataset).name
    except ValueError:
        dataset = args.dataset  # a dataset of the user's own, already in RecBole atomic files
    config_files = args.config_files.split()
    config = build_config(args.model, dataset, config_files)
    try:
        ensure_prepared(config, raw_file=args.raw_file)
    except (RawDataMissing, BadReviewLine, EmptyReviewFile) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = run(args.model, dataset, config_files, checkpoint=args.checkpoint)
    if result.checkpoint and args.checkpoint is None:  # a training run: its summary beside the checkpoint
        atomic_write_json(Path(result.checkpoint).with_suffix(".json"), result.to_dict())
    print(json.dumps({"test_result": result.test_result, "epochs": result.epochs,
                      "train_seconds_per_epoch": result.train_seconds_per_epoch,
                      "peak_rss_mb": round(result.peak_rss_mb), "checkpoint": result.checkpoint}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
