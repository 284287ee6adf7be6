"""Which class a model name means, which dataset class feeds it, and what it can run on.

One lookup for every model: a plugin model is the class named like the model in
``recbole_sdmtmp/model/<name lower>`` (SD-MTMP's package) or
``recbole_sdmtmp/model/baselines/<name lower>.py``, and its class attribute ``DATASET_CLASS``
names the RecBole dataset it reads (None: RecBole's default). A model module added there needs
no registration. Any other name is looked up in RecBole.
"""

import importlib
import importlib.util
import inspect
import pkgutil

import recbole.data.dataset as recbole_datasets
from recbole.model.abstract_recommender import AbstractRecommender
from recbole.utils import ModelType, get_model

from recbole_sdmtmp.data.reviews import ReviewDataset
from recbole_sdmtmp.model.layers.buckets import LENGTH_BUCKETED
from recbole_sdmtmp.model.sdmtmp import parse_ablation

# Where plugin models live, searched in this order.
MODEL_PACKAGES = ("recbole_sdmtmp.model", "recbole_sdmtmp.model.baselines")

FITTING_TYPES = (ModelType.GENERAL, ModelType.SEQUENTIAL, ModelType.TRADITIONAL)

# RecBole general/sequential models that read side information which no dataset of this project
# has: the Amazon conversions and the user's own files carry user, item, rating and time only.
ITEM_FEATURES = "item features (an .item atomic file with the fields of 'selected_features', RecBole's default [class])"
NEEDS_SIDE_INFORMATION = {
    "FDSA": ITEM_FEATURES,
    "GRU4RecF": ITEM_FEATURES,
    "SASRecF": ITEM_FEATURES,
    "S3Rec": "item attributes for its self-supervised pre-training (an .item atomic file with the field "
             "of 'item_attribute', RecBole's default class)",
    "GRU4RecKG": "pre-trained knowledge-graph entity embeddings (.link and .ent atomic files)",
    "KSR": "a knowledge graph with pre-trained entity and relation embeddings (.kg, .link, .ent and .rel "
           "atomic files)",
}
# Optional packages that a RecBole model imports only once it trains: (module, pip name, what for).
NEEDS_PACKAGE = {"NCL": ("faiss", "faiss-cpu", "its k-means prototypes")}


def plugin_model(name: str):
    """The plugin's class named ``name``, or None."""
    if not name.isidentifier():
        return None
    for package in MODEL_PACKAGES:
        module_name = f"{package}.{name.lower()}"
        if importlib.util.find_spec(module_name) is None:
            continue
        model_class = getattr(importlib.import_module(module_name), name, None)
        if model_class is not None:
            return model_class
    return None


def plugin_model_names() -> list[str]:
    """Every plugin model's name (imports the model modules: for messages and tests)."""
    names = set()
    for package_name in MODEL_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package_name}.{info.name}")
            names |= {name for name, value in vars(module).items()
                      if inspect.isclass(value) and issubclass(value, AbstractRecommender)
                      and value.__module__.startswith(module.__name__) and name.lower() == info.name}
    return sorted(names)


def resolve_model(name: str):
    """(model class, dataset class or None for RecBole's default) for a plugin or RecBole name."""
    model_class = plugin_model(name)
    if model_class is not None:
        return model_class, getattr(model_class, "DATASET_CLASS", None)
    try:
        model_class = get_model(name)
    except (ValueError, ImportError) as error:  # RecBole imports its exlib package (lightgbm) last
        valid = ", ".join(plugin_model_names())
        raise ValueError(f"unknown model {name!r}: not a plugin model ({valid}) nor a RecBole model") from error
    # RecBole's create_dataset gives a model its own dataset class where one exists (DIEN's
    # DIENDataset adds the negative item sequences DIEN trains on); every other model: None.
    # GRU4Rec and SASRec: RecBole's, run per history-length group (model/layers/buckets.py).
    return LENGTH_BUCKETED.get(name, model_class), getattr(recbole_datasets, f"{name}Dataset", None)


def check_model_supported(model: str) -> None:
    """A clear ValueError, before any data is read, for a model this project cannot feed."""
    if model in NEEDS_SIDE_INFORMATION:
        raise ValueError(f"{model} needs {NEEDS_SIDE_INFORMATION[model]}; the datasets of this project have "
                         "only user, item, rating and timestamp, so it cannot run here")
    if model in NEEDS_PACKAGE:
        module, package, purpose = NEEDS_PACKAGE[model]
        if importlib.util.find_spec(module) is None:
            raise ValueError(f"{model} needs the package {module} for {purpose}: pip install {package}")


def check_model_type(model: str, model_type: ModelType) -> None:
    """Only models that need no side information fit the protocol."""
    if model_type not in FITTING_TYPES:
        raise ValueError(f"{model} is a {model_type.name.lower()} model; only general, traditional "
                         "and sequential models fit the protocol (they need no side information)")


def check_model_fits(config, dataset) -> None:
    """A clear ValueError for settings that a dataset is too small for (a deep RecBole traceback
    otherwise): NCL's k-means needs at least ``num_clusters`` users and items; the CPR models take
    the top ``reranker_CAN_NUM`` items of every prediction."""
    model = config["model"]
    if model == "NCL":
        smallest = min(dataset.user_num, dataset.item_num)
        if config["num_clusters"] > smallest:
            raise ValueError(f"NCL: num_clusters={config['num_clusters']} is more than the users "
                             f"({dataset.user_num}) or the items ({dataset.item_num}) of {config['dataset']} "
                             f"(its k-means needs at least k points); lower it, e.g. "
                             f"--num_clusters={max(1, smallest // 4)}")
    if model in ("GRU4RecCPR", "SASRecCPR"):
        sizes = [int(size) for size in str(config["reranker_CAN_NUM"]).split(",")]
        if max(sizes) > dataset.item_num:
            raise ValueError(f"{model}: reranker_CAN_NUM={config['reranker_CAN_NUM']} asks for more candidates "
                             f"than the {dataset.item_num} items of {config['dataset']}; lower it, e.g. "
                             f"--reranker_CAN_NUM={max(1, dataset.item_num // 2)}")


def reads_topics(model: str) -> bool:
    """Whether the model's results depend on the dataset's topic fit (SD-MTMP's do)."""
    return model == "SDMTMP"


def needs_topics(config) -> bool:
    """SD-MTMP reads the review topics unless the w/o-H ablation drops them."""
    return reads_topics(config["model"]) and parse_ablation(config["ablation"]) != "w/o-H"


def needs_review_vectors(config) -> bool:
    """Models on ReviewDataset (RGCL, MISSRec, RRPU) read one text vector per review."""
    dataset_class = resolve_model(config["model"])[1]
    return dataset_class is not None and issubclass(dataset_class, ReviewDataset)
