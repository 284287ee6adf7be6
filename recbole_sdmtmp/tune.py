"""Fair tuning: the same number of trials for every model, selection on validation only.

    python -m recbole_sdmtmp.tune --protocol paper --datasets Instrument --trials 4
    python -m recbole_sdmtmp.compare table --protocol paper --datasets Instrument --tuned

Each model declares its search space in ``properties/tuning/<Model>.yaml`` (lists of values;
``a.b`` keys set key b of dict a). A study draws ``--trials`` distinct configurations with a
seeded random search: trial 0 is always the untuned default, the others are drawn uniformly from
the space's grid without repetition (a space smaller than the budget is run whole). Every trial
trains with the tuning seed under the chosen protocol and is scored by validation NDCG@10 (the
protocol's ``valid_metric``); the test split is never read. Trials are cells like the
comparison's (``<results>/tuning/<protocol>/<Dataset>/<Model>_trial_<k>/``), so an interrupted
study resumes where it stopped. ``results/tuning_<Dataset>_<protocol>.md`` lists, per model, the
space, every trial and the chosen configuration, which ``compare --tuned`` then runs on every
seed and tests once.
"""

import argparse
import itertools
import json
import logging
import random
import sys
import zlib
from pathlib import Path

import yaml

from dataset_preprocess.atomic_io import atomic_write_text
from recbole_sdmtmp.compare import BASELINES, Cell, frozen_overrides, run_cells
from recbole_sdmtmp.runner import PROPERTIES

TUNING = PROPERTIES / "tuning"
MODELS = ("SDMTMP", *BASELINES)
SELECTION_METRIC = "ndcg@10"


def search_space(model: str) -> dict[str, list]:
    """The declared space of ``model``: {key: [values]} (empty: nothing to tune)."""
    path = TUNING / f"{model}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no search space for {model}: write {path} (one list of values per key)")
    space = yaml.safe_load(path.read_text()) or {}
    for key, values in space.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"{path}: {key} must be a non-empty list of values")
    return space


def draw_trials(space: dict, n_trials: int, seed: int) -> list[dict]:
    """Trial 0 = the default ({}); then distinct random grid points (all of them if fewer)."""
    keys = sorted(space)
    grid_size = 1
    for key in keys:
        grid_size *= len(space[key])
    trials = [{}]
    if not keys:
        return trials
    rng = random.Random(seed)
    if grid_size <= n_trials - 1:
        points = list(itertools.product(*(space[key] for key in keys)))
    else:
        seen, points = set(), []
        while len(points) < n_trials - 1:
            point = tuple(rng.randrange(len(space[key])) for key in keys)
            if point not in seen:
                seen.add(point)
                points.append(tuple(space[key][i] for key, i in zip(keys, point)))
    return trials + [dict(zip(keys, point)) for point in points[: n_trials - 1]]


def study_seed(base_seed: int, model: str, dataset: str, protocol: str) -> int:
    """A fixed, model-specific stream of draws (stable across Python runs, unlike hash())."""
    return base_seed + zlib.crc32(f"{model}/{dataset}/{protocol}".encode())


def trial_cells(model: str, dataset: str, protocol: str, n_trials: int, seed: int) -> list[Cell]:
    trials = draw_trials(search_space(model), n_trials, study_seed(seed, model, dataset, protocol))
    return [
        Cell(f"{model}_trial_{index}", model, dataset, seed, frozen_overrides(overrides),
             protocol=protocol, study="tuning", evaluate_test=False)
        for index, overrides in enumerate(trials)
    ]


def finished_trials(results: Path, model: str, dataset: str, protocol: str) -> list[dict]:
    """Every finished trial record of a study, in trial order."""
    folder = results / "tuning" / protocol / dataset
    records = []
    for path in folder.glob(f"{model}_trial_*/seed*.json"):
        record = json.loads(path.read_text())
        record["trial"] = int(path.parent.name.rsplit("_", 1)[1])
        records.append(record)
    return sorted(records, key=lambda record: record["trial"])


def chosen_trial(results: Path, model: str, dataset: str, protocol: str) -> dict:
    """The trial with the best validation NDCG@10 (the earlier trial on a tie)."""
    records = finished_trials(results, model, dataset, protocol)
    if not records:
        raise FileNotFoundError(
            f"{model} has no tuning trials for {dataset} under protocol {protocol!r}; run "
            f"python -m recbole_sdmtmp.tune --protocol {protocol} --datasets {dataset} --models {model}"
        )
    return max(records, key=lambda record: (record["best_valid_result"][SELECTION_METRIC], -record["trial"]))


def write_report(results: Path, dataset: str, protocol: str, models, n_trials: int, command: str) -> Path:
    lines = [f"# Tuning on {dataset}, protocol `{protocol}`", "",
             f"Produced by `{command}`. {n_trials} trials per model (trial 0 = the untuned default, "
             "the others a seeded random draw from the declared space in "
             "`properties/tuning/<Model>.yaml`; a model with a smaller space runs all of it). "
             "Each trial trains with one seed and is scored by validation NDCG@10; the test split "
             "is never read here. The chosen configuration is the best validation NDCG@10.", ""]
    lines += ["| model | trials run | space size | default valid NDCG@10 | best valid NDCG@10 | chosen trial | chosen configuration | minutes |",
              "|---|---|---|---|---|---|---|---|"]
    details = []
    for model in models:
        records = finished_trials(results, model, dataset, protocol)
        if not records:
            continue
        space = search_space(model)
        size = 1
        for values in space.values():
            size *= len(values)
        best = chosen_trial(results, model, dataset, protocol)
        default = next((r for r in records if r["trial"] == 0), None)
        default_score = f"{default['best_valid_result'][SELECTION_METRIC]:.4f}" if default else "n/a"
        minutes = sum((r["train_seconds_per_epoch"] or 0) * r["epochs"] + (r["eval_seconds"] or 0) * r["epochs"]
                      for r in records) / 60
        chosen = ", ".join(f"{k}={v}" for k, v in sorted(best["overrides"].items())) or "defaults"
        lines.append(f"| {model} | {len(records)} | {size} | {default_score} | "
                     f"{best['best_valid_result'][SELECTION_METRIC]:.4f} | {best['trial']} | {chosen} | {minutes:.1f} |")
        details += [f"### {model}", "", "Space: " + ("; ".join(f"`{k}` {v}" for k, v in space.items()) or "none"), "",
                    "| trial | configuration | epochs | valid NDCG@10 | valid HR@10 |", "|---|---|---|---|---|"]
        for r in records:
            config = ", ".join(f"{k}={v}" for k, v in sorted(r["overrides"].items())) or "defaults"
            details.append(f"| {r['trial']} | {config} | {r['epochs']} | "
                           f"{r['best_valid_result'][SELECTION_METRIC]:.4f} | {r['best_valid_result']['hit@10']:.4f} |")
        details.append("")
    lines += ["", "Minutes: training and validation time of all trials (epochs x median epoch time).", "",
              "## Every trial", "", *details]
    path = results / f"tuning_{dataset}_{protocol}.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=("paper", "next_item"), default="paper")
    parser.add_argument("--datasets", nargs="+", default=["Instrument"])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--trials", type=int, default=4, help="trials per model (the same for all)")
    parser.add_argument("--seed", type=int, default=2024, help="the tuning seed (training and draws)")
    parser.add_argument("--results", default="results")
    parser.add_argument("--data-path", default="dataset/")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    parser.add_argument("--report-only", action="store_true", help="rewrite the reports from finished trials")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parse_args(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config must not read this command's flags
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.trials < 1:
        raise SystemExit("--trials must be at least 1")
    results = Path(args.results)
    # The report covers every model with finished trials, not only this run's --models: a study
    # resumed one model at a time still ends in one report.
    reported = list(dict.fromkeys([*MODELS, *args.models]))
    for dataset in args.datasets:
        if not args.report_only:
            for model in args.models:
                cells = trial_cells(model, dataset, args.protocol, args.trials, args.seed)
                run_cells(cells, results, args.data_path, threads=args.threads)
        command = f"python -m recbole_sdmtmp.tune --protocol {args.protocol} --datasets {dataset} --trials {args.trials}"
        print(write_report(results, dataset, args.protocol, reported, args.trials, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
