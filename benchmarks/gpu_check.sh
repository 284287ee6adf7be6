#!/usr/bin/env bash
# The GPU check in one command:
#
#   bash benchmarks/gpu_check.sh          # on a machine with CUDA: tests, then results/gpu.md
#   bash benchmarks/gpu_check.sh --cpu    # no GPU: the CPU fallback (GPU tests skip, timing printed only)
#
# 1. the test suite with CUDA visible (tests/model/test_gpu.py compares CUDA with CPU; every other test
#    runs as everywhere). GPU_CHECK_TESTS="tests/model/test_gpu.py ..." narrows it.
# 2. benchmarks/gpu_timing.py: SD-MTMP, SASRec and LightGCN on Instrument, a few epochs each:
#    seconds per epoch, evaluation seconds, peak CUDA memory -> results/gpu.md (only on CUDA).
# Without CUDA it stops with exit status 2 and says why, unless --cpu is given.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python; fi

mode=gpu
if [ "${1:-}" = "--cpu" ]; then mode=cpu; fi

probe=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()), torch.__version__, torch.version.cuda)')
read -r has_cuda torch_version cuda_version <<<"$probe"
if [ "$has_cuda" != 1 ]; then
    why="torch $torch_version sees no CUDA device"
    if [ "$cuda_version" = None ]; then why="$why (a CPU-only build: install a CUDA build of torch)"; fi
    if command -v nvidia-smi >/dev/null 2>&1; then why="$why; nvidia-smi: $(nvidia-smi -L 2>&1 | head -1)"; fi
    if [ "$mode" != cpu ]; then
        echo "gpu_check: $why. Nothing written. Run 'bash benchmarks/gpu_check.sh --cpu' for the CPU fallback." >&2
        exit 2
    fi
    echo "gpu_check: $why: CPU FALLBACK (GPU tests skip; timing printed, results/gpu.md not written)"
fi

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$([ "$mode" = cpu ] && echo 1 || echo 4)}
start=$(date +%s)
if [ "$mode" = gpu ]; then
    tests=${GPU_CHECK_TESTS:-tests}
    epochs=5
    out=results/gpu.md
    device=cuda
else
    tests=${GPU_CHECK_TESTS:-tests/model/test_gpu.py tests/plugin/test_distributed.py}
    epochs=2
    out=-
    device=cpu
fi
echo "== tests: $PY -m pytest -q $tests"
# shellcheck disable=SC2086
"$PY" -m pytest -q -p no:cacheprovider $tests
echo "== timing: $PY benchmarks/gpu_timing.py --device $device --epochs $epochs --out $out"
"$PY" benchmarks/gpu_timing.py --device "$device" --epochs "$epochs" --out "$out"
echo "gpu_check: done in $(( $(date +%s) - start )) s ($mode)"
