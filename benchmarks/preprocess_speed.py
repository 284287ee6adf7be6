"""How to make the cold topic path faster, measured on real Instrument sentences
(docs/PREPROCESSING.md has the figures and the choice).

    python benchmarks/preprocess_speed.py encoders [--sample 1500] [--repeats 3]
    python benchmarks/preprocess_speed.py cluster [--options ref,seed,sample15000,pca50]
    python benchmarks/preprocess_speed.py encoder-ari --option onnx-int8

``encoders``: sentence encoders on a fixed sample (seed 0) of Instrument's distinct sentences:
the paper's fp32 torch MiniLM as reference, then batch sizes, no length sorting, fixed-shape
batches (``torch-fp32:fixed=1+bs=8``), torch threads,
bf16 autocast, torch dynamic int8, ONNX Runtime fp32 / int8 and OpenVINO fp32 / default
precision, the ONNX model exported here from the bundled MiniLM (nothing fetched). Each row:
median sentences/s over ``--repeats``, as a ratio to the reference measured in the same run
(the machine is shared: absolute rates are under load), and the mean / min cosine of its
embeddings with the reference's (gate: mean >= 0.99).

``cluster``: BERTopic's UMAP + HDBSCAN on all of Instrument with the cached fp32 embeddings:
the default fit, the default with another seed (how far two equally valid fits are apart),
UMAP fitted on a sample and applied to the rest, PCA before UMAP, and the default on embeddings
moved by rounding-sized noise (how much a different batch composition or CPU can move the
topics). Each row: seconds, topics,
outliers and the adjusted Rand index of the sentence->topic assignment against the default
(outliers count as one more label; gate: >= 0.9).

``isa``: the reference encoder on the same sample in fresh processes whose math libraries are held
to older instruction sets (``MKL_CBWR``, ``ONEDNN_MAX_CPU_ISA``), as on an older CPU: how far
the embeddings of the same sentences move between machines.

``encoder-ari``: encodes all of Instrument with one encoder option, clusters with the default
settings, and reports the mean cosine and the ARI against the default fit.

Run it with OMP_NUM_THREADS=1 on the shared machine (the thread rows set their own counts).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dataset_preprocess.readers.amazon import read_reviews  # noqa: E402
from dataset_preprocess.topics.embedding_cache import (  # noqa: E402
    EmbeddingCache, SentenceEncoder, embed_sentences, resolve_encoder,
)
from dataset_preprocess.topics.sentences import split_reviews  # noqa: E402

RAW = REPO.parent / "shared" / "data" / "amazon" / "Musical_Instruments_5.json.gz"
ONNX_DIR = REPO / "cache" / "onnx"
CACHE = REPO / "cache" / "embeddings"


def instrument_sentences() -> list[str]:
    """Every sentence of Instrument in review order, repeats included (what BERTopic clusters)."""
    reviews, _ = read_reviews(RAW)
    return split_reviews(reviews)["sentence"].tolist()


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)


# ------------------------------------------------------------------ encoders


class TorchEncoder:
    """sentence-transformers on torch: fp32 (the reference), bf16 autocast, or dynamic int8."""

    def __init__(self, precision: str = "fp32", batch_size: int = 64, threads: int = 1,
                 sort: bool = True, fixed: bool = False):
        import torch
        from sentence_transformers import SentenceTransformer

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.model = SentenceTransformer(resolve_encoder("all-MiniLM-L6-v2")[0], device="cpu")
        if precision == "int8":
            self.model = torch.ao.quantization.quantize_dynamic(
                self.model, {torch.nn.Linear}, dtype=torch.qint8)
        self.precision, self.batch_size, self.threads, self.sort = (
            precision, batch_size, threads, sort)
        self.fixed = fixed

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        torch.set_num_threads(self.threads)
        if self.fixed:  # SentenceEncoder's fixed-shape batches (one token length, full rows)
            from dataset_preprocess.topics.embedding_cache import fixed_shape_batches

            out = np.empty((len(texts), 384), dtype=np.float32)
            for rows, batch in fixed_shape_batches(texts, self.model.tokenizer,
                                                   self.model.max_seq_length, self.batch_size):
                out[rows] = self._encode(batch)[:len(rows)]
            return out
        if not self.sort:  # sentence-transformers sorts by length inside one call: call per batch
            return np.concatenate([self._encode(texts[i:i + self.batch_size])
                                   for i in range(0, len(texts), self.batch_size)])
        return self._encode(texts)

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            vectors = self.model.encode(texts, batch_size=self.batch_size,
                                        show_progress_bar=False, convert_to_numpy=False,
                                        convert_to_tensor=True, normalize_embeddings=False)
        return normalise(vectors.float().cpu().numpy())


def export_onnx() -> tuple[Path, Path]:
    """The bundled MiniLM's transformer as ONNX (fp32) and its dynamic int8 quantisation."""
    import torch
    from sentence_transformers import SentenceTransformer

    fp32, int8 = ONNX_DIR / "minilm.onnx", ONNX_DIR / "minilm-int8.onnx"
    if fp32.is_file() and int8.is_file():
        return fp32, int8
    ONNX_DIR.mkdir(parents=True, exist_ok=True)
    model = SentenceTransformer(resolve_encoder("all-MiniLM-L6-v2")[0], device="cpu")
    transformer = model[0].auto_model.eval()
    inputs = model.tokenize(["an example sentence", "a second, longer example sentence"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    axes["last_hidden_state"] = {0: "batch", 1: "tokens"}

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    torch.onnx.export(Wrapped(transformer), tuple(inputs[n] for n in names), str(fp32),
                      input_names=names, output_names=["last_hidden_state"],
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return fp32, int8


class OnnxEncoder:
    """The exported transformer on ONNX Runtime or OpenVINO, with sentence-transformers'
    tokenizer, length-sorted batches, mean pooling and L2 normalisation (as the torch model)."""

    def __init__(self, runtime: str, path: Path, batch_size: int = 64, threads: int = 1,
                 precision: str = "f32"):
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(resolve_encoder("all-MiniLM-L6-v2")[0], device="cpu")
        self.tokenizer, self.max_length = st.tokenizer, st.max_seq_length
        self.batch_size = batch_size
        if runtime == "ort":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            onnx_run = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.run = lambda feed: onnx_run.run(None, feed)[0]
        else:
            import openvino as ov

            config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
            if precision != "default":
                config["INFERENCE_PRECISION_HINT"] = precision
            compiled = ov.Core().compile_model(str(path), "CPU", config)
            self.run = lambda feed: compiled(feed)[0]

    def encode(self, texts: list[str]) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            tokens = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                    max_length=self.max_length, return_tensors="np")
            feed = {k: tokens[k].astype(np.int64)
                    for k in ("input_ids", "attention_mask", "token_type_ids")}
            hidden = self.run(feed)
            mask = feed["attention_mask"][:, :, None].astype(np.float32)
            out[rows] = (hidden * mask).sum(1) / mask.sum(1).clip(1e-9)
        return normalise(out)


def make_encoder(option: str):
    """An encoder by option name (see OPTIONS)."""
    kind, _, rest = option.partition(":")
    settings = dict(item.split("=") for item in rest.split("+") if item)
    batch = int(settings.get("bs", 64))
    threads = int(settings.get("threads", 1))
    if kind == "torch-fp32":
        return TorchEncoder("fp32", batch, threads, sort=settings.get("sort", "1") == "1",
                            fixed=settings.get("fixed", "0") == "1")
    if kind in ("torch-bf16", "torch-int8"):
        return TorchEncoder(kind.split("-")[1], batch, threads)
    fp32, int8 = export_onnx()
    if kind == "ort-fp32":
        return OnnxEncoder("ort", fp32, batch, threads)
    if kind == "ort-int8":
        return OnnxEncoder("ort", int8, batch, threads)
    if kind == "openvino-fp32":
        return OnnxEncoder("openvino", fp32, batch, threads, precision="f32")
    if kind == "openvino-default":  # bf16 on CPUs with AMX/avx512_bf16, as OpenVINO chooses
        return OnnxEncoder("openvino", fp32, batch, threads, precision="default")
    raise ValueError(f"unknown encoder option {option!r}")


OPTIONS = [
    "torch-fp32:bs=16", "torch-fp32:bs=32", "torch-fp32:bs=128", "torch-fp32:sort=0",
    "torch-fp32:threads=2", "torch-bf16", "torch-int8", "ort-fp32", "ort-int8",
    "openvino-fp32", "openvino-default",
]
REFERENCE = "torch-fp32"


def time_encoder(encoder, texts: list[str], repeats: int) -> tuple[float, float, np.ndarray]:
    """Median sentences per wall second and per CPU second of this process over ``repeats``
    (after one warm-up batch), and the last embeddings. On a shared machine the CPU rate is the
    steadier figure for a one-thread option; a two-thread option spends CPU on both."""
    encoder.encode(texts[:32])
    rates, cpu_rates = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        vectors = encoder.encode(texts)
        rates.append(len(texts) / (time.perf_counter() - start))
        cpu_rates.append(len(texts) / (time.process_time() - cpu))
    return statistics.median(rates), statistics.median(cpu_rates), vectors


def cmd_encoders(args) -> list[dict]:
    distinct = list(dict.fromkeys(instrument_sentences()))
    if args.contiguous:  # what embed_sentences hands the encoder: a run of the length-sorted list
        ordered = sorted(distinct, key=len, reverse=True)
        start = len(ordered) // 2
        texts = ordered[start:start + args.sample]
    else:
        rng = np.random.default_rng(0)
        texts = [distinct[i] for i in rng.choice(len(distinct), size=args.sample, replace=False)]
    rows = []
    ref_rate, ref_cpu, ref = time_encoder(make_encoder(REFERENCE), texts, args.repeats)
    print(f"{len(texts)} sentences (of {len(distinct)} distinct), median of {args.repeats}; "
          f"reference {REFERENCE}: {ref_rate:.0f} sentences/s (under load)", flush=True)
    options = args.options.split(",") if args.options else OPTIONS
    for option in [REFERENCE] + options:
        if option == REFERENCE:
            rate, cpu_rate, vectors = ref_rate, ref_cpu, ref
        else:
            try:
                rate, cpu_rate, vectors = time_encoder(make_encoder(option), texts,
                                                       args.repeats)
            except Exception as err:  # a backend that cannot run here is a row, not a crash
                print(f"{option:24s} failed: {type(err).__name__}: {err}", flush=True)
                rows.append({"option": option, "error": f"{type(err).__name__}: {err}"})
                continue
        cosine = (vectors * ref).sum(axis=1)
        row = {"option": option, "sentences_per_s": round(rate, 1),
               "speed_ratio": round(rate / ref_rate, 3),
               "cpu_speed_ratio": round(cpu_rate / ref_cpu, 3), "mean_cosine": float(cosine.mean()),
               "min_cosine": float(cosine.min()),
               "bitwise_equal": bool(np.array_equal(vectors, ref))}
        rows.append(row)
        print(f"{option:24s} wall x{row['speed_ratio']:.2f} ({rate:6.1f}/s)  CPU "
              f"x{row['cpu_speed_ratio']:.2f}  cosine mean "
              f"{row['mean_cosine']:.6f} min {row['min_cosine']:.6f}  bitwise "
              f"{row['bitwise_equal']}", flush=True)
    return rows


# ------------------------------------------------------------------ clustering


def cached_embeddings(texts: list[str], identity: str | None = None) -> np.ndarray:
    """The fp32 reference embeddings of ``texts`` from the cache (encoding what is missing)."""
    encoder = SentenceEncoder("all-MiniLM-L6-v2")
    return embed_sentences(texts, encoder, CACHE, show_progress=False)[0]


def fit_labels(texts, embeddings, **overrides) -> tuple[np.ndarray, float, float]:
    """Labels of one fit, its wall seconds and its CPU seconds (all threads of this process)."""
    from dataset_preprocess.topics.fit import TopicConfig, _cluster

    config = TopicConfig(show_progress=False, **overrides)
    start, cpu = time.perf_counter(), time.process_time()
    labels = _cluster(texts, embeddings, config)[0]
    return labels, time.perf_counter() - start, time.process_time() - cpu


def ari(a: np.ndarray, b: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(a, b))


CLUSTER_OPTIONS = {
    "ref": {},
    "seed": {"seed": 2025},
    "sample15000": {"umap_sample": 15000},
    "sample25000": {"umap_sample": 25000},
    "sample5000": {"umap_sample": 5000},
    "sample10000": {"umap_sample": 10000},
    "pca50": {"pca_components": 50},
    "pca50+sample15000": {"pca_components": 50, "umap_sample": 15000},
    "pca50+sample5000": {"pca_components": 50, "umap_sample": 5000},
    "perturb": {},  # default settings, embeddings moved by the rounding a batch change causes
}
# "perturb": every coordinate moved by up to this much (uniform, seed 0), then re-normalised;
# re-batching the same sentences moved coordinates by up to 3e-7 here (docs/PREPROCESSING.md).
PERTURBATION = 3e-7


def reference_labels(texts, embeddings, out: Path) -> np.ndarray:
    """The default fit's labels, computed once and kept beside the results."""
    path = out / "reference_labels.npy"
    if path.is_file():
        labels = np.load(path)
        if len(labels) == len(texts):
            return labels
    labels, seconds, cpu = fit_labels(texts, embeddings)
    np.save(path, labels)
    (out / "reference_labels.json").write_text(json.dumps({"seconds": seconds, "cpu_s": cpu}))
    return labels


def cmd_cluster(args) -> list[dict]:
    texts = instrument_sentences()
    if args.subset:  # the sentences of the first reviews: a smaller, still real, corpus
        texts = texts[:args.subset]
    embeddings = cached_embeddings(texts)
    out = Path(args.out) / (f"subset{args.subset}" if args.subset else "all")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for option in args.options.split(","):
        inputs = embeddings
        if option == "perturb":
            noise = np.random.default_rng(0).uniform(-PERTURBATION, PERTURBATION, embeddings.shape)
            inputs = normalise(embeddings + noise.astype(np.float32))
        labels, seconds, cpu = fit_labels(texts, inputs, **CLUSTER_OPTIONS[option])
        if option == "ref":
            np.save(out / "reference_labels.npy", labels)
            ref = labels
        else:
            ref = reference_labels(texts, embeddings, out)
        row = {"option": option, "settings": CLUSTER_OPTIONS[option], "seconds": round(seconds, 1),
               "cpu_s": round(cpu, 1),
               "n_topics": int(labels.max() + 1), "outlier_ratio": float((labels < 0).mean()),
               "ari_vs_default": ari(ref, labels)}
        rows.append(row)
        print(f"{option:20s} {seconds:6.1f} s wall  {cpu:6.1f} s CPU  {row['n_topics']} topics  outliers "
              f"{row['outlier_ratio']:.3f}  ARI {row['ari_vs_default']:.3f}", flush=True)
    return rows


ISA_ENVIRONMENTS = {
    "default": {},
    "mkl-avx2": {"MKL_CBWR": "AVX2"},
    "onednn-avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "both-avx2": {"MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "mkl-compatible": {"MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}


def sample_texts(size: int) -> list[str]:
    distinct = list(dict.fromkeys(instrument_sentences()))
    rng = np.random.default_rng(0)
    return [distinct[i] for i in rng.choice(len(distinct), size=size, replace=False)]


def cmd_isa(args) -> list[dict]:
    import subprocess

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    vectors = {}
    for name, extra in ISA_ENVIRONMENTS.items():
        path = out / f"isa-{name}.npy"
        code = ("import sys, numpy as np; sys.argv = ['x']; "
                f"sys.path.insert(0, {str(Path(__file__).parent)!r}); import preprocess_speed as p; "
                f"np.save({str(path)!r}, p.make_encoder('torch-fp32').encode("
                f"p.sample_texts({args.sample})))")
        env = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
        subprocess.run([sys.executable, "-c", code], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        vectors[name] = np.load(path)
    rows = []
    for name, v in vectors.items():
        d = np.abs(v - vectors["default"])
        row = {"environment": name, "settings": ISA_ENVIRONMENTS[name],
               "bitwise_equal": bool(np.array_equal(v, vectors["default"])),
               "max_abs_diff": float(d.max()), "rows_differing": float((d.max(1) > 0).mean()),
               "min_cosine": float((v * vectors["default"]).sum(1).min())}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def cmd_encoder_ari(args) -> list[dict]:
    texts = instrument_sentences()
    if args.subset:  # the sentences of the first reviews: a smaller, still real, corpus
        texts = texts[:args.subset]
    reference = cached_embeddings(texts)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.subset:
        ref_labels = fit_labels(texts, reference)[0]
        noise = np.random.default_rng(0).uniform(-PERTURBATION, PERTURBATION, reference.shape)
        floor = {"perturb": fit_labels(texts, normalise(reference + noise.astype(np.float32)))[0],
                 "seed": fit_labels(texts, reference, seed=2025)[0]}
        for name, labels in floor.items():
            print(json.dumps({"option": f"fp32 {name} (subset {args.subset})",
                              "n_topics": int(labels.max() + 1),
                              "ari_vs_default": ari(ref_labels, labels)}), flush=True)
    else:
        ref_labels = reference_labels(texts, reference, out)
    distinct = sorted(dict.fromkeys(texts), key=len, reverse=True)  # as the cache encodes them
    position = {text: i for i, text in enumerate(distinct)}
    encoder = make_encoder(args.option)
    start, cpu = time.perf_counter(), time.process_time()
    unique = np.concatenate([encoder.encode(distinct[i:i + 1024])
                             for i in range(0, len(distinct), 1024)])
    encode_s, encode_cpu = time.perf_counter() - start, time.process_time() - cpu
    vectors = unique[[position[t] for t in texts]]
    cosine = (vectors * reference).sum(axis=1)
    labels, seconds, _ = fit_labels(texts, vectors)
    row = {"option": args.option, "subset": args.subset, "encode_s": round(encode_s, 1),
           "encode_cpu_s": round(encode_cpu, 1),
           "mean_cosine": float(cosine.mean()), "min_cosine": float(cosine.min()),
           "n_topics": int(labels.max() + 1), "ari_vs_default": ari(ref_labels, labels),
           "cluster_s": round(seconds, 1)}
    print(json.dumps(row), flush=True)
    return [row]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    enc = sub.add_parser("encoders")
    enc.add_argument("--sample", type=int, default=1500)
    enc.add_argument("--repeats", type=int, default=3)
    enc.add_argument("--options", help=f"comma-separated, settings joined by + "
                                       f"(default: {','.join(OPTIONS)})")
    enc.add_argument("--contiguous", action="store_true",
                     help="a run of --sample sentences from the middle of the length-sorted "
                          "list (as the cache encodes them) instead of a random sample")
    clu = sub.add_parser("cluster")
    clu.add_argument("--options", default="ref,perturb,seed,sample15000,pca50")
    clu.add_argument("--subset", type=int, default=0,
                     help="only the first N sentences of Instrument (0: all)")
    isa = sub.add_parser("isa")
    isa.add_argument("--sample", type=int, default=300)
    eari = sub.add_parser("encoder-ari")
    eari.add_argument("--option", required=True)
    eari.add_argument("--subset", type=int, default=0,
                      help="only the first N sentences of Instrument (0: all)")
    for p in (enc, clu, isa, eari):
        p.add_argument("--out", default=str(REPO / "cache" / "preprocess_speed"),
                       help="where the reference labels and the result json go")
        p.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    rows = {"encoders": cmd_encoders, "cluster": cmd_cluster,
            "isa": cmd_isa, "encoder-ari": cmd_encoder_ari}[args.command](args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
