"""fastnn.nn.utils.clip_grad_norm_ / clip_grad_value_: PyTorch's results computed independently in
NumPy, the same on whole arenas (one fused pass) and on loose parameters, single Parameter or
iterable, non-finite handling, bad arguments, both backends, and torch itself when importable."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import optim
from fastnn.nn import Parameter
from fastnn.nn.utils import clip_grad_norm_, clip_grad_value_

SHAPES = [(4, 6), (6,), (17,), (1,), (300, 50)]


def make(dtype=np.float64, seed=0, arena=True, scale=1.0):
    rng = np.random.default_rng(seed)
    params = [Parameter(rng.standard_normal(s).astype(dtype)) for s in SHAPES]
    if arena:
        optim.SGD(params, lr=0.1)  # gathers them into one arena
        assert all(p._arena is params[0]._arena for p in params)
    for p in params:
        p.grad = (rng.standard_normal(p.shape) * scale).astype(dtype)
    return params


def numpy_norm(grads, p):
    flat = np.concatenate([g.reshape(-1).astype(np.float64) for g in grads])
    return float(np.linalg.norm(flat, ord=p))


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
@pytest.mark.parametrize("arena", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_norm_scales_when_above(norm_type, arena, dtype):
    params = make(dtype, arena=arena)
    grads = [p.grad.copy() for p in params]
    total = numpy_norm(grads, norm_type)
    max_norm = total / 3
    got = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    assert isinstance(got, float)
    assert got == pytest.approx(total, rel=1e-12)
    coef = max_norm / (total + 1e-6)
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad, g * dtype(coef), rtol=1e-6 if dtype == np.float32 else 1e-14)
    after = numpy_norm([p.grad for p in params], norm_type)
    assert after == pytest.approx(max_norm, rel=1e-5)


@pytest.mark.parametrize("arena", [True, False])
def test_clip_grad_norm_below_threshold_changes_nothing(arena):
    params = make(arena=arena)
    grads = [p.grad.copy() for p in params]
    total = clip_grad_norm_(params, max_norm=1e6)
    assert total == pytest.approx(numpy_norm(grads, 2), rel=1e-13)
    for p, g in zip(params, grads):
        assert p.grad.tobytes() == g.tobytes()


def test_arena_and_loose_parameters_agree_bitwise_for_each_norm():
    for p_ in (2.0, 1.0, math.inf):
        a, b = make(arena=True), make(arena=False)
        ta = clip_grad_norm_(a, 0.5, p_)
        tb = clip_grad_norm_(b, 0.5, p_)
        assert ta == pytest.approx(tb, rel=1e-14)
        for x, y in zip(a, b):
            np.testing.assert_allclose(x.grad, y.grad, rtol=1e-14)


def test_single_parameter_generator_and_subset_of_an_arena():
    params = make()
    g = params[1].grad.copy()
    total = clip_grad_norm_(params[1], 0.1)
    assert total == pytest.approx(np.linalg.norm(g), rel=1e-14)
    np.testing.assert_allclose(params[1].grad, g * 0.1 / (total + 1e-6), rtol=1e-14)
    # a subset of one arena: only those gradients change
    params = make()
    before = [p.grad.copy() for p in params]
    clip_grad_norm_((p for p in params[:2]), 0.01)
    assert all(np.array_equal(p.grad, b) for p, b in zip(params[2:], before[2:]))
    assert not np.array_equal(params[0].grad, before[0])
    assert clip_grad_norm_([], 1.0) == 0.0


def test_two_arenas_of_different_dtypes():
    params = make(np.float32) + make(np.float64, seed=1)
    grads = [p.grad.astype(np.float64) for p in params]
    total = clip_grad_norm_(params, 1.0)
    assert total == pytest.approx(numpy_norm(grads, 2), rel=1e-12)
    assert numpy_norm([p.grad for p in params], 2) == pytest.approx(1.0, rel=1e-5)


def test_non_finite_total():
    params = make()
    params[2].grad[3] = np.nan
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    assert math.isnan(clip_grad_norm_(params, 1.0))  # as PyTorch: scaled by NaN
    assert all(np.isnan(p.grad).all() for p in params)
    params = make()
    params[0].grad[0, 0] = np.inf
    assert clip_grad_norm_(params, 1.0) == math.inf  # coefficient 0: finite grads become 0
    assert np.all(params[1].grad == 0) and math.isnan(params[0].grad[0, 0])


def test_reference_backend_gives_the_same():
    a, b = make(), make()
    ta = clip_grad_norm_(a, 0.3)
    with fastnn.use_backend("reference"):
        tb = clip_grad_norm_(b, 0.3)
    assert ta == pytest.approx(tb, rel=1e-14)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.grad, y.grad, rtol=1e-14)


@pytest.mark.parametrize("arena", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value(arena, dtype):
    params = make(dtype, arena=arena, scale=3.0)
    grads = [p.grad.copy() for p in params]
    assert clip_grad_value_(params, 1.5) is None
    for p, g in zip(params, grads):
        np.testing.assert_array_equal(p.grad, np.clip(g, -1.5, 1.5))
    q = Parameter(np.array([-5.0, 0.5, 5.0]))
    q.grad = np.array([-5.0, 0.5, np.nan])
    clip_grad_value_(q, 1.0)
    assert q.grad[0] == -1.0 and q.grad[1] == 0.5 and math.isnan(q.grad[2])


@pytest.mark.parametrize("call,exc,name", [
    (lambda ps: clip_grad_norm_(ps, -1.0), ValueError, "max_norm"),
    (lambda ps: clip_grad_norm_(ps, float("nan")), ValueError, "max_norm"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=0), ValueError, "norm_type"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=-2.0), ValueError, "norm_type"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type="fro"), TypeError, "norm_type"),
    (lambda ps: clip_grad_norm_([np.ones(3)], 1.0), TypeError, "parameters"),
    (lambda ps: clip_grad_norm_(3.0, 1.0), TypeError, "parameters"),
    (lambda ps: clip_grad_value_(ps, -0.5), ValueError, "clip_value"),
    (lambda ps: clip_grad_value_(ps, float("inf")), ValueError, "clip_value"),
])
def test_bad_arguments(call, exc, name):
    params = make()
    before = [p.grad.copy() for p in params]
    with pytest.raises(exc, match=f"^{name}:"):
        call(params)
    assert all(np.array_equal(p.grad, b) for p, b in zip(params, before))


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
def test_same_as_torch(norm_type):
    torch = pytest.importorskip("torch")
    params = make()
    tparams = [torch.tensor(p.numpy(), requires_grad=True) for p in params]
    for tp, p in zip(tparams, params):
        tp.grad = torch.tensor(p.grad)
    total = clip_grad_norm_(params, 0.7, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, 0.7, norm_type=norm_type)
    assert total == pytest.approx(float(ttotal), rel=1e-12)
    for tp, p in zip(tparams, params):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12)
    for tp, p in zip(tparams, params):  # fresh identical gradients for the value clip
        p.grad = np.sin(np.arange(p.size)).reshape(p.shape)
        tp.grad = torch.tensor(p.grad)
    torch.nn.utils.clip_grad_value_(tparams, 0.5)
    clip_grad_value_(params, 0.5)
    for tp, p in zip(tparams, params):
        np.testing.assert_array_equal(p.grad, tp.grad.numpy())
