"""The README's PyTorch-style loop per step (zero_grad, forward, loss, backward, step) against
expert NumPy (fastnn.bench.numpy_mlp) and PyTorch eager, same process, 0.25 s pauses; the
compiled plan's step as the floor. Networks: XOR 2-4-1 at batch 4, 4-3-4 at batch 1, 64-32-10
at batch 32 (fastnn.bench.steps.NETWORKS). The code lives in fastnn.bench.loop, so that
``python -m fastnn bench --only loop`` runs the same thing::

    python benchmarks/bench_loop.py [--networks tiny_xor tiny_flip small] [--threads 2] [--repeat 7]
    python benchmarks/bench_loop.py --threads 1 --clock cpu     # CPU time: robust on a shared machine
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the worktree's fastnn when run as a script

from fastnn.bench.loop import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
