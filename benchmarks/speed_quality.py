"""Test NDCG@10 of models at their chosen configurations, on the same seeds, with this code and
with another commit's: a faster code path must leave the quality where it was.

    python benchmarks/speed_quality.py --dataset Instrument --models RGCL RRPU --seeds 2024 2025 --before e1f0fd6
    python benchmarks/speed_quality.py --dataset Instrument --models RGCL RRPU MISSRec --seeds 2024

Each (model, seed, code) is one full run as a table cell makes it (``runner.run``: training
with early stopping on validation, then the test split with the best checkpoint), in
its own process, one torch thread, its checkpoints in a temporary folder (``results/`` is not
written). The chosen configurations are read from the study store by this checkout's code.
Prints one row per (model, seed): NDCG@10 and epochs of both codes, and the seconds per epoch.
Without ``--before`` the "before" side is the committed table cell of that model and seed
(``results/cells_tuned/paper/<D>/<model>/seed<s>.json``), run by the code that made the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from baseline_speed import MODELS, REPO, chosen, export


def measure(spec: dict) -> dict:
    """One run of ``spec`` (in this process), the steps of a table cell: the model's own
    configuration, the protocol, the seed and the overrides, then training and the test."""
    import torch

    from recbole_sdmtmp import runner
    from recbole_sdmtmp.config import build_config
    from recbole_sdmtmp.experiments.cells import expand_overrides

    torch.set_num_threads(1)
    model, dataset = spec["model"], spec["dataset"]
    settings = {"seed": spec["seed"], "protocol": "paper", "data_path": spec["data_path"], "show_progress": False,
                "checkpoint_dir": str(Path(spec["scratch"]) / "checkpoints")}
    settings.update(expand_overrides(spec["overrides"], build_config(model, dataset, config_dict=settings)))
    result = runner.run(build_config(model, dataset, config_dict=settings))
    return {"ndcg@10": result.test_result["ndcg@10"], "epochs": result.epochs,
            "seconds": result.train_seconds_per_epoch}


def run_measure(spec: dict, code: Path | None) -> dict:
    """``measure(spec)`` in a fresh process, importing the project from ``code`` (default: here)."""
    from benchmarks.fresh_process import in_fresh_process

    return in_fresh_process(__file__, spec, f"{spec['model']} seed {spec['seed']}", code)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="Instrument")
    parser.add_argument("--models", nargs="+", default=["RGCL", "RRPU", "MISSRec"], choices=MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[2024, 2025])
    parser.add_argument("--before", default=None, help="the commit of the code before (default: the table's cells)")
    parser.add_argument("--data-path", default=str(REPO / "dataset"))
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config must not read this script's flags
    if args.measure:
        print(json.dumps(measure(json.loads(args.measure))))
        return 0
    sys.path.insert(0, str(REPO))
    data_path = str(Path(args.data_path).resolve())
    print(f"{args.dataset}, protocol paper, chosen configurations; before: {args.before or 'the table cells'}\n")
    print("| model | seed | NDCG@10 before | NDCG@10 after | epochs before | epochs after | s/epoch before | s/epoch after |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        codes = {"before": export(args.before, Path(scratch) / "before") if args.before else "cells", "after": None}
        for model in args.models:
            overrides = chosen(model, args.dataset, data_path)
            for seed in args.seeds:
                runs = {}
                for label, code in codes.items():
                    if code == "cells":
                        cell = REPO / "results" / "cells_tuned" / "paper" / args.dataset / model / f"seed{seed}.json"
                        record = json.loads(cell.read_text())
                        runs[label] = {"ndcg@10": record["test_result"]["ndcg@10"], "epochs": record["epochs"],
                                       "seconds": record["train_seconds_per_epoch"]}
                        continue
                    spec = dict(model=model, dataset=args.dataset, seed=seed, data_path=data_path,
                                overrides=overrides, scratch=str(Path(scratch) / label / "results"))
                    runs[label] = run_measure(spec, code)
                b, a = runs["before"], runs["after"]
                print(f"| {model} | {seed} | {b['ndcg@10']:.4f} | {a['ndcg@10']:.4f} | {b['epochs']} | {a['epochs']} | "
                      f"{b['seconds']:.2f} | {a['seconds']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
