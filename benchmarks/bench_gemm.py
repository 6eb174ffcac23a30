"""GEMM and fused dense-layer throughput: fastnn against NumPy/OpenBLAS in the same process.

Two ways to run it:

    python -m pytest benchmarks/bench_gemm.py          # pytest-benchmark, one row per case
    python benchmarks/bench_gemm.py [--quick]           # a table (GFLOP/s and ratios), < 2 min
    python benchmarks/bench_gemm.py --small             # the products of small networks (scikit-learn's
                                                        # default hidden 100 at batch 200, digits)

The table mode runs one child process per thread count with OPENBLAS_NUM_THREADS and
fastnn's thread count set to the same value, so both libraries get the same cores. Within a
child, fastnn and NumPy are timed in separate blocks with a pause between them: OpenBLAS's
workers spin for ~0.2 s after each call, and an OpenMP region started in that window runs
many times slower (see /work/shared/anchors.md). Each number is the best of repeated timed
blocks (on a shared machine interference only adds time); one-thread rows use the calling
thread's CPU time, two-thread rows wall-clock time.

The idle-machine A/B of the GEMM's two schedules (same bits, see src_c/gemm/schedule.c):

    FASTNN_GEMM_SCHEDULE=static  python benchmarks/bench_gemm.py
    FASTNN_GEMM_SCHEDULE=dynamic python benchmarks/bench_gemm.py
    python benchmarks/bench_gemm.py --schedules [--threads 2]   # both, alternating, one process

`--schedules` times the two schedules in alternating blocks and prints wall time and process
CPU time per call (fastnn's idle threads sleep, so CPU time is the work both threads did,
which other processes on the machine disturb far less than wall time).
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
from fastnn import _core  # noqa: E402
from fastnn.bench.kernels import (  # noqa: E402  (the shape tables and operands live in the package)
    GEMM_QUICK, GEMM_SHAPES, SMALL_NET_SHAPES, fastnn_matmul, fused_linear_case, matmul_operands, numpy_matmul, time_blocks)

SHAPES = GEMM_SHAPES  # (label, m, n, k, trans_a, trans_b): C[m,n] = op(A)·op(B), op(A) m×k.
QUICK = {s[0] for s in GEMM_QUICK}

# Seconds per timed block and rounds per case; raise them on a busy machine for a better
# chance of catching quiet windows (FASTNN_BENCH_BUDGET=0.6 FASTNN_BENCH_ROUNDS=4).
BUDGET = float(os.environ.get("FASTNN_BENCH_BUDGET", "0.2"))
ROUNDS = int(os.environ.get("FASTNN_BENCH_ROUNDS", "0"))


def best_time(fn, budget=None, clock=time.perf_counter):
    """Fastest per-call time seen in `budget` seconds of repeated calls (calls are grouped so
    each sample lasts >= 1 ms). On a machine shared with other work the minimum is the
    stable statistic: interference only ever adds time."""
    per_call, _ = time_blocks(fn, 1e-3, budget_s=BUDGET if budget is None else budget, clock=clock)
    return min(per_call)


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


def run_table(threads, quick, small=False):
    fastnn.set_num_threads(threads)
    # One thread: CPU time of the calling thread (both libraries compute in it), which
    # ignores the time other processes hold the core. Two threads: wall clock.
    clock = time.thread_time if threads == 1 else time.perf_counter
    rounds = ROUNDS or (1 if quick else 2)
    rows = []
    for dtype in (np.float32, np.float64):
        for label, m, n, k, ta, tb in (SMALL_NET_SHAPES if small else SHAPES):
            if quick and label not in QUICK:
                continue
            if dtype == np.float64 and (label == "square 2048" or (quick and label.startswith("head"))):
                continue  # keep the table under two minutes
            a, b, c = matmul_operands(m, n, k, ta, tb, dtype)
            tf, tn = compare(fastnn_matmul(a, b, c, ta, tb), numpy_matmul(a, b, c, ta, tb), rounds, clock=clock)
            fl = 2.0 * m * n * k
            rows.append((label, np.dtype(dtype).name, threads, fl / tf / 1e9, fl / tn / 1e9, tn / tf))
        if small:
            continue
        label, fast, numpy, fl = fused_linear_case(dtype)
        tf, tn = compare(fast, numpy, rounds, clock=clock)
        rows.append((label, np.dtype(dtype).name, threads, fl / tf / 1e9, fl / tn / 1e9, tn / tf))
    return rows


def schedule_ab(threads, rounds=12):
    """Static against dynamic schedule, same process, alternating blocks of 3 calls."""
    import statistics
    fastnn.set_num_threads(threads)
    before = _core.gemm_schedule()
    print(f"{threads} thread(s), float32; medians of {rounds} blocks per schedule; static/dynamic > 1: "
          "dynamic faster")
    print("| shape | static wall | dynamic wall | wall static/dynamic | static CPU | dynamic CPU | "
          "CPU static/dynamic |")
    print("|---|---|---|---|---|---|---|")
    for label, m, n, k, ta, tb in SHAPES:
        a, b, c = matmul_operands(m, n, k, ta, tb, np.float32)
        f = fastnn_matmul(a, b, c, ta, tb)
        wall = {"static": [], "dynamic": []}
        cpu = {"static": [], "dynamic": []}
        for s in wall:
            _core.set_gemm_schedule(s)
            f()
        for r in range(rounds):
            for s in (("static", "dynamic") if r % 2 else ("dynamic", "static")):
                _core.set_gemm_schedule(s)
                w0, c0 = time.perf_counter(), time.process_time()
                for _ in range(3):
                    f()
                wall[s].append((time.perf_counter() - w0) / 3)
                cpu[s].append((time.process_time() - c0) / 3)
        w = {s: statistics.median(v) * 1e3 for s, v in wall.items()}
        u = {s: statistics.median(v) * 1e3 for s, v in cpu.items()}
        print(f"| {label} | {w['static']:.3f} ms | {w['dynamic']:.3f} ms | {w['static'] / w['dynamic']:.2f} | "
              f"{u['static']:.3f} ms | {u['dynamic']:.3f} ms | {u['static'] / u['dynamic']:.2f} |", flush=True)
    _core.set_gemm_schedule(before)
    return 0


def main(argv):
    quick = "--quick" in argv
    small = "--small" in argv
    if "--schedules" in argv:
        threads = int(argv[argv.index("--threads") + 1]) if "--threads" in argv else 2
        return schedule_ab(threads)
    if "--child" in argv:
        threads = int(argv[argv.index("--child") + 1])
        for row in run_table(threads, quick, small):
            print("ROW\t" + "\t".join(str(v) for v in row), flush=True)
        return 0
    print(f"fastnn kernels: {_core.gemm_kernel_name()}  schedule: {_core.gemm_schedule()}  "
          f"blocks: {_core.gemm_block_sizes()}")
    print(f"numpy {np.__version__}; CPU: {cpu_name()}")
    all_rows = []
    for threads in (1, 2):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        res = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(threads)] +
                             (["--quick"] if quick else []) + (["--small"] if small else []), env=env, capture_output=True, text=True)
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
        a, b, c = matmul_operands(m, n, k, ta, tb, dtype)
        fn = (fastnn_matmul if impl == "fastnn" else numpy_matmul)(a, b, c, ta, tb)
        time.sleep(0.3)  # let the other library's spinning workers go idle
        benchmark.extra_info["gflop"] = 2.0 * m * n * k / 1e9
        benchmark(fn)

    @pytest.mark.parametrize("impl", ["fastnn", "numpy"])
    @pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
    def test_linear_bias_relu(benchmark, dtype, impl):
        _, fast, numpy, fl = fused_linear_case(dtype)
        time.sleep(0.3)
        benchmark.extra_info["gflop"] = fl / 1e9
        benchmark(fast if impl == "fastnn" else numpy)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
