"""SD-MTMP as a RecBole plugin. Importing the package applies the RecBole compatibility fixes."""

from recbole_sdmtmp import compat  # noqa: F401  (must precede any recbole import)

__version__ = "0.1.0"
