"""Is the fast topic path as good as the exact one, and how fast is a cold run?

    python benchmarks/preprocess_fast.py gate [--datasets Instrument Gift_Cards] [--seeds 2024 2025 2026]
    python benchmarks/preprocess_fast.py cold [--dataset Instrument] [--skip exact]

``gate``: each option's topics, judged by what matters, beside the spread of two fp32 fits that
differ only in their seed (two equally valid fits of the exact path):

- (a) SD-MTMP (protocol ``paper``, its defaults) trained on each option's side-files, test
  NDCG@10 and HR@10 over ``--seeds``: within one seed spread (the sample standard deviation of
  the fp32 reference's seeds) of the reference, and no paired difference (Wilcoxon on per-user
  metrics averaged over seeds) at p < 0.05;
- (b) the topic count and outlier share, and (c) NPMI coherence and topic diversity
  (``dataset_preprocess.report``): no further from the reference than the fp32 fit with
  another seed is (the earlier gate); and, as a second reading, within the range of four fp32
  fits (seeds 2024-2027), since the distance between two fits is itself one noisy draw.

The reference is ``dataset/<D>`` as committed (fp32, seed 2024: every result in results/); the
other options are prepared under ``cache/preprocess_fast/<option>/`` from the shared embedding
cache (``cache/embeddings``) and their runs kept under ``cache/preprocess_fast/runs`` (resumable).

``cold``: in one run, each in a fresh process with empty caches, (1) plain BERTopic
(``BERTopic(embedding_model=<the bundled MiniLM>).fit_transform`` on the same sentences, its
defaults otherwise), (2) ``python -m dataset_preprocess <D> --no-download --refit-topics`` with
the defaults (the fastest encoder that passed the encoder gate: OpenVINO int8 where installed,
its quantisation from the local weights included), (3) the same with ``--encoder-precision
fp32`` and (4) with ``--encoder-precision bf16``; wall and CPU seconds, and each as a ratio to
plain BERTopic. ``--repeats N`` runs the whole sequence N times and adds the medians.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OUT = REPO / "cache" / "preprocess_fast"
REFERENCE = "fp32 (dataset/, seed 2024)"
# Option label -> (folder and run name, TopicConfig overrides); None: the committed dataset/.
# The default (fp32 in length-planned batches) gives the reference's vectors bit for bit
# (tests/preprocess/test_fast_topics.py), so its topics are the reference procedure's: it is not a row.
OPTIONS = {
    REFERENCE: ("fp32_dataset_seed_2024", None),
    "fp32, topic seed 2025": ("fp32__topic_seed_2025", {"encoder_precision": "fp32", "seed": 2025}),
    "fp32, topic seed 2026": ("fp32__topic_seed_2026", {"encoder_precision": "fp32", "seed": 2026}),
    "fp32, topic seed 2027": ("fp32__topic_seed_2027", {"encoder_precision": "fp32", "seed": 2027}),
    "bf16": ("auto__bf16_here__the_default", {"encoder_precision": "bf16"}),
    "bf16, topic seed 2025": ("auto__topic_seed_2025", {"encoder_precision": "bf16", "seed": 2025}),
    "bf16, topic seed 2026": ("auto__topic_seed_2026", {"encoder_precision": "bf16", "seed": 2026}),
    "bf16 + UMAP 100 epochs": ("auto___UMAP_100_epochs",
                               {"encoder_precision": "bf16", "umap_n_epochs": 100}),
}
# The earlier gate: the band the reference and one other fp32 seed span; a second reading: the
# range of all four fp32 fits (two points make a noisy band: see docs/PREPROCESSING.md).
SECOND_SEED = "fp32, topic seed 2025"
FP32_FITS = [label for label in OPTIONS if label.startswith("fp32")]
TOPIC_FIGURES = ("topics", "outlier share", "NPMI", "diversity")
METRICS = ("ndcg@10", "hit@10")


def prepared_root(label: str, dataset: str) -> Path:
    """The data root of one option, prepared from the shared embedding cache where missing."""
    key, overrides = OPTIONS[label]
    if overrides is None:
        return REPO / "dataset"
    from dataset_preprocess.pipeline import prepare_dataset
    from dataset_preprocess.topics.fit import TopicConfig

    root = OUT / key
    if not (root / dataset / f"{dataset}.topics.json").is_file():
        config = TopicConfig(cache_dir=str(REPO / "cache" / "embeddings"), show_progress=False,
                             **overrides)
        prepare_dataset(dataset, out_dir=root, download=False, topic_config=config)
    return root


def topic_figures(root: Path, dataset: str) -> dict:
    from dataset_preprocess.report import build_report

    report = build_report(dataset, root)
    return {"topics": report.n_topics, "outlier share": report.outlier_share,
            "NPMI": report.coherence, "diversity": report.diversity}


def sdmtmp_rows(roots: dict[str, Path], dataset: str, seeds) -> dict:
    from recbole_sdmtmp.experiments.cells import Cell, run_cells
    from recbole_sdmtmp.experiments.statistics import RowStats

    rows = {}
    for label, root in roots.items():
        cells = [Cell(label=f"SD-MTMP {OPTIONS[label][0]}", model="SDMTMP", dataset=dataset, seed=seed)
                 for seed in seeds]
        records = run_cells(cells, OUT / "runs", str(root) + "/", threads=None)
        rows[label] = RowStats(label, [records[cell] for cell in cells])
    return rows


def gate_rows(dataset: str, seeds) -> list[dict]:
    from recbole_sdmtmp.experiments.statistics import significance

    roots = {label: prepared_root(label, dataset) for label in OPTIONS}
    figures = {label: topic_figures(root, dataset) for label, root in roots.items()}
    runs = sdmtmp_rows(roots, dataset, seeds)
    ref, ref_runs = figures[REFERENCE], runs[REFERENCE]
    rows = []
    for label in OPTIONS:
        row = {"dataset": dataset, "option": label, **figures[label]}
        two_seed, four_seed = {}, {}
        for key in TOPIC_FIGURES:
            band = abs(figures[SECOND_SEED][key] - ref[key])
            two_seed[key] = abs(figures[label][key] - ref[key]) <= band + 1e-12
            values = [figures[fit][key] for fit in FP32_FITS]
            four_seed[key] = min(values) - 1e-12 <= figures[label][key] <= max(values) + 1e-12
        for metric in METRICS:
            row[metric] = runs[label].mean(metric)
            row[f"{metric} sd"] = runs[label].std(metric)
            if label != REFERENCE:
                name = {"ndcg@10": "NDCG@10", "hit@10": "HR@10"}[metric]
                test = next(t for t in significance(runs[label], ref_runs) if t["metric"] == name)
                row[f"{metric} p"] = test["wilcoxon_p"]
                ok = (abs(row[metric] - ref_runs.mean(metric)) <= ref_runs.std(metric)
                      and test["wilcoxon_p"] >= 0.05)
                two_seed[metric] = four_seed[metric] = ok
        row["failed (two fp32 seeds)"] = [k for k, ok in two_seed.items() if not ok]
        row["failed (four fp32 seeds)"] = [k for k, ok in four_seed.items() if not ok]
        rows.append(row)
    return rows


def print_gate(rows: list[dict], seeds) -> None:
    print(f"\n| dataset | option | topics | outlier share | NPMI | diversity | NDCG@10 ({len(seeds)} "
          "seeds) | p | HR@10 | p | gate: two fp32 seeds | gate: four fp32 seeds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        gates = ["reference" if r["option"] == REFERENCE else
                 ("pass" if not r[key] else "fail: " + ", ".join(r[key]))
                 for key in ("failed (two fp32 seeds)", "failed (four fp32 seeds)")]
        p = {m: (f"{r[m + ' p']:.2f}" if m + " p" in r else "-") for m in METRICS}
        print(f"| {r['dataset']} | {r['option']} | {r['topics']} | {r['outlier share']:.3f} | "
              f"{r['NPMI']:.4f} | {r['diversity']:.3f} | {r['ndcg@10']:.4f} ± {r['ndcg@10 sd']:.4f} "
              f"| {p['ndcg@10']} | {r['hit@10']:.4f} ± {r['hit@10 sd']:.4f} | {p['hit@10']} | "
              f"{gates[0]} | {gates[1]} |")


def cmd_gate(args) -> list[dict]:
    rows = []
    for dataset in args.datasets:
        rows += gate_rows(dataset, args.seeds)
    print_gate(rows, args.seeds)
    return rows


# ------------------------------------------------------------------ cold runs

PLAIN_BERTOPIC = """
import json, sys, time
sys.path.insert(0, {repo!r})
start = time.perf_counter()
from bertopic import BERTopic
from sentence_transformers import SentenceTransformer
from dataset_preprocess.readers.amazon import read_reviews
from dataset_preprocess.registry import find_raw_file, lookup
from dataset_preprocess.topics.embedding_cache import resolve_encoder
from dataset_preprocess.topics.sentences import split_reviews
reviews, _ = read_reviews(find_raw_file(lookup({dataset!r}), download=False))
sentences = split_reviews(reviews)["sentence"].tolist()
model = SentenceTransformer(resolve_encoder("all-MiniLM-L6-v2")[0], device="cpu")
topics, _ = BERTopic(embedding_model=model).fit_transform(sentences)
print(json.dumps({{"sentences": len(sentences), "topics": len(set(topics)) - (-1 in topics),
                  "seconds_in_process": time.perf_counter() - start}}))
"""


def timed(command: list[str], env: dict) -> dict:
    """Wall and CPU seconds (user + system, children included) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise RuntimeError(f"{command[:4]} failed:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "stdout": done.stdout.strip().splitlines()[-1:]}


def cmd_cold(args) -> list[dict]:
    scratch = Path(tempfile.mkdtemp(prefix="cold-", dir=args.scratch))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0"}
    from dataset_preprocess.registry import find_raw_file, lookup

    raw = str(find_raw_file(lookup(args.dataset), download=False))
    ours = [sys.executable, "-m", "dataset_preprocess", args.dataset, "--raw-file", raw,
            "--no-download", "--refit-topics"]
    runs = {
        "plain BERTopic (fp32 MiniLM, its defaults)": [
            sys.executable, "-c", PLAIN_BERTOPIC.format(repo=str(REPO), dataset=args.dataset)],
        "python -m dataset_preprocess --refit-topics (defaults)": ours,
        "python -m dataset_preprocess --refit-topics --encoder-precision fp32": [
            *ours, "--encoder-precision", "fp32"],
        "python -m dataset_preprocess --refit-topics --encoder-precision bf16": [
            *ours, "--encoder-precision", "bf16"],
    }
    runs = {label: command for label, command in runs.items()
            if not any(label.endswith(f"precision {option}") for option in args.skip)}
    rows = []
    for repeat in range(args.repeats):
        for index, (label, command) in enumerate(runs.items()):
            if command[1] == "-m":  # empty caches and output folder of its own
                where = scratch / f"{repeat}-{index}"
                command = command + ["--out-dir", str(where / "out"),
                                     "--cache-dir", str(where / "cache" / "embeddings")]
            result = timed(command, env)
            rows.append({"run": label, "repeat": repeat, **result})
            print(json.dumps(rows[-1]), flush=True)
            shutil.rmtree(scratch / f"{repeat}-{index}", ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n| {args.dataset}, cold, one process each | repeat | wall s | CPU s | wall / plain BERTopic |")
    print("|---|---|---|---|---|")
    for row in rows:
        plain = next(r for r in rows if r["repeat"] == row["repeat"])
        print(f"| {row['run']} | {row['repeat'] + 1} | {row['wall_s']:.0f} | {row['cpu_s']:.0f} | "
              f"{row['wall_s'] / plain['wall_s']:.2f} |")
    if args.repeats > 1:
        for label in runs:
            ratios = [row["wall_s"] / next(r for r in rows if r["repeat"] == row["repeat"])["wall_s"]
                      for row in rows if row["run"] == label]
            walls = [row["wall_s"] for row in rows if row["run"] == label]
            print(f"| {label} | median | {statistics.median(walls):.0f} | - | "
                  f"{statistics.median(ratios):.2f} |")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gate = sub.add_parser("gate")
    gate.add_argument("--datasets", nargs="+", default=["Instrument", "Gift_Cards"])
    gate.add_argument("--seeds", nargs="+", type=int, default=[2024, 2025, 2026])
    cold = sub.add_parser("cold")
    cold.add_argument("--dataset", default="Instrument")
    cold.add_argument("--skip", nargs="*", default=[], choices=["fp32", "bf16"],
                      help="leave out the fp32 or bf16 run")
    cold.add_argument("--repeats", type=int, default=1)
    cold.add_argument("--scratch", default=None, help="where the empty caches go (default: /tmp)")
    for p in (gate, cold):
        p.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    rows = {"gate": cmd_gate, "cold": cmd_cold}[args.command](args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
