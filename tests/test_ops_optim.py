"""fastnn.ops optimizer kernels match fastnn.reference (float32/float64, odd sizes, several steps,
every option combination), match hand-computed PyTorch formulas, are bitwise identical on 1 and
2 threads, never modify the gradient, and reject bad arguments naming them."""
import itertools
import math

import numpy as np
import pytest

from fastnn import _core, ops, reference
from conftest import PAR_N, assert_close, num_threads

OPT_SIZES = [1, 7, 16, 17, 1027, PAR_N]
BACKENDS = [ops, reference]

# --- option grids ---------------------------------------------------------------------------

SGD_CONFIGS = [
    dict(momentum=m, dampening=d, weight_decay=wd, nesterov=nest, maximize=mx)
    for m, d, wd, nest, mx in itertools.product([0.0, 0.9], [0.0, 0.3], [0.0, 0.05], [False, True], [False, True])
    if not (nest and (m == 0 or d != 0))
]
ADAM_CONFIGS = [
    dict(weight_decay=wd, amsgrad=a, maximize=mx, decoupled_weight_decay=dec)
    for wd, a, mx, dec in itertools.product([0.0, 0.1], [False, True], [False, True], [False, True])
]
RMSPROP_CONFIGS = [
    dict(centered=c, momentum=m, weight_decay=wd, maximize=mx)
    for c, m, wd, mx in itertools.product([False, True], [0.0, 0.8], [0.0, 0.05], [False, True])
]
ADAGRAD_CONFIGS = [
    dict(lr_decay=ld, weight_decay=wd, maximize=mx, init=init)
    for ld, wd, mx, init in itertools.product([0.0, 0.1], [0.0, 0.05], [False, True], [0.0, 0.3])
]


def _ids(configs):
    return ["-".join(f"{k}={v}" for k, v in c.items()) for c in configs]


class Run:
    """State for a few steps of one optimizer on one backend: param + named buffers."""

    def __init__(self, rng, n, dtype, buffers, init=0.0):
        self.param = rng.standard_normal(n).astype(dtype)
        self.buf = {name: np.full(n, init if name == "state_sum" else 0.0, dtype) for name in buffers}

    def copy(self):
        other = Run.__new__(Run)
        other.param = self.param.copy()
        other.buf = {k: v.copy() for k, v in self.buf.items()}
        return other

    def arrays(self):
        return [self.param] + [self.buf[k] for k in sorted(self.buf)]


def _grads(rng, n, dtype, steps):
    return [rng.standard_normal(n).astype(dtype) for _ in range(steps)]


def _step(backend, kind, run, g, t, cfg):
    b = run.buf
    if kind == "sgd":
        backend.sgd_step(run.param, g, b.get("momentum_buffer"), lr=0.1, first_step=(t == 1), **cfg)
    elif kind == "adam":
        backend.adam_step(run.param, g, b["exp_avg"], b["exp_avg_sq"], b.get("max_exp_avg_sq"), step=t,
                          lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, **cfg)
    elif kind == "rmsprop":
        backend.rmsprop_step(run.param, g, b["square_avg"], b.get("grad_avg"), b.get("momentum_buffer"),
                             lr=0.01, alpha=0.9, eps=1e-8, **cfg)
    else:
        cfg = {k: v for k, v in cfg.items() if k != "init"}
        backend.adagrad_step(run.param, g, b["state_sum"], step=t, lr=0.1, eps=1e-10, **cfg)


def _buffers(kind, cfg):
    if kind == "sgd":
        return ["momentum_buffer"] if cfg["momentum"] else []
    if kind == "adam":
        return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if cfg["amsgrad"] else [])
    if kind == "rmsprop":
        return ["square_avg"] + (["grad_avg"] if cfg["centered"] else []) + (["momentum_buffer"] if cfg["momentum"] else [])
    return ["state_sum"]


ALL = ([("sgd", c) for c in SGD_CONFIGS] + [("adam", c) for c in ADAM_CONFIGS]
       + [("rmsprop", c) for c in RMSPROP_CONFIGS] + [("adagrad", c) for c in ADAGRAD_CONFIGS])
ALL_IDS = [f"{k}-{i}" for k, i in zip([a for a, _ in ALL], _ids([c for _, c in ALL]))]


# --- kernels vs reference ---------------------------------------------------------------------

@pytest.mark.parametrize("kind,cfg", ALL, ids=ALL_IDS)
@pytest.mark.parametrize("n", [1, 17, PAR_N])
def test_every_option_matches_reference(kind, cfg, n, dtype, rng):
    run = Run(rng, n, dtype, _buffers(kind, cfg), init=cfg.get("init", 0.0))
    ref = run.copy()
    for t, g in enumerate(_grads(rng, n, dtype, 3), start=1):
        g_before = g.copy()
        _step(ops, kind, run, g, t, cfg)
        _step(reference, kind, ref, g, t, cfg)
        assert np.array_equal(g, g_before), "the gradient must never be modified"
    for a, b in zip(run.arrays(), ref.arrays()):
        assert a.dtype == dtype
        assert_close(a, b)


@pytest.mark.parametrize("kind,cfg", [ALL[i] for i in (len(SGD_CONFIGS) - 1, len(SGD_CONFIGS) + 5,
                                                       len(SGD_CONFIGS) + len(ADAM_CONFIGS) + 15, len(ALL) - 1)])
@pytest.mark.parametrize("n", OPT_SIZES)
def test_sizes_around_vector_widths(kind, cfg, n, dtype, rng):
    run = Run(rng, n, dtype, _buffers(kind, cfg), init=cfg.get("init", 0.0))
    ref = run.copy()
    start = run.param.copy()
    for t, g in enumerate(_grads(rng, n, dtype, 4), start=1):
        _step(ops, kind, run, g, t, cfg)
        _step(reference, kind, ref, g, t, cfg)
    # every element moved (a kernel that skipped whole vector blocks or the tail would show here)
    assert np.all(run.param != start)
    for a, b in zip(run.arrays(), ref.arrays()):
        assert_close(a, b)


@pytest.mark.parametrize("kind,cfg", [ALL[i] for i in (len(SGD_CONFIGS) - 1, len(SGD_CONFIGS) + 7,
                                                       len(SGD_CONFIGS) + len(ADAM_CONFIGS) + 15, len(ALL) - 1)])
def test_bitwise_identical_on_one_and_two_threads(kind, cfg, dtype, rng):
    n = _core.parallel_thresholds()["elementwise"] + 3  # SGD's pass (cost 1) forks too
    base = Run(rng, n, dtype, _buffers(kind, cfg), init=cfg.get("init", 0.0))
    grads = _grads(rng, n, dtype, 3)
    results = []
    for threads in (1, 2):
        run = base.copy()
        with num_threads(threads):
            for t, g in enumerate(grads, start=1):
                _step(ops, kind, run, g, t, cfg)
        results.append(run.arrays())
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()


# --- hand-computed PyTorch formulas --------------------------------------------------------------

def _sgd_by_hand(theta, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 maximize=False):
    """semantics.md's SGD on plain Python floats, one element."""
    b = None
    for g in grads:
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * theta
        if momentum:
            b = g if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        theta = theta - lr * g
    return theta


@pytest.mark.parametrize("backend", BACKENDS, ids=["ops", "reference"])
@pytest.mark.parametrize("opts", [
    {}, {"momentum": 0.9}, {"momentum": 0.9, "dampening": 0.5}, {"momentum": 0.9, "nesterov": True},
    {"weight_decay": 0.1}, {"maximize": True}, {"momentum": 0.5, "weight_decay": 0.2, "maximize": True},
])
def test_sgd_matches_hand_computation(backend, opts):
    theta0 = [1.0, -2.0, 0.5]
    grads = [[0.5, 1.0, -3.0], [-0.25, 2.0, 1.0], [1.5, -1.0, 0.75]]
    p = np.array(theta0)
    buf = np.zeros(3)
    for t, g in enumerate(grads, start=1):
        backend.sgd_step(p, np.array(g), buf, lr=0.1, first_step=(t == 1), **opts)
    expect = [_sgd_by_hand(theta0[i], [g[i] for g in grads], 0.1, **opts) for i in range(3)]
    np.testing.assert_allclose(p, expect, rtol=1e-15, atol=0)


def test_sgd_first_momentum_step_by_hand():
    # θ=1, g=2, μ=0.9, τ=0.5, first step: b = g = 2 (no dampening), θ = 1 − 0.1·2 = 0.8
    p, b = np.array([1.0]), np.array([123.0])
    ops.sgd_step(p, np.array([2.0]), b, lr=0.1, momentum=0.9, dampening=0.5, first_step=True)
    assert b[0] == 2.0 and p[0] == pytest.approx(0.8, rel=1e-15)
    # second step, g=1: b = 0.9·2 + 0.5·1 = 2.3, θ = 0.8 − 0.23 = 0.57
    ops.sgd_step(p, np.array([1.0]), b, lr=0.1, momentum=0.9, dampening=0.5)
    assert b[0] == pytest.approx(2.3, rel=1e-15) and p[0] == pytest.approx(0.57, rel=1e-15)


@pytest.mark.parametrize("backend", BACKENDS, ids=["ops", "reference"])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_two_steps_by_hand(backend, amsgrad, decoupled):
    lr, b1, b2, eps, wd = 0.1, 0.9, 0.999, 1e-8, 0.1
    theta, m, v, vmax = 2.0, 0.0, 0.0, 0.0
    p, M, V, VM = np.array([theta]), np.zeros(1), np.zeros(1), np.zeros(1)
    for t, g in ((1, 0.5), (2, -4.0)):
        backend.adam_step(p, np.array([g]), M, V, VM, step=t, lr=lr, beta1=b1, beta2=b2, eps=eps,
                          weight_decay=wd, amsgrad=amsgrad, decoupled_weight_decay=decoupled)
        if decoupled:
            theta *= 1 - lr * wd
        else:
            g += wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = max(vmax, v)
        denom = math.sqrt(vmax if amsgrad else v) / math.sqrt(1 - b2 ** t) + eps
        theta -= lr / (1 - b1 ** t) * m / denom
    np.testing.assert_allclose(p, [theta], rtol=1e-14)
    np.testing.assert_allclose(M, [m], rtol=1e-14)
    np.testing.assert_allclose(V, [v], rtol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS, ids=["ops", "reference"])
def test_rmsprop_one_step_by_hand(backend):
    # centered with momentum and weight decay, θ=1, g=0.5, α=0.9, μ=0.5, λ=0.1, lr=0.01, eps=1e-8
    p, v, ga, b = np.array([1.0]), np.zeros(1), np.zeros(1), np.zeros(1)
    backend.rmsprop_step(p, np.array([0.5]), v, ga, b, lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.1,
                         momentum=0.5, centered=True)
    g = 0.5 + 0.1 * 1.0                      # 0.6
    v_ = 0.1 * g * g                         # 0.036
    ga_ = 0.1 * g                            # 0.06
    avg = math.sqrt(v_ - ga_ * ga_) + 1e-8   # √0.0324 = 0.18
    b_ = g / avg
    assert v[0] == pytest.approx(v_, rel=1e-14) and ga[0] == pytest.approx(ga_, rel=1e-14)
    assert b[0] == pytest.approx(b_, rel=1e-14)
    assert p[0] == pytest.approx(1.0 - 0.01 * b_, rel=1e-14)


@pytest.mark.parametrize("backend", BACKENDS, ids=["ops", "reference"])
def test_adagrad_two_steps_by_hand(backend):
    p, s = np.array([1.0]), np.full(1, 0.1)
    theta, acc = 1.0, 0.1
    for t, g in ((1, 2.0), (2, -1.0)):
        backend.adagrad_step(p, np.array([g]), s, step=t, lr=0.1, lr_decay=0.5, weight_decay=0.2)
        g = g + 0.2 * theta
        clr = 0.1 / (1 + (t - 1) * 0.5)
        acc += g * g
        theta -= clr * g / (math.sqrt(acc) + 1e-10)
    assert s[0] == pytest.approx(acc, rel=1e-14)
    assert p[0] == pytest.approx(theta, rel=1e-14)


# --- norms, scaling, clamping --------------------------------------------------------------------

@pytest.mark.parametrize("p", [2.0, 1.0, math.inf, 3.0, 0.5])
@pytest.mark.parametrize("n", [1, 7, 4097, PAR_N, 3_000_001])
def test_grad_norm(p, n, dtype, rng):
    x = (rng.standard_normal(n) * 3).astype(dtype)
    got = ops.grad_norm(x, p)
    assert isinstance(got, float)
    expect = np.linalg.norm(x.astype(np.float64), ord=p)
    assert got == pytest.approx(expect, rel=1e-11)
    assert got == pytest.approx(reference.grad_norm(x, p), rel=1e-13)
    # The reference copies the kernel's blocking (to compare bitwise); np.linalg.norm, which
    # sums its own way, keeps it honest.
    assert reference.grad_norm(x, p) == pytest.approx(expect, rel=1e-11)


def test_grad_norm_thread_independent_and_nonfinite(rng):
    x = rng.standard_normal(2_100_003).astype(np.float32)
    for p in (2.0, 1.0, math.inf, 3.0):
        with num_threads(1):
            one = ops.grad_norm(x, p)
        for t in (2, 3, 4):
            with num_threads(t):
                assert ops.grad_norm(x, p) == one
    x[1_000_000] = np.nan
    assert all(math.isnan(f(x, p)) for f in (ops.grad_norm, reference.grad_norm) for p in (2.0, math.inf))
    x[1_000_000] = np.inf
    assert ops.grad_norm(x) == math.inf and ops.grad_norm(x, math.inf) == math.inf
    assert ops.grad_norm(np.zeros(0, np.float32)) == 0.0


@pytest.mark.parametrize("backend", BACKENDS, ids=["ops", "reference"])
@pytest.mark.parametrize("n", [1, 17, PAR_N])
def test_scale_clamp_all_finite(backend, n, dtype, rng):
    x = (rng.standard_normal(n) * 4).astype(dtype)
    y = x.copy()
    assert backend.scale_(y, 0.3) is y
    np.testing.assert_array_equal(y, x * dtype.type(0.3))
    z = x.copy()
    assert backend.clamp_(z, -1.5, 2.0) is z
    np.testing.assert_array_equal(z, np.clip(x, dtype.type(-1.5), dtype.type(2.0)))
    assert backend.all_finite(x)
    for bad in (np.nan, np.inf, -np.inf):
        w = x.copy()
        w[n // 2] = bad
        assert not backend.all_finite(w)
    w = x.copy()
    w[-1] = np.nan
    backend.clamp_(w, -1.0, 1.0)
    assert math.isnan(w[-1])


# --- bad arguments -------------------------------------------------------------------------------

def _adam_kw(**kw):
    base = dict(step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    base.update(kw)
    return base


@pytest.mark.parametrize("backend", BACKENDS, ids=["ops", "reference"])
@pytest.mark.parametrize("name,call", [
    ("lr", lambda B, p, g, b: B.sgd_step(p, g, lr=-0.1)),
    ("lr", lambda B, p, g, b: B.sgd_step(p, g, lr=float("nan"))),
    ("momentum", lambda B, p, g, b: B.sgd_step(p, g, b, lr=0.1, momentum=-0.5)),
    ("weight_decay", lambda B, p, g, b: B.sgd_step(p, g, lr=0.1, weight_decay=-1)),
    ("dampening", lambda B, p, g, b: B.sgd_step(p, g, b, lr=0.1, momentum=0.9, dampening=float("inf"))),
    ("nesterov", lambda B, p, g, b: B.sgd_step(p, g, b, lr=0.1, momentum=0.0, nesterov=True)),
    ("nesterov", lambda B, p, g, b: B.sgd_step(p, g, b, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)),
    ("momentum_buffer", lambda B, p, g, b: B.sgd_step(p, g, None, lr=0.1, momentum=0.9)),
    ("step", lambda B, p, g, b: B.adam_step(p, g, b, b.copy(), **_adam_kw(step=0))),
    ("beta1", lambda B, p, g, b: B.adam_step(p, g, b, b.copy(), **_adam_kw(beta1=1.0))),
    ("beta1", lambda B, p, g, b: B.adam_step(p, g, b, b.copy(), **_adam_kw(beta1=-0.1))),
    ("beta2", lambda B, p, g, b: B.adam_step(p, g, b, b.copy(), **_adam_kw(beta2=1.5))),
    ("eps", lambda B, p, g, b: B.adam_step(p, g, b, b.copy(), **_adam_kw(eps=-1e-8))),
    ("lr", lambda B, p, g, b: B.adam_step(p, g, b, b.copy(), **_adam_kw(lr=-1))),
    ("weight_decay", lambda B, p, g, b: B.adam_step(p, g, b, b.copy(), **_adam_kw(weight_decay=-0.1))),
    ("max_exp_avg_sq", lambda B, p, g, b: B.adam_step(p, g, b, b.copy(), None, **_adam_kw(amsgrad=True))),
    ("alpha", lambda B, p, g, b: B.rmsprop_step(p, g, b, lr=0.01, alpha=-0.1, eps=1e-8)),
    ("eps", lambda B, p, g, b: B.rmsprop_step(p, g, b, lr=0.01, alpha=0.99, eps=-1.0)),
    ("momentum", lambda B, p, g, b: B.rmsprop_step(p, g, b, lr=0.01, alpha=0.99, eps=1e-8, momentum=-1)),
    ("grad_avg", lambda B, p, g, b: B.rmsprop_step(p, g, b, None, lr=0.01, alpha=0.99, eps=1e-8, centered=True)),
    ("momentum_buffer", lambda B, p, g, b: B.rmsprop_step(p, g, b, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.9)),
    ("lr_decay", lambda B, p, g, b: B.adagrad_step(p, g, b, step=1, lr=0.01, lr_decay=-1)),
    ("step", lambda B, p, g, b: B.adagrad_step(p, g, b, step=-3, lr=0.01)),
    ("eps", lambda B, p, g, b: B.adagrad_step(p, g, b, step=1, lr=0.01, eps=-1)),
    ("norm_type", lambda B, p, g, b: B.grad_norm(g, 0.0)),
    ("norm_type", lambda B, p, g, b: B.grad_norm(g, float("nan"))),
    ("factor", lambda B, p, g, b: B.scale_(p, float("nan"))),
    ("low", lambda B, p, g, b: B.clamp_(p, 1.0, -1.0)),
    ("high", lambda B, p, g, b: B.clamp_(p, -1.0, float("nan"))),
])
def test_bad_hyper_parameters_raise_naming_them(backend, name, call):
    p, g, b = np.ones(5), np.ones(5), np.zeros(5)
    before = p.copy()
    with pytest.raises(ValueError, match=f"^{name}:"):
        call(backend, p, g, b)
    np.testing.assert_array_equal(p, before)


@pytest.mark.parametrize("backend", BACKENDS, ids=["ops", "reference"])
def test_bad_arrays_raise_naming_them(backend):
    p, g, m, v = (np.ones(8) for _ in range(4))
    kw = _adam_kw()
    cases = [
        (TypeError, "param", lambda: backend.adam_step([1.0] * 8, g, m, v, **kw)),
        (TypeError, "param", lambda: backend.adam_step(np.ones(8, np.int64), g, m, v, **kw)),
        (TypeError, "grad", lambda: backend.adam_step(p, g.astype(np.float32), m, v, **kw)),
        (ValueError, "grad", lambda: backend.adam_step(p, np.ones(7), m, v, **kw)),
        (ValueError, "exp_avg", lambda: backend.adam_step(p, g, np.ones(9), v, **kw)),
        (TypeError, "exp_avg_sq", lambda: backend.adam_step(p, g, m, v.astype(np.float32), **kw)),
        (ValueError, "exp_avg", lambda: backend.adam_step(p, g, np.ones(16)[::2], v, **kw)),
        (ValueError, "param", lambda: backend.adam_step(np.ones((4, 4)).T[:2].copy().T, g, m, v, **kw)),
        (ValueError, "exp_avg_sq", lambda: backend.adam_step(p, g, m, m, **kw)),
        (ValueError, "exp_avg", lambda: backend.adam_step(p, g, p, v, **kw)),
        (ValueError, "grad", lambda: backend.sgd_step(p, p, lr=0.1)),
        (ValueError, "momentum_buffer", lambda: backend.sgd_step(p, g, g, lr=0.1, momentum=0.9)),
        (TypeError, "step", lambda: backend.adam_step(p, g, m, v, **_adam_kw(step=1.5))),
        (TypeError, "amsgrad", lambda: backend.adam_step(p, g, m, v, **_adam_kw(amsgrad="yes"))),
        (TypeError, "lr", lambda: backend.sgd_step(p, g, lr="0.1")),
        (TypeError, "x", lambda: backend.scale_([1.0, 2.0], 2.0)),
    ]
    ro = np.ones(8)
    ro.flags.writeable = False
    cases.append((ValueError, "param", lambda: backend.sgd_step(ro, g, lr=0.1)))
    cases.append((ValueError, "state_sum", lambda: backend.adagrad_step(p, g, ro, step=1, lr=0.1)))
    for exc, name, call in cases:
        with pytest.raises(exc, match=f"^{name}:"):
            call()
    assert np.all(p == 1) and np.all(m == 1) and np.all(v == 1)


def test_read_only_grad_is_accepted(rng):
    p, g = np.ones(5), rng.standard_normal(5)
    g.flags.writeable = False
    ops.sgd_step(p, g, lr=0.5)
    np.testing.assert_allclose(p, 1 - 0.5 * g, rtol=1e-15)


@pytest.fixture
def simd_widths():
    """Every vector width this build and CPU can run (the best one last, and restored after)."""
    from fastnn import _core
    best = _core.optim_set_simd_bytes(0)
    widths = sorted({_core.optim_set_simd_bytes(w) for w in (16, 32)})
    yield widths
    _core.optim_set_simd_bytes(0)
    assert _core.optim_simd_bytes() == best


@pytest.mark.parametrize("kind,cfg", ALL, ids=ALL_IDS)
def test_every_vector_width_gives_the_same_bits(kind, cfg, dtype, rng, simd_widths):
    from fastnn import _core
    n = 4099  # whole tiles, a partial tile, and a ragged tail for every width
    base = Run(rng, n, dtype, _buffers(kind, cfg), init=cfg.get("init", 0.0))
    grads = _grads(rng, n, dtype, 3)
    results = []
    for w in simd_widths:
        assert _core.optim_set_simd_bytes(w) == w
        run = base.copy()
        for t, g in enumerate(grads, start=1):
            _step(ops, kind, run, g, t, cfg)
        results.append(run.arrays())
    ref = base.copy()
    for t, g in enumerate(grads, start=1):
        _step(reference, kind, ref, g, t, cfg)
    results.append(ref.arrays())
    # the C kernels at every width and the NumPy reference perform the same IEEE operations
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.tobytes() == b.tobytes()


def test_compiled_layer_checks_memory_safety_itself():
    """fastnn._core is reachable directly: it must refuse what would make C touch bad memory."""
    from fastnn import _core
    p, g, m, v = (np.ones(8) for _ in range(4))
    args = (1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False)
    with pytest.raises(ValueError, match="^exp_avg:"):
        _core.adam_step(p, g, np.ones(7), v, None, *args)
    with pytest.raises(TypeError, match="^grad:"):
        _core.adam_step(p, g.astype(np.float32), m, v, None, *args)
    with pytest.raises(ValueError, match="^max_exp_avg_sq:"):
        _core.adam_step(p, g, m, v, None, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, True, False, False)
    with pytest.raises(ValueError, match="^exp_avg_sq: must not share memory"):
        _core.adam_step(p, g, m, m, None, *args)
    with pytest.raises(ValueError, match="^step:"):
        _core.adam_step(p, g, m, v, None, 0, *args[1:])
    with pytest.raises(ValueError, match="^momentum_buffer:"):
        _core.sgd_step(p, g, None, 0.1, 0.9, 0.0, 0.0, 2, False, False)
    with pytest.raises(ValueError, match="^momentum_buffer: must not share memory"):
        _core.sgd_step(p, g, p[:], 0.1, 0.9, 0.0, 0.0, 2, False, False)
    with pytest.raises(ValueError, match="^grad_avg:"):
        _core.rmsprop_step(p, g, v, None, None, 0.01, 0.99, 1e-8, 0.0, 0.0, True, False)
    with pytest.raises(ValueError, match="^state_sum:"):
        _core.adagrad_step(p, g, np.ones(16)[::2], 1, 0.1, 0.0, 0.0, 1e-10, False)
    ro = np.ones(8)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="^param:"):
        _core.sgd_step(ro, g, None, 0.1, 0.0, 0.0, 0.0, 0, False, False)
    with pytest.raises(ValueError, match="^x:"):
        _core.scale_(ro, 2.0)
    with pytest.raises(ValueError, match="^norm_type:"):
        _core.grad_norm(g, -1.0)
    assert np.all(p == 1)
