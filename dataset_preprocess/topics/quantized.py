"""int8 sentence encoders: the bundled MiniLM quantised once from its local weights, then cached.

Two options beside torch's fp32 and bf16 (``SentenceEncoder(precision=...)``):

- ``onnx-int8``: the model (transformer, mean pooling) exported to ONNX and quantised by ONNX
  Runtime's ``quantize_dynamic``: int8 weights per output channel, activations quantised per
  batch at run time, MatMul only (the embedding table and softmax stay fp32).
- ``openvino-int8``: the same ONNX graph in OpenVINO, statically quantised by NNCF (weights and
  activations int8, transformer preset), its activation ranges calibrated on
  :data:`CALIBRATION_SENTENCES` sentences drawn with a fixed seed from the dataset's own distinct
  sentences. Fixed ranges mean a sentence's vector does not depend on its batch companions.

Nothing is downloaded. A quantised model lives under ``<cache>/quantized/<slug>-<digest>/``, the
digest over its recipe (the encoder's identity, the option, its settings, the runtime and export
versions and, for OpenVINO, the calibration sentences): a model made by another recipe is never
reused. The vectors it gives are cached under an identity carrying the same digest.

``fastest`` (the default precision of new fits) is the fastest option that passed the encoder
gate (``benchmarks/encoder_gate.py``, docs/ENCODER_GATE.md): :data:`FASTEST_ORDER`, the first
whose runtime is installed (``pip install -e .[int8]``), else fp32, said in one log line.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

INT8_PRECISIONS = ("onnx-int8", "openvino-int8")
# What each option imports, and the pip names of what it needs.
RUNTIMES = {"onnx-int8": ("onnxruntime", "onnx"), "openvino-int8": ("openvino", "nncf")}
# The gate's order of preference: fastest first, among the options that passed it.
FASTEST_ORDER: tuple[str, ...] = ()  # none passed on the project's machine (AMD EPYC, AVX-512 VNNI)
FASTEST_WHY = ("the fastest encoder that passed the encoder gate (docs/ENCODER_GATE.md): "
               "topic statistics and SD-MTMP's test metrics within the spread of fp32 fits")
CALIBRATION_SENTENCES = 300
CALIBRATION_SEED = 0
ONNX_OPSET = 17
RECIPE_VERSION = 1  # raise when the export or quantisation code changes what a model computes


def missing_runtime(precision: str) -> str | None:
    """The packages ``precision`` needs that are not installed, as a phrase, or None."""
    missing = []
    for module in RUNTIMES[precision]:
        try:
            importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            missing.append(module)
    return " and ".join(missing) or None


def resolve_int8(precision: str) -> str:
    """``fastest`` -> the first of :data:`FASTEST_ORDER` installed; an int8 option whose runtime
    is missing -> ``fp32``. Each fallback is one log line that says what to install."""
    if precision == "fastest":
        for option in FASTEST_ORDER:
            if missing_runtime(option) is None:
                logger.info("encoder precision fastest -> %s: %s", option, FASTEST_WHY)
                return option
        if not FASTEST_ORDER:
            logger.info("encoder precision fastest -> fp32: no int8 encoder passed the encoder "
                        "gate on this kind of machine (docs/ENCODER_GATE.md)")
        else:
            logger.warning("encoder precision fastest -> fp32: no int8 runtime installed "
                           "(pip install -e .[int8] for %s)", FASTEST_ORDER[0])
        return "fp32"
    if precision in INT8_PRECISIONS and (missing := missing_runtime(precision)):
        logger.warning("encoder precision %s needs %s, not installed (pip install -e .[int8]): "
                       "encoding in fp32", precision, missing)
        return "fp32"
    return precision


def calibration_sample(texts: Sequence[str], size: int = CALIBRATION_SENTENCES) -> list[str]:
    """``size`` distinct sentences drawn with a fixed seed from the sorted distinct ``texts``:
    the same sentences give the same sample, whatever their order or repeats."""
    distinct = sorted(set(texts))
    if len(distinct) <= size:
        return distinct
    rows = np.random.default_rng(CALIBRATION_SEED).choice(len(distinct), size, replace=False)
    return [distinct[row] for row in sorted(rows)]


def _versions(precision: str) -> dict:
    names = ("torch", "transformers", "sentence-transformers", "onnx", *RUNTIMES[precision])
    versions = {}
    for name in dict.fromkeys(names):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def recipe(precision: str, identity: str, calibration: Sequence[str] | None) -> dict:
    """Everything that decides the quantised model's numbers."""
    settings = ({"method": "quantize_dynamic", "weight_type": "QInt8", "per_channel": True,
                 "op_types": ["MatMul"]} if precision == "onnx-int8" else
                {"method": "nncf.quantize", "model_type": "TRANSFORMER", "preset": "performance",
                 "calibration_seed": CALIBRATION_SEED})
    out = {"version": RECIPE_VERSION, "precision": precision, "encoder": identity,
           "opset": ONNX_OPSET, "settings": settings, "versions": _versions(precision)}
    if precision == "openvino-int8":
        digest = hashlib.sha256("\n".join(calibration or []).encode("utf-8", "surrogatepass"))
        out["calibration"] = {"sentences": len(calibration or []), "sha256": digest.hexdigest()}
    return out


def recipe_digest(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def model_file(directory: Path, precision: str) -> Path:
    return Path(directory) / ("model.onnx" if precision == "onnx-int8" else "model.xml")


def ensure_quantized(model, precision: str, spec: dict, directory: Path,
                     calibration: Sequence[str] | None) -> Path:
    """The quantised model file for ``spec`` under ``directory``, made from ``model`` (a loaded
    SentenceTransformer) when missing. Made in a hidden folder renamed into place, so a model
    half written is never loaded."""
    directory = Path(directory)
    target = model_file(directory, precision)
    if target.is_file() and (directory / "recipe.json").is_file():
        return target
    scratch = directory.with_name(f".{directory.name}-{uuid.uuid4().hex[:8]}")
    scratch.mkdir(parents=True)
    try:
        onnx_path = scratch / "fp32.onnx"
        export_onnx(model, onnx_path)
        if precision == "onnx-int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(onnx_path), str(scratch / "model.onnx"), per_channel=True,
                             weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        else:
            import nncf
            import openvino as ov

            preprocess = getattr(model, "preprocess", None) or model.tokenize  # renamed in ST 6
            features = [_numpy_features(preprocess([text])) for text in calibration]
            quantized = nncf.quantize(ov.convert_model(str(onnx_path)), nncf.Dataset(features),
                                      model_type=nncf.ModelType.TRANSFORMER,
                                      subset_size=len(features))
            ov.save_model(quantized, str(scratch / "model.xml"))
        onnx_path.unlink()
        (scratch / "recipe.json").write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
        try:
            os.replace(scratch, directory)
        except OSError:  # another process made it meanwhile: keep that one
            if not target.is_file():
                raise
        logger.info("quantised the encoder (%s) into %s", precision, directory)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def export_onnx(model, path: Path) -> None:
    """The SentenceTransformer's forward up to its pooled ``sentence_embedding`` (not
    normalised: :class:`Int8Runtime` normalises), traced into ONNX."""
    import torch

    class Forward(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            features = {"input_ids": input_ids, "attention_mask": attention_mask,
                        "token_type_ids": token_type_ids}
            return self.inner[1](self.inner[0](features))["sentence_embedding"]

    preprocess = getattr(model, "preprocess", None) or model.tokenize  # renamed in ST 6
    example = preprocess(["an example sentence", "a second, longer example sentence"])
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUT_NAMES}
    axes["embedding"] = {0: "batch"}
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(Forward(model).eval(), tuple(example[name] for name in INPUT_NAMES),
                          str(path), input_names=list(INPUT_NAMES), output_names=["embedding"],
                          dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False)


def _numpy_features(features: dict) -> dict:
    return {name: np.asarray(features[name].cpu() if hasattr(features[name], "cpu")
                             else features[name], dtype=np.int64) for name in INPUT_NAMES}


class Int8Runtime:
    """A quantised model on ONNX Runtime or OpenVINO, ``threads`` threads, called on one batch's
    features (as ``stack_features`` makes them): L2-normalised float32 vectors."""

    def __init__(self, precision: str, path: Path, threads: int = 1):
        if precision == "onnx-int8":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            onnx_model = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self._run = lambda feed: onnx_model.run(None, feed)[0]
        else:
            import openvino as ov

            compiled = ov.Core().compile_model(str(path), "CPU", {
                "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": "f32"})  # int8 where quantised, fp32 elsewhere
            self._run = lambda feed: compiled(feed)[0]

    def __call__(self, features: dict) -> np.ndarray:
        vectors = np.asarray(self._run(_numpy_features(features)), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
