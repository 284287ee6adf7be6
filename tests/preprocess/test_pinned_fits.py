"""A pinned topic fit is installed instead of a fit only for the inputs and settings it was made from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dataset_preprocess import pipeline
from dataset_preprocess.pipeline import prepare_dataset
from dataset_preprocess.topics import fit
from dataset_preprocess.topics.files import REVIEW_TOPIC_HEADER, load_topic_files, topic_file_paths, topic_fit_id
from dataset_preprocess.topics.fit import TopicConfig
from dataset_preprocess.topics.pinned import PIN_FILE, BrokenPin, fit_settings, install_pinned_fit, pin_fit, read_pin

CONFIG = TopicConfig(min_cluster_size=2, umap_n_neighbors=2)  # few sentences suffice


def _raw(path: Path, users: int = 3) -> Path:
    lines = [json.dumps({"reviewerID": f"U{u}", "asin": f"I{i}", "overall": 4.0, "unixReviewTime": 1393545600 + i,
                         "reviewText": f"Good strings number {i}. Tuned well."})
             for u in range(users) for i in range(3)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_fit(folder: Path, name: str, offset: float = 0.0) -> None:
    """Side-files as a fit writes them: two topics over the first user's reviews."""
    paths = topic_file_paths(folder, name)
    rows = ["\t".join(REVIEW_TOPIC_HEADER), "U0\tI0\t0\t2.0", "U0\tI1\t1\t1.0"]
    paths["review_topic"].write_text("\n".join(rows) + "\n")
    np.save(paths["topic_vec"], np.arange(8, dtype=np.float32).reshape(2, 4) + offset)
    paths["summary"].write_text("topic_id\tsize\tn_users\tn_items\ttop_words\n")
    paths["meta"].write_text(json.dumps({"format_version": 1, "n_topics": 2, "outlier_ratio": 0.5,
                                         "embedding_dim": 4, "topics": []}))


@pytest.fixture
def prepared(tmp_path: Path) -> tuple[Path, Path]:
    """A converted dataset with a fit of its own, and that fit pinned under ``pins``."""
    dataset_dir = prepare_dataset("Instrument", out_dir=tmp_path / "data", raw_file=_raw(tmp_path / "r.json"),
                                  topics=False)
    _write_fit(dataset_dir, "Instrument")
    pins = tmp_path / "pins"
    pin_fit(dataset_dir, "Instrument", CONFIG, pins)
    return dataset_dir, pins


def test_pin_records_the_fit_and_what_it_was_fitted_from(prepared: tuple[Path, Path]) -> None:
    dataset_dir, pins = prepared
    pin = read_pin("Instrument", pins)
    summary = json.loads((dataset_dir / "Instrument.summary.json").read_text())
    assert pin["topic_fit"] == topic_fit_id(dataset_dir, "Instrument") == topic_fit_id(pins / "Instrument", "Instrument")
    assert (pin["inter_sha256"], pin["source_sha256"]) == (summary["inter_sha256"], summary["source_sha256"])
    assert pin["settings"]["cluster"]["hdbscan"]["min_cluster_size"] == 2 and pin["n_topics"] == 2


def test_a_matching_pin_replaces_another_fit_bit_for_bit(prepared: tuple[Path, Path]) -> None:
    dataset_dir, pins = prepared
    pinned = topic_fit_id(dataset_dir, "Instrument")
    _write_fit(dataset_dir, "Instrument", offset=1e-6)  # this machine's fit: other last bits
    assert topic_fit_id(dataset_dir, "Instrument") != pinned
    assert install_pinned_fit(dataset_dir, "Instrument", CONFIG, pins) == pinned
    assert topic_fit_id(dataset_dir, "Instrument") == pinned
    assert load_topic_files(dataset_dir, "Instrument").n_topics == 2


def test_a_pin_of_other_settings_or_other_interactions_is_not_used(prepared: tuple[Path, Path], tmp_path: Path) -> None:
    dataset_dir, pins = prepared
    assert install_pinned_fit(dataset_dir, "Instrument", TopicConfig(min_cluster_size=3, umap_n_neighbors=2), pins) is None
    assert install_pinned_fit(dataset_dir, "Instrument", TopicConfig(min_cluster_size=2, umap_n_neighbors=2, seed=7), pins) is None
    other = prepare_dataset("Instrument", out_dir=tmp_path / "other", raw_file=_raw(tmp_path / "r2.json", users=4),
                            topics=False)
    assert install_pinned_fit(other, "Instrument", CONFIG, pins) is None
    assert not topic_file_paths(other, "Instrument")["meta"].exists()
    # Paths, batch plans and process counts change no number: the pin still applies.
    assert install_pinned_fit(dataset_dir, "Instrument",
                              TopicConfig(min_cluster_size=2, umap_n_neighbors=2, cache_dir="x", encoder_processes=1),
                              pins) is not None


def test_the_default_precision_installs_a_pin_and_a_named_other_precision_does_not(
        prepared: tuple[Path, Path]) -> None:
    """New fits default to the fastest encoder that passed the gate, but the pins (fp32) stay
    what the default installs, so every committed result still reads its fit."""
    dataset_dir, pins = prepared
    assert read_pin("Instrument", pins)["settings"]["encoder_precision"] == "fp32"
    fastest = TopicConfig(min_cluster_size=2, umap_n_neighbors=2)
    assert fastest.encoder_precision == "fastest"
    assert install_pinned_fit(dataset_dir, "Instrument", fastest, pins) is not None
    for other in ("openvino-int8", "onnx-int8", "bf16"):
        assert install_pinned_fit(dataset_dir, "Instrument", TopicConfig(
            min_cluster_size=2, umap_n_neighbors=2, encoder_precision=other), pins) is None
    assert install_pinned_fit(dataset_dir, "Instrument", TopicConfig(
        min_cluster_size=2, umap_n_neighbors=2, encoder_precision="fp32"), pins) is not None


def test_a_fit_made_under_the_default_is_pinned_with_the_precision_it_used(tmp_path: Path) -> None:
    dataset_dir = prepare_dataset("Instrument", out_dir=tmp_path / "data", raw_file=_raw(tmp_path / "r.json"),
                                  topics=False)
    _write_fit(dataset_dir, "Instrument")
    meta = topic_file_paths(dataset_dir, "Instrument")["meta"]
    meta.write_text(json.dumps({**json.loads(meta.read_text()),
                                "encoder_settings": {"precision": "openvino-int8"}}))
    pin_fit(dataset_dir, "Instrument", TopicConfig(min_cluster_size=2, umap_n_neighbors=2), tmp_path / "pins")
    assert read_pin("Instrument", tmp_path / "pins")["settings"]["encoder_precision"] == "openvino-int8"


def test_tampered_pinned_files_are_refused(prepared: tuple[Path, Path]) -> None:
    dataset_dir, pins = prepared
    with topic_file_paths(pins / "Instrument", "Instrument")["review_topic"].open("a") as handle:
        handle.write("U1\tI2\t0\t1.0\n")
    with pytest.raises(BrokenPin, match="do not hash to the pin"):
        install_pinned_fit(dataset_dir, "Instrument", CONFIG, pins)


def test_prepare_installs_the_pin_instead_of_fitting_and_refits_without_it(
        prepared: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset_dir, pins = prepared
    fits: list[Any] = []
    monkeypatch.setattr(fit, "build_topics", lambda reviews, **kwargs: fits.append(kwargs))
    monkeypatch.setattr(pipeline, "build_review_vectors", lambda *args, **kwargs: None)
    for path in topic_file_paths(dataset_dir, "Instrument").values():
        path.unlink()
    raw = tmp_path / "r.json"
    prepare_dataset("Instrument", out_dir=tmp_path / "data", raw_file=raw, topic_config=CONFIG, pinned_fits=pins)
    assert fits == [] and topic_fit_id(dataset_dir, "Instrument") == read_pin("Instrument", pins)["topic_fit"]
    prepare_dataset("Instrument", out_dir=tmp_path / "data", raw_file=raw, topic_config=CONFIG, pinned_fits=None)
    assert len(fits) == 1 and fits[0]["name"] == "Instrument"
    assert (pins / "Instrument" / PIN_FILE).is_file()


@pytest.mark.parametrize("name", ["Instrument", "Gift_Cards", "Magazine_Subscriptions"])
def test_the_committed_pins_are_intact_and_made_from_the_shared_raw_files(name: str) -> None:
    """The fits the results read: each hashes to its pin's id and was fitted from ../shared's file."""
    from dataset_preprocess.registry import lookup
    from dataset_preprocess.readers.amazon import sha256_file
    from tests.conftest import REPO_ROOT, SHARED_DIR

    root = REPO_ROOT / "results" / "topic_fits"
    pin = read_pin(name, root)
    assert pin is not None, f"no pinned fit of {name} in {root}"
    assert topic_fit_id(root / name, name) == pin["topic_fit"]
    assert pin["settings"] == fit_settings(TopicConfig(encoder_precision="fp32"))  # the exact path
    raw = next(SHARED_DIR / "data" / "amazon" / f for f in lookup(name).raw_file_names
               if (SHARED_DIR / "data" / "amazon" / f).is_file())
    assert sha256_file(raw) == pin["source_sha256"]
    assert load_topic_files(root / name, name).n_topics == pin["n_topics"]
