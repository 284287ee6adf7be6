"""What a new user's first run costs: the main job in a fresh clone (nothing prepared), then the
same command again (warm), timed in one run on this machine, with the longest silence between
two output lines of each.

    python benchmarks/first_run.py --dataset Instrument

The clone is of this checkout's HEAD (committed files only), in a temporary folder; the raw file
is found through $SDMTMP_RAW_DIR (default: the checkout's ../shared/data/amazon). Prints one
Markdown table and the two figures the first run is held to: cold/warm ratio and longest silence.
The machine is shared: ``--repeats N`` does N clone-cold-warm rounds and quotes medians.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def timed_run(command: list[str], cwd: Path, env: dict, log) -> tuple[float, float, float, int, str]:
    """Wall seconds, CPU seconds (user + system, the run's own processes: less sensitive than the
    wall time to other jobs on a shared machine), the longest gap between two output lines (start
    and end included), the exit status and the last line; every line is echoed to ``log``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = last = time.monotonic()
    longest, final = 0.0, ""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1)
    for line in process.stdout:
        now = time.monotonic()
        longest, last = max(longest, now - last), now
        final = line.rstrip() or final
        log.write(f"[{now - start:7.1f} s] {line}")
        log.flush()
    status = process.wait()
    end = time.monotonic()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return end - start, cpu, max(longest, end - last), status, final


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="Instrument")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of fresh clone, cold run, warm run")
    parser.add_argument("--log", default=None, help="where both runs' output goes (default: stderr)")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env.setdefault("SDMTMP_RAW_DIR", str((REPO_ROOT / ".." / "shared" / "data" / "amazon").resolve()))
    env["PYTHONUNBUFFERED"] = "1"
    log = open(args.log, "w") if args.log else sys.stderr
    rounds = []  # per round: (cold wall, cold CPU, cold silence, warm wall, warm CPU, warm silence), seconds
    command = [sys.executable, "run_recbole_sdmtmp.py", "--dataset", args.dataset]
    for round_number in range(1, args.repeats + 1):
        with tempfile.TemporaryDirectory(prefix="first_run_") as folder:
            clone = Path(folder) / "recbole-sdmtmp"
            subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True,
                                    text=True, check=True).stdout.strip()
            # the clone's script puts the clone first on sys.path: its own package runs, not an installed one
            measured = []
            for label in ("cold (fresh clone)", "warm (same clone, again)"):
                log.write(f"--- round {round_number}, {label}: {' '.join(command[1:])}\n")
                seconds, cpu, silence, status, final = timed_run(command, clone, env, log)
                if status != 0:
                    raise SystemExit(f"{label} run failed with exit status {status}: {final}")
                measured += [seconds, cpu, silence]
            rounds.append(measured)
    print(f"First run of `python run_recbole_sdmtmp.py --dataset {args.dataset}` at commit {commit}, "
          f"{os.cpu_count()} CPUs, SDMTMP_RAW_DIR={env['SDMTMP_RAW_DIR']}, {args.repeats} rounds\n")
    print("| round | cold wall s | cold CPU s | cold longest silence s | warm wall s | warm CPU s | "
          "warm longest silence s | cold/warm wall | cold/warm CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for number, (cold, cold_cpu, cold_silence, warm, warm_cpu, warm_silence) in enumerate(rounds, 1):
        print(f"| {number} | {cold:.1f} | {cold_cpu:.1f} | {cold_silence:.1f} | {warm:.1f} | {warm_cpu:.1f} | "
              f"{warm_silence:.1f} | {cold / warm:.2f} | {cold_cpu / warm_cpu:.2f} |")
    wall = statistics.median(r[0] / r[3] for r in rounds)
    cpu = statistics.median(r[1] / r[4] for r in rounds)
    silence = max(r[2] for r in rounds)
    print(f"\nmedian cold/warm: {wall:.2f}x wall, {cpu:.2f}x CPU (target <= 3x); longest silence of any "
          f"cold run: {silence:.1f} s (target <= 30 s); medians of cold and warm wall: "
          f"{statistics.median(r[0] for r in rounds):.1f} s and {statistics.median(r[3] for r in rounds):.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
