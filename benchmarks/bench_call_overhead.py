"""Per-call cost of the eager API on tiny arrays: the README quickstart's XOR step and a few
``fastnn.ops`` calls, timed with ``timeit`` (median of repeats, µs per call).

    python benchmarks/bench_call_overhead.py                 # this checkout
    PYTHONPATH=/path/to/other/tree python benchmarks/bench_call_overhead.py

To compare two builds on a loaded machine, run them alternately several times in one session
and compare the medians (``--json`` prints one machine-readable line per run; ``--min`` reports
the fastest repeat instead of the median, which load disturbs less; ``--repeat N`` sets repeats).

On a shared machine, compare trees in lockstep instead: one long-lived child per tree, asked in
turn to time the same case, so load changes hit every tree alike (``--rounds N``, default 60):

    python benchmarks/bench_call_overhead.py --compare /path/to/old/tree /path/to/new/tree
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import timeit

import numpy as np


def _cases():
    import fastnn as fnn  # here, not at the top: --compare's parent imports no fastnn of its own
    from fastnn import ops

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


def _number(name: str) -> int:
    return 200 if name in ("xor_step", "layernorm_step") else 2000  # whole training steps: fewer


def _serve() -> None:
    """--serve (a --compare child): time one case per request line, answer µs per call."""
    cases = _cases()
    for fn in cases.values():
        fn()
    print(json.dumps(list(cases)), flush=True)
    for line in sys.stdin:
        name = line.strip()
        number = _number(name) // 2
        print(json.dumps(timeit.timeit(cases[name], number=number) / number * 1e6), flush=True)


def _compare(trees, rounds: int) -> None:
    children = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"], cwd=tree,
                                 env=dict(os.environ, PYTHONPATH=tree), stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True) for tree in trees]
    names = [json.loads(c.stdout.readline()) for c in children][0]
    times = [{n: [] for n in names} for _ in trees]
    for r in range(rounds):
        for name in names:
            order = range(len(trees)) if r % 2 == 0 else reversed(range(len(trees)))  # no one always first
            for i in order:
                children[i].stdin.write(name + "\n")
                children[i].stdin.flush()
                times[i][name].append(json.loads(children[i].stdout.readline()))
    for c in children:
        c.stdin.close()
        c.wait()
    print("µs per call, min (median) of", rounds, "rounds; ratio = min / first tree's min")
    for i, tree in enumerate(trees):
        print(f"  [{i}] {tree}")
    print(f"{'case':16s}" + "".join(f"{'[' + str(i) + ']':>18s}" for i in range(len(trees)))
          + "".join(f"{'[' + str(i) + ']/[0]':>9s}" for i in range(1, len(trees))))
    for name in names:
        row = f"{name:16s}" + "".join(f"{min(t[name]):9.2f} ({statistics.median(t[name]):6.2f})" for t in times)
        row += "".join(f"{min(t[name]) / min(times[0][name]):9.2f}" for t in times[1:])
        print(row)


def main(argv) -> None:
    if "--serve" in argv:
        return _serve()
    if "--compare" in argv:
        rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 60
        trees = [os.path.abspath(a) for a in argv[argv.index("--compare") + 1:] if not a.startswith("--")
                 and not a.isdigit()]
        return _compare(trees, rounds)
    repeats = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 7
    stat = min if "--min" in argv else statistics.median
    out = {}
    for name, fn in _cases().items():
        fn()
        number = _number(name)
        times = timeit.repeat(fn, number=number, repeat=repeats)
        out[name] = stat(times) / number * 1e6
    if "--json" in argv:
        print(json.dumps(out))
    else:
        for name, us in out.items():
            print(f"{name:16s} {us:9.2f} us")


if __name__ == "__main__":
    main(sys.argv[1:])
