"""How SD-MTMP's cost grows with the data, against SASRec and LightGCN.

    python benchmarks/scale.py                       # 1e4, 1e5, 1e6 interactions, 3 models, topics
    python benchmarks/scale.py --sizes 10000 100000 --models SDMTMP --no-topics
    python benchmarks/scale.py --sizes 1000000 --models SDMTMP:graph_batch=subgraph,n_layers=3

Synthetic, review-like data (``generate``): power-law user activity (at least 5 interactions,
Instrument's mean of 7.2 per user) and power-law item popularity (Instrument's 11.4 per item),
Amazon's rating mix, per-user increasing days, and short texts built from topic word lists.
They are written as ``python -m dataset_preprocess`` writes a dataset: ``<name>.inter`` and the
four topic side-files. The topics are synthetic (each review in its item's topic and 0-3 others,
k = 340 sqrt(N / 1e4) topics, random unit vectors in the encoder's 384 dimensions): enough to
time the model, they are not BERTopic's output.

Each (size, model) cell runs in its own process (peak memory is per cell) and measures, on the
protocol's own loaders (``recbole_sdmtmp.runner.load_data``):

- seconds per epoch: ``--batches`` training batches (after 2 warm-up ones; batch fetch, negative
  sampling, loss, backward and optimiser step) timed, the mean times the epoch's number of
  batches. An extrapolation: the machine cannot run an epoch at 1e6 in minutes.
- full-sort evaluation: the validation cases of ``--eval-cases`` users scored twice; the first
  pass includes the full-graph propagation of the graph models, the second reuses it. Estimate
  for all cases = (first - second) + second x cases / sample. Also an extrapolation.
- peak memory: the cell process's peak resident set (data, model and the timed batches; on CUDA
  the peak allocated CUDA memory too).

The topic step (``--topics``): ``dataset_preprocess.topics.fit.build_topics`` (BERTopic defaults,
cold embedding cache) on samples of the synthetic reviews' sentences; seconds per sentence of
the embedding and of the clustering, so that a full corpus can be extrapolated.

Writes ``results/scale.md``, ``results/scale.json`` and ``results/scale.png`` (log-log); every
figure printed with the command that made it.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# SD-MTMP as the paper trains it (every batch propagates the whole graph), SD-MTMP on each
# batch's sub-graph (the fix of the quadratic term), and the two baselines.
MODELS = ("SDMTMP", "SDMTMP:graph_batch=subgraph", "SASRec", "LightGCN")
SIZES = (10_000, 100_000, 1_000_000)
RATING_SHARES = {1.0: 0.021, 2.0: 0.024, 3.0: 0.075, 4.0: 0.203, 5.0: 0.677}  # Instrument's histogram
TOPIC_DIM = 384  # all-MiniLM-L6-v2
WORDS = {  # short review texts: each topic draws its sentences from one of these themes
    "sound": "sound tone warm bright clear loud quiet rich noise hum crisp bass treble".split(),
    "strings": "strings string gauge coated change acoustic electric steel nickel bright last".split(),
    "build": "build quality solid cheap plastic metal sturdy broke flimsy heavy light feel".split(),
    "price": "price value money worth cheap expensive deal bargain cost budget pay buy".split(),
    "cable": "cable cord plug jack noise shielded length connector solder crackle".split(),
    "tuner": "tuner tune pitch accurate display clip headstock battery bright screen".split(),
    "pedal": "pedal effect distortion overdrive delay reverb switch knob true bypass".split(),
    "stand": "stand holder hold secure padded fold stable base legs rubber grip".split(),
    "picks": "picks pick grip thickness medium heavy thin celluloid nylon pack".split(),
    "shipping": "shipping arrived fast box package damaged seller time order delivery".split(),
}
FILLER = "this the is was and very it my for with great good works nice really".split()


# ---------------------------------------------------------------- synthetic data

def power_law_counts(total: int, n: int, minimum: int, shape: float, rng) -> np.ndarray:
    """n counts >= minimum, Lomax-tailed, summing to ``total`` exactly (largest adjusted)."""
    mean_extra = total / n - minimum
    extra = rng.pareto(shape, n) * mean_extra * (shape - 1)  # Lomax with the wanted mean
    counts = minimum + np.floor(extra).astype(np.int64)
    counts = np.minimum(counts, max(minimum, total // 20))
    order = np.argsort(-counts)
    difference = total - counts.sum()
    step = 0
    while difference != 0:  # spread the rounding over the most active ones
        index = order[step % n]
        change = 1 if difference > 0 else (-1 if counts[index] > minimum else 0)
        counts[index] += change
        difference -= change
        step += 1
    return counts


def generate(n_interactions: int, seed: int = 2024) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(interactions, review_topic rows, topic vectors) of about ``n_interactions`` reviews.

    Users 'u<k>' with >= 5 interactions (mean 7.2), items 'i<k>' drawn by a Zipf-like
    popularity (weight (rank + 10)^-0.9, n = N / 11.4 items), no repeated user-item pair.
    """
    rng = np.random.default_rng(seed)
    n_users = max(2, round(n_interactions / 7.2))
    n_items = max(25, round(n_interactions / 11.4))
    per_user = power_law_counts(n_interactions, n_users, 5, 2.5, rng)
    per_user = np.minimum(per_user, n_items // 2)
    popularity = (np.arange(n_items) + 10.0) ** -0.9
    popularity /= popularity.sum()
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.choice(n_items, size=len(users), p=popularity)
    for _ in range(50):  # redraw repeated (user, item) pairs
        keys = users.astype(np.int64) * n_items + items
        _, first = np.unique(keys, return_index=True)
        repeated = np.setdiff1d(np.arange(len(keys)), first)
        if not len(repeated):
            break
        items[repeated] = rng.choice(n_items, size=len(repeated), p=popularity)
    keep = np.unique(users.astype(np.int64) * n_items + items, return_index=True)[1]
    users, items = users[np.sort(keep)], items[np.sort(keep)]
    ratings = rng.choice(list(RATING_SHARES), size=len(users), p=np.array(list(RATING_SHARES.values())) / 1.0)
    starts = rng.uniform(12_679, 15_500, n_users)  # Instrument's days (2004-2014)
    gaps = np.floor(rng.exponential(45.0, len(users)))
    first_row = np.r_[0, np.cumsum(np.bincount(users, minlength=n_users))[:-1]]
    days = np.floor(starts[users]) + np.cumsum(gaps) - np.cumsum(gaps)[first_row][users]
    inter = pd.DataFrame({"user_id": "u" + pd.Series(users).astype(str), "item_id": "i" + pd.Series(items).astype(str),
                          "rating": ratings.astype(float), "timestamp": days.astype(float)})

    n_topics = max(20, round(340 * math.sqrt(n_interactions / 10_000)))
    item_topic = rng.integers(0, n_topics, n_items)
    extra = np.minimum(rng.poisson(1.0, len(users)), 3)
    review = np.r_[np.arange(len(users)), np.repeat(np.arange(len(users)), extra)]
    topic_weights = (np.arange(n_topics) + 5.0) ** -0.8
    topic_weights /= topic_weights.sum()
    topics = np.r_[item_topic[items], rng.choice(n_topics, size=int(extra.sum()), p=topic_weights)]
    rows = pd.DataFrame({"review": review, "topic_id": topics}).drop_duplicates()
    rows["sentences"] = rng.integers(1, 4, len(rows)).astype(float)
    rows["user_id"] = inter["user_id"].to_numpy()[rows["review"]]
    rows["item_id"] = inter["item_id"].to_numpy()[rows["review"]]
    review_topic = rows.sort_values(["user_id", "item_id", "topic_id"], kind="stable")
    vectors = rng.normal(size=(n_topics, TOPIC_DIM))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return inter, review_topic, vectors


def review_texts(n_reviews: int, seed: int = 2024) -> list[str]:
    """Short review texts (1-3 sentences of 6-14 words), each sentence on one theme."""
    rng = np.random.default_rng(seed + 1)
    themes = list(WORDS.values())
    texts = []
    for _ in range(n_reviews):
        sentences = []
        for _ in range(rng.integers(1, 4)):
            theme = themes[rng.integers(len(themes))]
            words = [theme[rng.integers(len(theme))] if rng.random() < 0.6 else FILLER[rng.integers(len(FILLER))]
                     for _ in range(rng.integers(6, 15))]
            sentences.append(" ".join(words).capitalize() + ".")
        texts.append(" ".join(sentences))
    return texts


def write_dataset(root: Path, name: str, n_interactions: int, seed: int = 2024) -> dict:
    """``<root>/<name>/``: the .inter file and the topic side-files, in dataset_preprocess's format."""
    from dataset_preprocess.readers.amazon import write_inter
    from dataset_preprocess.atomic_io import atomic_write_text
    from dataset_preprocess.topics.files import FORMAT_VERSION, REVIEW_TOPIC_HEADER, load_topic_files, topic_file_paths

    inter, review_topic, vectors = generate(n_interactions, seed)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    write_inter(inter, folder / f"{name}.inter")
    paths = topic_file_paths(folder, name)
    np.save(paths["topic_vec"], vectors, allow_pickle=False)
    table = review_topic[["user_id", "item_id", "topic_id", "sentences"]].set_axis(list(REVIEW_TOPIC_HEADER), axis=1)
    table.to_csv(paths["review_topic"], sep="\t", index=False, lineterminator="\n")
    per_topic = review_topic.groupby("topic_id").agg(size=("sentences", "sum"), n_users=("user_id", "nunique"),
                                                     n_items=("item_id", "nunique"))
    topics = [{"topic_id": int(t), "size": int(r.size), "n_users": int(r.n_users), "n_items": int(r.n_items),
               "words": [], "words_25": []} for t, r in per_topic.iterrows()]
    meta = {"format_version": FORMAT_VERSION, "name": name, "encoder": "synthetic (random unit vectors)",
            "embedding_dim": TOPIC_DIM, "normalized_embeddings": True, "seed": seed, "config": {},
            "n_reviews": len(inter), "n_topics": int(vectors.shape[0]), "synthetic": True, "topics": topics}
    atomic_write_text(paths["summary"], "topic_id\tsize\tn_users\tn_items\ttop_words\n" + "".join(
        f"{t['topic_id']}\t{t['size']}\t{t['n_users']}\t{t['n_items']}\t\n" for t in topics))
    atomic_write_text(paths["meta"], json.dumps(meta))
    load_topic_files(folder, name)  # the model's own validating reader accepts them
    return {"interactions": len(inter), "users": int(inter["user_id"].nunique()),
            "items": int(inter["item_id"].nunique()), "topics": int(vectors.shape[0]),
            "review_topic_rows": len(review_topic)}


# ---------------------------------------------------------------- one cell (own process)

def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_cell(root: Path, name: str, model: str, batches: int, eval_users: int, overrides: dict,
                 max_train_s: float = 120.0) -> dict:
    """One model on one synthetic dataset. Seconds are the process's CPU seconds on CPU (one
    thread: OMP_NUM_THREADS=1), robust to other work on a shared machine; wall seconds on CUDA."""
    import torch
    from recbole.utils import get_trainer, init_seed

    import recbole_sdmtmp  # noqa: F401
    from recbole_sdmtmp.data.protocol import HeldOutDataLoader, _rows
    from recbole_sdmtmp.config import build_config
    from recbole_sdmtmp.registry import resolve_model
    from recbole_sdmtmp.runner import load_data

    cuda = torch.cuda.is_available()
    settings = {"data_path": str(root), "show_progress": False, "checkpoint_dir": str(root / "saved"),
                "epochs": 1, "use_gpu": cuda, "gpu_id": "0" if cuda else "", "state": "warning"}
    settings.update(overrides)
    start = time.perf_counter()
    config = build_config(model, name, config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    model_class, dataset_class = resolve_model(model)
    _, (train_data, valid_data, _) = load_data(config, dataset_class)
    load_s = time.perf_counter() - start
    rss_data_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    device = config["device"]
    cpu_clock = device.type == "cpu"

    start = time.perf_counter()
    recommender = model_class(config, train_data._dataset).to(device)
    trainer = get_trainer(config["native_model_type"], config["model"])(config, recommender)
    own_optimizer = getattr(recommender, "build_optimizer", lambda: None)()
    if own_optimizer is not None:  # as recbole_sdmtmp.runner.run does
        trainer.optimizer = own_optimizer
    build_s = time.perf_counter() - start

    recommender.train()
    seconds, cpu_seconds = [], []
    iterator = iter(train_data)
    budget = time.perf_counter() + max_train_s
    for step in range(min(batches + 1, len(train_data))):
        if step >= 2 and time.perf_counter() > budget:
            break
        _sync(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        interaction = next(iterator).to(device)
        trainer.optimizer.zero_grad()
        loss = recommender.calculate_loss(interaction)
        loss = sum(loss) if isinstance(loss, tuple) else loss
        loss.backward()
        trainer.optimizer.step()
        _sync(device)
        if step >= 1 or len(train_data) == 1:  # the first batch warms up
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - cpu_start)
    batch_s, batch_cpu_s = float(np.mean(seconds)), float(np.mean(cpu_seconds))

    n_cases = len(valid_data.positives)
    sample = np.sort(np.random.default_rng(0).choice(n_cases, size=min(eval_users, n_cases), replace=False))
    subset = HeldOutDataLoader(config, _rows(valid_data._dataset, sample),
                               [valid_data.positives[i] for i in sample], [valid_data.excluded[i] for i in sample])
    passes, cpu_passes = [], []
    for _ in range(2):  # first: propagation + scoring; second: scoring with the cached graph
        _sync(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        trainer.evaluate(subset, load_best_model=False)
        _sync(device)
        passes.append(time.perf_counter() - start)
        cpu_passes.append(time.process_time() - cpu_start)

    def full_evaluation(first, second):
        return max(0.0, first - second) + second * n_cases / len(sample)
    return {
        "model": model, "device": str(device), "train_cases": len(train_data._dataset), "batches_per_epoch": len(train_data),
        "timed_batches": len(seconds), "wall_seconds_per_batch": batch_s, "wall_epoch_s": batch_s * len(train_data),
        "seconds_per_batch": batch_cpu_s if cpu_clock else batch_s,
        "epoch_s": (batch_cpu_s if cpu_clock else batch_s) * len(train_data),
        "eval_cases": n_cases, "eval_sample": len(sample), "eval_passes_s": passes, "eval_cpu_passes_s": cpu_passes,
        "wall_eval_s": full_evaluation(*passes), "eval_s": full_evaluation(*(cpu_passes if cpu_clock else passes)),
        "clock": "process CPU" if cpu_clock else "wall",
        "load_s": load_s, "build_s": build_s, "rss_after_data_mb": rss_data_mb,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "items": train_data._dataset.item_num - 1, "users": train_data._dataset.user_num - 1,
        "overrides": overrides,
    }


def measure_topics(samples: list[int], root: Path) -> list[dict]:
    """Seconds per sentence of the topic step's embedding and clustering, cold caches."""
    import dataclasses

    from dataset_preprocess.topics.sentences import split_reviews
    from dataset_preprocess.topics.fit import TopicConfig, build_topics

    texts = review_texts(max(samples))
    reviews = pd.DataFrame({"user_id": [f"u{i}" for i in range(len(texts))], "item_id": [f"i{i % 997}" for i in range(len(texts))],
                            "rating": 5.0, "timestamp": 16000.0, "review_text": texts})
    rows = []
    for n_reviews in samples:
        part = reviews.iloc[:n_reviews]
        n_sentences = len(split_reviews(part))
        settings = {"cache_dir": str(root / f"cache_{n_reviews}"), "show_progress": False}
        if "topic_cache_dir" in {f.name for f in dataclasses.fields(TopicConfig)}:
            settings["topic_cache_dir"] = ""
        summary = build_topics(part, root / f"topics_{n_reviews}", "synthetic", TopicConfig(**settings))
        embed_s, cluster_s = summary["timings"]["embed_s"], summary["timings"]["cluster_s"]
        rows.append({"reviews": n_reviews, "sentences": n_sentences, "topics": summary["n_topics"],
                     "embed_s": embed_s, "cluster_s": cluster_s,
                     "embed_ms_per_sentence": 1000 * embed_s / n_sentences,
                     "cluster_ms_per_sentence": 1000 * cluster_s / n_sentences})
        print(json.dumps(rows[-1]), flush=True)
    return rows


# ---------------------------------------------------------------- orchestration and report

def model_spec(spec: str) -> tuple[str, dict]:
    """'SDMTMP:graph_batch=subgraph,n_layers=3' -> ('SDMTMP', {'graph_batch': 'subgraph', 'n_layers': 3})."""
    name, _, options = spec.partition(":")
    overrides = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return name, overrides


def slope(xs, ys) -> float:
    """Exponent b of y ~ x^b between the smallest and largest size (log-log slope)."""
    return math.log(ys[-1] / ys[0]) / math.log(xs[-1] / xs[0]) if len(xs) > 1 and ys[0] > 0 else float("nan")


def figure(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("epoch_s", "seconds per epoch (extrapolated)"), ("eval_s", "full-sort evaluation, s (extrapolated)"),
              ("peak_rss_mb", "peak resident memory, MB")]
    batch = results.get("batch")
    fig, axes = plt.subplots(1, len(panels) + bool(batch), figsize=(5 * (len(panels) + bool(batch)), 5))
    for axis, (key, title) in zip(axes, panels):
        for model, cells in results["cells"].items():
            cells = sorted(cells, key=lambda c: c["interactions"])
            xs = [c["interactions"] for c in cells]
            axis.plot(xs, [c[key] for c in cells], marker="o", label=model)
        base = min((c for cells in results["cells"].values() for c in cells), key=lambda c: (c["interactions"], c[key]))
        line = np.array([base["interactions"], max(c["interactions"] for cells in results["cells"].values() for c in cells)],
                        dtype=float)
        axis.plot(line, base[key] * line / line[0], "k:", label="linear")
        axis.set_title(title)
    if batch:
        rows = batch["rows"]
        xs = [row["interactions"] for row in rows]
        axes[-1].plot(xs, [row["seconds_per_batch"] for row in rows], marker="s", color="tab:purple",
                      label="one batch, sub-graph + fanout + sparse (scale_batch.py)")
        axes[-1].set_title("CPU s per training batch (rating-aware part)")
    for axis in axes:
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("interactions")
        axis.grid(True, which="both", alpha=0.3)
    handles, labels = {}, []
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.savefig(path, dpi=110)


def report(results: dict, command: str) -> str:
    commands = " and ".join(f"`{c}`" for c in results.get("commands", [command]))
    lines = ["# Scaling curve: SD-MTMP against SASRec and LightGCN", "",
             f"Made by {commands} ({results['device']}, {results['date']}). Synthetic review-like data "
             "(benchmarks/scale.py: power-law users and items, Instrument's means and rating mix; "
             "**synthetic topics**: random topic vectors, each review in its item's topic and 0-3 others). "
             "Each cell runs in its own process.", "",
             "- **seconds are the cell process's CPU seconds** on CPU (one thread, OMP_NUM_THREADS=1: what an idle "
             "core would take; the machine is shared, so wall seconds, kept in scale.json, are inflated by the "
             "other work), wall seconds on CUDA.",
             f"- **seconds per epoch are extrapolated**: up to {results['batches']} training batches (and at most "
             f"{results['max_train_s']:.0f} s of them) timed after one warm-up batch (fetch, negatives, loss, backward, "
             "step), mean x batches per epoch.",
             f"- **evaluation is extrapolated**: the validation cases of {results['eval_users']} sampled users scored "
             "twice (with and without the graph propagation); propagation + per-case time x all cases.",
             "- peak memory: the cell process's peak resident set (data + model + timed batches).", ""]
    for size, stats in results["datasets"].items():
        lines.append(f"- {int(size):,} interactions: {stats['users']:,} users, {stats['items']:,} items, "
                     f"{stats['topics']:,} topics, {stats['review_topic_rows']:,} review-topic rows")
    lines += ["", "| model | interactions | batches/epoch | s/batch | epoch s | eval cases | eval s | peak RSS MB |"
              + (" peak CUDA MB |" if results["device"] != "cpu" else ""),
              "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if results["device"] != "cpu" else "")]
    for model, cells in results["cells"].items():
        for cell in sorted(cells, key=lambda c: c["interactions"]):
            row = (f"| {model} | {cell['interactions']:,} | "
                   f"{cell['batches_per_epoch']:,} | {cell['seconds_per_batch']:.3f} | {cell['epoch_s']:.1f} | "
                   f"{cell['eval_cases']:,} | {cell['eval_s']:.1f} | {cell['peak_rss_mb']:.0f} |")
            if results["device"] != "cpu":
                row += f" {cell['peak_cuda_mb'] or 0:.0f} |"
            lines.append(row)
    lines += ["", "Growth exponent b (cost ~ interactions^b, smallest to largest size; 1 = linear):", "",
              "| model | epoch | epoch, size to size | s/batch | evaluation | peak RSS |", "|---|---:|---|---:|---:|---:|"]
    for model, cells in results["cells"].items():
        cells = sorted(cells, key=lambda c: c["interactions"])
        xs = [c["interactions"] for c in cells]
        steps = ", ".join(f"{slope(xs[i:i + 2], [c['epoch_s'] for c in cells[i:i + 2]]):.2f}" for i in range(len(xs) - 1))
        exponents = [f"{slope(xs, [c[key] for c in cells]):.2f}" for key in ("epoch_s", "seconds_per_batch", "eval_s", "peak_rss_mb")]
        lines.append(f"| {model} | {exponents[0]} | {steps} | " + " | ".join(exponents[1:]) + " |")
    if results.get("topics"):
        lines += ["", "Topic step (dataset_preprocess.topics.fit.build_topics, BERTopic defaults, cold caches) on samples "
                  "of the synthetic texts; **wall seconds** as build_topics times them (so inflated by the shared "
                  "machine's load); the first sample also pays the encoder's loading and numba's compilation of UMAP:", "",
                  "| reviews | sentences | topics | embed s | cluster s | embed ms/sentence | cluster ms/sentence |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for row in results["topics"]:
            lines.append(f"| {row['reviews']:,} | {row['sentences']:,} | {row['topics']} | {row['embed_s']:.1f} | "
                         f"{row['cluster_s']:.1f} | {row['embed_ms_per_sentence']:.2f} | {row['cluster_ms_per_sentence']:.2f} |")
    if results.get("batch"):
        batch = results["batch"]
        rows = batch["rows"]
        lines += ["", f"One training batch of the rating-aware sub-graph alone (benchmarks/scale_batch.py: d {batch['dim']}, "
                  f"{batch['layers']} NGCF layers, fanout {batch['fanout']}, sparse P(0)/Q(0) and LazyAdam; the same "
                  "graph generator without texts or topics, which lets it reach 10^7 here), CPU seconds:", "",
                  "| interactions | nodes | CPU s / batch | batch nodes | layer-1 nodes | growth b of s/batch from the size before |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for index, row in enumerate(rows):
            growth = "" if not index else f"{slope([rows[index - 1]['interactions'], row['interactions']], [rows[index - 1]['seconds_per_batch'], row['seconds_per_batch']]):.2f}"
            lines.append(f"| {row['interactions']:,} | {row['nodes']:,} | {row['seconds_per_batch']:.3f} | "
                         f"{row['batch_nodes']:.0f} | {row['layer1_nodes']:.0f} | {growth} |")
    lines += ["", "![scaling](scale.png)", ""]
    return "\n".join(lines)


def merge(paths: list[str]) -> dict:
    """Several runs' scale.json in one (the same generator and seed: the same datasets); a cell
    measured twice keeps the later run's."""
    merged = None
    for path in paths:
        results = json.loads(Path(path).read_text())
        if "rows" in results:  # benchmarks/scale_batch.py's output: one batch at each size
            merged["commands"].append(results["command"].strip())
            merged["batch"] = results
            continue
        command = results.get("command")
        if command is None:  # runs before the command was kept in the JSON: read it from their .md
            found = re.search(r"Made by `([^`]+)`", Path(path).with_suffix(".md").read_text())
            command = found.group(1) if found else path
        if merged is None:
            merged = dict(results, commands=[], cells={}, datasets={})
        merged["commands"].append(command)
        merged["datasets"].update(results["datasets"])
        merged["topics"] = results.get("topics") or merged.get("topics", [])
        merged["date"] = results["date"]
        for model, cells in results["cells"].items():
            kept = {cell["interactions"]: cell for cell in merged["cells"].get(model, [])}
            kept.update({cell["interactions"]: cell for cell in cells})
            merged["cells"][model] = sorted(kept.values(), key=lambda cell: cell["interactions"])
    return merged


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--batches", type=int, default=10, help="timed training batches per cell")
    parser.add_argument("--max-train-s", type=float, default=120.0,
                        help="stop timing training batches after this many wall seconds (at least one timed)")
    parser.add_argument("--eval-users", type=int, default=2048, help="users whose validation cases are scored")
    parser.add_argument("--topic-samples", type=int, nargs="*", default=[500, 1000, 2000],
                        help="review samples for the topic step (none: skip it)")
    parser.add_argument("--no-topics", action="store_true")
    parser.add_argument("--out", default=str(REPO / "results" / "scale"), help="prefix of the .md/.json/.png")
    parser.add_argument("--workdir", default=None, help="where the synthetic datasets go (default: a temporary folder)")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="only write the report of these runs' scale.json")
    parser.add_argument("--cell", nargs=3, metavar=("ROOT", "NAME", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cell:  # one cell, in its own process
        root, name, spec = args.cell
        model, overrides = model_spec(spec)
        sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value from argv
        cell = measure_cell(Path(root), name, model, args.batches, args.eval_users, overrides, args.max_train_s)
        print("CELL " + json.dumps(cell), flush=True)
        return 0

    command = "python benchmarks/scale.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    if args.merge:
        results = merge(args.merge)
        results["commands"].append(command)
        write_outputs(results, Path(args.out), command)
        return 0

    import torch

    command = "python benchmarks/scale.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="scale_"))
    results = {"device": "cuda" if torch.cuda.is_available() else "cpu", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "command": command, "batches": args.batches, "max_train_s": args.max_train_s, "eval_users": args.eval_users, "datasets": {}, "cells": {}, "topics": []}
    for size in args.sizes:
        name = f"synthetic{size}"
        start = time.perf_counter()
        results["datasets"][str(size)] = stats = write_dataset(work, name, size)
        print(f"{name}: {stats} written in {time.perf_counter() - start:.1f} s", flush=True)
        for model in args.models:
            cell_command = [sys.executable, __file__, "--cell", str(work), name, model, "--batches", str(args.batches),
                            "--eval-users", str(args.eval_users),
                            "--max-train-s", str(args.max_train_s)]
            env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
            done = subprocess.run(cell_command, capture_output=True, text=True, env=env, cwd=REPO)
            lines = [line for line in done.stdout.splitlines() if line.startswith("CELL ")]
            if done.returncode != 0 or not lines:
                print(f"{name} {model}: failed\n{done.stderr[-3000:]}", file=sys.stderr)
                continue
            cell = json.loads(lines[-1][5:])
            cell["interactions"] = stats["interactions"]
            results["cells"].setdefault(model, []).append(cell)
            print(f"{command}\n  {name} {model}: {cell['epoch_s']:.1f} s/epoch ({cell['seconds_per_batch']:.3f} s/batch x "
                  f"{cell['batches_per_epoch']}), evaluation {cell['eval_s']:.1f} s ({cell['eval_cases']} cases), "
                  f"peak RSS {cell['peak_rss_mb']:.0f} MB", flush=True)
    if not args.no_topics and args.topic_samples:
        results["topics"] = measure_topics(args.topic_samples, work)
    write_outputs(results, Path(args.out), command)
    return 0


def write_outputs(results: dict, out: Path, command: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    figure(results, out.with_suffix(".png"))
    text = report(results, command)
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
