"""Data-parallel training over MPI: step time and allreduce time per step, 1 and 2 ranks.

    python benchmarks/bench_distributed.py [--quick] [--ranks 1 2 4] [--json PATH]

Runs ``mpiexec -n R python benchmarks/bench_distributed.py --child`` for each rank count R,
one fastnn thread per rank (FASTNN_NUM_THREADS=1), and prints one table. Each child trains
the digits net (64-128-10, ReLU) and 784-256-256-10 (ReLU) with ``fastnn.fit`` (Adam,
CrossEntropyLoss, global batch 256 split across the ranks, the compiled plan's whole-epoch
path with the allreduce in its gradient hook) on synthetic data, and reports per step:
wall time (median of the timed epochs after one warm-up epoch) and the time spent inside
``MPI_Allreduce`` of the gradient arena (rank 0's). A second table times the bare
allreduce of float32 buffers of growing size: the cost model of the README's prediction
(allreduce time vs parameter count, next to the step time it must hide behind).
Needs mpi4py and mpiexec (``pip install "fastnn-cpu[mpi]"``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

if __name__ == "__main__":  # make the worktree importable when run as a script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

NETS = {"digits 64-128-10": [64, 128, 10], "784-256-256-10": [784, 256, 256, 10]}
BATCH = 256


def _child(quick: bool) -> dict:
    import fastnn
    import fastnn.distributed as dist
    from fastnn import nn, optim
    from fastnn.distributed import _fit_context
    dist.init()
    ctx = _fit_context()
    rows = []
    epochs = 3 if quick else 6
    steps = 8 if quick else 40
    for name, sizes in NETS.items():
        fastnn.manual_seed(0)
        layers = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        model = nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))
        opt = optim.Adam(model.parameters(), lr=1e-3)
        rng = np.random.default_rng(0)
        X = rng.standard_normal((BATCH * steps, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], len(X))
        times, ar = [], []
        for e in range(epochs):
            dist.barrier()
            t0 = time.perf_counter()
            fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, epochs=1, batch_size=BATCH, seed=e,
                       verbose=0, metrics=None)
            times.append((time.perf_counter() - t0) / steps)
            ar.append(ctx.allreduce_seconds / max(ctx.allreduce_calls, 1) if ctx is not None else 0.0)
        n_params = sum(p.size for p in model.parameters())
        rows.append({"net": name, "params": n_params, "step_ms": 1e3 * float(np.median(times[1:])),
                     "allreduce_ms": 1e3 * float(np.median(ar[1:]))})
    # The bare allreduce by buffer size (float32 elements).
    bare = []
    if ctx is not None:
        from mpi4py import MPI
        for n in (10 ** k for k in range(2, 8 if not quick else 6)):
            buf = np.ones(n, dtype=np.float32)
            reps = max(5, min(2000, int(2e7 // n)))
            best = []
            for _ in range(3):
                dist.barrier()
                t0 = time.perf_counter()
                for _ in range(reps):
                    ctx.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
                best.append((time.perf_counter() - t0) / reps)
            bare.append({"elements": n, "allreduce_us": 1e6 * min(best)})
    return {"ranks": dist.world_size(), "rows": rows, "bare": bare}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        res = _child(args.quick)
        import fastnn.distributed as dist
        if dist.rank() == 0:
            print("RESULT " + json.dumps(res))
        return 0
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        print("bench_distributed: needs mpiexec (pip install 'fastnn-cpu[mpi]')", file=sys.stderr)
        return 2
    env = dict(os.environ, FASTNN_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.pathsep + \
        env.get("PYTHONPATH", "")
    results = []
    for r in args.ranks:
        cmd = [mpiexec, "-n", str(r), sys.executable, os.path.abspath(__file__), "--child"]
        cmd += ["--quick"] if args.quick else []
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
        if out.returncode != 0:
            print(out.stdout + out.stderr, file=sys.stderr)
            return 1
        results.append(json.loads(next(l for l in out.stdout.splitlines() if l.startswith("RESULT "))[7:]))
    base = {row["net"]: row["step_ms"] for row in results[0]["rows"]}
    print(f"global batch {BATCH}, 1 thread per rank, Adam, fit through the compiled plan\n")
    print("| net | params | ranks | step (ms) | allreduce / step (ms) | allreduce share | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for res in results:
        for row in res["rows"]:
            print(f"| {row['net']} | {row['params']:,} | {res['ranks']} | {row['step_ms']:.3f} | "
                  f"{row['allreduce_ms']:.4f} | {row['allreduce_ms'] / row['step_ms']:.1%} | "
                  f"{base[row['net']] / row['step_ms']:.2f}x |")
    for res in results:
        if res["bare"]:
            print(f"\nbare MPI_Allreduce (float32, in place, sum), {res['ranks']} ranks\n")
            print("| elements | time (µs) | GB/s of buffer |")
            print("|---:|---:|---:|")
            for b in res["bare"]:
                print(f"| {b['elements']:,} | {b['allreduce_us']:.1f} | "
                      f"{4 * b['elements'] / (b['allreduce_us'] * 1e3):.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
