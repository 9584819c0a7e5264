"""One line naming the hardware a figure was measured on, stored beside the figure."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine(device: torch.device | str = "cpu") -> str:
    """E.g. ``"NVIDIA H200 (CUDA 12.8), torch 2.14.1"`` or ``"Intel(R) Xeon(R) Processor, 2 threads
    of 2 cores, torch 2.14.1"``."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{name} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    import os

    return f"{cpu_name()}, {torch.get_num_threads()} threads of {os.cpu_count()} cores, torch {torch.__version__}"
