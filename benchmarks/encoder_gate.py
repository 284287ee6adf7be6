"""Which int8 encoders may prepare new topic fits: the encoder gate.

    python benchmarks/encoder_gate.py [--datasets Gift_Cards Magazine_Subscriptions Instrument]
        [--options openvino-int8 onnx-int8] [--seeds 2024 2025 2026] [--downstream openvino-int8]

Per dataset and option, in one run:

- **speed**: encoded sentences per CPU second of the process (one thread, one process, the
  pipeline's 768-token batches, a fresh embedding cache) on ``--sample`` distinct sentences of
  the dataset, median of ``--repeats`` passes, as a ratio to torch fp32 timed the same way in the
  same run (the quantised model is made before the timing);
- **topics**: topic count, outlier share, NPMI coherence and diversity
  (:mod:`dataset_preprocess.report`) of the option's fit (all reviews, default settings), against
  the fp32 band: the range of the fp32 fits measured on other machines
  (:data:`FP32_ACROSS_MACHINES`), the pinned fit and this machine's fp32 fit with topic seed
  2025, widened on both sides by the two-seed spread (pinned fit vs seed 2025);
- **SD-MTMP** (protocol ``paper``, its defaults, one thread), test NDCG@10 and HR@10 over
  ``--seeds`` on the option's fit against the pinned fp32 fit's: within one seed standard
  deviation of the fp32 mean, and no paired difference (Wilcoxon on per-user metrics averaged
  over the seeds, ``recbole_sdmtmp.experiments.statistics``) at p < 0.05.

An option passes where all of these hold on every dataset. Prepared data, runs and fits go to
``cache/encoder_gate/`` (resumable: finished SD-MTMP runs are not run again).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OUT = REPO / "cache" / "encoder_gate"
EMBEDDINGS = REPO / "cache" / "embeddings"
REFERENCE = "fp32 (pinned fit)"
SECOND_SEED = "fp32, topic seed 2025"
TOPIC_FIGURES = ("topics", "outlier share", "NPMI", "diversity")
METRICS = {"ndcg@10": "NDCG@10", "hit@10": "HR@10"}
# fp32 fits of all reviews on other machines (docs/PREPROCESSING.md §3-4): an Intel Sapphire
# Rapids with AMX and an AMD EPYC, the same reviews and settings.
FP32_ACROSS_MACHINES = {
    "Instrument": {"topics": (326, 347), "outlier share": (0.347, 0.381)},
    "Gift_Cards": {"topics": (55, 56)},
    "Magazine_Subscriptions": {"topics": (64, 67)},
}


def prepared_root(label: str, dataset: str) -> Path:
    """The data root of one row: the pinned fit installed, or a fit made here."""
    from dataset_preprocess.pipeline import prepare_dataset
    from dataset_preprocess.topics.fit import TopicConfig
    from dataset_preprocess.topics.pinned import PINNED_FITS_DIR

    settings = {REFERENCE: {}, SECOND_SEED: {"encoder_precision": "fp32", "seed": 2025}}.get(
        label, {"encoder_precision": label})
    root = OUT / "data" / label.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
    if not (root / dataset / f"{dataset}.topics.json").is_file():
        config = TopicConfig(cache_dir=str(EMBEDDINGS), show_progress=False, **settings)
        prepare_dataset(dataset, out_dir=root, download=False, topic_config=config,
                        pinned_fits=REPO / PINNED_FITS_DIR if label == REFERENCE else None)
    meta = json.loads((root / dataset / f"{dataset}.topics.json").read_text())
    wanted = "fp32" if label in (REFERENCE, SECOND_SEED) else label
    if meta["encoder_settings"]["precision"] != wanted:
        raise SystemExit(f"{root / dataset}: fitted in {meta['encoder_settings']['precision']}, "
                         f"not {wanted} (is the runtime installed? pip install -e .[int8])")
    return root


def topic_figures(root: Path, dataset: str) -> dict:
    from dataset_preprocess.report import build_report

    report = build_report(dataset, root)
    return {"topics": report.n_topics, "outlier share": report.outlier_share,
            "NPMI": report.coherence, "diversity": report.diversity}


def fp32_band(dataset: str, reference: dict, second: dict) -> dict:
    """(low, high) per topic figure: every fp32 fit known, widened by the two-seed spread."""
    band = {}
    for key in TOPIC_FIGURES:
        values = [reference[key], second[key], *FP32_ACROSS_MACHINES.get(dataset, {}).get(key, ())]
        spread = abs(reference[key] - second[key])
        band[key] = (min(values) - spread, max(values) + spread)
    return band


def encode_speed(dataset: str, options: list[str], sample: int, repeats: int) -> dict:
    """Sentences per CPU second and per wall second of each option and of torch fp32, on the
    same ``sample`` distinct sentences, one thread; the median of ``repeats`` passes."""
    import numpy as np
    import torch

    from dataset_preprocess.readers.amazon import read_reviews
    from dataset_preprocess.registry import find_raw_file, lookup
    from dataset_preprocess.topics.embedding_cache import SentenceEncoder
    from dataset_preprocess.topics.sentences import split_reviews

    torch.set_num_threads(1)
    reviews, _ = read_reviews(find_raw_file(lookup(dataset), download=False))
    every = split_reviews(reviews)["sentence"].tolist()
    distinct = sorted(set(every))
    rows = np.random.default_rng(0).choice(len(distinct), min(sample, len(distinct)), replace=False)
    texts = [distinct[row] for row in sorted(rows)]
    speeds = {}
    for option in ["fp32", *options]:
        encoder = SentenceEncoder("all-MiniLM-L6-v2", precision=option, batch_tokens=768,
                                  processes=1)
        encoder.prepare(every, EMBEDDINGS)  # calibrated on the whole dataset, as a fit is
        encoder.encode(texts[:64])  # loads, quantises where the cache has no model yet
        cpu, wall = [], []
        for _ in range(repeats):
            start, clock = time.perf_counter(), time.process_time()
            encoder.encode(texts)
            wall.append(len(texts) / (time.perf_counter() - start))
            cpu.append(len(texts) / (time.process_time() - clock))
        speeds[option] = {"cpu": statistics.median(cpu), "wall": statistics.median(wall)}
        print(f"  {dataset} {option}: {speeds[option]['cpu']:.0f} sentences per CPU s", flush=True)
    return speeds


def sdmtmp_rows(roots: dict[str, Path], dataset: str, seeds) -> dict:
    from recbole_sdmtmp.experiments.cells import Cell, run_cells
    from recbole_sdmtmp.experiments.statistics import RowStats

    rows = {}
    for label, root in roots.items():
        cells = [Cell(label=f"SD-MTMP {label}", model="SDMTMP", dataset=dataset, seed=seed)
                 for seed in seeds]
        records = run_cells(cells, OUT / "runs", str(root) + "/", threads=1)
        rows[label] = RowStats(label, [records[cell] for cell in cells])
    return rows


def gate_rows(dataset: str, options: list[str], downstream: list[str], seeds, sample: int,
              repeats: int) -> list[dict]:
    from recbole_sdmtmp.experiments.statistics import significance

    speeds = encode_speed(dataset, options, sample, repeats)
    labels = [REFERENCE, SECOND_SEED, *options]
    roots = {label: prepared_root(label, dataset) for label in labels}
    figures = {label: topic_figures(root, dataset) for label, root in roots.items()}
    band = fp32_band(dataset, figures[REFERENCE], figures[SECOND_SEED])
    runs = sdmtmp_rows({label: roots[label] for label in [REFERENCE, *downstream]}, dataset, seeds)
    ref_runs = runs[REFERENCE]
    rows = []
    for label in labels:
        precision = "fp32" if label in (REFERENCE, SECOND_SEED) else label
        row = {"dataset": dataset, "option": label, **figures[label], "failed": [],
               "speed": speeds[precision]["cpu"] / speeds["fp32"]["cpu"],
               "sentences per CPU s": speeds[precision]["cpu"], "band": band}
        row["failed"] += [key for key in TOPIC_FIGURES
                          if not band[key][0] - 1e-12 <= figures[label][key] <= band[key][1] + 1e-12]
        if label in runs:
            tests = {t["metric"]: t for t in significance(runs[label], ref_runs)}
            for metric, name in METRICS.items():
                row[metric] = runs[label].mean(metric)
                row[f"{metric} sd"] = runs[label].std(metric)
                if label != REFERENCE:
                    row[f"{metric} p"] = tests[name]["wilcoxon_p"]
                    if (abs(row[metric] - ref_runs.mean(metric)) > ref_runs.std(metric)
                            or row[f"{metric} p"] < 0.05):
                        row["failed"].append(name)
        rows.append(row)
    return rows


def print_gate(rows: list[dict], seeds) -> None:
    print(f"\n| dataset | encoder | speed vs fp32 (CPU) | topics | outlier share | NPMI | diversity "
          f"| NDCG@10 ({len(seeds)} seeds) | p | HR@10 | p | gate |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        band = r["band"]
        if r["option"] == REFERENCE:
            gate = "reference"
        elif r["option"] == SECOND_SEED:
            gate = "fp32 (spread)"
        elif "ndcg@10" not in r:
            gate = ("topics pass" if not r["failed"] else "fails " + ", ".join(r["failed"])) + "; SD-MTMP not run"
        else:
            gate = "pass" if not r["failed"] else "fails " + ", ".join(r["failed"])
        sdm = [(f"{r[m]:.4f} ± {r[m + ' sd']:.4f}" if m in r else "-",
                f"{r[m + ' p']:.2f}" if m + " p" in r else "-") for m in METRICS]
        print(f"| {r['dataset']} | {r['option']} | {r['speed']:.2f}x ({r['sentences per CPU s']:.0f}/s) "
              f"| {r['topics']} | {r['outlier share']:.3f} | {r['NPMI']:.3f} | {r['diversity']:.4f} "
              f"| {sdm[0][0]} | {sdm[0][1]} | {sdm[1][0]} | {sdm[1][1]} | {gate} |")
    print("\nfp32 band (every fp32 fit known, widened by the two-seed spread):")
    for r in rows:
        if r["option"] == REFERENCE:
            b = r["band"]
            print(f"- {r['dataset']}: topics {b['topics'][0]:.0f}-{b['topics'][1]:.0f}, outlier share "
                  f"{b['outlier share'][0]:.3f}-{b['outlier share'][1]:.3f}, NPMI {b['NPMI'][0]:.3f}-"
                  f"{b['NPMI'][1]:.3f}, diversity {b['diversity'][0]:.4f}-{b['diversity'][1]:.4f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+",
                        default=["Gift_Cards", "Magazine_Subscriptions", "Instrument"])
    parser.add_argument("--options", nargs="+", default=["openvino-int8", "onnx-int8"])
    parser.add_argument("--downstream", nargs="*", default=None,
                        help="options whose fits SD-MTMP is trained on (default: all --options)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[2024, 2025, 2026])
    parser.add_argument("--sample", type=int, default=1000, help="sentences timed per option")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--table", nargs="+", metavar="JSON",
                        help="only print the table of rows written earlier with --json")
    args = parser.parse_args(argv)
    if args.table:
        print_gate([row for path in args.table for row in json.loads(Path(path).read_text())],
                   args.seeds)
        return 0
    downstream = args.options if args.downstream is None else args.downstream
    rows = []
    for dataset in args.datasets:
        rows += gate_rows(dataset, args.options, downstream, args.seeds, args.sample, args.repeats)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1, default=str) + "\n")
    print_gate(rows, args.seeds)
    return 0


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    sys.exit(main())
