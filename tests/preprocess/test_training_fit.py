"""Topics of the training reviews only, on the real Magazine_Subscriptions file and the real
encoder: the fit reads exactly the training split's reviews, is cached per split, and a pin of it
is installed elsewhere without clustering."""

import json
import shutil

import pandas as pd
import pytest

from dataset_preprocess.pipeline import prepare_dataset
from dataset_preprocess.topics import fit
from dataset_preprocess.topics.files import topic_fit_id
from dataset_preprocess.topics.training_fit import ensure_training_fit, pin_training_fits
from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.data import SDMTMPDataset
from recbole_sdmtmp.data.protocol import prepare
from tests.conftest import REPO_ROOT, SHARED_DIR

NAME = "Magazine_Subscriptions"
RAW = SHARED_DIR / "data" / "amazon" / "Magazine_Subscriptions_5.json.gz"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The dataset converted from the raw file, the preparation's fit of every review installed
    from its pin (nothing clustered)."""
    root = tmp_path_factory.mktemp("data")
    prepare_dataset(NAME, out_dir=root, raw_file=RAW, download=False, review_vectors=False,
                    pinned_fits=REPO_ROOT / "results" / "topic_fits")
    return root


def training_split(root, protocol="paper"):
    config = build_config("SDMTMP", NAME, config_dict={"data_path": str(root), "protocol": protocol,
                                                        "show_progress": False, "pinned_topic_fits": None})
    return prepare(config, SDMTMPDataset(config)).train_data._dataset


@pytest.fixture(scope="module")
def fitted(root):
    train = training_split(root)
    return train, train.topic_fit_folder()  # fitted here: no pin is offered


def test_the_fit_reads_exactly_the_training_reviews(root, fitted):
    train, folder = fitted
    record = train.topic_files.meta
    pairs = train.interaction_pairs()
    assert {tuple(entry.split("\t")) for entry in record["fitted_on"]} == pairs
    assert record["n_reviews"] == len(pairs) and record["fitted_on_scope"] == "paper"
    inter = pd.read_csv(root / NAME / f"{NAME}.inter", sep="\t", dtype=str)
    held_out = set(zip(inter["user_id:token"], inter["item_id:token"])) - pairs
    assert len(held_out) > 500  # the validation and test interactions of 20% + 10% of each record
    listed = set(zip(train.topic_files.review_topic["user_id"], train.topic_files.review_topic["item_id"]))
    assert listed and listed <= pairs and not listed & held_out
    prepared = json.loads((root / NAME / f"{NAME}.topics.json").read_text())
    assert record["n_sentences"] < prepared["n_sentences"] and "fitted_on" not in prepared
    assert folder.parent == root / NAME / "fits" and folder.name.startswith("paper-")


def test_the_fit_is_cached_per_split_and_its_pin_installs_elsewhere(root, fitted, tmp_path, monkeypatch):
    train, folder = fitted
    written = (folder / f"{NAME}.review_topic").stat().st_mtime_ns

    def no_clustering(*args, **kwargs):
        raise AssertionError("clustered again")

    monkeypatch.setattr(fit, "build_topics", no_clustering)
    assert train.topic_fit_folder() == folder  # the cached fit, not refitted
    assert (folder / f"{NAME}.review_topic").stat().st_mtime_ns == written
    pins = tmp_path / "pins"
    [pinned] = pin_training_fits(root / NAME, NAME, pins)
    assert pinned == pins / NAME / "paper"
    pin = json.loads((pinned / "pin.json").read_text())
    assert pin["fitted_on_sha256"] == train.topic_files.meta["fitted_on_sha256"]

    elsewhere = tmp_path / "elsewhere" / NAME
    shutil.copytree(root / NAME, elsewhere, ignore=shutil.ignore_patterns("fits"))
    pairs = train.interaction_pairs()
    installed = ensure_training_fit(elsewhere, NAME, pairs, "paper", pins)
    assert topic_fit_id(installed, NAME) == topic_fit_id(folder, NAME) == pin["topic_fit"]
    # other training interactions are another fit: the pin is not used for them
    with pytest.raises(AssertionError, match="clustered again"):
        ensure_training_fit(elsewhere, NAME, set(list(pairs)[1:]), "paper", pins)
