"""Run by tests/test_tuning.py in a subprocess (the tuning table is read at start-up): a little of
everything the table steers — eager training (GEMMs, GELU/tanh through vmath blocks, Adam and SGD
over tiles, cross-entropy and MSE sums, gradient clipping's norm), large loss and norm reductions,
and plan steps with direct-loop and GEMM-sized layers — at 1, 2 and 3 threads. Prints one JSON line:
the table and a SHA-256 of every result's bytes per thread count."""
from __future__ import annotations

import hashlib
import json

import numpy as np

import fastnn
from fastnn import _core, nn, ops
from fastnn import plan as fplan
from fastnn.nn.utils import clip_grad_norm_
from fastnn.optim import SGD, Adam


def _net(seed, dtype):
    fastnn.manual_seed(seed)
    return nn.Sequential(nn.Linear(48, 320, dtype=dtype), nn.GELU(), nn.Linear(320, 320, dtype=dtype), nn.Tanh(),
                         nn.Linear(320, 10, dtype=dtype))


def _run(dtype) -> bytes:
    r = np.random.default_rng(5)
    out = []
    X = r.standard_normal((256, 48)).astype(dtype)
    y = r.integers(0, 10, 256).astype(np.int64)
    model = _net(1, dtype)
    opt = Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(3):
        opt.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        out.append(np.float64(clip_grad_norm_(model.parameters(), 1.0)).tobytes())
        opt.step()
        out.append(np.float64(float(loss)).tobytes())
    out += [p.data.tobytes() for p in model.parameters()]
    # Reductions far longer than one block: summation order is the block size's.
    a = r.standard_normal(300_001).astype(dtype)
    b = r.standard_normal(300_001).astype(dtype)
    out.append(np.float64(ops.mse_loss(a, b, reduction="sum")).tobytes())
    out.append(np.float64(ops.grad_norm(a)).tobytes())
    # A plan: a direct-loop-sized head next to GEMM-sized layers, SGD with momentum.
    model = _net(2, dtype)
    plan = fplan.compile(model, nn.MSELoss(), SGD(model.parameters(), lr=0.01, momentum=0.9))
    t = r.standard_normal((256, 10)).astype(dtype)
    for _ in range(3):
        out.append(np.float64(plan.step(X, t)).tobytes())
    out += [p.data.tobytes() for p in model.parameters()]
    # A tiny network, every product on the plan's direct loops, Adam.
    fastnn.manual_seed(3)
    small = nn.Sequential(nn.Linear(12, 20, dtype=dtype), nn.ReLU(), nn.Linear(20, 3, dtype=dtype))
    plan = fplan.compile(small, nn.CrossEntropyLoss(), Adam(small.parameters(), lr=0.01))
    xs, ys = X[:16, :12].copy(), y[:16] % 3
    for _ in range(3):
        out.append(np.float64(plan.step(xs, ys)).tobytes())
    out += [p.data.tobytes() for p in small.parameters()]
    return b"".join(out)


def main():
    digests = {}
    for threads in (1, 2, 3):
        fastnn.set_num_threads(threads)
        digests[threads] = hashlib.sha256(_run(np.float32) + _run(np.float64)).hexdigest()
    print(json.dumps({"table": _core.tuning(), "kernels": _core.gemm_kernel_name(), "digests": digests}))


if __name__ == "__main__":
    main()
