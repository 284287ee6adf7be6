"""The errors a command reports as one paragraph, exit status 2, instead of a traceback: input
data that cannot be converted or is damaged, settings, checkpoints, and a study store that cannot
be read. Every other exception is a bug and keeps its traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

import sqlalchemy.exc

from dataset_preprocess.pipeline import INPUT_ERRORS

USER_ERRORS = INPUT_ERRORS + (ValueError, FileNotFoundError)


def reported(body: Callable[[], int]) -> int:
    """``body()``'s exit status, or 2 after one ``error:`` paragraph for a user's error."""
    try:
        return body()
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
    except sqlalchemy.exc.SQLAlchemyError as error:
        cause = str(getattr(error, "orig", None) or error).splitlines()[0]
        print(f"error: the study store cannot be read ({cause}); restore it from a copy, or move "
              "it away (or give another --storage) to tune afresh", file=sys.stderr)
    return 2
