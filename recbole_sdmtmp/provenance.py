"""What made a run: the package's version and commit, the topic fit it read and the versions of
the libraries whose changes move the numbers. Every run record carries it (the main job's
summary JSON, a table cell, a tuning trial), so a figure can be traced to the code behind it."""

import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path


PACKAGE = "recbole-sdmtmp"
LIBRARIES = ("torch", "recbole", "optuna")


def version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def git_commit(package: Path = Path(__file__).resolve().parent) -> str | None:
    """The commit of the checkout the package runs from (the package folder at the top of the
    checkout), with ``+dirty`` where it has uncommitted changes; None for an installed package
    (even one installed into a folder inside some other checkout), or where git is missing."""
    try:
        head = subprocess.run(["git", "-C", str(package), "rev-parse", "--show-toplevel", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        top, commit = head.stdout.split()
        if Path(top).resolve() != package.resolve().parent:
            return None
        status = subprocess.run(["git", "-C", top, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return commit + ("+dirty" if status.returncode == 0 and status.stdout.strip() else "")


def provenance(topics_fit: str | None) -> dict:
    """The record of what made a run that read the topic fit ``topics_fit`` (None: no topics)."""
    return {"version": version_of(PACKAGE), "commit": git_commit(), "topics_fit": topics_fit,
            "libraries": {name: version_of(name) for name in LIBRARIES}}
