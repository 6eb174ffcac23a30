"""The persistent team (src_c/team.h) against a fork per product: plan.epoch per step with
fastnn._core.plan_team_mode("off") and ("auto"/"always"), in one process, the modes timed in
alternating blocks with pauses between them, as ratios (> 1: the team is faster).

    python benchmarks/bench_team.py [--threads 2] [--repeat 7] [--json team.json]

Networks (ReLU, cross-entropy, Adam 1e-3, float32; 16 batches an epoch): the step sizes
around the auto mode's line (digits' 64-128-10 at 32, scikit-learn's 64-100-10 at its
batch 200) and above it (256-128-10 at 32, 784-128-10 at 64, the medium and large nets).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's fastnn when run as a script

import fastnn  # noqa: E402
from fastnn import _core, nn, optim  # noqa: E402

NETS = [([64, 128, 10], 32), ([64, 100, 10], 200), ([256, 128, 10], 32), ([784, 128, 10], 64),
        ([784, 256, 256, 10], 128), ([784, 1024, 1024, 10], 256)]
PAUSE_S = 0.3


def build(sizes, batch, steps=16):
    fastnn.manual_seed(0)
    mods = []
    for i in range(len(sizes) - 1):
        mods.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            mods.append(nn.ReLU())
    model = nn.Sequential(*mods)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    plan = fastnn.plan.compile(model, nn.CrossEntropyLoss(), opt, batch_size=batch)
    r = np.random.default_rng(0)
    X = r.standard_normal((steps * batch, sizes[0])).astype(np.float32)
    y = r.integers(0, sizes[-1], steps * batch).astype(np.int64)
    return lambda: plan.epoch(X, y, batch_size=batch, shuffle=True, seed=1), steps


def time_modes(fn, steps, modes, repeats):
    """Median seconds per step for each mode: blocks of ≥ 50 ms, modes alternating."""
    for m in modes:
        _core.plan_team_mode(m)
        fn()
    t0 = time.perf_counter()
    fn()
    calls = max(1, int(0.05 / max(time.perf_counter() - t0, 1e-6)))
    samples = {m: [] for m in modes}
    for _ in range(repeats):
        for m in modes:
            _core.plan_team_mode(m)
            time.sleep(PAUSE_S)
            fn()  # warm: the vCPUs idle during the pause
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[m].append((time.perf_counter() - t0) / (calls * steps))
    return {m: float(np.median(v)) for m, v in samples.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    fastnn.set_num_threads(a.threads)
    before = _core.plan_team_mode()
    rows = []
    print(f"plan.epoch per step, {a.threads} threads, median of {a.repeat} alternating blocks")
    print(f"{'network':<22} {'batch':>5} {'fork per product':>17} {'auto':>10} {'always':>10} "
          f"{'off/auto':>9} {'off/always':>10}")
    try:
        for sizes, batch in NETS:
            fn, steps = build(sizes, batch)
            t = time_modes(fn, steps, ["off", "auto", "always"], a.repeat)
            row = dict(network="-".join(map(str, sizes)), batch=batch, off_us=t["off"] * 1e6,
                       auto_us=t["auto"] * 1e6, always_us=t["always"] * 1e6,
                       off_over_auto=t["off"] / t["auto"], off_over_always=t["off"] / t["always"])
            rows.append(row)
            print(f"{row['network']:<22} {batch:>5} {row['off_us']:>14.1f} us {row['auto_us']:>7.1f} us "
                  f"{row['always_us']:>7.1f} us {row['off_over_auto']:>9.2f} {row['off_over_always']:>10.2f}")
    finally:
        _core.plan_team_mode(before)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
