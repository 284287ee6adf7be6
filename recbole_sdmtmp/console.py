"""What a run shows on the screen: stage lines from the start, RecBole's log without colour codes
where the output is not a terminal, and RecBole's long dumps (config, dataset, model) in the log
file only.

RecBole configures logging in ``init_logger``, after the data is prepared, and with
``logging.basicConfig``, which does nothing once the root logger has a handler: the stage lines
of the preparation get handlers of their own on the project's loggers, silent once the root has
handlers and removed by the runner before RecBole installs its own.
"""

import logging
import sys

_STAGE_HANDLER = "_recbole_sdmtmp_stage"


STAGE_LOGGERS = ("dataset_preprocess", "recbole_sdmtmp")


class _UntilRootHasHandlers(logging.Filter):
    """Pass records only while the root logger has no handler of its own: once RecBole's
    ``init_logger`` (or the user's logging) installs one, the records reach it instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not logging.getLogger().handlers


def show_stages(stream=None) -> None:
    """Log the project's INFO lines (the preparation's stages and progress) to ``stream``
    (stderr) until logging is configured; nothing if it already is. The handler sits on the
    project's own loggers, not the root, so RecBole's ``logging.basicConfig`` still installs
    its handlers (and its log file) on whatever route it is called."""
    if logging.getLogger().handlers:
        return
    for name in STAGE_LOGGERS:
        logger = logging.getLogger(name)
        if any(getattr(h, _STAGE_HANDLER, False) for h in logger.handlers):
            continue
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s  %(message)s", "%d %b %H:%M:%S"))
        handler.addFilter(_UntilRootHasHandlers())
        setattr(handler, _STAGE_HANDLER, True)
        logger.addHandler(handler)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


def before_recbole_logger() -> None:
    """Remove the stage handlers, so that only RecBole's ``init_logger`` handlers remain."""
    for name in STAGE_LOGGERS:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if getattr(h, _STAGE_HANDLER, False)]:
            logger.removeHandler(handler)


def after_recbole_logger() -> None:
    """Plain text on a screen handler whose stream is not a terminal (a file, a pipe, CI)."""
    from recbole.utils.logger import RemoveColorFilter

    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) or not isinstance(handler, logging.StreamHandler):
            continue
        isatty = getattr(handler.stream, "isatty", None)
        if isatty is not None and isatty():
            continue
        if not any(isinstance(f, RemoveColorFilter) for f in handler.filters):
            handler.addFilter(RemoveColorFilter())
        handler.setFormatter(logging.Formatter("%(asctime)-15s %(levelname)s  %(message)s", "%d %b %H:%M"))


def log_file_only(logger: logging.Logger, message) -> None:
    """``message`` at INFO in the log files of ``logger``'s handlers (and the root's), not on screen."""
    record = logger.makeRecord(logger.name, logging.INFO, "(log file)", 0, str(message), None, None)
    handlers = list(logger.handlers) + (logging.getLogger().handlers if logger.propagate else [])
    for handler in handlers:
        if isinstance(handler, logging.FileHandler) and record.levelno >= handler.level:
            handler.handle(record)


def log_file_name() -> str | None:
    """The file RecBole's logger writes to, if any."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None
