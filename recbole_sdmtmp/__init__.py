"""SD-MTMP as a RecBole plugin.

Importing the package applies the RecBole compatibility fixes (``recbole_sdmtmp.compat``) and
makes the plugin's models visible to RecBole's own routes (``recbole_sdmtmp.plugin``). The public
API is the names below (``docs/API.md``); everything else may change between versions.
"""

from recbole_sdmtmp import compat  # noqa: F401  (must precede any recbole import)

__version__ = "0.1.0"

__all__ = ["SDMTMP", "SDMTMPDataset", "build_config", "config_files", "prepare", "run", "RunResult",
           "load_trained", "recommendations", "__version__"]

# name -> module that defines it; imported on first use, so ``import recbole_sdmtmp`` stays light
_PUBLIC = {
    "SDMTMP": "recbole_sdmtmp.model.sdmtmp.model",
    "SDMTMPDataset": "recbole_sdmtmp.data.dataset",
    "build_config": "recbole_sdmtmp.config",
    "config_files": "recbole_sdmtmp.quick_start",
    "prepare": "recbole_sdmtmp.quick_start",
    "run": "recbole_sdmtmp.quick_start",
    "RunResult": "recbole_sdmtmp.runner",
    "load_trained": "recbole_sdmtmp.runner",
    "recommendations": "recbole_sdmtmp.recommend",
}


def __getattr__(name):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'recbole_sdmtmp' has no attribute {name!r}")


from recbole_sdmtmp import plugin  # noqa: E402  (after compat)

plugin.register()
