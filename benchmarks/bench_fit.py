"""fastnn.fit's speed: time per training step inside ``fit`` against the compiled plan's own
``plan.step`` / ``plan.epoch``, expert NumPy, PyTorch eager and JAX jit (same process, same
thread count, 0.25 s pauses between implementations), and digits end to end against
scikit-learn's MLPClassifier (accuracy and time).

    python benchmarks/bench_fit.py                      # both parts, 2 threads
    python benchmarks/bench_fit.py --part steps --repeat 9
    python benchmarks/bench_fit.py --part digits --json fit.json

Networks (fastnn.bench.steps.NETWORKS; fit's data sets fastnn.bench.steps.FIT_SAMPLES):
tiny_xor 2-4-1 (batch 4 = the 4 XOR samples, many epochs), tiny_flip 4-3-4 online (batch 1 over
4 samples, shuffled every epoch), small 64-32-10 (batch 32, 512 samples, shuffled). ``fit`` runs
as users call it: metrics="auto" (accuracy for BCE/CE), verbose=0. Rows:
  fastnn-fit     per step of one fit(epochs=many) call
  fastnn-fit-e1  per step of one fit(epochs=1) call: fit's fixed per-call cost shows here
  fastnn-epoch   per step of plan.epoch, fastnn-plan one plan.step call
The ratio column is time / fastnn-plan's; the targets are read against fastnn-fit's time.

Digits: 64-128-10 ReLU MLP, Adam lr 1e-3, batch 32, 60 epochs, on fastnn.datasets.load_digits
(1,438 train / 359 test), fastnn.fit vs sklearn MLPClassifier(hidden_layer_sizes=(128,),
solver="adam", learning_rate_init=1e-3, batch_size=32, max_iter=60, alpha=0, tol=0,
n_iter_no_change=60): best of --digits-repeat runs each.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the worktree's fastnn when run as a script

import numpy as np

import fastnn
from fastnn.bench import steps

FIT_NETS = ["tiny_xor", "tiny_flip", "small"]
IMPLS = ["fastnn-plan", "fastnn-epoch", "fastnn-fit", "fastnn-fit-e1", "fastnn-eager", "numpy", "torch", "jax"]
# (peer, networks, minimum ratio peer time / fastnn-fit time) from the issue
TARGETS = [("numpy", ["tiny_xor", "tiny_flip"], 30), ("torch", ["tiny_xor", "tiny_flip"], 300),
           ("jax", ["tiny_xor", "tiny_flip"], 10), ("numpy", ["small"], 5), ("torch", ["small"], 30),
           ("jax", ["small"], 2)]


def fit_steps(repeats: int, threads: int):
    steps.PAUSE_S = 0.25
    rows = steps.run_step_benchmarks(sizes=FIT_NETS, repeats=repeats, threads=threads, impls=IMPLS)
    checks = []
    by = {(r["name"], r["impl"]): r["time_per_step_s"] for r in rows}
    for name in FIT_NETS:
        fit_t = by.get((name, "fastnn-fit"))
        ep = by.get((name, "fastnn-epoch"))
        if fit_t and ep:
            checks.append(dict(name=name, what="fit per step / plan.epoch per step", value=fit_t / ep, target="<= 1.5",
                               met=fit_t / ep <= 1.5))
    for peer, nets, want in TARGETS:
        for name in nets:
            if (name, peer) in by and (name, "fastnn-fit") in by:
                x = by[(name, peer)] / by[(name, "fastnn-fit")]
                checks.append(dict(name=name, what=f"{peer} / fit", value=x, target=f">= {want}", met=x >= want))
    return rows, checks


def _digits_fastnn(epochs=60, seed=0):
    from fastnn import nn, optim
    from fastnn.datasets import load_digits
    X, y = load_digits("train")
    Xt, yt = load_digits("test")
    fastnn.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, epochs=epochs, batch_size=32, seed=seed, verbose=0)
    t = time.perf_counter() - t0
    acc = fastnn.evaluate(model, nn.CrossEntropyLoss(), Xt, yt)["accuracy"]
    return t, acc


def _digits_sklearn(epochs=60, seed=0):
    import warnings
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from fastnn.datasets import load_digits
    X, y = load_digits("train")
    Xt, yt = load_digits("test")
    clf = MLPClassifier(hidden_layer_sizes=(128,), activation="relu", solver="adam", learning_rate_init=1e-3,
                        batch_size=32, max_iter=epochs, alpha=0.0, tol=0.0, n_iter_no_change=epochs,
                        shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        clf.fit(X, y)
        t = time.perf_counter() - t0
    return t, float(np.mean(clf.predict(Xt) == yt))


def digits(repeats: int, threads: int):
    fastnn.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(limits=threads)
    except ImportError:
        limiter = None
    out = {}
    runs = [("fastnn", _digits_fastnn)]
    try:
        import sklearn  # noqa: F401
        runs.append(("sklearn", _digits_sklearn))
    except ImportError:
        out["sklearn"] = "not installed (pip install scikit-learn)"
    for name, fn in runs:
        best = None
        for _ in range(repeats):
            time.sleep(0.25)
            t, acc = fn()
            best = (t, acc) if best is None or t < best[0] else best
        out[name] = {"seconds": best[0], "test_accuracy": best[1]}
    if limiter is not None:
        limiter.restore_original_limits()
    checks = [dict(name="digits", what="fastnn test accuracy", value=out["fastnn"]["test_accuracy"],
                   target=">= 0.97", met=out["fastnn"]["test_accuracy"] >= 0.97)]
    if isinstance(out.get("sklearn"), dict):
        x = out["sklearn"]["seconds"] / out["fastnn"]["seconds"]
        checks.append(dict(name="digits", what="sklearn time / fastnn time", value=x, target=">= 10", met=x >= 10))
    return out, checks


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["steps", "digits", "all"], default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--digits-repeat", type=int, default=3)
    ap.add_argument("--json", help="also write the results to this file")
    a = ap.parse_args(argv)
    result, checks = {}, []
    if a.part in ("steps", "all"):
        rows, c = fit_steps(a.repeat, a.threads)
        print(steps.format_rows(rows))
        result["steps"], checks = rows, checks + c
    if a.part in ("digits", "all"):
        d, c = digits(a.digits_repeat, a.threads)
        print("\ndigits 64-128-10, Adam 1e-3, 60 epochs, batch 32:")
        for k, v in d.items():
            print(f"  {k:<8} " + (f"{v['seconds']:.3f} s, test accuracy {v['test_accuracy']:.4f}"
                                  if isinstance(v, dict) else v))
        result["digits"], checks = d, checks + c
    print("\ntargets:")
    for c in checks:
        print(f"  {c['name']:<9} {c['what']:<36} {c['value']:9.2f}  (target {c['target']})  "
              f"{'met' if c['met'] else 'NOT met'}")
    result["checks"] = checks
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
