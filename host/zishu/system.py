"""The machine, as the Settings panel shows it: CPU, RAM, disk under ZISHU_HOME, GPUs and VRAM."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import psutil


def gpus() -> list[dict]:
    """NVIDIA GPUs through nvidia-smi (name, VRAM total and free in bytes); empty when none."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            vram, free = int(parts[1]) * 2**20, int(parts[2]) * 2**20
            found.append({"name": parts[0], "vram_bytes": vram, "vram_free_bytes": free})
    return found


def summary(home: Path) -> dict:
    memory = psutil.virtual_memory()
    disk = shutil.disk_usage(home if Path(home).exists() else Path.home())
    return {
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "ram_bytes": memory.total,
        "ram_available_bytes": memory.available,
        "disk_free_bytes": disk.free,
        "disk_total_bytes": disk.total,
        "gpus": gpus(),
    }
