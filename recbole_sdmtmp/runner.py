"""Train and evaluate a Config's model on the project's protocol, without ``recbole.quick_start``.

``recbole.quick_start`` imports ray, which no longer imports (docs/DESIGN.md §6), and looks models up by name inside ``recbole.model`` only; this module does the same
steps with model classes: Config (``recbole_sdmtmp.config``) -> dataset -> data_preparation ->
model -> trainer.
"""

import logging
import os
import resource
import statistics
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from recbole.config import Config
from recbole.data.dataset import SequentialDataset
from recbole.utils import ModelType, get_trainer, init_logger, init_seed, set_color

from dataset_preprocess.machine import cpu_description
from recbole_sdmtmp import console
from recbole_sdmtmp import distributed as ddp
from recbole_sdmtmp.checkpoints import check_data, check_shapes, checked_data, read_checkpoint, stamp
from recbole_sdmtmp.data.protocol import prepare
from recbole_sdmtmp.evaluation import case_metrics_of
from recbole_sdmtmp.provenance import provenance
from recbole_sdmtmp.registry import check_model_fits, needs_topics, resolve_model


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
    machine: str = ""  # the CPU (dataset_preprocess.machine): times from two machines do not compare
    checkpoint: str | None = None
    test_case_metrics: dict = field(default_factory=dict)  # {'hit@10': [per test case]...}
    valid_cases: int = 0
    test_cases: int = 0
    provenance: dict = field(default_factory=dict)  # the code, topic fit and libraries (recbole_sdmtmp.provenance)

    def to_dict(self) -> dict:
        return asdict(self)


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


def load_trained(checkpoint: str, device: str = "cpu", data_path: str | None = None):
    """(config, dataset, (train, valid, test) loaders, model in eval mode) of a checkpoint of any
    model the runner trains, rebuilt with the checkpoint's own Config. ``data_path``: the
    dataset root when it has moved since training (the Config records the training's)."""
    state = read_checkpoint(checkpoint)
    config = state["config"]
    config.compatibility_settings()  # unpickled, not built here: RecBole's numpy aliases
    config["device"] = torch.device(device)
    config["show_progress"] = False
    config["single_spec"] = True  # one process, whatever the training ran on
    if data_path is not None:
        config["data_path"] = str(Path(data_path) / config["dataset"])
    checked_data(config)
    check_data(checkpoint, config)  # the data it was trained on
    model_class, dataset_class = resolve_model(config["model"])
    dataset, loaders = load_data(config, dataset_class)
    model = model_class(config, loaders[0]._dataset).to(config["device"])
    check_shapes(checkpoint, state["state_dict"], model)
    model.load_state_dict(state["state_dict"])
    model.load_other_parameter(state.get("other_parameter"))
    model.eval()
    return config, dataset, loaders, model


def _timed(method, seconds: list, after=None):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = method(*args, **kwargs)
        seconds.append(time.perf_counter() - start)
        if after is not None:
            after(result)
        return result

    return wrapper


def own_checkpoint(trainer, config) -> None:
    """A checkpoint file no other run can write. RecBole names it ``<model>-<time to the
    second>.pth``: two processes that built a trainer in the same second shared one file and the
    test of one loaded the other's weights (seen: SASRec on Instrument, seeds 2025 and 2026 of
    the earlier table, identical test metrics; or a crash on a size mismatch between datasets)."""
    folder = Path(trainer.saved_model_file).parent
    stamp = time.strftime("%b-%d-%Y_%H-%M-%S")
    name = f"{config['model']}-{config['dataset']}-{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}.pth"
    trainer.saved_model_file = str(folder / name)


def run(
    config: Config,
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
    train: bool = True,
) -> RunResult:
    """Train (or, with ``checkpoint``, only evaluate) ``config``'s model on its dataset; test metrics.

    ``config`` is ``recbole_sdmtmp.config.build_config``'s, built once by the caller (each spawned
    process receives a copy).

    ``evaluate_test=False`` (tuning trials) never touches the test split: selection reads the
    validation split only, and the test is read once, for the chosen configuration.
    ``nproc`` > 1 (or a ``world_size``) trains in ``nproc`` processes on this machine with
    torch.distributed (``recbole_sdmtmp.distributed``; RecBole's keys: ``world_size`` processes
    in all, this machine's ranks from ``group_offset``, rank 0 at ``ip:port``); the result is
    rank 0's. ``distributed`` is what each spawned process receives.
    ``on_valid(epoch, score)`` is called after each validation (epochs trained so far, the
    ``valid_metric`` score); an exception it raises (a pruned tuning trial) ends the run.
    ``train=False`` tests the initial weights, no epoch run (what a model knows before learning).
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
        arguments = dict(config=config, checkpoint=checkpoint, saved=saved, evaluate_test=evaluate_test, train=train)
        # made here, once: RecBole's trainer checks then creates it, which races between ranks
        os.makedirs(config["checkpoint_dir"], exist_ok=True)
        return ddp.spawn(_run_rank, nproc, (arguments, group))
    model, dataset = config["model"], config["dataset"]
    if distributed is not None:
        ddp.init_process(config, **distributed)
    init_seed(config["seed"], config["reproducibility"])
    console.before_recbole_logger()
    init_logger(config)
    console.after_recbole_logger()
    logger = logging.getLogger()
    console.log_file_only(logger, config)  # RecBole's dumps: the log file, not the screen

    model_class, dataset_class = resolve_model(model)
    data, (train_data, valid_data, test_data) = load_data(config, dataset_class)
    console.log_file_only(logger, data)
    check_model_fits(config, data)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    recommender = model_class(config, train_data._dataset).to(config["device"])
    console.log_file_only(logger, recommender)
    logger.info(f"{model} on {dataset}, protocol {config['protocol']}: {data.user_num - 1} users, "
                f"{data.item_num - 1} items; {len(valid_data.positives)} validation and "
                f"{len(test_data.positives)} test cases; up to {config['epochs']} epochs, early stopping "
                f"on validation {config['valid_metric']} after {config['stopping_step']} without gain"
                + (f"; full configuration in {console.log_file_name()}" if console.log_file_name() else ""))
    trainer_class = get_trainer(config["native_model_type"], config["model"])
    if distributed is None:
        trainer = trainer_class(config, recommender)
        own_checkpoint(trainer, config)
    else:  # built single-process, then wrapped (RecBole's own wrapper is CUDA-only)
        config["single_spec"] = True
        trainer = trainer_class(config, recommender)
        config["single_spec"] = False
        own_checkpoint(trainer, config)  # rank 0's name is then given to every rank
        ddp.distribute_trainer(trainer, config)
    train_dataset = train_data._dataset
    topics_fit = train_dataset.topic_fit_id() if needs_topics(config) else None  # the fit the model read
    if checkpoint is None:
        stamp(config, topics_fit)  # the data it is trained on, saved with the Config in the checkpoint
    else:  # evaluated: a checkpoint of this model and data (recbole_sdmtmp.checkpoints)
        check_shapes(checkpoint, read_checkpoint(checkpoint)["state_dict"], recommender)
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
                       test_cases=len(test_data.positives), provenance=provenance(topics_fit))
    if checkpoint is None and train:
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
    result.machine = cpu_description()
    if torch.cuda.is_available() and "cuda" in result.device:
        result.peak_cuda_mb = torch.cuda.max_memory_allocated() / 2**20
    result.checkpoint = checkpoint
    logger.info(set_color("best valid ", "yellow") + f": {result.best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {result.test_result}")
    return result


def _run_rank(local_rank: int, result_file: str, arguments: dict, group: dict) -> None:
    """One spawned process of a ``run(nproc=...)``: rank 0 hands its RunResult back."""
    arguments["config"].compatibility_settings()  # unpickled, not built here: RecBole's numpy aliases
    try:
        result = run(**arguments, distributed=dict(group, local_rank=local_rank))
    except BaseException:
        if torch.distributed.is_initialized():  # no barrier: the other processes may never reach it
            torch.distributed.destroy_process_group()
        raise
    ddp.shut_down()
    if local_rank + group["offset"] == 0:
        ddp.hand_back(result, result_file)
