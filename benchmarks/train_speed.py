"""Seconds per training epoch of SD-MTMP against its backbone NGCF and LightGCN, in one run.

    python benchmarks/train_speed.py --dataset Instrument
    python benchmarks/train_speed.py --dataset Instrument --before 26632d5 --rounds 2

Each configuration trains in its own process through RecBole's trainer (``_train_epoch``, the
loop ``run_recbole_sdmtmp.py`` uses): one warm-up epoch, then ``--epochs`` timed ones, repeated
over ``--rounds`` rounds that visit every configuration in turn (every other round in reverse
order, each "before" run beside its "after" one), so a load that comes and goes on a shared
machine reaches them all alike; the figure of a configuration is the median of all
its timed epochs. Read the ratios, not the seconds: both sides of a ratio were measured in the
same run.

- SD-MTMP at the defaults (``properties/``) and at the tuned configuration of
  ``results/tuning_Instrument_paper.md`` (d 512, L 1, 16 negatives), and the tuned one with 1
  negative: a batch holds ``train_batch_size`` cases whatever k is
  (``recbole_sdmtmp/data/negatives.py``), so 16 negatives should cost little more than 1;
- NGCF and LightGCN (RecBole's) at the same d and L, 1 negative, their own defaults otherwise;
- ``--before <commit>``: SD-MTMP from that commit (checked out into a temporary git worktree and
  imported from there; the code before the per-case negatives), at the same configurations.

``--terms`` also times each part of one SD-MTMP training step at the tuned configuration (the
model's methods wrapped with timers, medians over ``--steps`` steps): the rating-aware
propagation, the topic hypergraphs, the short-term attention, Loss_SD, the L2 term, backward and
the optimiser step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TUNED = {"attention_norm": "sum", "beta": 0.3, "dropout_rate": 0.2, "embedding_size": 512, "gamma2": 0.25,
         "learning_rate": 0.0005, "n_layers": 1, "reg_weight": 1e-05, "sd_detach_teacher": True,
         "sd_direction": "topic_teaches", "train_neg_sample_args": {"distribution": "uniform", "sample_num": 16}}


def one_negative(settings: dict) -> dict:
    return {**settings, "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}


def configurations(defaults: dict) -> dict[str, tuple[str, dict]]:
    """label -> (model, settings). ``defaults``: SD-MTMP's d and L on the dataset."""
    d, layers = defaults["embedding_size"], defaults["n_layers"]
    tuned_d, tuned_layers = TUNED["embedding_size"], TUNED["n_layers"]
    return {
        "SD-MTMP defaults": ("SDMTMP", {}),
        "SD-MTMP tuned, 16 negatives": ("SDMTMP", TUNED),
        "SD-MTMP tuned, 1 negative": ("SDMTMP", one_negative(TUNED)),
        f"NGCF d {d}, L {layers}": ("NGCF", {"embedding_size": d, "hidden_size_list": [d] * layers}),
        f"LightGCN d {d}, L {layers}": ("LightGCN", {"embedding_size": d, "n_layers": layers}),
        f"NGCF d {tuned_d}, L {tuned_layers}": ("NGCF", {"embedding_size": tuned_d,
                                                         "hidden_size_list": [tuned_d] * tuned_layers}),
        f"LightGCN d {tuned_d}, L {tuned_layers}": ("LightGCN", {"embedding_size": tuned_d, "n_layers": tuned_layers}),
    }


def build(model: str, dataset: str, settings: dict, data_path: str, seed: int):
    """(config, recommender, trainer, train loader) through the runner's own steps."""
    from recbole.utils import get_trainer, init_seed

    try:
        from recbole_sdmtmp.config import build_config
        from recbole_sdmtmp.registry import resolve_model
    except ImportError:  # --before: the code before the restructuring kept both in the runner
        from recbole_sdmtmp.runner import build_config, resolve_model
    from recbole_sdmtmp.runner import load_data

    settings = {"seed": seed, "data_path": data_path, "show_progress": False, "protocol": "paper", **settings}
    config = build_config(model, dataset, config_dict=settings)
    init_seed(seed, True)
    model_class, dataset_class = resolve_model(model)
    _, (train, _, _) = load_data(config, dataset_class)
    init_seed(seed, True)
    recommender = model_class(config, train._dataset).to(config["device"])
    trainer = get_trainer(config["native_model_type"], config["model"])(config, recommender)
    return config, recommender, trainer, train


def measure(spec: dict) -> dict:
    """Time ``spec['epochs']`` training epochs after one warm-up (in this process)."""
    import torch

    torch.set_num_threads(spec["threads"])
    config, _, trainer, train = build(spec["model"], spec["dataset"], spec["settings"], spec["data_path"], 2024)
    trainer._train_epoch(train, 0)
    seconds = []
    for epoch in range(1, spec["epochs"] + 1):
        start = time.perf_counter()
        trainer._train_epoch(train, epoch)
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds, "steps": len(train), "d": config["embedding_size"], "L": config["n_layers"]}


def time_terms(dataset: str, data_path: str, steps: int, threads: int) -> dict[str, float]:
    """Median seconds of each part of an SD-MTMP training step at the tuned configuration."""
    import torch

    torch.set_num_threads(threads)
    _, model, trainer, train = build("SDMTMP", dataset, TUNED, data_path, 2024)
    parts = {"rating-aware propagation (2.1.1)": "rating_aware", "topic hypergraphs (2.1.2)": "topic_aware",
             "short-term attention (2.2)": "short_term", "Loss_SD (2.1.3)": "auxiliary_loss",
             "L2 term (2.3)": "regularization"}
    seconds = {name: [] for name in [*parts, "whole calculate_loss", "backward", "optimiser step"]}
    for name, method in parts.items():
        original = getattr(model, method)

        def timed(*args, _original=original, _name=name, **kwargs):
            start = time.perf_counter()
            out = _original(*args, **kwargs)
            seconds[_name].append(time.perf_counter() - start)
            return out

        setattr(model, method, timed)
    model.train()
    batches = iter(train)
    for _ in range(steps + 1):  # the first step is a warm-up, dropped below
        batch = next(batches, None)
        if batch is None:
            batches = iter(train)
            batch = next(batches)
        trainer.optimizer.zero_grad()
        start = time.perf_counter()
        loss = sum(model.calculate_loss(batch))
        seconds["whole calculate_loss"].append(time.perf_counter() - start)
        start = time.perf_counter()
        loss.backward()
        seconds["backward"].append(time.perf_counter() - start)
        start = time.perf_counter()
        trainer.optimizer.step()
        seconds["optimiser step"].append(time.perf_counter() - start)
    return {name: statistics.median(values[1:]) for name, values in seconds.items() if values}


def run_measure(spec: dict, code: Path | None) -> dict:
    """``measure(spec)`` in a fresh process, importing the project from ``code`` (default: here)."""
    from benchmarks.fresh_process import in_fresh_process

    return in_fresh_process(__file__, spec, spec["label"], code)


def checkout(commit: str, folder: Path) -> Path:
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), commit],
                   check=True, capture_output=True)
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="Instrument")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per configuration and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", default=None, help="a commit: SD-MTMP's code before this change, same run")
    parser.add_argument("--terms", action="store_true", help="also time each part of one SD-MTMP step")
    parser.add_argument("--steps", type=int, default=7, help="--terms: timed steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each measured process")
    parser.add_argument("--data-path", default=str(REPO / "dataset"))
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config must not read this script's flags
    if args.measure:
        print(json.dumps(measure(json.loads(args.measure))))
        return 0
    sys.path.insert(0, str(REPO))
    import yaml

    own = REPO / "properties" / "dataset" / f"{args.dataset}.yaml"
    defaults = yaml.safe_load((REPO / "properties" / "model" / "SDMTMP.yaml").read_text())
    defaults.update(yaml.safe_load(own.read_text()) if own.exists() else {})
    runs = {}
    with tempfile.TemporaryDirectory() as scratch:
        code = checkout(args.before, Path(scratch) / "before") if args.before else None
        for label, (model, settings) in configurations(defaults).items():
            runs[label] = (model, settings, None)
            if code is not None and label in ("SD-MTMP defaults", "SD-MTMP tuned, 16 negatives"):
                runs[f"{label} (before: {args.before})"] = (model, settings, code)  # right beside its pair
        seconds = {label: [] for label in runs}
        steps = {}
        try:
            for round_ in range(args.rounds):
                order = list(runs.items()) if round_ % 2 == 0 else list(runs.items())[::-1]  # no side always first
                for label, (model, settings, code) in order:
                    spec = dict(label=label, model=model, settings=settings, dataset=args.dataset,
                                data_path=str(Path(args.data_path).resolve()), epochs=args.epochs,
                                threads=args.threads)
                    result = run_measure(spec, code)
                    seconds[label] += result["seconds"]
                    steps[label] = result["steps"]
                    print(f"  round {round_ + 1}: {label}: {statistics.median(result['seconds']):.2f} s/epoch "
                          f"({result['steps']} steps)", flush=True)
        finally:
            if code is not None:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(code)],
                               capture_output=True)
    median = {label: statistics.median(values) for label, values in seconds.items()}
    n = args.epochs * args.rounds
    print(f"\n{args.dataset}, protocol paper, {args.threads} torch thread(s); median of {n} epochs each "
          f"({args.rounds} rounds x {args.epochs}, after a warm-up epoch)\n")
    print("| configuration | steps / epoch | s / epoch |")
    print("|---|---|---|")
    for label in runs:
        print(f"| {label} | {steps[label]} | {median[label]:.2f} |")
    d, layers = TUNED["embedding_size"], TUNED["n_layers"]
    ratios = [("SD-MTMP tuned (16 negatives) / NGCF at its d and L", "SD-MTMP tuned, 16 negatives",
               f"NGCF d {d}, L {layers}", "<= 2"),
              ("SD-MTMP tuned (16 negatives) / LightGCN at its d and L", "SD-MTMP tuned, 16 negatives",
               f"LightGCN d {d}, L {layers}", ""),
              ("SD-MTMP tuned: 16 negatives / 1 negative", "SD-MTMP tuned, 16 negatives",
               "SD-MTMP tuned, 1 negative", "<= 1.3"),
              ("SD-MTMP defaults / NGCF at its d and L", "SD-MTMP defaults",
               f"NGCF d {defaults['embedding_size']}, L {defaults['n_layers']}", "")]
    if args.before:
        ratios += [("before / after, SD-MTMP tuned (16 negatives)", f"SD-MTMP tuned, 16 negatives (before: {args.before})",
                    "SD-MTMP tuned, 16 negatives", ">= 10"),
                   ("before / after, SD-MTMP defaults", f"SD-MTMP defaults (before: {args.before})",
                    "SD-MTMP defaults", "")]
    print("\n| ratio of median epoch times | value | target |")
    print("|---|---|---|")
    for name, top, bottom, target in ratios:
        print(f"| {name} | {median[top] / median[bottom]:.2f}x | {target} |")
    if args.terms:
        terms = time_terms(args.dataset, str(Path(args.data_path).resolve()), args.steps, args.threads)
        print(f"\nOne SD-MTMP training step at the tuned configuration (median of {args.steps} steps)\n")
        print("| part | ms |")
        print("|---|---|")
        for name, value in terms.items():
            print(f"| {name} | {1000 * value:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
