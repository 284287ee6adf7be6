"""Progress of a long phase: a bar on a terminal, a log line every ``LOG_EVERY_S`` seconds elsewhere.

A bar redrawn with carriage returns is unreadable in a log file or a CI transcript, and a run
that prints nothing for minutes looks hung; a line with counts every 20 seconds is neither.
"""

import logging
import sys
import time

from tqdm.auto import tqdm

LOG_EVERY_S = 20.0

logger = logging.getLogger(__name__)


class _LoggedProgress:
    """tqdm's ``update`` and context-manager protocol, written as log lines."""

    def __init__(self, total: int, desc: str, unit: str, every_s: float):
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, every_s
        self.done = 0
        self.start = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self._log(now)

    def _log(self, now: float) -> None:
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        logger.info("%s: %d of %d %s%s, %.0f s", self.desc, self.done, self.total, self.unit, share,
                    now - self.start)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if exc_info[0] is None and self.total:
            self._log(time.monotonic())
        return False


def progress(total: int, desc: str, unit: str = "it", enabled: bool = True, every_s: float = LOG_EVERY_S):
    """A progress reporter for ``total`` units of work: use it as ``with progress(...) as bar:
    bar.update(n)``. ``enabled=False``: silent on a terminal, log lines only elsewhere."""
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit=unit, disable=not enabled)
    return _LoggedProgress(total, desc, unit, every_s)
