"""Short timing of SD-MTMP, SASRec and LightGCN on one device (run by
benchmarks/gpu_check.sh).

    python benchmarks/gpu_timing.py --out results/gpu.md            # on CUDA
    python benchmarks/gpu_timing.py --device cpu --epochs 2 --out -  # the CPU fallback, printed only

Each model trains ``--epochs`` epochs under the shared protocol (``recbole_sdmtmp.runner.run``,
no early stop before them, no checkpoint) on Instrument: the prepared ``dataset/Instrument``,
else prepared from the raw Amazon file where ``python -m dataset_preprocess`` finds it, else
(a machine with neither) the 10^4-interaction synthetic dataset of benchmarks/scale.py, said so
in the table. Reported: median seconds per epoch, median seconds of one full-sort evaluation of
the validation split, the process's peak CUDA memory during that model's run, and test NDCG@10
after these few epochs (a sanity check, not a result).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.argv, ARGV = sys.argv[:1], sys.argv[1:]  # RecBole's Config reads --key=value from argv

MODELS = ("SDMTMP", "SASRec", "LightGCN")


def dataset_for_timing(data_root: Path) -> tuple[str, Path, str]:
    """(dataset name, data_path, what it is)."""
    from dataset_preprocess.topics.files import topic_file_paths

    folder = data_root / "Instrument"
    if (folder / "Instrument.inter").is_file() and all(
            path.is_file() for key, path in topic_file_paths(folder, "Instrument").items() if key != "summary"):
        return "Instrument", data_root, "Instrument (prepared)"
    try:
        from dataset_preprocess.pipeline import prepare_dataset

        prepare_dataset("Instrument", out_dir=data_root, download=False, topics=True)
        return "Instrument", data_root, "Instrument (prepared now from the raw file)"
    except Exception as error:  # no raw file on this machine: the synthetic stand-in
        from benchmarks.scale import write_dataset

        root = REPO / "saved" / "gpu_check_data"
        write_dataset(root, "synthetic10000", 10_000)
        return "synthetic10000", root, (f"synthetic 10^4 interactions of benchmarks/scale.py (Instrument not "
                                        f"available here: {type(error).__name__}: {str(error)[:120]})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--out", default=str(REPO / "results" / "gpu.md"), help="'-' prints only")
    args = parser.parse_args(ARGV)

    import torch

    import recbole_sdmtmp  # noqa: F401
    from recbole_sdmtmp.config import build_config
    from recbole_sdmtmp.runner import run

    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        print(f"gpu_timing: no CUDA device visible to torch {torch.__version__}", file=sys.stderr)
        return 2
    name, data_path, what = dataset_for_timing(REPO / "dataset")
    device_name = torch.cuda.get_device_name(0) if cuda else "CPU"
    rows = []
    for model in args.models:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        result = run(build_config(model, name, config_dict={
            "data_path": str(data_path), "epochs": args.epochs, "stopping_step": args.epochs, "eval_step": 1,
            "show_progress": False, "use_gpu": cuda, "gpu_id": "0" if cuda else "", "state": "warning",
            "checkpoint_dir": str(REPO / "saved" / "gpu_check")}), saved=False)
        rows.append((model, result, time.perf_counter() - start))
        print(f"{model}: {result.train_seconds_per_epoch:.2f} s/epoch, evaluation {result.eval_seconds:.2f} s, "
              f"peak CUDA {result.peak_cuda_mb or 0:.0f} MB ({result.device})", flush=True)
    command = "bash benchmarks/gpu_check.sh" if cuda else "bash benchmarks/gpu_check.sh --cpu"
    lines = [f"# {'GPU' if cuda else 'CPU fallback'} timing: SD-MTMP, SASRec, LightGCN", "",
             f"Made by `{command}` on {device_name} (torch {torch.__version__}), "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Data: {what}. Each model: {args.epochs} epochs "
             "under the shared protocol (paper split, full-sort evaluation of the validation split after every "
             "epoch), default settings, no checkpoint.", "",
             "| model | s / epoch (median) | evaluation s (median) | peak CUDA MB | test NDCG@10 after these epochs | run s |",
             "|---|---:|---:|---:|---:|---:|"]
    for model, result, seconds in rows:
        lines.append(f"| {model} | {result.train_seconds_per_epoch:.2f} | {result.eval_seconds:.2f} | "
                     f"{result.peak_cuda_mb or 0:.0f} | {result.test_result.get('ndcg@10', float('nan')):.4f} | {seconds:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text)
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
