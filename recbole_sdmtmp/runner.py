"""Train and evaluate any model on the project's protocol, without ``recbole.quick_start``.

``recbole.quick_start`` imports ray, which no longer imports (SPEC section 6), and looks models
up by name inside ``recbole.model`` only; this module does the same steps with model classes:
Config -> dataset -> data_preparation -> model -> trainer.
"""

import importlib
import importlib.util
import logging
import resource
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import recbole.data.dataset as recbole_datasets
from recbole.config import Config
from recbole.data.dataset import SequentialDataset
from recbole.utils import ModelType, get_model, get_trainer, init_logger, init_seed, set_color

from recbole_sdmtmp import distributed as ddp
from recbole_sdmtmp.data import SDMTMPDataset
from recbole_sdmtmp.data.protocol import prepare
from recbole_sdmtmp.evaluation import case_metrics_of
from recbole_sdmtmp.model.sdmtmp import SDMTMP
from recbole_sdmtmp.model.selfcf import SelfCF
from recbole_sdmtmp.model.xsimgcl import XSimGCL

REPO_ROOT = Path(__file__).resolve().parents[1]
PROPERTIES = REPO_ROOT / "properties"
PLUGIN_MODELS = {"SDMTMP": (SDMTMP, SDMTMPDataset), "XSimGCL": (XSimGCL, None), "SelfCF": (SelfCF, None)}


def discover_plugin_model(name: str):
    """(class, dataset class) from ``recbole_sdmtmp/model/<name lower>.py``, or None.

    A model module added to the plugin needs no registration here: it defines the class named
    like the model and, when it needs its own RecBole dataset, a module-level ``DATASET_CLASS``.
    """
    module_name = f"recbole_sdmtmp.model.{name.lower()}"
    if not name.isidentifier() or importlib.util.find_spec(module_name) is None:
        return None
    module = importlib.import_module(module_name)
    model_class = getattr(module, name, None)
    if model_class is None:
        return None
    return model_class, getattr(module, "DATASET_CLASS", None)


@dataclass
class RunResult:
    """What one run measured; written as JSON next to the checkpoint."""

    model: str
    dataset: str
    seed: int
    test_result: dict
    protocol: str = "paper"
    best_valid_result: dict = field(default_factory=dict)
    best_valid_score: float | None = None
    epochs: int = 0
    train_losses: list = field(default_factory=list)  # one per epoch: the summed loss
    train_loss_terms: list = field(default_factory=list)  # one per epoch: each term, when a model returns several
    train_seconds_per_epoch: float | None = None  # median over epochs
    eval_seconds: float | None = None  # median full evaluation of the validation split
    peak_rss_mb: float = 0.0  # of the whole process so far (a comparison runs many cells in one)
    peak_cuda_mb: float | None = None
    device: str = "cpu"
    checkpoint: str | None = None
    test_case_metrics: dict = field(default_factory=dict)  # {'hit@10': [per test case]...}
    valid_cases: int = 0
    test_cases: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_model(name: str):
    """(model class, dataset class or None for RecBole's default) for a plugin or RecBole name."""
    if name in PLUGIN_MODELS:
        return PLUGIN_MODELS[name]
    discovered = discover_plugin_model(name)
    if discovered is not None:
        return discovered
    try:
        model_class = get_model(name)
    except (ValueError, ImportError) as error:  # RecBole imports its exlib package (lightgbm) last
        valid = ", ".join(sorted(PLUGIN_MODELS))
        raise ValueError(f"unknown model {name!r}: not a plugin model ({valid}) nor a RecBole model") from error
    # RecBole's create_dataset gives a model its own dataset class where one exists (DIEN's
    # DIENDataset adds the negative item sequences DIEN trains on); every other model: None.
    return model_class, getattr(recbole_datasets, f"{name}Dataset", None)


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


def check_model_supported(model: str) -> None:
    """A clear ValueError, before any data is read, for a model this project cannot feed."""
    if model in NEEDS_SIDE_INFORMATION:
        raise ValueError(f"{model} needs {NEEDS_SIDE_INFORMATION[model]}; the datasets of this project have "
                         "only user, item, rating and timestamp, so it cannot run here")
    if model in NEEDS_PACKAGE:
        module, package, purpose = NEEDS_PACKAGE[model]
        if importlib.util.find_spec(module) is None:
            raise ValueError(f"{model} needs the package {module} for {purpose}: pip install {package}")


def check_model_fits(config: Config, dataset) -> None:
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


def build_config(model: str, dataset: str, config_files=(), config_dict=None) -> Config:
    """The run's Config. General and traditional models (Pop, ItemKNN...) are switched to the
    sequential pipeline (SPEC 4) and score a case by its user id; ``native_model_type`` keeps
    their own type, which picks their trainer."""
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
    native = config["MODEL_TYPE"]
    if native not in FITTING_TYPES:
        raise ValueError(f"{model} is a {native.name.lower()} model; only general, traditional "
                         "and sequential models fit the protocol (they need no side information)")
    config["native_model_type"] = native
    config["MODEL_TYPE"] = ModelType.SEQUENTIAL
    return config


def load_data(config: Config, dataset_class=None, negatives_per_case: bool | None = None):
    """The dataset and its (train, valid, test) dataloaders under ``config['protocol']``.
    ``negatives_per_case`` (``recbole_sdmtmp.data.negatives``): by default the configured
    model's ``NEGATIVES_PER_CASE``, so every caller gets the batches the model trains on.
    General and traditional models train on every training interaction, sequential ones on the
    cases (``recbole_sdmtmp.data.protocol.every_interaction``)."""
    if negatives_per_case is None:
        negatives_per_case = getattr(resolve_model(config["model"])[0], "NEGATIVES_PER_CASE", False)
    general = (config["native_model_type"] or config["MODEL_TYPE"]) in (ModelType.GENERAL, ModelType.TRADITIONAL)
    dataset = (dataset_class or SequentialDataset)(config)
    data = prepare(config, dataset, negatives_per_case, every_training_interaction=general)
    return dataset, (data.train_data, data.valid_data, data.test_data)


def _timed(method, seconds: list, after=None):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = method(*args, **kwargs)
        seconds.append(time.perf_counter() - start)
        if after is not None:
            after(result)
        return result

    return wrapper


def run(
    model: str,
    dataset: str,
    config_files=(),
    config_dict=None,
    checkpoint: str | None = None,
    saved: bool = True,
    evaluate_test: bool = True,
    nproc: int = 1,
    world_size: int = -1,
    ip: str = "localhost",
    port=None,
    group_offset: int = 0,
    distributed: dict | None = None,
    on_valid=None,
) -> RunResult:
    """Train (or, with ``checkpoint``, only evaluate) ``model`` on ``dataset``; test metrics.

    ``evaluate_test=False`` (tuning trials) never touches the test split: selection reads the
    validation split only, and the test is read once, for the chosen configuration.
    ``nproc`` > 1 (or a ``world_size``) trains in ``nproc`` processes on this machine with
    torch.distributed (``recbole_sdmtmp.distributed``; RecBole's keys: ``world_size`` processes
    in all, this machine's ranks from ``group_offset``, rank 0 at ``ip:port``); the result is
    rank 0's. ``distributed`` is what each spawned process receives.
    ``on_valid(epoch, score)`` is called after each validation (epochs trained so far, the
    ``valid_metric`` score); an exception it raises (a pruned tuning trial) ends the run.
    """
    if on_valid is not None and (nproc > 1 or world_size > 0 or distributed is not None):
        raise ValueError("on_valid is for single-process runs (tuning trials)")
    if distributed is None and (nproc > 1 or world_size > 0):
        world_size = nproc if world_size <= 0 else world_size
        if port is None:
            if world_size != nproc:
                raise ValueError("a run over several machines needs the same --port on each")
            port = ddp.free_port()
        group = dict(nproc=nproc, world_size=world_size, ip=ip, port=port, offset=group_offset)
        arguments = dict(model=model, dataset=dataset, config_files=config_files, config_dict=config_dict,
                         checkpoint=checkpoint, saved=saved, evaluate_test=evaluate_test)
        return ddp.spawn(_run_rank, nproc, (arguments, group))
    config = build_config(model, dataset, config_files, config_dict)
    if distributed is not None:
        ddp.init_process(config, **distributed)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = logging.getLogger()
    logger.info(config)

    model_class, dataset_class = resolve_model(model)
    data, (train_data, valid_data, test_data) = load_data(config, dataset_class)
    logger.info(data)
    check_model_fits(config, data)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    recommender = model_class(config, train_data._dataset).to(config["device"])
    logger.info(recommender)
    trainer_class = get_trainer(config["native_model_type"], config["model"])
    if distributed is None:
        trainer = trainer_class(config, recommender)
    else:  # built single-process, then wrapped (RecBole's own wrapper is CUDA-only)
        config["single_spec"] = True
        trainer = trainer_class(config, recommender)
        config["single_spec"] = False
        ddp.distribute_trainer(trainer, config)
    own_optimizer = getattr(recommender, "build_optimizer", lambda: None)()
    if own_optimizer is not None:  # a model whose parameters need another optimizer (SDMTMP sparse_embeddings)
        trainer.optimizer = own_optimizer

    train_seconds, eval_seconds, epoch_losses = [], [], []
    # RecBole's train_loss_dict keeps each epoch's sum; _train_epoch returns each term
    trainer._train_epoch = _timed(trainer._train_epoch, train_seconds, epoch_losses.append)
    report = None if on_valid is None else lambda valid: on_valid(len(train_seconds), valid[0])
    trainer._valid_epoch = _timed(trainer._valid_epoch, eval_seconds, report)
    result = RunResult(model=model, dataset=dataset, seed=config["seed"], test_result={},
                       protocol=config["protocol"], valid_cases=len(valid_data.positives),
                       test_cases=len(test_data.positives))
    if checkpoint is None:
        result.best_valid_score, result.best_valid_result = trainer.fit(
            train_data, valid_data, saved=saved, show_progress=config["show_progress"]
        )
        checkpoint = trainer.saved_model_file if saved else None
        if distributed is not None:
            torch.distributed.barrier()  # rank 0 has written the best checkpoint
    if evaluate_test:
        test_result = trainer.evaluate(
            test_data,
            load_best_model=checkpoint is not None,
            model_file=checkpoint,
            show_progress=config["show_progress"],
        )
        result.test_result = dict(test_result)
        per_case = case_metrics_of(trainer, test_data, tuple(config["topk"]))
        if distributed is not None:  # this process's share of the cases -> all cases, in order
            per_case = {name: ddp.gather_rows(values) for name, values in per_case.items()}
        result.test_case_metrics = {name: values.tolist() for name, values in per_case.items()}
    result.best_valid_result = dict(result.best_valid_result or {})
    result.epochs = len(train_seconds)
    result.train_losses = [float(sum(loss)) if isinstance(loss, tuple) else float(loss) for loss in epoch_losses]
    result.train_loss_terms = [[float(term) for term in loss] for loss in epoch_losses if isinstance(loss, tuple)]
    result.train_seconds_per_epoch = statistics.median(train_seconds) if train_seconds else None
    result.eval_seconds = statistics.median(eval_seconds) if eval_seconds else None
    result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.device = str(config["device"])
    if torch.cuda.is_available() and "cuda" in result.device:
        result.peak_cuda_mb = torch.cuda.max_memory_allocated() / 2**20
    result.checkpoint = checkpoint
    logger.info(set_color("best valid ", "yellow") + f": {result.best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {result.test_result}")
    return result


def _run_rank(local_rank: int, queue, arguments: dict, group: dict) -> None:
    """One spawned process of a ``run(nproc=...)``: rank 0 hands its RunResult back."""
    try:
        result = run(**arguments, distributed=dict(group, local_rank=local_rank))
        if local_rank + group["offset"] == 0:
            queue.put(result)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
