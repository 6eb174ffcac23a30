"""fastnn.sklearn vs sklearn.neural_network: same hyper-parameters, accuracy and fit time side by side.

    python benchmarks/bench_sklearn.py                # digits + make_classification 50,000 x 100
    python benchmarks/bench_sklearn.py --quick        # smaller, for a smoke run
    python benchmarks/bench_sklearn.py --threads 2 --repeat 3 --large-epochs 20

Both estimators get the same settings (hidden_layer_sizes=(100,), adam, batch_size='auto',
learning_rate_init=0.001, random_state=0) and run a fixed number of epochs (tol=0 and
n_iter_no_change=max_iter, so neither stops early and the times compare equal work).
Each setting is timed at alpha=1e-4 (scikit-learn's default) and alpha=0; both train on
fastnn's compiled plan (whole epochs in C; the penalty on the weights only, as two parameter
groups). The exact eager loop is used only with sample_weight, which this benchmark does not pass. fastnn trains in
float32 (its default) with ``n_threads``; scikit-learn's BLAS is limited to the same count
with threadpoolctl. Accuracy is on a held-out quarter of the data. Same process; the
implementations alternate with a 0.3 s pause between them; the best of ``--repeat`` fits is
reported.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from sklearn.datasets import load_digits, make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLP  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from fastnn.sklearn import MLPClassifier as FastMLP  # noqa: E402


def datasets(quick):
    X, y = load_digits(return_X_y=True)
    yield "digits (1797x64)", X / 16.0, y
    n, d = (10_000, 100) if quick else (50_000, 100)
    X, y = make_classification(n_samples=n, n_features=d, n_informative=40, n_classes=5,
                               n_clusters_per_class=2, random_state=0)
    yield f"make_classification ({n:,}x{d})", X, y


def timed_fit(make, X, y, repeat):
    best, est = np.inf, None
    for _ in range(repeat):
        est = make()
        t0 = time.perf_counter()
        est.fit(X, y)
        best = min(best, time.perf_counter() - t0)
        time.sleep(0.3)
    return best, est


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="fits per cell; the best time is kept")
    ap.add_argument("--digits-epochs", type=int, default=60)
    ap.add_argument("--large-epochs", type=int, default=20)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    print(f"fastnn.sklearn vs sklearn {__import__('sklearn').__version__}: hidden (100,), adam, "
          f"{args.threads} threads, best of {args.repeat}")
    print(f"{'data':<34} {'alpha':>6} {'epochs':>6} | {'sklearn acc':>11} {'fastnn acc':>10} | "
          f"{'sklearn s':>9} {'fastnn s':>9} {'speed-up':>8}")
    for name, X, y in datasets(args.quick):
        epochs = args.digits_epochs if name.startswith("digits") else args.large_epochs
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
        for alpha in (1e-4, 0.0):
            common = dict(hidden_layer_sizes=(100,), alpha=alpha, max_iter=epochs, tol=0.0,
                          n_iter_no_change=epochs, random_state=0)
            with threadpool_limits(limits=args.threads):
                t_sk, sk = timed_fit(lambda: SkMLP(**common), Xtr, ytr, args.repeat)
            t_fn, fn = timed_fit(lambda: FastMLP(n_threads=args.threads, **common), Xtr, ytr, args.repeat)
            print(f"{name:<34} {alpha:>6g} {epochs:>6} | {sk.score(Xte, yte):>11.4f} {fn.score(Xte, yte):>10.4f} | "
                  f"{t_sk:>9.3f} {t_fn:>9.3f} {t_sk / t_fn:>7.1f}x", flush=True)


if __name__ == "__main__":
    main()
