"""Per-call cost of the eager API on tiny arrays: the README quickstart's XOR step and a few
``fastnn.ops`` calls, timed with ``timeit`` (median of repeats, µs per call).

    python benchmarks/bench_call_overhead.py                 # this checkout
    PYTHONPATH=/path/to/other/tree python benchmarks/bench_call_overhead.py

To compare two builds on a loaded machine, run them alternately several times in one session
and compare the medians (``--json`` prints one machine-readable line per run; ``--min`` reports
the fastest repeat instead of the median, which load disturbs less; ``--repeat N`` sets repeats).
"""
from __future__ import annotations

import json
import statistics
import sys
import timeit

import numpy as np

import fastnn as fnn
from fastnn import ops


def _cases():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    fnn.manual_seed(0)
    model = fnn.nn.Sequential(fnn.nn.Linear(2, 4), fnn.nn.Tanh(), fnn.nn.Linear(4, 1), fnn.nn.Sigmoid())
    loss_fn = fnn.nn.BCELoss()
    opt = fnn.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)

    def xor_step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    # A per-module eager step through LayerNorm (the norm layers' checks run every call).
    r = np.random.default_rng(0)
    xn = r.standard_normal((16, 8)).astype(np.float32)
    yn = r.standard_normal((16, 1)).astype(np.float32)
    norm_model = fnn.nn.Sequential(fnn.nn.Linear(8, 16), fnn.nn.LayerNorm(16), fnn.nn.ReLU(), fnn.nn.Linear(16, 1))
    norm_loss = fnn.nn.MSELoss()
    norm_opt = fnn.optim.Adam(norm_model.parameters(), lr=1e-3)

    def layernorm_step():
        norm_opt.zero_grad()
        loss = norm_loss(norm_model(xn), yn)
        loss.backward()
        norm_opt.step()

    a = r.standard_normal((4, 3)).astype(np.float32)
    b = r.standard_normal((3, 5)).astype(np.float32)
    w = r.standard_normal((5, 3)).astype(np.float32)
    bias = r.standard_normal(5).astype(np.float32)
    go = r.standard_normal((4, 5)).astype(np.float32)
    gw, gb = np.zeros_like(w), np.zeros_like(bias)
    yv = ops.linear(a, w, bias, activation="tanh")
    p, g = r.standard_normal(64).astype(np.float32), r.standard_normal(64).astype(np.float32)
    m, v, buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    t = r.random((4, 5)).astype(np.float32)
    grad = np.empty_like(t)
    labels = np.array([0, 1, 2, 3])
    return {
        "xor_step": xor_step,
        "layernorm_step": layernorm_step,
        "matmul": lambda: ops.matmul(a, b),
        "linear": lambda: ops.linear(a, w, bias, activation="tanh"),
        "linear_backward": lambda: ops.linear_backward(go, a, w, gw, gb, activation="tanh", saved=yv),
        "sgd_step": lambda: ops.sgd_step(p, g, buf, lr=0.01, momentum=0.9),
        "adam_step": lambda: ops.adam_step(p, g, m, v, step=3, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8),
        "mse_loss": lambda: ops.mse_loss(t, t * 0.5, grad=grad),
        "bce_loss": lambda: ops.bce_loss(t, t * 0.5, grad=grad),
        "cross_entropy": lambda: ops.cross_entropy(go, labels, grad=np.empty_like(go)),
        "relu": lambda: ops.relu(a),
    }


def main(argv) -> None:
    repeats = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 7
    stat = min if "--min" in argv else statistics.median
    out = {}
    for name, fn in _cases().items():
        fn()
        number = 200 if name in ("xor_step", "layernorm_step") else 2000  # whole training steps
        times = timeit.repeat(fn, number=number, repeat=repeats)
        out[name] = stat(times) / number * 1e6
    if "--json" in argv:
        print(json.dumps(out))
    else:
        for name, us in out.items():
            print(f"{name:16s} {us:9.2f} us")


if __name__ == "__main__":
    main(sys.argv[1:])
