"""How RecBole's own routes find the plugin: its models by name, their datasets and their defaults.

RecBole looks a model up by name only inside ``recbole.model.<kind>_recommender.<name lower>``
(``get_model``, ``Config(model="SDMTMP")``), a model's dataset as ``recbole.data.dataset.<Model>Dataset``
(``create_dataset``), and a model's defaults in its own ``properties/model/<Model>.yaml``. The
plugin's models and datasets are registered under those names, and a plugin model's ``Config``
reads the plugin's YAML as RecBole's internal defaults (the protocol keys, the model's defaults,
SD-MTMP's per-dataset values), so ``Config(model=SDMTMP, dataset=...)``, ``create_dataset``,
``data_preparation``, RecBole's ``Trainer`` and ``recbole.quick_start.run_recbole`` all work.
Files and ``config_dict`` given by the user still override them, as RecBole's order has it.
"""

import importlib.machinery
import importlib.util
import sys
import types

_MODEL_KINDS = {"GENERAL": "general_recommender", "SEQUENTIAL": "sequential_recommender",
                "TRADITIONAL": "general_recommender"}


def _stub_missing_ray() -> None:
    """``recbole.quick_start`` runs ``from ray import tune`` at import, for RecBole's ray tuning
    only. RecBole is installed without ray (its pin, ray 2.6.3, no longer imports), so a stub
    stands in: the quick-start functions import and run, and only ``tune.report`` (ray tuning)
    says what is missing. An installed ray is left alone."""
    if "ray" in sys.modules or importlib.util.find_spec("ray") is not None:
        return

    def report(**_):
        raise RuntimeError("RecBole's ray tuning needs the package ray, which is not installed; "
                           "tune with python -m recbole_sdmtmp.tune instead")

    ray = types.ModuleType("ray")
    ray.__spec__ = importlib.machinery.ModuleSpec("ray", None)
    tune = types.ModuleType("ray.tune")
    tune.__spec__ = importlib.machinery.ModuleSpec("ray.tune", None)
    tune.report = report
    ray.tune = tune
    sys.modules.update({"ray": ray, "ray.tune": tune})


def _register_models() -> None:
    """Each plugin model as a module of RecBole's model packages, each dataset class as
    ``recbole.data.dataset.<Model>Dataset``."""
    import recbole.data.dataset as recbole_datasets

    from recbole_sdmtmp.registry import plugin_model, plugin_model_names

    for name in plugin_model_names():
        model_class = plugin_model(name)
        kind = _MODEL_KINDS.get(model_class.type.name)
        if kind is None:
            continue
        sys.modules.setdefault(f"recbole.model.{kind}.{name.lower()}", sys.modules[model_class.__module__])
        dataset_class = getattr(model_class, "DATASET_CLASS", None)
        if dataset_class is not None and not hasattr(recbole_datasets, f"{name}Dataset"):
            setattr(recbole_datasets, f"{name}Dataset", dataset_class)


_RECBOLE_LOAD_INTERNAL = None


def _load_internal_with_plugin_defaults(self, model, model_class, dataset):
    """RecBole's internal defaults, then, for a plugin model, the plugin's YAML (the protocol,
    the model's defaults, SD-MTMP's per-dataset values) as internal defaults too."""
    _RECBOLE_LOAD_INTERNAL(self, model, model_class, dataset)
    from recbole_sdmtmp.config import config_files_for, pinned_fits_dir
    from recbole_sdmtmp.registry import plugin_model

    if plugin_model(model) is model_class:
        for path in config_files_for(model, dataset):
            self._update_internal_config_dict(path)
        # the committed topic fits of the shipped datasets, installed instead of fitting
        self.internal_config_dict.setdefault("pinned_topic_fits", str(pinned_fits_dir()))


def _read_plugin_defaults() -> None:
    global _RECBOLE_LOAD_INTERNAL
    from recbole.config import Config

    if Config._load_internal_config_dict is not _load_internal_with_plugin_defaults:
        _RECBOLE_LOAD_INTERNAL = Config._load_internal_config_dict
        Config._load_internal_config_dict = _load_internal_with_plugin_defaults


def register() -> None:
    """Make the plugin visible to RecBole; safe to call more than once."""
    _stub_missing_ray()
    _register_models()
    _read_plugin_defaults()
