"""Shared test set-up.

RecBole's Config parses every ``--key=value`` in sys.argv, pytest's own flags included, so the
whole session runs with a bare argv.
"""

import sys
from pathlib import Path

import pytest

import recbole_sdmtmp  # noqa: F401  (applies the RecBole compatibility fixes first)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
INSTRUMENT_RAW = SHARED_DIR / "data" / "amazon" / "Musical_Instruments_5.json.gz"

sys.argv = sys.argv[:1]


@pytest.fixture(scope="session")
def instrument_raw():
    if not INSTRUMENT_RAW.exists():
        pytest.fail(f"the real Instrument file is missing: {INSTRUMENT_RAW}")
    return INSTRUMENT_RAW
