"""The ``contended`` section: products on a machine that is not idle, 2 threads, float32.

Two conditions users meet, each against the same product timed on the idle machine:

* **interleaved** — fastnn and NumPy timed in alternating blocks of 3 calls with no pause, the
  obvious way to compare them. OpenBLAS's worker threads keep spinning ~0.2 s after each NumPy
  call, so fastnn's team starts beside a busy core; NumPy's blocks in turn start right after
  fastnn's. Reported: NumPy time / fastnn time in the same run (≥ 1: fastnn faster).
* **busy core** — a busy-loop process pinned to one core (``os.sched_setaffinity``) while fastnn
  and then NumPy are timed. Reported: fastnn's idle time / its time beside the busy core (1 = no
  loss; a team that splits its work statically runs at the pace of the thread sharing the
  busy core, ~0.5), and NumPy time / fastnn time under the same load.

Each case runs with fastnn's static and dynamic GEMM schedules (``_core.set_gemm_schedule``),
so the command doubles as the A/B of the two. ``python -m fastnn bench --only contended``.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .kernels import BenchConfig, _close, fastnn_matmul, matmul_operands, numpy_matmul, time_blocks

__all__ = ["CONTENDED_SHAPES", "CONTENDED_SMOKE", "run_contended", "format_contended", "busy_core"]

# (label, m, n, k, trans_a, trans_b): the training step's products and two squares.
CONTENDED_SHAPES = [
    ("H·Wᵀ 256×1024·1024×1024", 256, 1024, 1024, False, True),
    ("X·Wᵀ 256×784·784×1024", 256, 1024, 784, False, True),
    ("dZᵀ·X 1024×256·256×784", 1024, 784, 256, True, False),
    ("head 256×1024·1024×10", 256, 10, 1024, False, True),
    ("square 512", 512, 512, 512, False, False),
    ("square 1024", 1024, 1024, 1024, False, False),
]
CONTENDED_SMOKE = [("square 128", 128, 128, 128, False, False)]
SCHEDULES = ("static", "dynamic")
BLOCK_CALLS = 3  # calls per interleaved block


@contextlib.contextmanager
def busy_core(cpu: Optional[int] = None):
    """A busy-loop subprocess pinned to one CPU (the last one this process may use) for the block.

    Yields the CPU it is pinned to (None where affinity cannot be set: it then runs unpinned)."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    target = cpu if cpu is not None else (allowed[-1] if allowed else None)
    pin = (f"import os\ntry:\n    os.sched_setaffinity(0, {{{target}}})\nexcept (AttributeError, OSError):\n"
           f"    pass\n") if target is not None else ""
    proc = subprocess.Popen([sys.executable, "-c", pin + "while True:\n    pass\n"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # interpreter start-up: the loop is spinning by now
        yield target
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def _threads_and_schedule(threads: int, schedule: str):
    from .. import _core
    old_t, old_s = _core.get_num_threads(), _core.gemm_schedule()
    _core.set_num_threads(min(threads, _core.max_num_threads()))
    _core.set_gemm_schedule(schedule)
    try:
        yield
    finally:
        _core.set_num_threads(old_t)
        _core.set_gemm_schedule(old_s)


@contextlib.contextmanager
def _blas_threads(threads: int):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield True


def _available_schedules() -> List[str]:
    """SCHEDULES this build can run (a serial build has only the static one)."""
    from .. import _core
    before, ok = _core.gemm_schedule(), []
    for name in SCHEDULES:
        try:
            _core.set_gemm_schedule(name)
        except ValueError:
            continue
        ok.append(name)
    _core.set_gemm_schedule(before)
    return ok


def _median_call(fn: Callable[[], Any], cfg: BenchConfig) -> float:
    per_call, _ = time_blocks(fn, cfg.block_s, blocks=cfg.blocks)
    return statistics.median(per_call)


def interleaved(f: Callable[[], Any], g: Callable[[], Any], rounds: int) -> Dict[str, float]:
    """Median seconds per call of f and g timed in alternating blocks of BLOCK_CALLS, no pause."""
    f()
    g()
    tf: List[float] = []
    tg: List[float] = []
    for _ in range(rounds):
        for fn, out in ((f, tf), (g, tg)):
            t0 = time.perf_counter()
            for _ in range(BLOCK_CALLS):
                fn()
            out.append((time.perf_counter() - t0) / BLOCK_CALLS)
    return {"fastnn": statistics.median(tf), "numpy": statistics.median(tg)}


def run_contended(cfg: BenchConfig, threads: int = 2, progress: Optional[Callable[[str], None]] = None
                  ) -> List[Dict[str, Any]]:
    """One dict per (case, schedule): times_s[idle|interleaved|busy][fastnn|numpy] and the ratios
    ``interleaved_vs_numpy``, ``busy_vs_idle``, ``busy_vs_numpy`` (see the module docstring)."""
    rounds = 3 if cfg.quick else 15
    out: List[Dict[str, Any]] = []
    with _blas_threads(threads) as blas_limited:
        for label, m, n, k, ta, tb in (CONTENDED_SMOKE if cfg.quick else CONTENDED_SHAPES):
            if progress is not None:
                progress(f"contended {label}")
            a, b, c_f = matmul_operands(m, n, k, ta, tb, np.float32)
            c_n = np.empty_like(c_f)
            fast, nump = fastnn_matmul(a, b, c_f, ta, tb), numpy_matmul(a, b, c_n, ta, tb)
            fast()
            nump()
            match = _close(c_f, c_n, 1e-4)
            time.sleep(cfg.pause_s)
            idle_numpy = _median_call(nump, cfg)
            for sched in _available_schedules():
                with _threads_and_schedule(threads, sched):
                    time.sleep(cfg.pause_s)
                    idle_f = _median_call(fast, cfg)
                    inter = interleaved(fast, nump, rounds)
                    with busy_core() as cpu:
                        busy_f = _median_call(fast, cfg)
                        busy_n = _median_call(nump, cfg)
                t = {"idle": {"fastnn": idle_f, "numpy": idle_numpy}, "interleaved": inter,
                     "busy": {"fastnn": busy_f, "numpy": busy_n}}
                out.append({"section": "contended", "case": label, "schedule": sched, "dtype": "float32",
                            "threads": threads, "blas_threads_limited": blas_limited, "busy_cpu": cpu,
                            "match": match, "flop": 2.0 * m * n * k, "times_s": t,
                            "idle_vs_numpy": idle_numpy / idle_f,
                            "interleaved_vs_numpy": inter["numpy"] / inter["fastnn"],
                            "busy_vs_idle": idle_f / busy_f, "busy_vs_numpy": busy_n / busy_f})
    return out


def format_contended(results: List[Dict[str, Any]]) -> str:
    """Markdown table: per case and schedule, idle/interleaved/busy-core times and ratios."""
    from .report import format_time
    head = ["case", "schedule", "idle fastnn", "idle vs NumPy", "interleaved fastnn",
            "interleaved vs NumPy (≥0.8)", "busy-core fastnn", "busy vs own idle (≥0.75)", "busy vs NumPy"]
    rows = [head, ["---"] * len(head)]
    for r in results:
        t = r["times_s"]
        rows.append([r["case"] + ("" if r.get("match", True) else " (RESULTS DIFFER)"), r["schedule"],
                     format_time(t["idle"]["fastnn"]), f"{r['idle_vs_numpy']:.2f}×",
                     format_time(t["interleaved"]["fastnn"]), f"{r['interleaved_vs_numpy']:.2f}×",
                     format_time(t["busy"]["fastnn"]), f"{r['busy_vs_idle']:.2f}×",
                     f"{r['busy_vs_numpy']:.2f}×"])
    return "\n".join("| " + " | ".join(cells) + " |" for cells in rows)
