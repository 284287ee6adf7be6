"""Where each tuned study stands, read from its cell files, and the command that resumes it.

    python -m recbole_sdmtmp.status
    python -m recbole_sdmtmp.status --protocol next_item --datasets Instrument

A study spans sessions (hours on a small CPU); this answers "what is left?" from the files
themselves rather than from notes that go stale. Per model: the tuning trials finished against
those the budget draws, the chosen trial's validation NDCG@10, and the test seeds finished for
the table row with the chosen configuration (a seed run with an earlier choice counts as
missing: ``compare`` runs it again). Then SD-MTMP's own tuned studies (ablation, readings,
variants, the four sweeps) that have begun: cells finished against planned, as ``compare`` plans
them.
"""

import argparse
from pathlib import Path

from recbole_sdmtmp.compare import CHANGE_STUDIES, OURS, SWEEPS, Cell, finished_record, frozen_overrides, plan_cells
from recbole_sdmtmp.tune import MODELS, SELECTION_METRIC, chosen_trial, finished_trials, trial_cells

PROTOCOLS = ("paper", "next_item")
SEEDS = (2024, 2025, 2026)


def model_state(results: Path, model: str, dataset: str, protocol: str, n_trials: int,
                seeds=SEEDS, tuning_seed: int = 2024) -> dict:
    planned = len(trial_cells(model, dataset, protocol, n_trials, tuning_seed))
    done = len(finished_trials(results, model, dataset, protocol))
    state = {"model": model, "trials": done, "planned": planned, "valid": None, "seeds": 0}
    if done:
        chosen = chosen_trial(results, model, dataset, protocol)
        state["valid"] = chosen["best_valid_result"][SELECTION_METRIC]
        label = OURS if model == "SDMTMP" else model
        overrides = frozen_overrides(chosen["overrides"])
        state["seeds"] = sum(
            finished_record(Cell(label, model, dataset, seed, overrides, protocol, "cells_tuned"), results)
            is not None for seed in seeds)
    state["state"] = ("tuning" if done < planned else "testing" if state["seeds"] < len(seeds) else "done")
    return state


def study_report(results: Path, dataset: str, protocol: str, n_trials: int, seeds=SEEDS) -> list[str]:
    states = [model_state(results, model, dataset, protocol, n_trials, seeds) for model in MODELS]
    lines = [f"## {dataset}, protocol `{protocol}` ({n_trials} trials per model, seeds "
             f"{', '.join(map(str, seeds))})", "",
             "| model | trials | chosen valid NDCG@10 | test seeds | state |", "|---|---|---|---|---|"]
    for s in states:
        valid = f"{s['valid']:.4f}" if s["valid"] is not None else "-"
        lines.append(f"| {s['model']} | {s['trials']}/{s['planned']} | {valid} | "
                     f"{s['seeds']}/{len(seeds)} | {s['state']} |")
    left = [s for s in states if s["state"] != "done"]
    lines.append("")
    if not left:
        lines.append("Complete.")
    else:
        if any(s["state"] == "tuning" for s in left):
            lines.append(f"Resume: `python -m recbole_sdmtmp.tune --protocol {protocol} --datasets "
                         f"{dataset} --trials {n_trials}`, then")
        lines.append(f"`python -m recbole_sdmtmp.compare table --protocol {protocol} --datasets "
                     f"{dataset} --tuned` (each skips what is finished).")
    return lines + [""]


def sdmtmp_studies_report(results: Path, dataset: str, protocol: str, seeds=SEEDS) -> list[str]:
    """Tuned ablation, readings, variants and sweeps of SD-MTMP with at least one new cell.

    The tuned model's own row is shared by every study, so a study counts as begun only when a
    cell of its own rows is finished.
    """
    if not finished_trials(results, "SDMTMP", dataset, protocol):
        return []
    studies = [("ablation", None)] + [(name, None) for name in CHANGE_STUDIES] + [("sensitivity", p) for p in SWEEPS]
    lines = []
    for study, param in studies:
        cells, _ = plan_cells(study, [dataset], protocol, seeds, results, tuned=True, param=param)
        done = [finished_record(cell, results) is not None for cell in cells]
        if not any(finished for cell, finished in zip(cells, done) if cell.label != OURS):
            continue
        name = f"sensitivity `{param}`" if param else study
        flags = f" --param {param}" if param else ""
        command = f"`python -m recbole_sdmtmp.compare {study} --protocol {protocol} --datasets {dataset}{flags} --tuned`"
        left = len(cells) - sum(done)
        lines.append(f"| {name} | {sum(done)}/{len(cells)} | {'done' if not left else command} |")
    if not lines:
        return []
    return ([f"SD-MTMP's tuned studies on {dataset}, `{protocol}` (cells = rows x seeds):", "",
             "| study | cells finished | resume |", "|---|---|---|"] + lines + [""])


def studies_found(results: Path) -> list[tuple[str, str]]:
    """(dataset, protocol) of every study with at least one tuning trial."""
    return sorted((folder.name, folder.parent.name) for protocol in PROTOCOLS
                  for folder in (results / "tuning" / protocol).glob("*") if folder.is_dir())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=PROTOCOLS, help="only this protocol")
    parser.add_argument("--datasets", nargs="+", help="only these datasets")
    parser.add_argument("--trials", type=int, default=6, help="the study's trials per model")
    parser.add_argument("--results", default="results")
    args = parser.parse_args(argv)
    results = Path(args.results)
    studies = [(dataset, protocol) for dataset, protocol in studies_found(results)
               if (args.protocol in (None, protocol)) and (not args.datasets or dataset in args.datasets)]
    if not studies:
        raise SystemExit(f"no tuning study under {results / 'tuning'} matches; start one with "
                         "python -m recbole_sdmtmp.tune --protocol <p> --datasets <D> --trials 6")
    for dataset, protocol in studies:
        print("\n".join(study_report(results, dataset, protocol, args.trials)
                        + sdmtmp_studies_report(results, dataset, protocol)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
