"""The README's PyTorch-style loop, per step, against expert NumPy and PyTorch eager.

One step is ``opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); opt.step()`` on the
networks of :data:`fastnn.bench.steps.NETWORKS` that are bound by per-call overhead (XOR 2-4-1 at
batch 4, 4-3-4 at batch 1, 64-32-10 at batch 32; SGD). ``fastnn-plan`` (the compiled plan's
``step``) is the floor the loop can approach. Timing as in :mod:`fastnn.bench.steps`: blocks
calibrated to ~50 ms, implementations taking turns, a pause before each block.

``run_loop_benchmarks(networks=None, repeats=7, threads=2, impls=None) -> list[dict]``: rows of
``name``, ``impl``, ``time_per_step_s`` (median), ``best_s`` and ``vs_numpy`` / ``vs_torch``
(how many times faster fastnn's loop is than each: their time / the loop's).

    python -m fastnn.bench.loop [--networks tiny_xor tiny_flip small] [--threads 2] [--repeat 7]
    python -m fastnn.bench.loop --threads 1 --clock cpu      # CPU time: robust on a shared machine
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import List, Optional

from . import steps

__all__ = ["LOOP_NETWORKS", "run_loop_benchmarks", "format_rows", "main"]

LOOP_NETWORKS = ["tiny_xor", "tiny_flip", "small"]
PAUSE_S = 0.25
IMPLS = ["fastnn-loop", "fastnn-plan", "numpy", "torch"]


def _builders():
    return {"fastnn-loop": steps.build_fastnn_eager, "fastnn-plan": steps.build_fastnn_plan,
            "numpy": steps.build_numpy, "torch": steps.build_torch}


def run_loop_benchmarks(networks=None, repeats: int = 7, threads: int = 2, impls=None,
                        clock: str = "wall") -> List[dict]:
    """clock: "wall" (default) or "cpu" (the process's CPU time: with threads=1, robust on a
    machine shared with other jobs)."""
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock: expected 'wall' or 'cpu', got {clock!r}")
    steps._CLOCK = time.perf_counter if clock == "wall" else time.process_time
    import fastnn
    old_threads = fastnn.get_num_threads()
    fastnn.set_num_threads(threads)
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(limits=threads)
    except ImportError:
        limiter = None
    impls = list(IMPLS if impls is None else impls)
    builders = _builders()
    rows: List[dict] = []
    try:
        for name in (LOOP_NETWORKS if networks is None else networks):
            if name not in steps.NETWORKS:
                raise ValueError(f"networks: unknown network {name!r}; expected some of {list(steps.NETWORKS)}")
            args = steps.NETWORKS[name]
            fns = {impl: builders[impl](*args) for impl in impls if not (impl == "torch" and torch is None)}
            counts = {}
            for impl, fn in fns.items():
                time.sleep(PAUSE_S)
                counts[impl] = steps._calls_per_block(fn, 0.05)
            samples = {impl: [] for impl in fns}
            for _ in range(repeats):
                for impl, fn in fns.items():
                    time.sleep(PAUSE_S)
                    steps._time_block(fn, counts[impl])  # untimed: the cores wake up after the pause
                    samples[impl].append(steps._time_block(fn, counts[impl]))
            med = {impl: statistics.median(v) for impl, v in samples.items()}
            loop = med.get("fastnn-loop")
            for impl in fns:
                row = {"name": name, "impl": impl, "time_per_step_s": med[impl], "best_s": min(samples[impl])}
                if impl == "fastnn-loop":
                    for peer in ("numpy", "torch"):
                        if peer in med:
                            row[f"vs_{peer}"] = med[peer] / loop
                    if "fastnn-plan" in med:
                        row["vs_plan"] = med["fastnn-plan"] / loop
                rows.append(row)
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
        fastnn.set_num_threads(old_threads)
    return rows


def format_rows(rows: List[dict]) -> str:
    lines = [f"{'network':<10} {'impl':<12} {'median/step':>12} {'best/step':>11} {'loop x vs numpy':>16} "
             f"{'loop x vs torch':>16} {'plan/loop':>10}"]
    for r in rows:
        def ratio(key):
            return f"{r[key]:.2f}" if key in r else ""
        lines.append(f"{r['name']:<10} {r['impl']:<12} {r['time_per_step_s'] * 1e6:>9.2f} us "
                     f"{r['best_s'] * 1e6:>8.2f} us {ratio('vs_numpy'):>16} {ratio('vs_torch'):>16} "
                     f"{ratio('vs_plan'):>10}")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastnn.bench.loop", description=__doc__.split("\n")[0])
    p.add_argument("--networks", nargs="+", default=None, choices=list(steps.NETWORKS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--impls", nargs="+", default=None, choices=IMPLS)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: the process's CPU time (use with --threads 1 on a loaded machine)")
    a = p.parse_args(argv)
    print(format_rows(run_loop_benchmarks(a.networks, a.repeat, a.threads, a.impls, a.clock)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
