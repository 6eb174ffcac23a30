"""Kernel timings: fastnn against NumPy (and PyTorch when importable), in one process.

Sections:

* ``matmul`` — float32 products: squares 256…2048 and the shapes of a 784-1024-1024-10
  training step (forward, the head, the weight gradients dZᵀ·X and Xᵀ·dZ, the input
  gradients dZ·W). The shape tables, operand builders and the fused-layer case below are
  also what ``benchmarks/bench_gemm.py`` times, in float32 and float64.
* ``linear`` — the fused dense layer y = relu(x·Wᵀ + b) (``fastnn.ops.linear``) against
  NumPy's best form (``np.matmul(x, W.T, out=y); y += b; np.maximum(y, 0, out=y)``).
* ``optim`` — SGD with momentum and Adam over one large flat float32 arena
  (``fastnn.ops.sgd_step``/``adam_step``) against NumPy's best in-place form (ufuncs with
  ``out=``, cache-sized chunks so each chunk's passes hit L2) and PyTorch's fused optimizers.

Timing: each implementation is warmed up, then timed in several blocks of repeated calls
(each block ≥ ``block_s``); the reported time per call is the median block. Between
implementations the process sleeps ``pause_s``: OpenBLAS (NumPy) and PyTorch keep worker
threads spinning ~0.2 s after a call, which slows an OpenMP region started meanwhile.
Each case also checks once that fastnn's result matches NumPy's (``match``).
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["BenchConfig", "time_blocks", "time_call", "run_kernel_benchmarks", "SECTIONS", "GEMM_SHAPES", "SMALL_NET_SHAPES",
           "GEMM_QUICK", "FUSED_LINEAR", "matmul_operands", "fastnn_matmul", "numpy_matmul", "linear_operands",
           "fastnn_linear", "numpy_linear", "numpy_linear_expr", "fused_linear_case"]

SECTIONS = ("matmul", "linear", "optim")


class BenchConfig:
    """How hard to time: blocks per implementation, minimum block length, pause between implementations."""

    def __init__(self, quick: bool = False, blocks: Optional[int] = None, block_s: Optional[float] = None,
                 pause_s: Optional[float] = None, torch: bool = True):
        self.quick = bool(quick)
        self.blocks = blocks if blocks is not None else (3 if quick else 7)
        self.block_s = block_s if block_s is not None else (0.005 if quick else 0.05)
        # Quick runs (CI smoke tests) shorten the pause: their times are not for reading.
        self.pause_s = float(pause_s) if pause_s is not None else (0.05 if quick else 0.25)
        self.torch = bool(torch)

    def as_dict(self) -> Dict[str, Any]:
        return {"quick": self.quick, "blocks": self.blocks, "block_s": self.block_s, "pause_s": self.pause_s}


def time_blocks(fn: Callable[[], Any], block_s: float, blocks: Optional[int] = None, budget_s: float = 0.0,
                clock: Callable[[], float] = time.perf_counter) -> Tuple[List[float], int]:
    """Seconds per call in each timed block of repeated calls, and the calls per block.

    After a warm-up call, one call is timed and calls are grouped so a block lasts about
    ``block_s``. Runs ``blocks`` blocks or, when that is None, blocks until ``budget_s``
    seconds have passed (at least one). ``clock`` reads the block times (wall clock by
    default; ``time.thread_time`` for the calling thread's CPU time).
    """
    fn()  # warm-up: first-touch of buffers, lazy initialisation, thread pools started
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    reps = max(1, int(block_s / one))
    end = time.perf_counter() + budget_s
    per_call: List[float] = []
    while True:
        c0 = clock()
        for _ in range(reps):
            fn()
        per_call.append((clock() - c0) / reps)
        done = len(per_call) >= blocks if blocks is not None else time.perf_counter() >= end
        if done:
            return per_call, reps


def time_call(fn: Callable[[], Any], cfg: BenchConfig) -> Dict[str, Any]:
    """Median seconds per call of ``fn`` over ``cfg.blocks`` timed blocks, after warm-up."""
    per_call, reps = time_blocks(fn, cfg.block_s, blocks=cfg.blocks)
    return {"median_s": statistics.median(per_call), "min_s": min(per_call), "reps": reps,
            "blocks": len(per_call)}


def _torch():
    try:
        import torch
    except Exception:  # noqa: BLE001 - optional; a broken install counts as absent
        return None
    return torch


def _measure(case: Dict[str, Any], impls: Dict[str, Callable[[], Any]], cfg: BenchConfig) -> Dict[str, Any]:
    """Time each implementation in turn, pausing between them so spinning pools wind down."""
    times: Dict[str, Any] = {}
    for name, fn in impls.items():
        time.sleep(cfg.pause_s)
        times[name] = time_call(fn, cfg)
    case["times_s"] = {k: v["median_s"] for k, v in times.items()}
    case["timing"] = times
    t_f = case["times_s"]["fastnn"]
    for peer in ("numpy", "torch"):
        if peer in case["times_s"]:
            # > 1: fastnn is that many times faster than the peer.
            case[f"speedup_vs_{peer}"] = case["times_s"][peer] / t_f
    if case.get("flop"):
        case["gflops"] = {k: case["flop"] / t / 1e9 for k, t in case["times_s"].items()}
    return case


def _close(a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    scale = max(float(np.max(np.abs(b))), 1e-30)
    return bool(np.max(np.abs(a - b)) <= rtol * scale)


# --- shared case tables and operands (benchmarks/bench_gemm.py imports these) ----------------
# (label, m, n, k, trans_a, trans_b): C (m×n) = op(A) · op(B), op(A) m×k. The GEMM issue's
# shapes: squares and the products of a 784-1024-1024-10 training step at batch 256.
GEMM_SHAPES = [
    ("square 256", 256, 256, 256, False, False),
    ("square 512", 512, 512, 512, False, False),
    ("square 1024", 1024, 1024, 1024, False, False),
    ("square 2048", 2048, 2048, 2048, False, False),
    ("X·Wᵀ 256×784·784×1024", 256, 1024, 784, False, True),        # forward, first layer
    ("H·Wᵀ 256×1024·1024×1024", 256, 1024, 1024, False, True),     # forward, hidden layer
    ("head 256×1024·1024×10", 256, 10, 1024, False, True),         # forward, output layer
    ("dZ·W 256×1024·1024×784", 256, 784, 1024, False, False),      # input gradient, first layer
    ("dZᵀ·X 1024×256·256×784", 1024, 784, 256, True, False),       # weight gradient, first layer
]
# Quick runs of bench_gemm.py leave out the slowest product.
GEMM_QUICK = [s for s in GEMM_SHAPES if s[0] != "square 2048"]
# `fastnn bench` also times the weight gradient in Xᵀ·dZ layout and the hidden layer's input gradient.
TRAINING_EXTRA_SHAPES = [
    ("Xᵀ·dZ 784×256·256×1024", 784, 1024, 256, True, False),
    ("dZ·W 256×1024·1024×1024", 256, 1024, 1024, False, False),
]
# The products of the scikit-learn estimators' default network (hidden_layer_sizes=(100,),
# batch_size="auto": 200 rows) on a 100-feature, 5-class table, and on digits (64 features):
# 100, 64 and 5 rows or columns end in ragged panels of the micro-kernel's tiles.
SMALL_NET_SHAPES = [
    ("X·Wᵀ 200×100·100×100", 200, 100, 100, False, True),     # forward, hidden layer
    ("dZᵀ·X 100×200·200×100", 100, 100, 200, True, False),    # weight gradient, hidden layer
    ("dZ·W 200×5·5×100", 200, 100, 5, False, False),          # input gradient of the 5-class head
    ("dZᵀ·H 5×200·200×100", 5, 100, 200, True, False),        # weight gradient of the head
    ("X·Wᵀ 200×64·64×100", 200, 100, 64, False, True),        # digits: forward
    ("dZᵀ·X 100×200·200×64", 100, 64, 200, True, False),      # digits: weight gradient
    ("X·Wᵀ 32×64·64×128", 32, 128, 64, False, True),          # digits at batch 32 (fit)
    ("dZᵀ·X 128×32·32×64", 128, 64, 32, True, False),
]
# `fastnn bench --quick` is a smoke test (CI): small products whose times are not for reading.
SMOKE_SHAPES = [
    ("square 128", 128, 128, 128, False, False),
    ("X·Wᵀ 64×196·196×256", 64, 256, 196, False, True),
]

# (batch, n_in, n_out) of y = relu(x·Wᵀ + b); FUSED_LINEAR is the GEMM issue's fused-layer case.
FUSED_LINEAR = (256, 1024, 1024)
LINEAR_SHAPES = [(256, 784, 1024), FUSED_LINEAR, (1024, 1024, 1024)]
LINEAR_SMOKE_SHAPES = [(64, 196, 256)]


def matmul_operands(m: int, n: int, k: int, ta: bool, tb: bool, dtype=np.float32, seed: int = 0):
    """A, B stored as op(A) m×k, op(B) k×n need them (transposed storage when ta/tb), and an m×n output."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b, np.empty((m, n), dtype)


def fastnn_matmul(a, b, c, ta: bool, tb: bool) -> Callable[[], Any]:
    from .. import ops
    return lambda: ops.matmul(a, b, trans_a=ta, trans_b=tb, out=c)


def numpy_matmul(a, b, c, ta: bool, tb: bool) -> Callable[[], Any]:
    av, bv = (a.T if ta else a), (b.T if tb else b)
    return lambda: np.matmul(av, bv, out=c)


def linear_label(batch: int, n_in: int, n_out: int) -> str:
    return f"linear+bias+ReLU {batch}, {n_in}→{n_out}"


def linear_operands(batch: int, n_in: int, n_out: int, dtype=np.float32, seed: int = 1):
    """x (batch×n_in), W (n_out×n_in, scaled by 1/√n_in so y stays O(1)), b and a batch×n_out output."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, n_in)).astype(dtype)
    w = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    return x, w, b, np.empty((batch, n_out), dtype)


def fastnn_linear(x, w, b, y) -> Callable[[], Any]:
    from .. import ops
    return lambda: ops.linear(x, w, b, activation="relu", out=y)


def numpy_linear(x, w, b, y) -> Callable[[], Any]:
    """NumPy's best form: the product into y, then bias and ReLU in place."""
    wt = w.T

    def run():
        np.matmul(x, wt, out=y)
        np.add(y, b, out=y)
        np.maximum(y, 0, out=y)
    return run


def numpy_linear_expr(x, w, b) -> Callable[[], Any]:
    """The textbook form the GEMM issue's fused-layer target is stated against."""
    def run():
        z = x @ w.T + b
        np.maximum(z, 0, out=z)
    return run


def fused_linear_case(dtype=np.float32):
    """The GEMM issue's fused layer: (label, fastnn call, NumPy ``x @ w.T + b; maximum`` call, FLOP)."""
    batch, n_in, n_out = FUSED_LINEAR
    x, w, b, y = linear_operands(batch, n_in, n_out, dtype)
    return (linear_label(batch, n_in, n_out), fastnn_linear(x, w, b, y), numpy_linear_expr(x, w, b),
            2.0 * batch * n_in * n_out)


# --- matmul -----------------------------------------------------------------------------------
def _matmul_cases(quick: bool):
    return SMOKE_SHAPES if quick else GEMM_SHAPES + TRAINING_EXTRA_SHAPES


def bench_matmul(cfg: BenchConfig) -> List[Dict[str, Any]]:
    torch = _torch() if cfg.torch else None
    out = []
    for label, m, n, k, ta, tb in _matmul_cases(cfg.quick):
        a, b, c_f = matmul_operands(m, n, k, ta, tb, np.float32)
        c_n = np.empty_like(c_f)
        impls: Dict[str, Callable[[], Any]] = {
            "fastnn": fastnn_matmul(a, b, c_f, ta, tb),
            "numpy": numpy_matmul(a, b, c_n, ta, tb),
        }
        if torch is not None:
            ta_t, tb_t = torch.from_numpy(a), torch.from_numpy(b)
            tav, tbv = (ta_t.t() if ta else ta_t), (tb_t.t() if tb else tb_t)
            c_t = torch.empty((m, n), dtype=torch.float32)
            impls["torch"] = lambda: torch.matmul(tav, tbv, out=c_t)
        case = {"section": "matmul", "case": label, "dtype": "float32", "flop": 2.0 * m * n * k}
        impls["fastnn"]()
        impls["numpy"]()
        case["match"] = _close(c_f, c_n, 1e-4)
        out.append(_measure(case, impls, cfg))
    return out


# --- fused linear + bias + ReLU ---------------------------------------------------------------
def bench_linear(cfg: BenchConfig) -> List[Dict[str, Any]]:
    torch = _torch() if cfg.torch else None
    out = []
    for batch, n_in, n_out in (LINEAR_SMOKE_SHAPES if cfg.quick else LINEAR_SHAPES):
        x, w, b, y_f = linear_operands(batch, n_in, n_out, np.float32)
        y_n = np.empty_like(y_f)
        impls: Dict[str, Callable[[], Any]] = {
            "fastnn": fastnn_linear(x, w, b, y_f),
            "numpy": numpy_linear(x, w, b, y_n),
        }
        if torch is not None:
            tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
            ty = torch.empty((batch, n_out), dtype=torch.float32)

            def torch_linear():
                torch.addmm(tb, tx, tw.t(), out=ty)
                torch.relu_(ty)
            impls["torch"] = torch_linear
        case = {"section": "linear", "case": linear_label(batch, n_in, n_out), "dtype": "float32",
                "flop": 2.0 * batch * n_in * n_out}
        impls["fastnn"]()
        impls["numpy"]()
        case["match"] = _close(y_f, y_n, 1e-4)
        out.append(_measure(case, impls, cfg))
    return out


# --- optimizer updates over a flat arena ----------------------------------------------------
_CHUNK = 1 << 15  # 32K float32 = 128 KiB per array: the chunk's 3–5 arrays stay in L2


def _numpy_sgd_momentum(p, g, buf, tmp, lr, mom):
    """buf = mom·buf + g; p -= lr·buf — in place, chunked so each chunk's passes hit cache."""
    for s in range(0, p.size, _CHUNK):
        e = s + _CHUNK
        bb, t = buf[s:e], tmp[:min(e, p.size) - s]
        np.multiply(bb, mom, out=bb)
        np.add(bb, g[s:e], out=bb)
        np.multiply(bb, lr, out=t)
        np.subtract(p[s:e], t, out=p[s:e])


def _numpy_adam(p, g, m, v, tmp, step, lr, b1, b2, eps):
    """PyTorch's Adam (no weight decay) in place, chunked: m, v moments; p -= lr/bc1 · m/(√v/√bc2 + eps)."""
    bc1 = 1.0 - b1 ** step
    bc2_sqrt = np.sqrt(1.0 - b2 ** step)
    step_size = lr / bc1
    for s in range(0, p.size, _CHUNK):
        e = s + _CHUNK
        gg, mm, vv, t = g[s:e], m[s:e], v[s:e], tmp[:min(e, p.size) - s]
        np.multiply(mm, b1, out=mm)
        np.multiply(gg, 1.0 - b1, out=t)
        np.add(mm, t, out=mm)
        np.multiply(vv, b2, out=vv)
        np.multiply(gg, gg, out=t)
        np.multiply(t, 1.0 - b2, out=t)
        np.add(vv, t, out=vv)
        np.sqrt(vv, out=t)
        np.divide(t, bc2_sqrt, out=t)
        np.add(t, eps, out=t)
        np.divide(mm, t, out=t)
        np.multiply(t, step_size, out=t)
        np.subtract(p[s:e], t, out=p[s:e])


def bench_optim(cfg: BenchConfig) -> List[Dict[str, Any]]:
    from .. import ops
    torch = _torch() if cfg.torch else None
    n = 200_000 if cfg.quick else 10_000_000
    rng = np.random.default_rng(2)
    g = (rng.standard_normal(n, dtype=np.float32) * 1e-3).astype(np.float32)
    p0 = rng.standard_normal(n, dtype=np.float32)
    lr, mom, b1, b2, eps = 1e-3, 0.9, 0.9, 0.999, 1e-8
    out = []
    label_n = f"{n / 1e6:g}M" if n >= 1e6 else f"{n // 1000}k"

    # SGD + momentum
    p_f, p_n = p0.copy(), p0.copy()
    buf_f, buf_n = np.zeros(n, np.float32), np.zeros(n, np.float32)
    tmp = np.empty(_CHUNK, np.float32)
    impls: Dict[str, Callable[[], Any]] = {
        "fastnn": lambda: ops.sgd_step(p_f, g, buf_f, lr=lr, momentum=mom),
        "numpy": lambda: _numpy_sgd_momentum(p_n, g, buf_n, tmp, lr, mom),
    }
    if torch is not None:
        tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        tp.grad = torch.from_numpy(g)
        topt = _torch_optimizer(torch, "SGD", [tp], lr=lr, momentum=mom)
        impls["torch"] = topt.step
    ops.sgd_step(p_f, g, buf_f, lr=lr, momentum=mom)
    _numpy_sgd_momentum(p_n, g, buf_n, tmp, lr, mom)
    case = {"section": "optim", "case": f"SGD momentum, {label_n} params", "dtype": "float32",
            "match": _close(p_f, p_n, 1e-5), "bytes": 16.0 * n}
    out.append(_measure(case, impls, cfg))

    # Adam (step counter advances each call, as in training)
    p_f, p_n = p0.copy(), p0.copy()
    m_f, v_f = np.zeros(n, np.float32), np.zeros(n, np.float32)
    m_n, v_n = np.zeros(n, np.float32), np.zeros(n, np.float32)
    steps = {"f": 0, "n": 0}

    def fastnn_adam():
        steps["f"] += 1
        ops.adam_step(p_f, g, m_f, v_f, step=steps["f"], lr=lr, beta1=b1, beta2=b2, eps=eps)

    def numpy_adam():
        steps["n"] += 1
        _numpy_adam(p_n, g, m_n, v_n, tmp, steps["n"], lr, b1, b2, eps)

    fastnn_adam()
    numpy_adam()
    match = _close(p_f, p_n, 1e-5)
    impls = {"fastnn": fastnn_adam, "numpy": numpy_adam}
    if torch is not None:
        tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        tp.grad = torch.from_numpy(g)
        topt = _torch_optimizer(torch, "Adam", [tp], lr=lr, betas=(b1, b2), eps=eps)
        impls["torch"] = topt.step
    case = {"section": "optim", "case": f"Adam, {label_n} params", "dtype": "float32", "match": match,
            "bytes": 28.0 * n}
    out.append(_measure(case, impls, cfg))
    return out


def _torch_optimizer(torch, name: str, params, **kw):
    """PyTorch's fused CPU optimizer where this version has it, else the foreach one."""
    cls = getattr(torch.optim, name)
    for extra in ({"fused": True}, {"foreach": True}, {}):
        try:
            opt = cls(params, **kw, **extra)
            opt.step()  # fused=True may only fail at the first step on CPU
            return opt
        except (RuntimeError, TypeError, ValueError):
            continue
    raise RuntimeError(f"torch.optim.{name} could not be constructed")


_RUNNERS = {"matmul": bench_matmul, "linear": bench_linear, "optim": bench_optim}


def run_kernel_benchmarks(quick: bool = False, sections=None, cfg: Optional[BenchConfig] = None,
                          torch: bool = True, progress: Optional[Callable[[str], None]] = None
                          ) -> List[Dict[str, Any]]:
    """Run the kernel sections (all of :data:`SECTIONS` by default); a list of per-case result dicts.

    Each dict: ``section``, ``case``, ``dtype``, ``times_s`` (median seconds per call per
    implementation: ``fastnn``, ``numpy``, ``torch`` when importable), ``speedup_vs_numpy``
    (and ``speedup_vs_torch``; > 1 means fastnn is faster), ``gflops`` for products,
    ``match`` (fastnn's result agrees with NumPy's), ``timing`` (blocks, reps, min).
    """
    cfg = cfg if cfg is not None else BenchConfig(quick=quick, torch=torch)
    results: List[Dict[str, Any]] = []
    for name in (sections or SECTIONS):
        if name not in _RUNNERS:
            continue
        if progress is not None:
            progress(name)
        results.extend(_RUNNERS[name](cfg))
    return results
