"""Seconds per training epoch and per full-sort evaluation of the slow baselines at their tuned
configurations, each part of a training step timed, against the code of another commit, in one run.

    python benchmarks/baseline_speed.py --dataset Instrument --before e1f0fd6

Each (model, code) pair trains in its own process through RecBole's trainer at the configuration
the study store chose (``results/tuning/``, protocol ``paper``, read by this checkout's code):
one warm-up epoch, then ``--epochs`` timed epochs and as many timed evaluations of the
validation split. The parts of a step are the model's own methods, wrapped with timers (a method
called twice in a step, such as RGCL's two views, counts twice), medians over the timed steps;
backward and the optimiser step are timed around RecBole's calls. Seconds are the process's CPU
time (``--clock cpu``, the default: one thread, so what the work costs whatever else runs on the
machine) or wall time (``--clock wall``). ``--before <commit>``: the same models from that
commit (``git archive`` into a temporary folder, imported from there), each run beside its pair.
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
MODELS = ("RGCL", "RRPU", "MISSRec", "GRU4Rec", "SASRec", "SDMTMP")
# the methods timed as parts of a step (those present in both codes)
PARTS = {
    "RGCL": ("forward", "node_discrimination_loss", "edge_discrimination_loss"),
    "RRPU": ("user_reviews_of", "forward", "item_representations"),
    "MISSRec": ("forward", "item_representations"),
    "GRU4Rec": ("forward",),
    "SASRec": ("forward",),
    "SDMTMP": ("propagate", "short_term", "auxiliary_loss"),
}


def chosen(model: str, dataset: str, data_path: str) -> dict:
    """The configuration the study store chose (read by this checkout's code, for both sides)."""
    from recbole_sdmtmp.experiments.planning import tuned_overrides

    return tuned_overrides(REPO / "results", model, dataset, "paper", data_root=data_path)


def build(model: str, dataset: str, data_path: str, seed: int, threads: int, overrides: dict):
    """(model, trainer, train loader, valid loader) at ``overrides``, through the project's own
    steps (``runner.load_data``)."""
    import torch
    from recbole.utils import get_trainer, init_seed

    from recbole_sdmtmp.config import build_config
    from recbole_sdmtmp.experiments.cells import expand_overrides
    from recbole_sdmtmp.registry import resolve_model
    from recbole_sdmtmp.runner import load_data

    torch.set_num_threads(threads)
    settings = {"seed": seed, "protocol": "paper", "data_path": data_path, "show_progress": False}
    base = build_config(model, dataset, config_dict=settings)
    settings.update(expand_overrides(overrides, base))
    config = build_config(model, dataset, config_dict=settings)
    init_seed(seed, True)
    model_class, dataset_class = resolve_model(model)
    _, (train, valid, _) = load_data(config, dataset_class)
    init_seed(seed, True)
    recommender = model_class(config, train._dataset).to(config["device"])
    trainer = get_trainer(config["native_model_type"], config["model"])(config, recommender)
    own_optimizer = getattr(recommender, "build_optimizer", lambda: None)()
    if own_optimizer is not None:
        trainer.optimizer = own_optimizer
    return recommender, trainer, train, valid


def measure(spec: dict) -> dict:
    """Epoch, evaluation and per-part seconds of one model (in this process)."""
    recommender, trainer, train, valid = build(spec["model"], spec["dataset"], spec["data_path"], 2024,
                                               spec["threads"], spec["overrides"])
    clock = time.process_time if spec["clock"] == "cpu" else time.perf_counter
    parts: dict[str, float] = {}
    steps: list[dict] = []

    def timed(name, method):
        def wrapper(*args, **kwargs):
            start = clock()
            try:
                return method(*args, **kwargs)
            finally:
                parts[name] = parts.get(name, 0.0) + clock() - start
        return wrapper

    for name in (*PARTS[spec["model"]], "calculate_loss"):
        if hasattr(recommender, name):
            setattr(recommender, name, timed(name, getattr(recommender, name)))
    optimizer = trainer.optimizer
    optimizer.step = timed("optimiser step", optimizer.step)
    original_zero_grad = optimizer.zero_grad

    def zero_grad(*args, **kwargs):  # RecBole calls it first in each step: a step ends here
        if parts:
            steps.append(dict(parts))
            parts.clear()
        return original_zero_grad(*args, **kwargs)

    optimizer.zero_grad = zero_grad
    import torch

    original_backward = torch.Tensor.backward
    torch.Tensor.backward = timed("backward", original_backward)
    trainer._train_epoch(train, 0)  # warm-up
    steps.clear()
    parts.clear()
    epochs, evaluations = [], []
    for epoch in range(1, spec["epochs"] + 1):
        start = clock()
        trainer._train_epoch(train, epoch)
        epochs.append(clock() - start)
        start = clock()
        trainer._valid_epoch(valid)
        evaluations.append(clock() - start)
    if parts:
        steps.append(dict(parts))
    torch.Tensor.backward = original_backward
    names = sorted({name for step in steps for name in step})
    per_part = {name: statistics.median(step.get(name, 0.0) for step in steps) for name in names}
    return {"epochs": epochs, "evaluations": evaluations, "parts": per_part, "steps": len(train)}


def run_measure(spec: dict, code: Path | None) -> dict:
    """``measure(spec)`` in a fresh process, importing the project from ``code`` (default: here)."""
    from benchmarks.fresh_process import in_fresh_process

    return in_fresh_process(__file__, spec, spec["model"], code)


def export(commit: str, folder: Path) -> Path:
    """The tree of ``commit`` in ``folder`` (no worktree registered in the repository)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="Instrument")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (and evaluations) per model and code")
    parser.add_argument("--before", default=None, help="a commit: the models' code before, in the same run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each measured process")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="the process's CPU time (default: other jobs on the machine do not lengthen it) "
                             "or wall time")
    parser.add_argument("--data-path", default=str(REPO / "dataset"))
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config must not read this script's flags
    if args.measure:
        print(json.dumps(measure(json.loads(args.measure))))
        return 0
    sys.path.insert(0, str(REPO))  # the chosen configurations: this checkout's package reads the store
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        codes = {"after": None}
        if args.before:
            codes = {"before": export(args.before, Path(scratch) / "before"), "after": None}
        data_path = str(Path(args.data_path).resolve())
        for index, model in enumerate(args.models):
            overrides = chosen(model, args.dataset, data_path)
            order = list(codes.items()) if index % 2 == 0 else list(codes.items())[::-1]  # no code always first
            for label, code in order:
                spec = dict(model=model, dataset=args.dataset, data_path=data_path, epochs=args.epochs,
                            threads=args.threads, overrides=overrides, clock=args.clock)
                results[model, label] = result = run_measure(spec, code)
                print(f"  {model} ({label}): {statistics.median(result['epochs']):.2f} s/epoch, "
                      f"evaluation {statistics.median(result['evaluations']):.2f} s", flush=True)
    labels = list(codes)
    print(f"\n{args.dataset}, protocol paper, tuned configurations, {args.threads} torch thread(s), {args.clock} "
          f"seconds; medians of {args.epochs} epochs after a warm-up\n")
    header = " | ".join(f"{what} {label}" for what in ("s/epoch", "eval s") for label in labels)
    print(f"| model | steps / epoch | {header} |" + (" epoch before/after | eval before/after |" if args.before else ""))
    print("|---|---|" + "---|" * (2 * len(labels) + (2 if args.before else 0)))
    for model in args.models:
        epoch = {label: statistics.median(results[model, label]["epochs"]) for label in labels}
        evaluation = {label: statistics.median(results[model, label]["evaluations"]) for label in labels}
        row = [f"{epoch[label]:.2f}" for label in labels] + [f"{evaluation[label]:.2f}" for label in labels]
        if args.before:
            row += [f"{epoch['before'] / epoch['after']:.1f}x", f"{evaluation['before'] / evaluation['after']:.1f}x"]
        print(f"| {model} | {results[model, 'after']['steps']} | " + " | ".join(row) + " |")
    print("\nOne training step, by part (ms, median over the timed steps)\n")
    print("| model | part | " + " | ".join(f"ms {label}" for label in labels) + " |")
    print("|---|---|" + "---|" * len(labels))
    for model in args.models:
        names = sorted({name for label in labels for name in results[model, label]["parts"]})
        for name in names:
            cells = [f"{1000 * results[model, label]['parts'].get(name, float('nan')):.0f}" for label in labels]
            print(f"| {model} | {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
