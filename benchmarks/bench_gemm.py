"""GEMM and fused dense-layer throughput: fastnn against NumPy/OpenBLAS in the same process.

Two ways to run it:

    python -m pytest benchmarks/bench_gemm.py          # pytest-benchmark, one row per case
    python benchmarks/bench_gemm.py [--quick]           # a table (GFLOP/s and ratios), < 2 min

The table mode runs one child process per thread count with OPENBLAS_NUM_THREADS and
fastnn's thread count set to the same value, so both libraries get the same cores. Within a
child, fastnn and NumPy are timed in separate blocks with a pause between them: OpenBLAS's
workers spin for ~0.2 s after each call, and an OpenMP region started in that window runs
many times slower (see /work/shared/anchors.md). Each number is the best of repeated timed
blocks (on a shared machine interference only adds time); one-thread rows use the calling
thread's CPU time, two-thread rows wall-clock time.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

if __name__ == "__main__":  # make the worktree importable when run as a script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastnn  # noqa: E402
from fastnn import _core, ops  # noqa: E402

# (label, m, n, k, trans_a, trans_b): C[m,n] = op(A)·op(B), op(A) m×k.
SHAPES = [
    ("square 256", 256, 256, 256, False, False),
    ("square 512", 512, 512, 512, False, False),
    ("square 1024", 1024, 1024, 1024, False, False),
    ("square 2048", 2048, 2048, 2048, False, False),
    ("X·Wᵀ 256×784·784×1024", 256, 1024, 784, False, True),
    ("H·Wᵀ 256×1024·1024×1024", 256, 1024, 1024, False, True),
    ("head 256×1024·1024×10", 256, 10, 1024, False, True),
    ("dZ·W 256×1024·1024×784", 256, 784, 1024, False, False),
    ("dZᵀ·X 1024×256·256×784", 1024, 784, 256, True, False),
]
QUICK = {"square 256", "square 512", "square 1024", "X·Wᵀ 256×784·784×1024", "H·Wᵀ 256×1024·1024×1024",
         "head 256×1024·1024×10", "dZ·W 256×1024·1024×784", "dZᵀ·X 1024×256·256×784"}


def operands(m, n, k, ta, tb, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b, np.empty((m, n), dtype)


def fastnn_call(a, b, c, ta, tb):
    return lambda: ops.matmul(a, b, trans_a=ta, trans_b=tb, out=c)


def numpy_call(a, b, c, ta, tb):
    A = a.T if ta else a
    B = b.T if tb else b
    return lambda: np.matmul(A, B, out=c)


# Seconds per timed block and rounds per case; raise them on a busy machine for a better
# chance of catching quiet windows (FASTNN_BENCH_BUDGET=0.6 FASTNN_BENCH_ROUNDS=4).
BUDGET = float(os.environ.get("FASTNN_BENCH_BUDGET", "0.2"))
ROUNDS = int(os.environ.get("FASTNN_BENCH_ROUNDS", "0"))


def best_time(fn, budget=None, clock=time.perf_counter):
    """Fastest per-call time seen in `budget` seconds of repeated calls (calls are grouped so
    each sample lasts >= 1 ms). On a machine shared with other work the minimum is the
    stable statistic: interference only ever adds time."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    reps = max(1, int(1e-3 / once))
    best = float("inf")
    budget = BUDGET if budget is None else budget
    end = time.perf_counter() + budget
    while True:
        c0 = clock()
        for _ in range(reps):
            fn()
        best = min(best, (clock() - c0) / reps)
        if time.perf_counter() >= end:
            return best


def compare(f_fast, f_numpy, rounds=2, pause=0.25, clock=time.perf_counter):
    """Alternate timed blocks of fastnn and NumPy, with pauses for OpenBLAS's spinning
    workers to go idle; best time of each."""
    tf, tn = [], []
    for _ in range(rounds):
        tf.append(best_time(f_fast, clock=clock))
        time.sleep(pause)
        tn.append(best_time(f_numpy, clock=clock))
        time.sleep(pause)
    return min(tf), min(tn)


def fused_linear_case(dtype, batch=256, n_in=1024, n_out=1024):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, n_in)).astype(dtype)
    w = (rng.standard_normal((n_out, n_in)) / 32).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    y = np.empty((batch, n_out), dtype)

    def fast():
        ops.linear(x, w, b, activation="relu", out=y)

    def numpy():
        z = x @ w.T + b
        np.maximum(z, 0, out=z)

    return fast, numpy, 2.0 * batch * n_in * n_out


def run_table(threads, quick):
    fastnn.set_num_threads(threads)
    # One thread: CPU time of the calling thread (both libraries compute in it), which
    # ignores the time other processes hold the core. Two threads: wall clock.
    clock = time.thread_time if threads == 1 else time.perf_counter
    rounds = ROUNDS or (1 if quick else 2)
    rows = []
    for dtype in (np.float32, np.float64):
        for label, m, n, k, ta, tb in SHAPES:
            if quick and label not in QUICK:
                continue
            if dtype == np.float64 and (label == "square 2048" or (quick and label.startswith("head"))):
                continue  # keep the table under two minutes
            a, b, c = operands(m, n, k, ta, tb, dtype)
            tf, tn = compare(fastnn_call(a, b, c, ta, tb), numpy_call(a, b, c, ta, tb), rounds, clock=clock)
            fl = 2.0 * m * n * k
            rows.append((label, np.dtype(dtype).name, threads, fl / tf / 1e9, fl / tn / 1e9, tn / tf))
        fast, numpy, fl = fused_linear_case(dtype)
        tf, tn = compare(fast, numpy, rounds, clock=clock)
        rows.append(("linear+bias+ReLU 256, 1024→1024", np.dtype(dtype).name, threads,
                     fl / tf / 1e9, fl / tn / 1e9, tn / tf))
    return rows


def main(argv):
    quick = "--quick" in argv
    if "--child" in argv:
        threads = int(argv[argv.index("--child") + 1])
        for row in run_table(threads, quick):
            print("ROW\t" + "\t".join(str(v) for v in row), flush=True)
        return 0
    print(f"fastnn kernels: {_core.gemm_kernel_name()}  blocks: {_core.gemm_block_sizes()}")
    print(f"numpy {np.__version__}; CPU: {cpu_name()}")
    all_rows = []
    for threads in (1, 2):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        res = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(threads)] +
                             (["--quick"] if quick else []), env=env, capture_output=True, text=True)
        if res.returncode:
            print(res.stderr)
            return res.returncode
        for line in res.stdout.splitlines():
            if line.startswith("ROW\t"):
                f = line.split("\t")[1:]
                all_rows.append((f[0], f[1], int(f[2]), float(f[3]), float(f[4]), float(f[5])))
    print()
    print("| shape | dtype | threads | fastnn GFLOP/s | NumPy GFLOP/s | fastnn/NumPy |")
    print("|---|---|---|---|---|---|")
    for label, dt, th, gf, gn, r in sorted(all_rows, key=lambda r: (r[1], r[2])):
        print(f"| {label} | {dt} | {th} | {gf:.1f} | {gn:.1f} | {r:.2f} |")
    # 1 → 2 thread scaling of fastnn at n = 1024
    by = {(r[0], r[1], r[2]): r[3] for r in all_rows}
    for dt in ("float32", "float64"):
        if ("square 1024", dt, 1) in by and ("square 1024", dt, 2) in by:
            print(f"fastnn 1→2 thread scaling, square 1024 {dt}: "
                  f"{by[('square 1024', dt, 2)] / by[('square 1024', dt, 1)]:.2f}×")
    return 0


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


# ---------------------------------------------------------------- pytest-benchmark
try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:
    BENCH_SHAPES = [s for s in SHAPES if s[0] in QUICK]

    @pytest.mark.parametrize("impl", ["fastnn", "numpy"])
    @pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("shape", BENCH_SHAPES, ids=[s[0] for s in BENCH_SHAPES])
    def test_gemm(benchmark, shape, dtype, impl):
        label, m, n, k, ta, tb = shape
        a, b, c = operands(m, n, k, ta, tb, dtype)
        fn = (fastnn_call if impl == "fastnn" else numpy_call)(a, b, c, ta, tb)
        time.sleep(0.3)  # let the other library's spinning workers go idle
        benchmark.extra_info["gflop"] = 2.0 * m * n * k / 1e9
        benchmark(fn)

    @pytest.mark.parametrize("impl", ["fastnn", "numpy"])
    @pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
    def test_linear_bias_relu(benchmark, dtype, impl):
        fast, numpy, fl = fused_linear_case(dtype)
        time.sleep(0.3)
        benchmark.extra_info["gflop"] = fl / 1e9
        benchmark(fast if impl == "fastnn" else numpy)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
