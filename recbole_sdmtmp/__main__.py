"""``python -m recbole_sdmtmp``: the run script (``recbole_sdmtmp.cli``) of an installed package."""

import sys

from recbole_sdmtmp.cli import main

sys.exit(main())
