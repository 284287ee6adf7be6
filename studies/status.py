"""Where each tuned study stands, read from the study store and the cell files, and the command
that resumes it.

    python -m studies.status
    python -m studies.status --protocol next_item --datasets Instrument
    python -m studies.status --storage postgresql://user@host/db

A study spans many runs (hours on a small CPU); this answers "what is left?" from the store and
the files themselves rather than from notes that go stale. Per model: the tuning trials run
(complete, pruned or failed) against the budget, how many were pruned or failed, the chosen
trial's validation NDCG@10, and the test seeds finished for the table row with the chosen
configuration (a seed run with an earlier choice counts as missing: ``compare`` runs it again).
Then SD-MTMP's own tuned studies (ablation, readings, variants, the four sweeps) that have begun:
cells finished against planned, as ``python -m studies`` plans them; and for protocol ``paper``,
each step of ``python -m studies paper_claim`` (seeds 2024-2026), read from its cells without running any, also for
a dataset whose paper-claim cells exist before any of its studies.
"""

import argparse
import sys
from pathlib import Path

import optuna

from recbole_sdmtmp.data.protocol import PROTOCOLS
from recbole_sdmtmp.experiments.catalogue import OURS
from recbole_sdmtmp.experiments.cells import Cell, finished_record, frozen_overrides
from recbole_sdmtmp.experiments.fits import OtherTopicFit, TopicsNotPrepared
from recbole_sdmtmp.experiments.tuning import (MODELS, budget, chosen_trial, finished_trials, open_storage,
                                               search_space, storage_url, store_exists)
from studies.catalogue import CHANGE_STUDIES, SWEEPS
from studies.paper_claim import run_paper_claim
from studies.planning import plan_study

SEEDS = (2024, 2025, 2026, 2027, 2028)
CLAIM_SEEDS = (2024, 2025, 2026)
OTHER_FIT = "tuned on other topics: --restart"  # a topic model's study on another topic fit
NOT_PREPARED = "dataset not prepared yet"  # no topic fit to check the study against: prepare, nothing else
TRIALS = 30


def model_state(results: Path, model: str, dataset: str, protocol: str, n_trials: int,
                seeds=SEEDS, storage: str | None = None, data_root: str = "dataset/") -> dict:
    planned = budget(search_space(model), n_trials)
    records = finished_trials(results, model, dataset, protocol, storage)
    states = [record["state"] for record in records]
    state = {"model": model, "trials": len(records), "planned": planned, "pruned": states.count("PRUNED"),
             "failed": states.count("FAIL"), "valid": None, "seeds": 0}
    try:
        chosen = chosen_trial(results, model, dataset, protocol, storage, data_root) if "COMPLETE" in states else None
    except TopicsNotPrepared:
        state["state"] = NOT_PREPARED
        return state
    except OtherTopicFit:
        state["state"] = OTHER_FIT
        return state
    if chosen is not None:
        state["valid"] = chosen["valid"]
        label = OURS if model == "SDMTMP" else model
        overrides = frozen_overrides(chosen["overrides"])
        state["seeds"] = sum(
            finished_record(Cell(label, model, dataset, seed, overrides, protocol, "cells_tuned"), results, data_root)
            is not None for seed in seeds)
    state["state"] = ("tuning" if len(records) < planned or state["valid"] is None
                      else "testing" if state["seeds"] < len(seeds) else "done")
    return state


def study_report(results: Path, dataset: str, protocol: str, n_trials: int, seeds=SEEDS,
                 storage: str | None = None, data_root: str = "dataset/") -> list[str]:
    states = [model_state(results, model, dataset, protocol, n_trials, seeds, storage, data_root) for model in MODELS]
    lines = [f"## {dataset}, protocol `{protocol}` ({n_trials} trials per model, seeds "
             f"{', '.join(map(str, seeds))})", "",
             "| model | trials | pruned / failed | chosen valid NDCG@10 | test seeds | state |",
             "|---|---|---|---|---|---|"]
    for s in states:
        valid = f"{s['valid']:.4f}" if s["valid"] is not None else "-"
        lines.append(f"| {s['model']} | {s['trials']}/{s['planned']} | {s['pruned']} / {s['failed']} | {valid} | "
                     f"{s['seeds']}/{len(seeds)} | {s['state']} |")
    left = [s for s in states if s["state"] != "done"]
    flag = f" --storage {storage}" if storage else ""
    seed_flags = " --seeds " + " ".join(map(str, seeds))
    lines.append("")
    if not left:
        lines.append("Complete.")
    else:
        if any(s["state"] == NOT_PREPARED for s in left):
            lines.append(f"{Path(data_root) / dataset} holds no topics yet: `python -m dataset_preprocess {dataset}` "
                         "(a shipped dataset gets its pinned fit), then `python -m studies.status` again.")
        stale = [s["model"] for s in left if s["state"] == OTHER_FIT]
        if stale:
            lines.append(f"Tuned on another topic fit than {Path(data_root) / dataset} holds: `python -m recbole_sdmtmp.tune "
                         f"--protocol {protocol} --datasets {dataset} --models {' '.join(stale)} --trials "
                         f"{n_trials} --restart{flag}`, then")
        if any(s["state"] == "tuning" for s in left):
            lines.append(f"Resume: `python -m recbole_sdmtmp.tune --protocol {protocol} --datasets "
                         f"{dataset} --trials {n_trials}{flag}`, then")
        lines.append(f"`python -m recbole_sdmtmp.compare table --protocol {protocol} --datasets "
                     f"{dataset} --tuned{seed_flags}{flag}` (each skips what is finished).")
    return lines + [""]


def sdmtmp_studies_report(results: Path, dataset: str, protocol: str, seeds=SEEDS,
                          storage: str | None = None, data_root: str = "dataset/") -> list[str]:
    """Tuned ablation, readings, variants and sweeps of SD-MTMP with at least one new cell.

    The tuned model's own row is shared by every study, so a study counts as begun only when a
    cell of its own rows is finished.
    """
    if not any(r["state"] == "COMPLETE" for r in finished_trials(results, "SDMTMP", dataset, protocol, storage)):
        return []
    studies = [("ablation", None)] + [(name, None) for name in CHANGE_STUDIES] + [("sensitivity", p) for p in SWEEPS]
    lines = []
    for study, param in studies:
        try:
            cells, _ = plan_study(study, [dataset], protocol, seeds, results, tuned=True, param=param,
                                  storage=storage, data_root=data_root)
        except OtherTopicFit:
            return []  # its tuned configuration waits for SD-MTMP's restarted study (the table says so)
        done = [finished_record(cell, results, data_root) is not None for cell in cells]
        if not any(finished for cell, finished in zip(cells, done) if cell.label != OURS):
            continue
        name = f"sensitivity `{param}`" if param else study
        flags = f" --param {param}" if param else ""
        command = f"`python -m studies {study} --protocol {protocol} --datasets {dataset}{flags} --tuned`"
        left = len(cells) - sum(done)
        lines.append(f"| {name} | {sum(done)}/{len(cells)} | {'done' if not left else command} |")
    if not lines:
        return []
    return ([f"SD-MTMP's tuned studies on {dataset}, `{protocol}` (cells = rows x seeds):", "",
             "| study | cells finished | resume |", "|---|---|---|"] + lines + [""])


def paper_claim_report(results: Path, dataset: str, storage: str | None = None,
                       data_root: str = "dataset/") -> list[str]:
    """Each step of ``python -m studies paper_claim`` on ``dataset``: finished, or what it still waits for."""
    steps = run_paper_claim(dataset, CLAIM_SEEDS, results, data_root, storage=storage, run=False)
    lines = [f"The paper's procedure step by step on {dataset} (`python -m studies paper_claim "
             f"--datasets {dataset}`; seeds {', '.join(map(str, CLAIM_SEEDS))}):", "",
             "| step | state |", "|---|---|"]
    for rows in steps:
        lines.append(f"| {rows.step.number} | {'finished' if rows.pending is None else rows.pending} |")
    return lines + [""]


def studies_found(results: Path, storage: str | None = None) -> list[tuple[str, str]]:
    """(dataset, protocol) of every study in the store (named <protocol>/<Dataset>/<Model>)."""
    url = storage_url(results, storage)
    if not store_exists(url):
        return []
    names = optuna.get_all_study_names(storage=open_storage(url))
    return sorted({(name.split("/")[1], name.split("/")[0]) for name in names
                   if name.count("/") == 2 and name.split("/")[0] in PROTOCOLS})


def claim_datasets(results: Path) -> list[str]:
    """Datasets with cells of ``python -m studies paper_claim``'s later steps (run on the printed split),
    whether or not they have a tuning study yet."""
    folder = results / "cells" / "paper_as_printed"
    return sorted(d.name for d in folder.glob("*") if d.is_dir()) if folder.is_dir() else []


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=PROTOCOLS, help="only this protocol")
    parser.add_argument("--datasets", nargs="+", help="only these datasets")
    parser.add_argument("--trials", type=int, default=TRIALS, help="the study's trials per model")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS), help="the table's test seeds")
    parser.add_argument("--results", default="results")
    parser.add_argument("--storage", help="the study store (default <results>/tuning/studies.journal; "
                                          "see tune --help)")
    parser.add_argument("--data-path", default="dataset/", help="the prepared datasets (their topic fits)")
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config must not read this command's flags
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = Path(args.results)
    studies = [(dataset, protocol) for dataset, protocol in studies_found(results, args.storage)
               if (args.protocol in (None, protocol)) and (not args.datasets or dataset in args.datasets)]
    claim_only = [dataset for dataset in claim_datasets(results)
                  if args.protocol in (None, "paper") and (not args.datasets or dataset in args.datasets)
                  and (dataset, "paper") not in studies]
    if not studies and not claim_only:
        raise SystemExit(f"no tuning study in {storage_url(results, args.storage)} matches; start one "
                         f"with python -m recbole_sdmtmp.tune --protocol <p> --datasets <D> --trials {TRIALS}")
    for dataset, protocol in studies:
        claim = paper_claim_report(results, dataset, args.storage, args.data_path) if protocol == "paper" else []
        print("\n".join(study_report(results, dataset, protocol, args.trials, tuple(args.seeds), args.storage,
                                     args.data_path)
                        + sdmtmp_studies_report(results, dataset, protocol, tuple(args.seeds), args.storage,
                                                args.data_path) + claim))
    for dataset in claim_only:  # the paper's procedure has started before the dataset's studies
        print("\n".join([f"No `paper` tuning study on {dataset} yet (python -m recbole_sdmtmp.tune "
                         f"--protocol paper --datasets {dataset} --trials {TRIALS}).", ""]
                        + paper_claim_report(results, dataset, args.storage, args.data_path)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
