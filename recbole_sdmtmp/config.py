"""The run's RecBole ``Config``, built once from the project's YAML files, and its data made ready.

``properties/`` (the protocol, each model's defaults, SD-MTMP's per-dataset values, the tuning
ranges) sits at the top of the checkout and is shipped inside the wheel as
``recbole_sdmtmp/properties``; :func:`properties_dir` finds it in either place.
"""

from importlib import resources
from pathlib import Path

from recbole.config import Config
from recbole.utils import ModelType

from dataset_preprocess.pipeline import ensure_dataset
from recbole_sdmtmp.registry import (
    check_model_supported, check_model_type, needs_review_vectors, needs_topics, resolve_model,
)


def properties_dir() -> Path:
    """``properties/``: inside the installed package (a wheel), else beside it (the checkout)."""
    installed = Path(str(resources.files("recbole_sdmtmp") / "properties"))
    return installed if installed.is_dir() else Path(__file__).resolve().parents[1] / "properties"


PROPERTIES = properties_dir()


def pinned_fits_dir() -> Path:
    """The pinned topic fits of the shipped datasets: inside the installed package (a wheel),
    else the checkout's ``results/topic_fits``, wherever the command runs from."""
    installed = Path(str(resources.files("recbole_sdmtmp") / "topic_fits"))
    return installed if installed.is_dir() else Path(__file__).resolve().parents[1] / "results" / "topic_fits"


def dataset_properties(dataset: str) -> Path:
    """SD-MTMP's per-dataset YAML (paper 3.6), or the documented defaults for any other dataset."""
    own = PROPERTIES / "dataset" / f"{dataset}.yaml"
    return own if own.exists() else PROPERTIES / "dataset" / "default.yaml"


def config_files_for(model: str, dataset: str, extra_files=()) -> list[str]:
    """protocol.yaml, then the model's defaults, then SD-MTMP's per-dataset YAML (SD-MTMP only:
    baselines keep their own defaults), then the user's files."""
    files = [PROPERTIES / "protocol.yaml", PROPERTIES / "model" / f"{model}.yaml"]
    if model == "SDMTMP":
        files.append(dataset_properties(dataset))
    return [str(path) for path in files if path.exists()] + [str(path) for path in extra_files]


def build_config(model: str, dataset: str, config_files=(), config_dict=None) -> Config:
    """The run's Config. General and traditional models (Pop, ItemKNN...) are switched to the
    sequential pipeline (docs/DESIGN.md §4) and score a case by its user id;
    ``native_model_type`` keeps their own type, which picks their trainer."""
    check_model_supported(model)
    model_class, _ = resolve_model(model)
    settings = dict(config_dict or {})
    files = config_files_for(model, dataset, config_files)
    try:
        config = Config(model=model_class, dataset=dataset, config_file_list=files, config_dict=settings)
    except ValueError as error:
        # A cross-entropy sequential model (NARM, STAMP...) whose YAML does not clear RecBole's
        # default negative sampling: CE scores every item, so it needs no negatives.
        if "should be None when the loss_type is CE" not in str(error):
            raise
        settings["train_neg_sample_args"] = None
        config = Config(model=model_class, dataset=dataset, config_file_list=files, config_dict=settings)
    check_model_type(model, config["MODEL_TYPE"])
    config["native_model_type"] = config["MODEL_TYPE"]
    config["MODEL_TYPE"] = ModelType.SEQUENTIAL
    return config


def ensure_prepared(config: Config, raw_file=None, source=None, **options) -> Path:
    """Convert the dataset and write the side-files its model reads where they are missing or
    stale (``dataset_preprocess.pipeline.ensure_dataset`` decides); return the dataset folder.
    ``source`` (already resolved), ``raw_file`` and ``options`` (columns, kcore...) are the
    command line's, for a dataset of the user's own or a raw file found elsewhere. Topics come
    from the committed pin where one matches (:func:`pinned_fits_dir`), so the results reproduce."""
    dataset_dir = Path(config["data_path"])
    options.setdefault("pinned_fits", pinned_fits_dir())
    ensure_dataset(config["dataset"], out_dir=dataset_dir.parent, raw_file=raw_file,
                   topics=needs_topics(config), review_vectors=needs_review_vectors(config),
                   source=source, **options)
    return dataset_dir
