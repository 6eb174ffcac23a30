"""Per-element cost of the transcendental activations, vmath against the libm formulas fastnn
used before it, in the same process, one thread.

    python benchmarks/bench_activations.py [--n 65536] [--blocks 7]

Rows: sigmoid, tanh, GELU (exact) and GELU (tanh), float32 and float64, forward and backward.
Columns (ns per element, best of --blocks timed blocks of ~50 ms, the calling thread's CPU
time so a busy machine adds less noise):
  libm      — the libm formulas one element at a time (``_core.act_baseline('libm', ...)``);
              the backward of sigmoid and tanh is arithmetic on the saved output (y(1 − y),
              1 − y²), unchanged by vmath, so it has no libm column;
  vmath     — ``_core.act_forward`` / ``_core.act_backward`` (vmath's vector kernels);
  one-lane  — a loop over vmath's one-element call, the GEMM epilogue's per-element path;
  speedup   — libm / vmath.
The kernel set is the GEMM's (FASTNN_KERNELS=portable forces the portable one); the load
average is printed with the table: numbers from a loaded machine are only ratios.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

if __name__ == "__main__":  # make the worktree importable when run as a script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastnn  # noqa: E402
from fastnn import _core  # noqa: E402

ACTS = {"sigmoid": 3, "tanh": 4, "gelu": 5, "gelu_tanh": 6}
FROM_OUTPUT = {"sigmoid", "tanh"}


def per_element_ns(fn, n: int, blocks: int, block_s: float = 0.05) -> float:
    """Best CPU time per element over `blocks` blocks of ~block_s seconds each."""
    fn()
    t0 = time.process_time()
    calls = 0
    while time.process_time() - t0 < 0.01:
        fn()
        calls += 1
    reps = max(1, int(calls * block_s / 0.01))
    best = float("inf")
    for _ in range(blocks):
        t0 = time.process_time()
        for _ in range(reps):
            fn()
        best = min(best, (time.process_time() - t0) / reps)
    return best / n * 1e9


def rows(n: int, blocks: int):
    rng = np.random.default_rng(0)
    out = []
    for dtype in (np.float32, np.float64):
        x = rng.uniform(-6, 6, n).astype(dtype)
        dy = rng.standard_normal(n).astype(dtype)
        y = np.empty_like(x)
        dx = np.empty_like(x)
        for name, code in ACTS.items():
            libm = per_element_ns(lambda: _core.act_baseline("libm", y, x, code), n, blocks)
            vm = per_element_ns(lambda: _core.act_forward(y, x, code, 0.0), n, blocks)
            lane = per_element_ns(lambda: _core.act_baseline("one_lane", y, x, code), n, blocks)
            out.append((name, np.dtype(dtype).name, "forward", libm, vm, lane))
            saved = y if name in FROM_OUTPUT else x
            _core.act_forward(y, x, code, 0.0)
            vm_b = per_element_ns(lambda: _core.act_backward(dx, dy, saved, code, 0.0), n, blocks)
            libm_b = (float("nan") if name in FROM_OUTPUT else
                      per_element_ns(lambda: _core.act_baseline("libm", dx, x, code, grad_out=dy), n, blocks))
            out.append((name, np.dtype(dtype).name, "backward", libm_b, vm_b, float("nan")))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=65536, help="elements per call (default 65536: in L2)")
    ap.add_argument("--blocks", type=int, default=7, help="timed blocks per case (best is kept)")
    args = ap.parse_args(argv)
    fastnn.set_num_threads(1)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"vmath kernels: {_core.vmath_kernel_name()}, 1 thread, n = {args.n}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'activation':<10} {'dtype':<8} {'pass':<9} {'libm ns':>8} {'vmath ns':>9} {'one-lane':>9} {'speedup':>8}")
    for name, dt, kind, libm, vm, lane in rows(args.n, args.blocks):
        sp = libm / vm if libm == libm else float("nan")
        def fmt(v): return f"{v:.2f}" if v == v else "-"  # noqa: E301,E704
        print(f"{name:<10} {dt:<8} {kind:<9} {fmt(libm):>8} {fmt(vm):>9} {fmt(lane):>9} "
              f"{(f'{sp:.1f}x' if sp == sp else '-'):>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
