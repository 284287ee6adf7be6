"""Does the leaking short-term window need any learning? SD-MTMP evaluated untrained (its
initial weights, no epoch run) at the paper-claim step 5 configuration (test split read).

    python -m studies.leak_untrained --datasets Instrument Gift_Cards Magazine_Subscriptions

Same configurations as ``studies/leak_depth.py`` (step 5's, read from its committed cell) at
L = 1, 2, 3, with the short-term window from the complete record (the test period under the
printed 80/20 split) and from the training history; protocol ``paper_as_printed``; each seed
only sets the initial weights. Prints a Markdown table (nothing is written): beside the trained
figures of ``results/leak_depth.md`` it tells how much of the leaking score is there before
training. A diagnostic of the paper's procedure that reads the test split, never a comparison.
"""

from __future__ import annotations

import logging
import statistics
from pathlib import Path

from studies.cell_study_args import parse_cell_study_args
from studies.leak_depth import LAYERS, WINDOWS, step5_overrides


def untrained_test(dataset: str, overrides: dict, seed: int, data_path: str, threads: int) -> dict:
    """Test metrics of SD-MTMP at its initial weights: RecBole's evaluation, no training epoch."""
    import torch

    from recbole_sdmtmp.config import build_config
    from recbole_sdmtmp.runner import run

    torch.set_num_threads(threads)
    config = build_config("SDMTMP", dataset, config_dict={
        **overrides, "protocol": "paper_as_printed", "seed": seed, "data_path": data_path,
        "show_progress": False, "checkpoint_dir": str(Path("/tmp") / "leak_untrained")})
    config["epochs"] = 0  # the trainer's loop runs no epoch; the test reads the initial weights
    return run(config, saved=False).test_result


def main(argv=None) -> int:
    args = parse_cell_study_args(__doc__, ["Instrument", "Gift_Cards", "Magazine_Subscriptions"], argv)
    logging.getLogger().setLevel(logging.WARNING)
    results = Path(args.results)
    print("# SD-MTMP untrained with the leaking window (a diagnostic that reads the test split)\n")
    print(f"SD-MTMP untrained (no epoch), protocol paper_as_printed, step 5's configuration; test NDCG@10 "
          f"and HR@10, mean ± sample std over the initial weights of seeds {', '.join(map(str, args.seeds))} "
          f"(`python -m studies.leak_untrained --datasets {' '.join(args.datasets)} --seeds {' '.join(map(str, args.seeds))}`)\n")
    print("| dataset | L | window | NDCG@10 | HR@10 |")
    print("|---|---|---|---|---|")
    for dataset in args.datasets:
        overrides = step5_overrides(results, dataset)
        for layers in LAYERS:
            for window, label in WINDOWS.items():
                runs = [untrained_test(dataset, {**overrides, "n_layers": layers, "short_term_source": window},
                                       seed, args.data_path, args.threads) for seed in args.seeds]
                ndcg = [r["ndcg@10"] for r in runs]
                hit = [r["hit@10"] for r in runs]
                print(f"| {dataset} | {layers} | {label} | {statistics.mean(ndcg):.4f} ± {statistics.stdev(ndcg):.4f} | "
                      f"{statistics.mean(hit):.4f} ± {statistics.stdev(hit):.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
