"""Train and test SD-MTMP (or any RecBole model) under the shared protocol: see
``recbole_sdmtmp/cli.py`` or ``python run_recbole_sdmtmp.py --help``. Installed, the same
command is ``run_recbole_sdmtmp`` or ``python -m recbole_sdmtmp``."""

import sys

from recbole_sdmtmp.cli import main

if __name__ == "__main__":
    sys.exit(main())
