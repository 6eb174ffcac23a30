"""fastnn.bench — speed comparisons against NumPy (and PyTorch/JAX when installed), as ratios.

``python -m fastnn bench`` runs them from the command line. In Python::

    from fastnn.bench import run_kernel_benchmarks
    results = run_kernel_benchmarks(quick=True)     # list of dicts: times, speed-ups, match

Modules: ``kernels`` (matmul, fused linear, optimizer updates), ``report`` (the CLI's table,
JSON and chart), ``machine`` (CPU model, peak memory); ``steps`` (whole training steps) when present.
"""
from .kernels import BenchConfig, run_kernel_benchmarks  # noqa: F401
from .machine import cpu_model, machine_info, peak_memory_mib  # noqa: F401

__all__ = ["BenchConfig", "run_kernel_benchmarks", "cpu_model", "machine_info", "peak_memory_mib"]
