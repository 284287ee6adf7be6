"""The sentence encoder on several processes (several GPUs, or CPU processes) gives the vectors
of one process, in the input order (on the CPU bit for bit: the same planned batches)."""

import numpy as np

from dataset_preprocess.topics.embedding_cache import SentenceEncoder

SENTENCES = ["The strings sound bright.", "Shipping was fast.", "A sturdy stand for the price.",
             "The tuner clips on the headstock.", "Too much hum from this cable."]


def test_target_devices_follow_the_settings():
    assert SentenceEncoder("all-MiniLM-L6-v2", device="cpu").target_devices() == ["cpu"]
    assert SentenceEncoder("all-MiniLM-L6-v2", device="cpu", processes=3).target_devices() == ["cpu"] * 3


def test_two_cpu_processes_encode_like_one():
    single = SentenceEncoder("all-MiniLM-L6-v2", device="cpu").encode(SENTENCES)
    pooled = SentenceEncoder("all-MiniLM-L6-v2", device="cpu", processes=2)
    try:
        vectors = pooled.encode(SENTENCES)
    finally:
        pooled.close()
    assert vectors.shape == single.shape == (5, 384) and vectors.dtype == np.float32
    assert np.array_equal(vectors, single)  # the same batches in other processes: bit for bit
