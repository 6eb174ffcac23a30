"""The machine a benchmark ran on: CPU model, core count, threads, kernel set, peak memory."""
from __future__ import annotations

import os
import platform
import sys
from typing import Any, Dict

__all__ = ["cpu_model", "machine_info", "peak_memory_mib"]


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, sysctl on macOS), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        import subprocess
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                 text=True, timeout=5).stdout.strip()
            if out:
                return out
        except Exception:  # noqa: BLE001 - informative only
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def peak_memory_mib() -> float:
    """Peak resident memory of this process in MiB (getrusage; NaN where unavailable)."""
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def machine_info(torch: bool = True) -> Dict[str, Any]:
    """CPU, logical CPUs, fastnn threads and kernel set, library versions (for benchmark headers).

    ``torch=False`` does not import PyTorch (``torch`` is then None)."""
    import numpy as np

    from .. import __version__, _core
    d: Dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "fastnn": __version__,
        "threads": int(_core.get_num_threads()),
        "openmp": bool(_core.has_openmp()),
        "kernels": _core.gemm_kernel_name(),
        "available_kernels": list(_core.gemm_available_kernels()),
    }
    try:
        d["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # Windows
        d["load_average"] = None
    d["torch"] = None
    if not torch:
        return d
    try:
        import torch as _torch
        d["torch"] = _torch.__version__
        d["torch_threads"] = _torch.get_num_threads()
    except Exception:  # noqa: BLE001 - torch is optional; a broken install counts as absent
        d["torch"] = None
    return d
