"""The command line that every study script re-running table cells shares (datasets, seeds, where the
cells and data live, torch threads), parsed once here so that the scripts agree."""

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_cell_study_args(description: str, datasets: list[str], argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=datasets)
    parser.add_argument("--seeds", nargs="+", type=int, default=[2024, 2025, 2026])
    parser.add_argument("--results", default=str(REPO / "results"))
    parser.add_argument("--data-path", default=str(REPO / "dataset"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config reads sys.argv: leave it nothing of ours
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return args
