"""What a verdict costs: every model's training epoch at its chosen configuration, and the
tuning study that the store's trials would take at these speeds, in one run.

    python benchmarks/verdict_cost.py --dataset Instrument --epochs 3
    python benchmarks/verdict_cost.py --dataset MyShop --epochs 3 --raw-file reviews.csv

Each model trains in its own process through the tuning trials' own path (``runner.run``, no
test split, no checkpoint) for ``--epochs`` epochs, each followed by an evaluation of the
validation split as in a trial, at the configuration the study store chose
(``results/tuning/studies.journal``, protocol ``--protocol``), with ``--threads`` torch threads. The
seconds are medians over those epochs and evaluations, wall time and, beside it, the process's
CPU time (one thread: what the epoch costs whatever else runs on the machine).

``projected study time``: over the models, over every finished trial of the store (complete,
pruned or failed), the epochs it ran times this run's seconds per epoch plus as many
evaluations at this run's seconds per evaluation; beside it the wall time the store recorded
for the same trials. A trial's configuration is not the chosen one (a smaller embedding runs
faster): the projection prices every trial at the chosen configuration's speed. Read the
seconds against SD-MTMP's row, measured in the same run: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's package, not an installed one


def measure(spec: dict) -> dict:
    """Seconds per training epoch and per validation of one model (in this process)."""
    import torch

    from recbole_sdmtmp import runner
    from recbole_sdmtmp.config import build_config
    from recbole_sdmtmp.experiments.cells import expand_overrides
    from recbole_sdmtmp.experiments.planning import tuned_overrides

    torch.set_num_threads(spec["threads"])
    cpu: dict[str, list] = {}
    timed = runner._timed

    def cpu_timed(method, seconds, after=None):  # runner's wall timer, and the process's CPU time beside it
        record = cpu.setdefault(method.__name__, [])

        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return method(*args, **kwargs)
            finally:
                record.append(time.process_time() - start)
        return timed(wrapper, seconds, after)

    runner._timed = cpu_timed
    model, dataset, protocol = spec["model"], spec["dataset"], spec["protocol"]
    settings = {"seed": spec["seed"], "protocol": protocol, "data_path": spec["data_path"], "show_progress": False,
                "epochs": spec["epochs"], "stopping_step": spec["epochs"] + 1, "state": "ERROR"}
    base = build_config(model, dataset, config_dict=settings)
    overrides = tuned_overrides(Path(spec["results"]), model, dataset, protocol, data_root=spec["data_path"])
    settings.update(expand_overrides(overrides, base))
    result = runner.run(build_config(model, dataset, config_dict=settings), evaluate_test=False, saved=False)
    return {"epoch": result.train_seconds_per_epoch, "evaluation": result.eval_seconds, "epochs": result.epochs,
            "cpu_epoch": statistics.median(cpu["_train_epoch"]), "cpu_evaluation": statistics.median(cpu["_valid_epoch"])}


def run_measure(spec: dict) -> dict:
    """``measure(spec)`` in a fresh process."""
    from benchmarks.fresh_process import in_fresh_process

    return in_fresh_process(__file__, spec, spec["model"])


def prepare(dataset: str, raw_file: str | None, data_path: str, protocol: str) -> str:
    """The dataset's RecBole name, its atomic files, topics and review vectors prepared (from
    ``raw_file``) where missing, before anything is timed."""
    import recbole_sdmtmp  # noqa: F401  (RecBole compatibility fixes first)
    from dataset_preprocess.pipeline import INPUT_ERRORS, resolve_source
    from dataset_preprocess.registry import lookup
    from recbole_sdmtmp.config import build_config, ensure_prepared

    try:
        source = None
        if raw_file is not None:
            source = resolve_source(dataset, raw_file, download=False)
            dataset = source.name
        else:
            amazon = lookup(dataset)
            dataset = amazon.name if amazon is not None else dataset
        for reader in ("SDMTMP", "RGCL"):  # the topics, then the review vectors RGCL, RRPU and MISSRec read
            config = build_config(reader, dataset, config_dict={"protocol": protocol, "data_path": data_path})
            ensure_prepared(config, raw_file=raw_file, source=source)
    except INPUT_ERRORS + (ValueError,) as error:
        raise SystemExit(f"error: {error}") from None
    return dataset


def main(argv=None) -> int:
    from recbole_sdmtmp.experiments.tuning import MODELS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="Instrument")
    parser.add_argument("--epochs", type=int, default=3, help="epochs (each with its evaluation) per model")
    parser.add_argument("--raw-file", default=None, help="the raw reviews, if the dataset is not prepared yet")
    parser.add_argument("--protocol", default="paper")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each model's process")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--results", default=str(REPO / "results"), help="the folder of the study store")
    parser.add_argument("--data-path", default=str(REPO / "dataset"))
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config must not read this script's flags
    if args.measure:
        print(json.dumps(measure(json.loads(args.measure))))
        return 0
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")

    from recbole_sdmtmp.experiments.tuning import finished_trials, storage_url

    data_path = str(Path(args.data_path).resolve())
    dataset = prepare(args.dataset, args.raw_file, data_path, args.protocol)
    trials = {model: finished_trials(Path(args.results), model, dataset, args.protocol) for model in args.models}
    missing = [model for model, records in trials.items() if not any(r["state"] == "COMPLETE" for r in records)]
    if missing:
        raise SystemExit(f"error: no complete tuning trial of {', '.join(missing)} for {dataset} under protocol "
                         f"{args.protocol!r} in {storage_url(Path(args.results))}; run python -m recbole_sdmtmp.tune "
                         f"--protocol {args.protocol} --datasets {dataset} --models {' '.join(missing)}")
    rows = []
    for model in args.models:
        spec = dict(model=model, dataset=dataset, protocol=args.protocol, data_path=data_path, epochs=args.epochs,
                    threads=args.threads, seed=args.seed, results=str(Path(args.results).resolve()))
        measured = run_measure(spec)
        epochs = sum(r["epochs"] for r in trials[model])
        row = dict(model=model, **{key: measured[key] or 0.0 for key in ("epoch", "evaluation", "cpu_epoch",
                                                                         "cpu_evaluation")},
                   trials=len(trials[model]), epochs=epochs, stored=sum(r["seconds"] for r in trials[model]))
        row["projected"] = epochs * (row["epoch"] + row["evaluation"])
        row["projected_cpu"] = epochs * (row["cpu_epoch"] + row["cpu_evaluation"])
        rows.append(row)
        print(f"  {model}: {row['epoch']:.2f} s/epoch ({row['cpu_epoch']:.2f} CPU s), evaluation "
              f"{row['evaluation']:.2f} s ({measured['epochs']} epochs)", file=sys.stderr, flush=True)
    reference = next((row for row in rows if row["model"] == "SDMTMP"), None)

    def ratio(row, key):
        return f"{row[key] / reference[key]:.2f}" if reference and reference[key] else "-"

    print(f"\n{dataset}, protocol {args.protocol}, chosen configurations, {args.threads} torch thread(s), "
          f"medians of {args.epochs} epochs; CPU s: the process's CPU time, which other jobs on the machine "
          f"do not lengthen\n")
    print("| model | s / training epoch | x SD-MTMP | CPU s / training epoch | x SD-MTMP (CPU) | s / evaluation "
          "| trials in store | epochs in store | projected h | projected h (CPU) | store h |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['epoch']:.3f} | {ratio(row, 'epoch')} | {row['cpu_epoch']:.3f} | "
              f"{ratio(row, 'cpu_epoch')} | {row['evaluation']:.3f} | {row['trials']} | {row['epochs']} | "
              f"{row['projected'] / 3600:.2f} | {row['projected_cpu'] / 3600:.2f} | {row['stored'] / 3600:.2f} |")
    print(f"\nfrom CPU seconds: {sum(r['projected_cpu'] for r in rows) / 3600:.1f} h")
    print(f"projected study time: {sum(r['projected'] for r in rows) / 3600:.1f} h "
          f"(store: {sum(r['stored'] for r in rows) / 3600:.1f} h)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
