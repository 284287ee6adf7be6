"""Shared test set-up.

RecBole's Config parses every ``--key=value`` in sys.argv, pytest's own flags included, so the
whole test run goes with a bare argv.
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


@pytest.fixture(scope="session")
def embedding_cache_dir(tmp_path_factory):
    """One sentence-embedding cache for the whole test run: each slice is encoded once."""
    return tmp_path_factory.mktemp("embedding_cache")


@pytest.fixture(scope="session")
def instrument_reviews(instrument_raw):
    from dataset_preprocess.readers.amazon import read_reviews

    return read_reviews(instrument_raw)[0]


@pytest.fixture(scope="session")
def topic_slice(instrument_reviews):
    """Each user's earliest review (1,429 real reviews): every user can own a training topic,
    and the encoder runs over a few thousand sentences, not 53k."""
    return instrument_reviews.sort_values(["user_id", "timestamp", "item_id"]).groupby("user_id").head(1)


@pytest.fixture(scope="session")
def instrument_root(tmp_path_factory, instrument_raw, topic_slice, embedding_cache_dir):
    """RecBole data root with the real Instrument.inter and topics from the real encoder on the
    slice (users and items outside it have no topic, which the model must handle)."""
    from dataset_preprocess.pipeline import prepare_dataset
    from dataset_preprocess.topics.fit import TopicConfig, build_topics

    root = tmp_path_factory.mktemp("data")
    dataset_dir = prepare_dataset(
        "Instrument", out_dir=root, raw_file=instrument_raw, download=False, topics=False
    )
    config = TopicConfig(
        min_cluster_size=15, min_samples=5, cache_dir=str(embedding_cache_dir), show_progress=False,
        topic_cache_dir="",
    )
    # each user's first review is a training review under every protocol's split but global_time's
    build_topics(topic_slice, out_dir=dataset_dir, name="Instrument", config=config, fitted_on="first reviews")
    return root
