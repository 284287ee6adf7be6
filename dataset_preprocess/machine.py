"""What machine a number was measured on: the CPU decides both speed and a topic fit's last bits."""

import os
import platform
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def cpu_description() -> str:
    """The CPU model, whether it has AVX-512 and AMX, and the cores this process may use,
    e.g. ``AMD EPYC, AVX-512, 2 cores``."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine())
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines()
                  if line.startswith("flags")), [])
    isa = ", ".join(name for name, flag in (("AVX-512", "avx512f"), ("AMX", "amx_tile")) if flag in flags)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return ", ".join(part for part in (model, isa or ("no AVX-512" if flags else ""), f"{cores} cores") if part)
