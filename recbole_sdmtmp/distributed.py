"""Training on several processes with torch.distributed, without ``recbole.quick_start``.

RecBole 1.2.1 spawns its processes in ``recbole.quick_start.run`` (which imports ray, docs/DESIGN.md
§6) and its ``Config`` starts NCCL on CUDA only. This module does the same steps with the
same config keys (``nproc``, ``world_size``, ``ip``, ``port``, ``offset``, ``local_rank``) and
starts gloo when there is no GPU. RecBole's trainer then does the rest of data parallelism: its
dataloaders shard the training cases with a ``DistributedSampler`` (each process takes
``train_batch_size / world_size`` of a batch) and it all-reduces the gradients through
``DistributedDataParallel``.

Evaluation is gathered here, not averaged: RecBole's ``Trainer._map_reduce`` weights each
process's *mean* metric by its number of batches (``len(batched_data)`` is 4, the batch tuple)
and its ``DistributedSampler`` pads the cases so that they divide evenly, counting some twice.
Instead each process scores a contiguous, unpadded share of the cases (``HeldOutDataLoader``),
the per-case top-k tables are gathered in process order, and every process computes RecBole's
metrics over all cases: the same numbers, from the same per-case rows, as one process.

A clean exit (:func:`shut_down`): every process waits for the others, frees what holds the gloo
process group (the trainer's ``DistributedDataParallel``, kept alive by reference cycles) while
the interpreter is fully alive, then destroys the group. Left to the interpreter's shutdown,
gloo's worker threads were torn down during finalisation and a process ended, now and then,
with ``terminate called without an active exception`` (SIGABRT) after its results were printed.
Rank 0's result travels as a file, not a pipe that the parent reads only after every process
has ended (a result over the pipe's 64 KiB would block rank 0 forever).
"""

import gc
import os
import pickle
import socket
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

PER_CASE_KEYS = ("rec.topk", "rec.meanrank", "rec.score", "rec.items", "data.label")


def free_port() -> int:
    """A TCP port nobody listens on now (for a one-machine run without ``--port``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def is_distributed(config) -> bool:
    return not config["single_spec"]


def init_process(config, local_rank: int, nproc: int, world_size: int, ip: str, port, offset: int) -> None:
    """Join the process group and set the config keys RecBole's trainer and loaders read.

    NCCL with one GPU per process (``cuda:local_rank``) when CUDA is there and ``use_gpu``;
    gloo on CPU otherwise. Processes other than global rank 0 log errors only and show no bars.
    """
    use_cuda = bool(config["use_gpu"]) and torch.cuda.is_available()
    if use_cuda and torch.cuda.device_count() < nproc:
        raise ValueError(f"nproc={nproc} needs {nproc} GPUs on this machine, {torch.cuda.device_count()} "
                         f"visible (gpu_id={config['gpu_id']!r}); give --gpu_id=0,1,... or --use_gpu=False")
    rank = local_rank + offset
    dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method=f"tcp://{ip}:{port}",
                            rank=rank, world_size=world_size)
    if use_cuda:
        torch.cuda.set_device(local_rank)
    for key, value in (("local_rank", local_rank), ("nproc", nproc), ("world_size", world_size),
                       ("ip", ip), ("port", str(port)), ("offset", offset), ("single_spec", False),
                       ("device", torch.device("cuda", local_rank) if use_cuda else torch.device("cpu"))):
        config[key] = value
    if rank != 0:
        config["state"] = "error"
        config["show_progress"] = False
        config["verbose"] = False


def case_shard(n_cases: int) -> np.ndarray:
    """The contiguous, unpadded share of ``n_cases`` evaluation cases of this process."""
    return np.array_split(np.arange(n_cases), dist.get_world_size())[dist.get_rank()]


def gather_rows(value):
    """Per-case rows of every process, concatenated in rank order (= the original case order)."""
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    if isinstance(value, torch.Tensor):
        return torch.cat(gathered, dim=0)
    return np.concatenate(gathered)


def distribute_trainer(trainer, config) -> None:
    """Make a RecBole trainer built with ``single_spec`` data parallel over the process group.

    RecBole's own wrapper passes ``device_ids=[local_rank]``, which DDP refuses for a CPU model,
    so the trainer is built as single-process and wrapped here. All processes share rank 0's
    checkpoint file name (the trainer stamps it with its own start time).
    """
    model = trainer.model
    device_ids = [config["local_rank"]] if config["device"].type == "cuda" else None
    trainer.distributed_model = DistributedDataParallel(model, device_ids=device_ids)
    names = [trainer.saved_model_file]
    dist.broadcast_object_list(names, src=0)
    trainer.saved_model_file = names[0]

    collector = trainer.eval_collector
    collect = collector.get_data_struct

    def gathered_struct():
        struct = collect()
        for key in PER_CASE_KEYS:
            if key in struct:
                struct[key] = gather_rows(struct[key])
        return struct

    collector.get_data_struct = gathered_struct
    trainer._map_reduce = lambda result, num_sample: result  # metrics already over every case


def shut_down() -> None:
    """Leave the process group cleanly: all processes here, gloo's last users freed, group gone."""
    if not dist.is_initialized():
        return
    gc.collect()  # the trainer <-> its wrapped methods cycle holds DDP, which holds the group
    dist.barrier()  # no process tears down while another is still in a collective
    dist.destroy_process_group()
    gc.collect()


def hand_back(result, result_file: str) -> None:
    """Rank 0's result for :func:`spawn`, written whole before it is renamed into place."""
    partial = f"{result_file}.partial"
    with open(partial, "wb") as file:
        pickle.dump(result, file)
    os.replace(partial, result_file)


def spawn(function, nproc: int, args: tuple):
    """Run ``function(local_rank, result_file, *args)`` in ``nproc`` processes; what rank 0 hands
    back (:func:`hand_back`) is returned, None when this machine has no rank 0."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="recbole_sdmtmp_ddp_") as folder:
        result_file = str(Path(folder) / "result.pkl")
        mp.spawn(function, args=(result_file, *args), nprocs=nproc, join=True)
        if not os.path.exists(result_file):
            return None
        with open(result_file, "rb") as file:
            return pickle.load(file)
