"""Training-step benchmark: time per step (forward + loss + backward + SGD update) of the same
network in fastnn (compiled plan called from Python, steps inside ``plan.epoch``, steps inside
``fastnn.fit`` — ``fastnn-fit``: one call of many epochs, ``fastnn-fit-e1``: one fit(epochs=1)
call, i.e. fit's per-call cost spread over one epoch's steps —, and the PyTorch-style eager loop; ``fastnn-fused``: the plan with the weight update fused into the
dW product), in NumPy written as an expert would (``numpy_mlp.NumpyMLP``), in
PyTorch eager and in JAX ``jit`` when those are installed — all in one process, as ratios.

``run_step_benchmarks(sizes=None, repeats=7, threads=2) -> list[dict]``: one row per
(network, implementation): ``name``, ``impl``, ``time_per_step_s`` (median of ``repeats``
timed blocks after a warm-up), ``ratio`` (this time / fastnn-plan's: how many times faster
the plan is), ``best_s`` and ``best_ratio`` (the same from the fastest block: on a shared
machine interference only adds time) and, for the networks with real arithmetic, ``gflops`` (2·batch FLOP per weight
for each product computed; the first layer needs no dX).

Each implementation is timed in its own blocks with a pause before each (OpenBLAS's, torch's
and XLA's worker threads keep spinning a while after a call, and an OpenMP region started
meanwhile runs many times slower: shared/anchors.md); the implementations take turns, one
block each per round, so drift in the machine's load affects all of them alike.
"""
from __future__ import annotations

import statistics
import time
from typing import Dict, List, Optional

import numpy as np

__all__ = ["NETWORKS", "run_step_benchmarks", "step_flops", "format_rows"]

# name: (layer sizes, hidden activation, output activation, loss, batch)
NETWORKS: Dict[str, tuple] = {
    "tiny_xor": ([2, 4, 1], "sigmoid", "sigmoid", "bce", 4),
    "tiny_flip": ([4, 3, 4], "sigmoid", None, "mse", 1),
    "small": ([64, 32, 10], "relu", None, "ce", 32),
    "medium": ([784, 256, 256, 10], "relu", None, "ce", 128),
    "large": ([784, 1024, 1024, 10], "relu", None, "ce", 256),
    # the medium net with tanh: every activation, forward and backward, through vmath
    "medium_tanh": ([784, 256, 256, 10], "tanh", None, "ce", 128),
}
LR = 0.01
PAUSE_S = 0.3


def step_flops(sizes, batch) -> float:
    """FLOP of one step: forward and dW for every layer, dX for all but the first."""
    w = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2.0 * batch * (2 * sum(w) + sum(w[1:]))


def _data(sizes, loss, batch, dtype=np.float32, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((batch, sizes[0])).astype(dtype)
    if loss == "ce":
        y = r.integers(0, sizes[-1], batch).astype(np.int64)
    elif loss == "bce":
        y = r.integers(0, 2, (batch, sizes[-1])).astype(dtype)
    else:
        y = r.standard_normal((batch, sizes[-1])).astype(dtype)
    return x, y


def _fastnn_model(sizes, act, out_act, loss):
    import fastnn
    from fastnn import nn
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    fastnn.manual_seed(0)
    mods = []
    for i in range(len(sizes) - 1):
        mods.append(nn.Linear(sizes[i], sizes[i + 1]))
        a = act if i + 2 < len(sizes) else out_act
        if a:
            mods.append(acts[a]())
    model = nn.Sequential(*mods)
    loss_fn = {"mse": nn.MSELoss, "bce": nn.BCELoss, "ce": nn.CrossEntropyLoss}[loss]()
    return model, loss_fn, fastnn.optim.SGD(model.parameters(), lr=LR)


def build_fastnn_plan(sizes, act, out_act, loss, batch, fused=False):
    from fastnn import plan as fplan
    model, loss_fn, opt = _fastnn_model(sizes, act, out_act, loss)
    p = fplan.compile(model, loss_fn, opt, batch_size=batch, fused=fused)
    x, y = _data(sizes, loss, batch)
    return lambda: p.step(x, y)


def build_fastnn_epoch(sizes, act, out_act, loss, batch, steps):
    """A callable running `steps` steps inside one plan.epoch (the batch repeated, in order)."""
    from fastnn import plan as fplan
    model, loss_fn, opt = _fastnn_model(sizes, act, out_act, loss)
    p = fplan.compile(model, loss_fn, opt, batch_size=batch)
    x, y = _data(sizes, loss, batch)
    X = np.ascontiguousarray(np.tile(x, (steps, 1)))
    Y = np.ascontiguousarray(np.tile(y, steps) if y.ndim == 1 else np.tile(y, (steps, 1)))
    return lambda: p.epoch(X, Y, batch_size=batch, shuffle=False)


# Samples in the data set fit trains on (the batch is NETWORKS' batch): XOR's 4 samples as one
# batch, the 4-3-4 network online over 4 samples, 16 batches for the others.
FIT_SAMPLES = {"tiny_xor": 4, "tiny_flip": 4, "small": 512, "medium": 2048, "large": 4096, "medium_tanh": 2048}


def build_fastnn_fit(sizes, act, out_act, loss, batch, steps, epochs=None):
    """A callable running ``fastnn.fit`` as users call it (default metrics, shuffling, verbose=0)
    for about `steps` steps (or `epochs` epochs); ``.steps`` is the steps one call runs."""
    import fastnn
    model, loss_fn, opt = _fastnn_model(sizes, act, out_act, loss)
    n = FIT_SAMPLES_BY_SIZES.get(tuple(sizes), 16 * batch)
    r = np.random.default_rng(1)
    X = r.standard_normal((n, sizes[0])).astype(np.float32)
    y = _data(sizes, loss, n, seed=2)[1]
    per_epoch = -(-n // batch)
    epochs = max(1, steps // per_epoch) if epochs is None else epochs
    fastnn.fit(model, loss_fn, opt, X, y, epochs=1, batch_size=batch, verbose=0)  # compile and cache the plan

    def call():
        fastnn.fit(model, loss_fn, opt, X, y, epochs=epochs, batch_size=batch, verbose=0)
    call.steps = epochs * per_epoch
    return call


FIT_SAMPLES_BY_SIZES = {tuple(NETWORKS[k][0]): v for k, v in FIT_SAMPLES.items()}


def _eager_step(model, loss_fn, opt, x, y):
    """One PyTorch-style training step (fastnn's eager API and PyTorch's are the same)."""
    def step():
        opt.zero_grad()
        v = loss_fn(model(x), y)
        v.backward()
        opt.step()
    return step


def build_fastnn_eager(sizes, act, out_act, loss, batch):
    model, loss_fn, opt = _fastnn_model(sizes, act, out_act, loss)
    x, y = _data(sizes, loss, batch)
    return _eager_step(model, loss_fn, opt, x, y)


def build_numpy(sizes, act, out_act, loss, batch):
    from .numpy_mlp import NumpyMLP
    acts = [act] * (len(sizes) - 2) + [out_act]
    net = NumpyMLP(sizes, acts, loss, LR, batch)
    x, y = _data(sizes, loss, batch)
    return lambda: net.step(x, y)


def build_torch(sizes, act, out_act, loss, batch):
    import torch
    acts = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}
    torch.manual_seed(0)
    mods = []
    for i in range(len(sizes) - 1):
        mods.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        a = act if i + 2 < len(sizes) else out_act
        if a:
            mods.append(acts[a]())
    model = torch.nn.Sequential(*mods)
    loss_fn = {"mse": torch.nn.MSELoss, "bce": torch.nn.BCELoss, "ce": torch.nn.CrossEntropyLoss}[loss]()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    x, y = _data(sizes, loss, batch)
    return _eager_step(model, loss_fn, opt, torch.from_numpy(x), torch.from_numpy(y))


def build_jax(sizes, act, out_act, loss, batch):
    import jax
    import jax.numpy as jnp
    fns = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, None: lambda z: z}
    r = np.random.default_rng(0)
    params = []
    for i in range(len(sizes) - 1):
        bound = 1.0 / np.sqrt(sizes[i])
        params.append((jnp.asarray(r.uniform(-bound, bound, (sizes[i + 1], sizes[i])).astype(np.float32)),
                       jnp.asarray(r.uniform(-bound, bound, sizes[i + 1]).astype(np.float32))))
    acts = [act] * (len(sizes) - 2) + [out_act]

    def loss_of(ps, x, y):
        h = x
        for (W, b), a in zip(ps, acts):
            h = fns[a](h @ W.T + b)
        if loss == "mse":
            return jnp.mean((h - y) ** 2)
        if loss == "bce":
            return -jnp.mean(y * jnp.log(h) + (1 - y) * jnp.log1p(-h))
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @jax.jit
    def train_step(ps, x, y):
        v, g = jax.value_and_grad(loss_of)(ps, x, y)
        return [(W - LR * gW, b - LR * gb) for (W, b), (gW, gb) in zip(ps, g)], v

    x, y = _data(sizes, loss, batch)
    x, y = jnp.asarray(x), jnp.asarray(y)
    state = [params]

    def step():
        state[0], v = train_step(state[0], x, y)
        return v

    def sync():
        jax.block_until_ready(state[0])
    step.sync = sync
    return step


_CLOCK = time.perf_counter


def _time_block(fn, n: int) -> float:
    sync = getattr(fn, "sync", None)
    t0 = _CLOCK()
    for _ in range(n):
        fn()
    if sync:
        sync()
    return (_CLOCK() - t0) / n


def _calls_per_block(fn, target_s: float) -> int:
    """How many calls of fn fill ~target_s, from a timed run of at least target_s / 4 (one call
    of a sub-microsecond step would be mostly clock overhead, and blocks sized from it short)."""
    _time_block(fn, 3)
    n = 1
    while True:
        t = _time_block(fn, n)
        if t * n >= target_s / 4 or n >= 1 << 20:
            break
        n *= 2
    return max(1, int(target_s / max(t, 1e-9)))


def _measure(fn, repeats: int, target_s: float = 0.05) -> float:
    """Median time per call over `repeats` blocks of ~target_s each, after a warm-up."""
    n = _calls_per_block(fn, target_s)
    return statistics.median(_time_block(fn, n) for _ in range(repeats))


def _gemm_peak_gflops(threads: int) -> Optional[float]:
    """fastnn's own GEMM on a 1024³ float32 product, GFLOP/s (median of 5)."""
    try:
        from fastnn import ops
    except ImportError:
        return None
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    out = np.empty_like(a)
    fn = getattr(ops, "matmul", None)
    if fn is None:
        return None
    try:
        fn(a, a, out=out)
        f = lambda: fn(a, a, out=out)  # noqa: E731
    except TypeError:
        f = lambda: fn(a, a)  # noqa: E731
    t = _measure(f, 5, 0.1)
    return 2.0 * 1024 ** 3 / t / 1e9


def _fma_peak_gflops() -> Optional[float]:
    """The machine's float32 FMA ceiling with fastnn's thread count (registers only), GFLOP/s:
    by the threads' CPU time, so load on the machine does not lower the ceiling (and raise the
    percentages quoted against it)."""
    try:
        from fastnn import _core
        return _core.fma_peak(0.3)["all_core_cpu"]
    except (ImportError, AttributeError):
        return None


def run_step_benchmarks(sizes=None, repeats: int = 7, threads: int = 2, impls=None,
                        clock: str = "wall") -> List[dict]:
    """Rows of {name, impl, time_per_step_s, ratio, best_s, best_ratio[, gflops, pct_gemm_peak,
    pct_fma_peak]}; the medium and large networks add rows for fastnn's 1024³ GEMM and for the
    machine's FMA ceiling (``fastnn._core.fma_peak_gflops``), both measured in this run.

    clock: "wall" (default) or "cpu" — the process's CPU time (all its threads), which on a
    machine shared with other jobs excludes the time the OS gives them; use it with threads=1.
    """
    global _CLOCK
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock: expected 'wall' or 'cpu', got {clock!r}")
    _CLOCK = time.perf_counter if clock == "wall" else time.process_time
    import fastnn
    fastnn.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(limits=threads)
    except ImportError:
        limiter = None
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    try:
        import jax  # noqa: F401
        have_jax = True
    except ImportError:
        have_jax = False
    names = list(NETWORKS) if sizes is None else list(sizes)
    all_impls = ["fastnn-plan", "fastnn-fused", "fastnn-epoch", "fastnn-fit", "fastnn-fit-e1", "fastnn-eager",
                 "numpy", "torch", "jax"]
    impls = all_impls if impls is None else list(impls)
    rows: List[dict] = []
    peak = _gemm_peak_gflops(threads) if any(n.startswith(("medium", "large")) for n in names) else None
    fma_peak = _fma_peak_gflops() if peak else None
    builders = {"fastnn-plan": build_fastnn_plan, "fastnn-eager": build_fastnn_eager,
                "fastnn-fused": lambda *a: build_fastnn_plan(*a, fused=True),
                "numpy": build_numpy, "torch": build_torch, "jax": build_jax}
    for name in names:
        if name not in NETWORKS:
            raise ValueError(f"sizes: unknown network {name!r}; expected some of {list(NETWORKS)}")
        net_sizes, act, out_act, loss, batch = NETWORKS[name]
        args = (net_sizes, act, out_act, loss, batch)
        fns, per_call = {}, {}
        for impl in impls:
            if impl == "torch" and torch is None or impl == "jax" and not have_jax:
                continue
            if impl == "fastnn-fused" and not name.startswith(("medium", "large")):
                continue  # small layers run as direct loops: the same path as fastnn-plan
            if impl in ("fastnn-epoch", "fastnn-fit", "fastnn-fit-e1"):
                continue  # built below, sized from fastnn-plan's time
            fns[impl], per_call[impl] = builders[impl](*args), 1
        if "fastnn-epoch" in impls:
            guess = _measure(fns["fastnn-plan"], 1, 0.01) if "fastnn-plan" in fns else 1e-4
            steps = max(16, min(100000, int(0.05 / max(guess, 1e-7))))
            fns["fastnn-epoch"], per_call["fastnn-epoch"] = build_fastnn_epoch(*args, steps), steps
        for impl, epochs in (("fastnn-fit", None), ("fastnn-fit-e1", 1)):
            if impl in impls:  # fit(epochs=many) per step, and one fit(epochs=1) call per step of it
                guess = _measure(fns["fastnn-plan"], 1, 0.01) if "fastnn-plan" in fns else 1e-4
                steps = max(16, min(200000, int(0.05 / max(guess, 1e-7))))
                fn = build_fastnn_fit(*args, steps, epochs=epochs)
                fns[impl], per_call[impl] = fn, fn.steps
        # Calibrate each block to ~target seconds, then time the implementations round-robin,
        # one block each per round with a pause before it, so drift in the machine's load hits
        # all of them alike and no block starts while another library's threads still spin.
        counts = {}
        for impl, fn in fns.items():
            time.sleep(PAUSE_S)
            counts[impl] = _calls_per_block(fn, 0.05)
        samples = {impl: [] for impl in fns}
        for _ in range(repeats):
            for impl, fn in fns.items():
                time.sleep(PAUSE_S)
                # ~100 ms untimed first: after the pause the cores (a VM's vCPUs) have gone idle,
                # and the first ~50 ms of work after that run up to 1.5x slower.
                _time_block(fn, 2 * counts[impl])
                samples[impl].append(_time_block(fn, counts[impl]) / per_call[impl])
        times = {impl: statistics.median(v) for impl, v in samples.items()}
        bests = {impl: min(v) for impl, v in samples.items()}
        base = times.get("fastnn-plan")
        flops = step_flops(net_sizes, batch)
        for impl in impls:
            if impl not in times:
                continue
            t = times[impl]
            row = {"name": name, "impl": impl, "time_per_step_s": t,
                   "ratio": (t / base) if base else None, "best_s": bests[impl],
                   "best_ratio": bests[impl] / bests["fastnn-plan"] if base else None}
            if name.startswith(("medium", "large")):
                row["gflops"] = flops / t / 1e9
                if peak:
                    row["pct_gemm_peak"] = 100.0 * row["gflops"] / peak
                if fma_peak:
                    row["pct_fma_peak"] = 100.0 * row["gflops"] / fma_peak
            rows.append(row)
    if peak:
        rows.append({"name": "gemm_1024", "impl": "fastnn-gemm", "time_per_step_s": 2.0 * 1024 ** 3 / peak / 1e9,
                     "ratio": None, "gflops": peak})
    if fma_peak:
        rows[-1]["pct_fma_peak"] = 100.0 * peak / fma_peak
        rows.append({"name": "fma_peak", "impl": "registers", "time_per_step_s": 2.0 * 1024 ** 3 / fma_peak / 1e9,
                     "ratio": None, "gflops": fma_peak, "pct_fma_peak": 100.0})
    if limiter is not None:
        limiter.restore_original_limits()
    return rows


def format_rows(rows: List[dict]) -> str:
    """A plain-text table of run_step_benchmarks rows."""
    def fmt(t):
        return f"{t * 1e6:.3f} us" if t < 1e-3 else f"{t * 1e3:.3f} ms"
    lines = [f"{'network':<10} {'impl':<13} {'median/step':>12} {'plan x faster':>14} {'best/step':>12} "
             f"{'(best) x':>9} {'GFLOP/s':>8} {'%FMA peak':>9}"]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") else ""
        bratio = f"{r['best_ratio']:.2f}" if r.get("best_ratio") else ""
        best = fmt(r["best_s"]) if "best_s" in r else ""
        gf = f"{r['gflops']:.1f}" if "gflops" in r else ""
        pct = f"{r['pct_fma_peak']:.0f}%" if "pct_fma_peak" in r else ""
        lines.append(f"{r['name']:<10} {r['impl']:<13} {fmt(r['time_per_step_s']):>12} {ratio:>14} {best:>12} "
                     f"{bratio:>9} {gf:>8} {pct:>9}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_rows(run_step_benchmarks()))
