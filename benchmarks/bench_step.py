"""One training step (forward + loss + backward + SGD update): fastnn plan vs NumPy expert vs
PyTorch eager vs JAX jit, same process, same thread count. Networks: fastnn.bench.steps.NETWORKS.

Run as a table (medians of --repeat blocks, ratios = how many times faster the plan is)::

    python benchmarks/bench_step.py [--sizes tiny_xor tiny_flip small medium large] [--threads 2] [--repeat 9]
    python benchmarks/bench_step.py --threads 1 --clock cpu     # CPU time: robust on a shared machine

or with pytest-benchmark::

    python -m pytest benchmarks/bench_step.py --benchmark-only
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the worktree's fastnn when run as a script

import pytest

import fastnn
from fastnn.bench import steps

BUILDERS = {"fastnn-plan": steps.build_fastnn_plan, "fastnn-eager": steps.build_fastnn_eager,
            "numpy": steps.build_numpy, "torch": steps.build_torch, "jax": steps.build_jax}


@pytest.mark.parametrize("impl", list(BUILDERS))
@pytest.mark.parametrize("name", list(steps.NETWORKS))
def test_step(benchmark, name, impl):
    if impl in ("torch", "jax"):
        pytest.importorskip(impl)
    fastnn.set_num_threads(2)
    fn = BUILDERS[impl](*steps.NETWORKS[name])
    benchmark(fn)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="*", default=None, choices=list(steps.NETWORKS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: the process's CPU time (robust on a shared machine; use with --threads 1)")
    ap.add_argument("--json", help="also write the rows to this file")
    a = ap.parse_args(argv)
    rows = steps.run_step_benchmarks(sizes=a.sizes, repeats=a.repeat, threads=a.threads, clock=a.clock)
    print(steps.format_rows(rows))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
