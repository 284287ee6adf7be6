"""``python -m recbole_sdmtmp``: the run script (``recbole_sdmtmp.cli``) of an installed package."""

import sys

from recbole_sdmtmp.cli import main

if __name__ == "__main__":  # the encoder's worker processes import this module again
    sys.exit(main())
