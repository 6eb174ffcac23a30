"""One optimizer step over a 10M-parameter float32 arena: fastnn vs NumPy vs torch (fused).

Compared, in one process, on the same thread count (2 by default):
  - fastnn: ``fastnn.optim.SGD(momentum=0.9)`` / ``fastnn.optim.Adam`` over one Parameter of N
    elements (one arena), i.e. the user-facing ``opt.step()`` — one fused C pass;
  - NumPy: the same update written as an expert would, in place with preallocated scratch
    buffers and ``out=`` ufuncs (NumPy runs them on one thread, as it always does);
  - torch: ``torch.optim.SGD/Adam(..., fused=True)`` with ``torch.set_num_threads(threads)``,
    when torch is importable.

Run as a table::

    python benchmarks/bench_optim.py [--n 10000000] [--threads 2] [--repeat 30]

or with pytest-benchmark::

    python -m pytest benchmarks/bench_optim.py --benchmark-only
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the worktree's fastnn when run as a script

import fastnn
from fastnn import optim
from fastnn.nn import Parameter

try:
    import torch
except ImportError:  # torch is optional
    torch = None

N = 10_000_000
LR, MOMENTUM = 1e-3, 0.9
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32) * np.float32(1e-2)


# --- fastnn -----------------------------------------------------------------------------------

def fastnn_step(kind, n):
    p0, g0 = _data(n)
    param = Parameter(p0)
    opt = optim.SGD([param], lr=LR, momentum=MOMENTUM) if kind == "sgd" else \
        optim.Adam([param], lr=LR, betas=(BETA1, BETA2), eps=EPS)
    param.grad = g0
    return opt.step


# --- NumPy, in place, as an expert writes it -----------------------------------------------------

def numpy_step(kind, n):
    p, g = _data(n)
    f32 = np.float32
    tmp = np.empty_like(p)
    if kind == "sgd":
        buf = np.zeros_like(p)
        state = {"first": True}

        def step():
            if state["first"]:          # PyTorch's first step: buffer ← g
                np.copyto(buf, g)
                state["first"] = False
            else:                        # buf ← μ·buf + g
                np.multiply(buf, f32(MOMENTUM), out=buf)
                np.add(buf, g, out=buf)
            np.multiply(buf, f32(LR), out=tmp)
            np.subtract(p, tmp, out=p)
        return step

    m, v = np.zeros_like(p), np.zeros_like(p)
    state = {"t": 0}

    def step():
        state["t"] += 1
        t = state["t"]
        bc1, bc2 = 1 - BETA1 ** t, 1 - BETA2 ** t
        np.subtract(g, m, out=tmp)                       # m ← m + (1−β1)(g − m)
        np.multiply(tmp, f32(1 - BETA1), out=tmp)
        np.add(m, tmp, out=m)
        np.multiply(g, g, out=tmp)                       # v ← β2·v + (1−β2)·g²
        np.multiply(tmp, f32(1 - BETA2), out=tmp)
        np.multiply(v, f32(BETA2), out=v)
        np.add(v, tmp, out=v)
        np.sqrt(v, out=tmp)                              # denom = √v/√bc2 + eps
        np.divide(tmp, f32(bc2 ** 0.5), out=tmp)
        np.add(tmp, f32(EPS), out=tmp)
        np.divide(m, tmp, out=tmp)                       # θ ← θ − (lr/bc1)·m/denom
        np.multiply(tmp, f32(LR / bc1), out=tmp)
        np.subtract(p, tmp, out=p)
    return step


# --- torch fused -------------------------------------------------------------------------------

def torch_step(kind, n):
    p0, g0 = _data(n)
    param = torch.nn.Parameter(torch.from_numpy(p0))
    param.grad = torch.from_numpy(g0)
    opt = torch.optim.SGD([param], lr=LR, momentum=MOMENTUM, fused=True) if kind == "sgd" else \
        torch.optim.Adam([param], lr=LR, betas=(BETA1, BETA2), eps=EPS, fused=True)
    return opt.step


IMPLS = {"fastnn": fastnn_step, "numpy": numpy_step}
if torch is not None:
    IMPLS["torch fused"] = torch_step


def set_threads(n):
    fastnn.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


# --- pytest-benchmark ------------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:
    @pytest.mark.parametrize("impl", list(IMPLS))
    @pytest.mark.parametrize("kind", ["sgd", "adam"])
    def test_optimizer_step(benchmark, kind, impl):
        set_threads(2)
        step = IMPLS[impl](kind, N)
        for _ in range(3):   # lazily created state, page faults
            step()
        benchmark.pedantic(step, rounds=20, iterations=1)


# --- table mode --------------------------------------------------------------------------------------

def measure(step, repeat):
    for _ in range(3):
        step()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=N)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    set_threads(args.threads)
    print(f"N = {args.n:,} float32 parameters, {args.threads} threads "
          f"(fastnn {fastnn.__version__}, NumPy {np.__version__}"
          + (f", torch {torch.__version__}" if torch is not None else ", torch not installed") + ")")
    print(f"{'optimizer':<14}{'implementation':<14}{'best ms':>9}{'median ms':>11}{'vs fastnn':>11}")
    for kind, label in (("sgd", "SGD momentum"), ("adam", "Adam")):
        rows = {}
        for impl, make in IMPLS.items():
            step = make(kind, args.n)
            rows[impl] = measure(step, args.repeat)
            del step
        base = rows["fastnn"][1]
        for impl, (best, med) in rows.items():
            print(f"{label:<14}{impl:<14}{best * 1e3:9.2f}{med * 1e3:11.2f}{med / base:10.2f}x")


if __name__ == "__main__":
    main()
