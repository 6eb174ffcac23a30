"""fastnn.info() — what this installation is: versions, build, OpenMP runtime, threads, kernels.

``fastnn.info()`` returns a dict (JSON-serialisable); ``fastnn.show_info()`` prints it.
``python -m fastnn info`` prints the same report. Paste it into bug reports.
"""
from __future__ import annotations

import os
import platform
import sys
from typing import Any, Dict, List, Optional, TextIO

import numpy as np

__all__ = ["info", "show_info"]

DTYPES = ("float32", "float64")


def _build_config() -> Dict[str, Any]:
    """Facts setup.py recorded at build time (``fastnn/_build_config.py``), or {} when absent."""
    try:
        from . import _build_config as bc
    except ImportError:
        return {}
    return {k: v for k, v in vars(bc).items() if not k.startswith("_")}


def _openmp_library_from_maps() -> Optional[str]:
    """Path of the OpenMP runtime mapped into this process (Linux /proc/self/maps), if any."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        path = line.split()[-1] if line.split() else ""
        name = os.path.basename(path)
        if name.startswith(("libgomp", "libomp", "libiomp")) and ".so" in name:
            return path
    return None


def _openmp_from_threadpoolctl() -> Optional[List[Dict[str, Any]]]:
    """The OpenMP pools threadpoolctl sees (library path, version, threads), or None if not installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [{"filepath": d.get("filepath"), "version": d.get("version"), "num_threads": d.get("num_threads"),
             "internal_api": d.get("internal_api")}
            for d in threadpool_info() if d.get("user_api") == "openmp"]


def _cpu_model() -> str:
    from .bench.machine import cpu_model
    return cpu_model()


TUNING_ENV = ("FASTNN_TUNING", "FASTNN_KERNELS", "FASTNN_GEMM_BLOCKS", "FASTNN_GEMM_SCHEDULE")


def tuning() -> Dict[str, Any]:
    """The knobs every kernel reads: the kernel set in use (src_c/cpu.h: GEMM, optimizer and
    plans follow it; ``FASTNN_KERNELS`` overrides it), the optimizer's vector width and the plans'
    direct-loop build (``plan_kernels``), when passes
    fork their thread team (``parallel_thresholds``), the tuning table (src_c/tuning.h:
    ``table`` name -> value, ``overridden`` name -> the variable that set it, ``changes_results``;
    ``FASTNN_TUNING="key=value,..."`` sets any field) and the environment overrides as set in
    this process."""
    from . import _core
    table = _core.tuning()
    return {"kernels": _core.gemm_kernel_name(), "optimizer_simd_bytes": int(_core.optim_simd_bytes()),
            "plan_kernels": _core.plan_kernels(), "parallel_thresholds": dict(_core.parallel_thresholds()),
            "table": table["values"], "overridden": table["overridden"],
            "changes_results": table["changes_results"],
            "env": {k: os.environ.get(k) for k in TUNING_ENV}}


def _table_lines(table: Dict[str, Any], overridden: Dict[str, str], width: int = 88) -> List[str]:
    """``key=value`` pairs of the tuning table wrapped into lines; overridden ones marked ``*``."""
    lines: List[str] = []
    line = ""
    for name, value in table.items():
        item = f"{name}={value}" + ("*" if name in overridden else "")
        if line and len(line) + 1 + len(item) > width:
            lines.append(line)
            line = item
        else:
            line = f"{line} {item}" if line else item
    return lines + ([line] if line else [])


def info() -> Dict[str, Any]:
    """A dict describing this fastnn installation.

    Keys: ``version``, ``python``, ``numpy``, ``platform``, ``cpu``, ``build`` (compiler,
    flags, OpenMP at build time — recorded by setup.py), ``openmp`` (``enabled``,
    ``library``, ``threadpoolctl``), ``threads`` (fastnn's thread count), ``cpu_count``,
    ``kernels`` (``active``, ``available``, ``block_sizes``), ``tuning`` (see :func:`tuning`),
    ``dtypes``, ``location``.
    """
    from . import __version__, _core
    enabled = bool(_core.has_openmp())
    tpc = _openmp_from_threadpoolctl()
    library = None
    if tpc:
        library = tpc[0]["filepath"]
    elif enabled:
        library = _openmp_library_from_maps()
    return {
        "version": __version__,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "build": _build_config(),
        "openmp": {"enabled": enabled, "library": library, "threadpoolctl": tpc,
                   "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "threads": int(_core.get_num_threads()),
        "kernels": {"active": _core.gemm_kernel_name(), "available": list(_core.gemm_available_kernels()),
                    "block_sizes": _core.gemm_block_sizes()},
        "tuning": tuning(),
        "dtypes": list(DTYPES),
        "location": os.path.dirname(os.path.abspath(__file__)),
    }


def format_info(d: Optional[Dict[str, Any]] = None) -> str:
    """The report ``show_info`` prints, as a string."""
    d = info() if d is None else d
    b = d["build"]
    omp = d["openmp"]
    k = d["kernels"]
    bs = k["block_sizes"]
    if b:
        compiler = b.get("compiler_version") or b.get("compiler") or "unknown"
        build = f"{compiler} ({b.get('compiler_type')}; flags: {b.get('extra_compile_args', '')})"
        if b.get("no_openmp_env") not in ("", "0", None):
            build += f"; FASTNN_NO_OPENMP={b['no_openmp_env']}"
    else:
        build = "unknown (no fastnn/_build_config.py: built without fastnn's setup.py)"
    if omp["enabled"]:
        runtime = f"on, {omp['library'] or 'library not found in this process'}"
        if omp["threadpoolctl"] is None:
            runtime += " (threadpoolctl not installed)"
        else:
            runtime += "".join(f"; threadpoolctl sees {os.path.basename(p['filepath'] or '?')}"
                               + (f" {p['version']}" if p["version"] else "") + f" with {p['num_threads']} threads"
                               for p in omp["threadpoolctl"])
    else:
        runtime = "off (serial build: fastnn runs on one core)"
    f32 = bs["float32"]
    f64 = bs["float64"]
    cache = bs["cache_bytes"]
    lines = [
        f"fastnn {d['version']}  ({d['location']})",
        f"Python       {d['python']} ({d['python_implementation']}), NumPy {d['numpy']}",
        f"platform     {d['platform']}",
        f"CPU          {d['cpu']} ({d['cpu_count']} logical CPUs)",
        f"compiler     {build}",
        f"OpenMP       {runtime}",
        f"threads      {d['threads']}" + (f" (OMP_NUM_THREADS={omp['OMP_NUM_THREADS']})"
                                          if omp["OMP_NUM_THREADS"] else ""),
        f"kernels      {k['active']} (available: {', '.join(k['available'])})",
        "blocking     float32 MR={MR} NR={NR} MC={MC} KC={KC} NC={NC}; ".format(**f32)
        + "float64 MR={MR} NR={NR} MC={MC} KC={KC} NC={NC}".format(**f64),
        f"caches       L1d {cache['L1d'] // 1024} KiB, L2 {cache['L2'] // 1024} KiB, L3 {cache['L3'] // 1024} KiB",
        f"dtypes       {', '.join(d['dtypes'])} (float32 default)",
    ]
    t = d.get("tuning")
    if t:
        th = t["parallel_thresholds"]
        env = ", ".join(f"{k}={v}" for k, v in t["env"].items() if v) or "none set"
        pad = " " * 13
        lines += [
            f"tuning       kernels {t['kernels']} for GEMM, optimizer ({t['optimizer_simd_bytes']}-byte vectors) "
            f"and plans ({t.get('plan_kernels', '?')} direct loops)",
            f"{pad}fork a pass when n·cost >= {th['elementwise']} (cost: 1, arith {th['arith']}, "
            f"transcendental {th['transcendental']}); a product when m·n·k >= {int(th['gemm'])}",
        ]
        table = t.get("table")
        if table:
            lines += [pad + line for line in _table_lines(table, t["overridden"])]
        marked = "; * overridden" if t.get("overridden") else ""
        lines.append(f"{pad}overrides: {env}{marked} (of {', '.join(TUNING_ENV)})")
    return "\n".join(lines)


def show_info(file: Optional[TextIO] = None) -> None:
    """Print :func:`info` as a readable report (to ``file``, default stdout)."""
    print(format_info(), file=file if file is not None else sys.stdout)
