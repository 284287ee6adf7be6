"""Two tuning workers at one torch thread each, or one worker at two threads: which trains more
epochs per second on this machine's cores, per model, in one run.

    python benchmarks/cores.py --dataset Instrument --models RGCL MISSRec --epochs 2 --rounds 2

Each model at its chosen configuration (``baseline_speed.py``'s processes: one warm-up epoch,
then ``--epochs`` timed ones) runs, in each round, as (a) one process with ``--threads`` threads
and (b) ``--threads`` processes with one thread each, started together; the order of (a) and (b)
alternates between rounds. Throughput: epochs per second of the whole machine, (a) 1 / its
median epoch, (b) the sum over the processes of 1 / their median epoch. The ratio (b) / (a) > 1
says that one-thread workers are the better use of the cores. On a machine shared with other
jobs read the ratio, not the seconds: both sides ran in the same round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from baseline_speed import MODELS, REPO, chosen


def start(spec: dict) -> subprocess.Popen:
    """``baseline_speed.py --measure spec`` in a new process of this checkout."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "baseline_speed.py"), "--measure",
                             json.dumps(spec)], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def epochs_per_second(processes: list[subprocess.Popen]) -> float:
    """Their summed throughput once all have finished."""
    total = 0.0
    for process in processes:
        out, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"error: a measured process failed:\n{err[-3000:]}")
        total += 1.0 / statistics.median(json.loads(out.strip().splitlines()[-1])["epochs"])
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="Instrument")
    parser.add_argument("--models", nargs="+", default=["RGCL", "MISSRec"], choices=MODELS)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per process")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="the cores: threads of (a), processes of (b)")
    parser.add_argument("--data-path", default=str(REPO / "dataset"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    data_path = str(Path(args.data_path).resolve())
    print(f"{args.dataset}, chosen configurations, {args.epochs} timed epochs per process, {args.rounds} rounds; "
          f"epochs per second of the machine\n")
    print(f"| model | round | (a) 1 worker x {args.threads} threads | (b) {args.threads} workers x 1 thread | (b) / (a) |")
    print("|---|---|---|---|---|")
    for model in args.models:
        spec = dict(model=model, dataset=args.dataset, data_path=data_path, epochs=args.epochs, clock="wall",
                    overrides=chosen(model, args.dataset, data_path))
        ratios = []
        for round_ in range(args.rounds):
            result = {}
            for setting in (("a", "b") if round_ % 2 == 0 else ("b", "a")):
                if setting == "a":
                    result[setting] = epochs_per_second([start(dict(spec, threads=args.threads))])
                else:
                    result[setting] = epochs_per_second([start(dict(spec, threads=1)) for _ in range(args.threads)])
            ratios.append(result["b"] / result["a"])
            print(f"| {model} | {round_ + 1} | {result['a']:.3f} | {result['b']:.3f} | {ratios[-1]:.2f} |", flush=True)
        print(f"| {model} | median | | | {statistics.median(ratios):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
