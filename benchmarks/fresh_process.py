"""A measurement in a fresh process, shared by the benchmarks that compare code or models: the
script is run again with ``--measure <spec as JSON>`` and prints its result as the last line, so
no measurement inherits another's threads, memory or imported code."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def in_fresh_process(script: str, spec: dict, what: str, code: Path | None = None) -> dict:
    """``script --measure spec`` with the project imported from ``code`` (default: this checkout);
    its last line of output, parsed. ``what`` names the measurement in the error."""
    env = dict(os.environ, PYTHONPATH=str(code or REPO))
    out = subprocess.run([sys.executable, str(Path(script).resolve()), "--measure", json.dumps(spec)], env=env,
                         capture_output=True, text=True, cwd=code or REPO)
    if out.returncode != 0:
        raise SystemExit(f"error: {what} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
