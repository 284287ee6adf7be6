"""The int8 sentence encoders: quantised once from the bundled MiniLM's local weights, cached by
recipe, close to fp32, and (OpenVINO, static ranges) independent of a sentence's batch companions.

The real bundled MiniLM encodes real Instrument sentences; ``benchmarks/encoder_gate.py``
measures speed, topics and SD-MTMP's metrics (docs/ENCODER_GATE.md).
"""

import logging

import numpy as np
import pytest

from dataset_preprocess.topics import quantized
from dataset_preprocess.topics.embedding_cache import SentenceEncoder, embed_sentences, resolve_precision
from dataset_preprocess.topics.fit import TopicConfig, sentence_encoder
from dataset_preprocess.topics.sentences import split_reviews


def test_calibration_sample_by_hand():
    assert quantized.calibration_sample(["b", "a", "b", "c"], size=5) == ["a", "b", "c"]
    texts = [f"sentence {i}" for i in range(50)]
    sample = quantized.calibration_sample(texts, size=7)
    assert len(sample) == 7 and len(set(sample)) == 7 and set(sample) <= set(texts)
    # the same sentences in another order, with repeats: the same sample
    assert quantized.calibration_sample(texts[::-1] + texts[:5], size=7) == sample


def test_an_int8_option_without_its_runtime_falls_back_to_fp32_in_one_line(monkeypatch, caplog):
    monkeypatch.setattr(quantized, "FASTEST_ORDER", ("openvino-int8",))
    monkeypatch.setattr(quantized, "missing_runtime", lambda precision: "openvino and nncf")
    with caplog.at_level(logging.INFO):
        assert resolve_precision("openvino-int8") == "fp32"
        assert resolve_precision("fastest") == "fp32"
    lines = [r.getMessage() for r in caplog.records if "precision" in r.getMessage()]
    assert len(lines) == 2 and all("pip install -e .[int8]" in line for line in lines)
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"


def test_fastest_is_the_first_installed_option_that_passed_the_gate(monkeypatch, caplog):
    monkeypatch.setattr(quantized, "FASTEST_ORDER", ("openvino-int8", "onnx-int8"))
    monkeypatch.setattr(quantized, "missing_runtime",
                        lambda precision: None if precision == "onnx-int8" else "openvino")
    with caplog.at_level(logging.INFO):
        assert resolve_precision("fastest") == "onnx-int8"
    assert "fastest -> onnx-int8" in caplog.text and "encoder gate" in caplog.text
    monkeypatch.setattr(quantized, "missing_runtime", lambda precision: None)
    assert sentence_encoder(TopicConfig()).precision == "openvino-int8"
    assert resolve_precision("fastest", "cuda") == "fp32"  # the int8 runtimes are CPU ones


def test_with_no_int8_encoder_through_the_gate_the_default_is_fp32_and_says_why(monkeypatch, caplog):
    """What the gate found on the project's machine (docs/ENCODER_GATE.md): no int8 option kept
    the topic statistics within the fp32 band, so new fits stay fp32, one flag from int8."""
    assert quantized.FASTEST_ORDER == ()
    monkeypatch.setattr(quantized, "missing_runtime", lambda precision: None)  # installed or not
    with caplog.at_level(logging.INFO):
        assert sentence_encoder(TopicConfig()).precision == "fp32"
    assert "fastest -> fp32: no int8 encoder passed the encoder gate" in caplog.text
    assert sentence_encoder(TopicConfig(encoder_precision="openvino-int8")).precision == "openvino-int8"


def test_the_recipe_names_everything_that_decides_the_numbers():
    one = quantized.recipe("openvino-int8", "m@1", ["a", "b"])
    assert quantized.recipe_digest(one) == quantized.recipe_digest(quantized.recipe("openvino-int8", "m@1", ["a", "b"]))
    for other in (quantized.recipe("openvino-int8", "m@1", ["a", "c"]),
                  quantized.recipe("openvino-int8", "m@2", ["a", "b"]),
                  quantized.recipe("onnx-int8", "m@1", None)):
        assert quantized.recipe_digest(other) != quantized.recipe_digest(one)
    assert "openvino" in one["versions"] and one["calibration"]["sentences"] == 2


@pytest.fixture(scope="module")
def sentences(instrument_reviews):
    return list(dict.fromkeys(split_reviews(instrument_reviews.head(40))["sentence"]))


@pytest.mark.parametrize("precision,min_mean_cosine", [("openvino-int8", 0.99), ("onnx-int8", 0.98)])
def test_int8_vectors_are_close_to_fp32_and_the_model_is_made_once(
        precision, min_mean_cosine, sentences, tmp_path):
    pytest.importorskip("openvino" if precision == "openvino-int8" else "onnxruntime")
    exact = SentenceEncoder("all-MiniLM-L6-v2", device="cpu", precision="fp32", batch_tokens=768)
    reference = exact.encode(sentences)
    encoder = SentenceEncoder("all-MiniLM-L6-v2", device="cpu", precision=precision,
                              batch_tokens=768, processes=1)
    vectors, stats = embed_sentences(sentences, encoder, tmp_path / "embeddings", show_progress=False)
    assert stats["n_encoded"] == len(sentences) and precision in encoder.identity
    cosine = (vectors * reference).sum(axis=1)
    assert cosine.mean() >= min_mean_cosine and not np.allclose(cosine, 1.0, atol=1e-6)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    models = list((tmp_path / "quantized").iterdir())
    assert len(models) == 1 and (models[0] / "recipe.json").is_file()
    made = (models[0] / "recipe.json").stat().st_mtime_ns
    again = SentenceEncoder("all-MiniLM-L6-v2", device="cpu", precision=precision,
                            batch_tokens=768, processes=1)
    again.prepare(sentences, tmp_path / "embeddings")
    assert again.identity == encoder.identity
    assert np.array_equal(again.encode(sentences), vectors)  # the cached model, the same numbers
    assert list((tmp_path / "quantized").iterdir()) == models
    assert (models[0] / "recipe.json").stat().st_mtime_ns == made


def test_openvino_int8_vector_does_not_depend_on_its_batch_companions(sentences, tmp_path):
    """Static (calibrated) activation ranges: a sentence encoded with half of the others, or in
    reverse order, gets the vector it gets among all of them (ONNX Runtime's dynamic int8 takes
    its ranges from the whole batch, so it does not have this property)."""
    pytest.importorskip("openvino")
    encoder = SentenceEncoder("all-MiniLM-L6-v2", device="cpu", precision="openvino-int8",
                              batch_tokens=768, processes=1)
    encoder.prepare(sentences, tmp_path / "embeddings")
    whole = encoder.encode(sentences)
    assert np.array_equal(encoder.encode(sentences[::2]), whole[::2])
    assert np.array_equal(encoder.encode(sentences[::-1]), whole[::-1])
