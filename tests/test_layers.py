"""The Dropout, BatchNorm1d, LayerNorm, Flatten and Identity modules: forward/backward agree
with the kernels and with finite differences, follow PyTorch's training/eval semantics
(running statistics, reproducible dropout), keep PyTorch's state_dict keys, run on both
backends, and reject bad input with messages that name the layer or argument."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import reference
from fastnn.nn import Sequential
from fastnn.nn.dropout import Dropout
from fastnn.nn.flatten import Flatten, Identity
from fastnn.nn.normalization import BatchNorm1d, LayerNorm
from fastnn.random import draw_seed


def _fd_input(module, x, dy, h=1e-6):
    """d sum(module(x)·dy)/dx by central differences (module state reused as is)."""
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        num[i] = np.sum((np.asarray(module(x + e)) - np.asarray(module(x - e))) * dy) / (2 * h)
    return num


def _fd_param(module, param, x, dy, h=1e-6):
    num = np.zeros_like(param.data)
    for i in np.ndindex(param.shape):
        old = param.data[i]
        param.data[i] = old + h
        fp = np.sum(np.asarray(module(x)) * dy)
        param.data[i] = old - h
        fm = np.sum(np.asarray(module(x)) * dy)
        param.data[i] = old
        num[i] = (fp - fm) / (2 * h)
    return num


# ---------------------------------------------------------------- Dropout

def test_dropout_training_is_reproducible_from_manual_seed(rng):
    x = rng.standard_normal((31, 7)).astype(np.float32)
    fastnn.manual_seed(123)
    seed = draw_seed()
    expect = reference.dropout(x, 0.3, seed)
    fastnn.manual_seed(123)
    d = Dropout(0.3)
    y = d(x)
    assert np.asarray(y).tobytes() == expect.tobytes()
    y2 = d(x)  # a new seed each forward
    assert not np.array_equal(y, y2)
    fastnn.manual_seed(123)
    with fastnn.use_backend("reference"):
        assert np.asarray(Dropout(0.3)(x)).tobytes() == expect.tobytes()


def test_dropout_backward_uses_the_forward_mask(rng):
    x = rng.uniform(1, 2, (40, 9)).astype(np.float32)  # non-zero: a zero output means dropped
    dy = rng.standard_normal((40, 9)).astype(np.float32)
    d = Dropout(0.5)
    y = np.asarray(d(x))
    dx = d.backward(dy)
    kept = y != 0
    np.testing.assert_array_equal(dx[kept], dy[kept] * np.float32(2.0))
    np.testing.assert_array_equal(dx[~kept], 0)
    assert d.backward(dy, need_input_grad=False) is None


def test_dropout_gradient_finite_differences(rng):
    x = rng.standard_normal((4, 6))
    dy = rng.standard_normal((4, 6))
    d = Dropout(0.4)
    fastnn.manual_seed(7)
    d(x)
    dx = d.backward(dy)
    num = np.zeros_like(x)
    h = 1e-6
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        fastnn.manual_seed(7)
        fp = np.sum(np.asarray(d(x + e)) * dy)
        fastnn.manual_seed(7)
        fm = np.sum(np.asarray(d(x - e)) * dy)
        num[i] = (fp - fm) / (2 * h)
    np.testing.assert_allclose(dx, num, rtol=1e-7, atol=1e-9)


def test_dropout_eval_is_identity(rng):
    x = rng.standard_normal((5, 3))
    d = Dropout(0.9).eval()
    np.testing.assert_array_equal(d(x), x)
    g = rng.standard_normal((5, 3))
    np.testing.assert_array_equal(d.backward(g), g)
    d.train()
    assert not np.array_equal(d(x), x)


def test_dropout_p_edge_values(rng):
    x = rng.standard_normal((50, 4)).astype(np.float32)
    np.testing.assert_array_equal(Dropout(0.0)(x), x)
    d = Dropout(1.0)
    assert np.all(np.asarray(d(x)) == 0)
    assert np.all(d.backward(np.ones_like(x)) == 0)


def test_dropout_bad_arguments():
    with pytest.raises(ValueError, match="p: expected a value <= 1.0, got 1.5"):
        Dropout(1.5)
    with pytest.raises(ValueError, match="p: expected a value >= 0.0"):
        Dropout(-0.1)
    with pytest.raises(TypeError, match="p: expected a real number"):
        Dropout("0.5")
    with pytest.raises(TypeError, match="input: expected a real numeric array"):
        Dropout()(np.array(["a"]))
    with pytest.raises(RuntimeError, match="before forward"):
        Dropout().backward(np.ones(3))
    d = Dropout()
    d(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"grad_out: expected shape \(2, 3\)"):
        d.backward(np.ones((3, 2)))


# ------------------------------------------------------------ BatchNorm1d

def test_batchnorm_parameters_buffers_and_state_dict_keys():
    bn = BatchNorm1d(6)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    np.testing.assert_array_equal(bn.weight.data, np.ones(6))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(6))
    np.testing.assert_array_equal(bn.running_mean, np.zeros(6))
    np.testing.assert_array_equal(bn.running_var, np.ones(6))
    assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.shape == ()
    assert bn.weight.dtype == np.float32 and bn.running_mean.dtype == np.float32
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(BatchNorm1d(6, affine=False).state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]
    assert list(BatchNorm1d(6, track_running_stats=False).state_dict()) == ["weight", "bias"]
    assert BatchNorm1d(3, dtype=np.float64).running_var.dtype == np.float64
    assert repr(bn) == "BatchNorm1d(6, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_batchnorm_running_statistics_by_hand(momentum, rng):
    bn = BatchNorm1d(4, momentum=momentum, dtype=np.float64)
    hand_m, hand_v = np.zeros(4), np.ones(4)
    for step in range(1, 5):
        x = rng.standard_normal((10 + step, 4)) * step + step
        bn(x)
        f = 1.0 / step if momentum is None else momentum  # None: cumulative moving average
        hand_m = (1 - f) * hand_m + f * x.mean(axis=0)
        hand_v = (1 - f) * hand_v + f * x.var(axis=0, ddof=1)
        assert int(bn.num_batches_tracked) == step
    np.testing.assert_allclose(bn.running_mean, hand_m, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(bn.running_var, hand_v, rtol=1e-12)


def test_batchnorm_eval_uses_running_stats_and_keeps_them(rng):
    bn = BatchNorm1d(3, dtype=np.float64)
    bn.weight.data = [2.0, -1.0, 0.5]
    bn.bias.data = [0.1, 0.2, 0.3]
    for _ in range(3):
        bn(rng.standard_normal((16, 3)) * 2 + 1)
    rm, rv, nbt = bn.running_mean.copy(), bn.running_var.copy(), int(bn.num_batches_tracked)
    bn.eval()
    x = rng.standard_normal((5, 3))
    y = np.asarray(bn(x))
    np.testing.assert_allclose(y, (x - rm) / np.sqrt(rv + 1e-5) * bn.weight.data + bn.bias.data, rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean, rm)
    np.testing.assert_array_equal(bn.running_var, rv)
    assert int(bn.num_batches_tracked) == nbt
    assert np.asarray(bn(x[:1])).shape == (1, 3)  # one row is fine in eval


def test_batchnorm_without_running_stats_normalises_each_batch_in_eval(rng):
    bn = BatchNorm1d(3, track_running_stats=False, affine=False, dtype=np.float64).eval()
    y = np.asarray(bn(rng.standard_normal((30, 3)) * 5 + 2))
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), 1, rtol=1e-4)  # eps = 1e-5 against var ≈ 25
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        bn(np.ones((1, 3)))


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients_finite_differences(training, rng):
    bn = BatchNorm1d(3, dtype=np.float64)
    bn.weight.data = rng.standard_normal(3)
    bn.bias.data = rng.standard_normal(3)
    bn(rng.standard_normal((8, 3)))  # non-trivial running stats
    bn.train(training)
    x = rng.standard_normal((7, 3)) * 2 + 1
    dy = rng.standard_normal((7, 3))
    bn(x)
    dx = bn.backward(dy)
    gw, gb = bn.weight.grad.copy(), bn.bias.grad.copy()
    # Finite differences through the module (the forward of training mode moves the running
    # stats, which its output does not depend on).
    np.testing.assert_allclose(dx, _fd_input(bn, x, dy), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gw, _fd_param(bn, bn.weight, x, dy), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gb, _fd_param(bn, bn.bias, x, dy), rtol=1e-6, atol=1e-8)


def test_batchnorm_backward_accumulates_and_respects_frozen_params(rng):
    bn = BatchNorm1d(4, dtype=np.float64)
    x, dy = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    bn(x)
    bn.backward(dy)
    once = bn.weight.grad.copy(), bn.bias.grad.copy()
    bn(x)
    bn.backward(dy)
    np.testing.assert_allclose(bn.weight.grad, 2 * once[0], rtol=1e-12)
    np.testing.assert_allclose(bn.bias.grad, 2 * once[1], rtol=1e-12)
    bn.zero_grad()
    bn.weight.requires_grad = False
    bn(x)
    assert bn.backward(dy, need_input_grad=False) is None
    np.testing.assert_array_equal(bn.weight.grad, 0)
    np.testing.assert_allclose(bn.bias.grad, once[1], rtol=1e-12)


def test_norm_layers_work_on_consolidated_arena_parameters(rng):
    from fastnn.nn import consolidate
    model = Sequential(BatchNorm1d(5, dtype=np.float64), LayerNorm(5, dtype=np.float64))
    consolidate(model.parameters())
    x, dy = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    model(x).backward(dy)
    fresh = Sequential(BatchNorm1d(5, dtype=np.float64), LayerNorm(5, dtype=np.float64))
    fresh(x).backward(dy)
    for (name, p), (_, q) in zip(model.named_parameters(), fresh.named_parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=name)
        assert p.grad.any(), name


def test_batchnorm_state_dict_round_trip(rng):
    a, b = BatchNorm1d(5), BatchNorm1d(5)
    for _ in range(2):
        a(rng.standard_normal((9, 5)))
    b.load_state_dict(a.state_dict())
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)
    assert int(b.num_batches_tracked) == 2
    b(rng.standard_normal((9, 5)))  # buffers stay registered after an update
    assert int(b.state_dict()["num_batches_tracked"]) == 3


def test_batchnorm_input_conversion_and_errors(rng):
    bn = BatchNorm1d(64)
    with pytest.raises(ValueError, match=r"^BatchNorm1d\(64\) expected input with 64 features, "
                                         r"got array of shape \(32, 10\)$"):
        bn(np.ones((32, 10), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(64\) expected a 2-D input \(N, 64\), got array "
                                         r"of shape \(2, 64, 3\)"):
        bn(np.ones((2, 64, 3)))
    with pytest.raises(TypeError, match=r"BatchNorm1d\(64\): expected a numeric input, got dtype <U1"):
        bn(np.full((2, 64), "a"))
    with pytest.raises(TypeError, match="expected a numeric input, got dtype bool"):
        bn(np.ones((2, 64), bool))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(64\): Expected more than 1 value per channel "
                                         r"when training, got input of shape \(1, 64\)"):
        bn(np.ones((1, 64)))
    assert int(bn.num_batches_tracked) == 0  # a rejected batch is not counted
    y = bn(rng.integers(0, 5, (3, 64)))
    assert y.dtype == np.float32
    assert BatchNorm1d(2)(np.ones((3, 2))).dtype == np.float32  # float64 input, float32 layer
    with pytest.raises(ValueError, match="num_features: expected a positive integer, got 0"):
        BatchNorm1d(0)
    with pytest.raises(ValueError, match="momentum: expected a value <= 1.0"):
        BatchNorm1d(3, momentum=2)
    with pytest.raises(ValueError, match="eps: expected a value >= 0.0"):
        BatchNorm1d(3, eps=-1)
    with pytest.raises(TypeError, match="dtype: expected float32 or float64"):
        BatchNorm1d(3, dtype=np.int32)
    with pytest.raises(RuntimeError, match="before forward"):
        BatchNorm1d(3).backward(np.ones((2, 3)))


# -------------------------------------------------------------- LayerNorm

@pytest.mark.parametrize("shape", [5, (5,), [5]])
def test_layernorm_construction(shape):
    ln = LayerNorm(shape)
    assert ln.normalized_shape == (5,)
    assert list(ln.state_dict()) == ["weight", "bias"]
    np.testing.assert_array_equal(ln.weight.data, np.ones(5))
    np.testing.assert_array_equal(ln.bias.data, np.zeros(5))
    assert repr(ln) == "LayerNorm((5,), eps=1e-05, elementwise_affine=True)"


def test_layernorm_variants_and_errors():
    assert LayerNorm(4, elementwise_affine=False).parameters() == []
    assert [n for n, _ in LayerNorm(4, bias=False).named_parameters()] == ["weight"]
    with pytest.raises(ValueError, match=r"normalized_shape: only normalisation over the last dimension"):
        LayerNorm((3, 4))
    with pytest.raises(ValueError, match="normalized_shape: expected a positive integer"):
        LayerNorm(0)
    ln = LayerNorm(8)
    with pytest.raises(ValueError, match=r"LayerNorm\(\(8,\)\) expected input with last dimension 8, "
                                         r"got array of shape \(3, 7\)"):
        ln(np.ones((3, 7)))
    with pytest.raises(ValueError, match="expected input with last dimension 8"):
        ln(np.float32(1))
    with pytest.raises(TypeError, match=r"LayerNorm\(\(8,\)\): expected a numeric input, got dtype complex128"):
        ln(np.ones((2, 8), complex))


@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_forward_backward_and_finite_differences(affine, rng):
    ln = LayerNorm(5, elementwise_affine=affine, dtype=np.float64)
    if affine:
        ln.weight.data = rng.standard_normal(5)
        ln.bias.data = rng.standard_normal(5)
    x = rng.standard_normal((2, 3, 5)) * 3 - 1
    dy = rng.standard_normal((2, 3, 5))
    y = np.asarray(ln(x))
    w = ln.weight.data if affine else 1.0
    b = ln.bias.data if affine else 0.0
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(y, (x - mu) / np.sqrt(var + 1e-5) * w + b, rtol=1e-12, atol=1e-12)
    dx = ln.backward(dy)
    np.testing.assert_allclose(dx, _fd_input(ln, x, dy), rtol=1e-6, atol=1e-8)
    if affine:
        gw, gb = ln.weight.grad.copy(), ln.bias.grad.copy()
        np.testing.assert_allclose(gw, _fd_param(ln, ln.weight, x, dy), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(gb, _fd_param(ln, ln.bias, x, dy), rtol=1e-6, atol=1e-8)


def test_layernorm_converts_input_dtype(rng):
    y = LayerNorm(3)(rng.integers(0, 9, (4, 3)))
    assert y.dtype == np.float32
    assert LayerNorm(3, dtype=np.float64)(np.ones((2, 3), np.float32)).dtype == np.float64


@pytest.mark.parametrize("make", [lambda: BatchNorm1d(3), lambda: LayerNorm(3)], ids=["batchnorm", "layernorm"])
def test_norm_backward_checks(make, rng):
    layer = make()
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.ones((4, 3), np.float32))
    layer(rng.standard_normal((4, 3)).astype(np.float32))
    with pytest.raises(ValueError, match=r"grad_out: expected shape \(4, 3\) \(as the last input\), got \(4, 2\)"):
        layer.backward(np.ones((4, 2), np.float32))
    layer.weight.requires_grad = layer.bias.requires_grad = False
    assert layer.backward(np.ones((4, 3), np.float32), need_input_grad=False) is None  # nothing wanted
    assert layer.backward(np.ones((4, 3), np.float32)).shape == (4, 3)


# ------------------------------------------------------ Flatten, Identity

def test_flatten_shapes_and_backward(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    cases = {(1, -1): (2, 60), (0, -1): (120,), (1, 2): (2, 12, 5), (-3, -2): (2, 12, 5), (2, 2): (2, 3, 4, 5)}
    for (s, e), shape in cases.items():
        f = Flatten(s, e)
        y = f(x)
        assert y.shape == shape
        np.testing.assert_array_equal(np.asarray(y).ravel(), x.ravel())
        g = rng.standard_normal(shape)
        np.testing.assert_array_equal(f.backward(g), g.reshape(x.shape))
    assert Flatten(0)(np.float64(2.0)).shape == (1,)


def test_flatten_errors():
    with pytest.raises(IndexError, match=r"start_dim: dimension out of range \(expected to be in range of "
                                         r"\[-2, 1\], but got 2\)"):
        Flatten(2)(np.ones((3, 4)))
    with pytest.raises(IndexError, match="end_dim: dimension out of range"):
        Flatten(0, -4)(np.ones((3, 4)))
    with pytest.raises(IndexError, match="start_dim: dimension out of range"):
        Flatten()(np.ones(3))  # PyTorch too: dim 1 of a 1-D input
    with pytest.raises(ValueError, match="start_dim: must not come after end_dim"):
        Flatten(2, 1)(np.ones((2, 3, 4)))
    with pytest.raises(TypeError, match="start_dim: expected an integer, got float"):
        Flatten(1.0)
    f = Flatten()
    f(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"grad_out: expected 24 elements"):
        f.backward(np.ones((2, 11)))
    assert f.backward(np.ones((2, 12)), need_input_grad=False) is None


def test_identity(rng):
    x = rng.standard_normal((3, 2))
    m = Identity(54, unused="ignored")
    np.testing.assert_array_equal(m(x), x)
    g = rng.standard_normal((3, 2))
    assert m.backward(g) is g
    assert m.backward(g, need_input_grad=False) is None


# -------------------------------------------------------- composition

def _model(dtype):
    return Sequential(Flatten(), BatchNorm1d(12, dtype=dtype), Dropout(0.25), LayerNorm(12, dtype=dtype),
                      Identity())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sequential_runs_the_same_on_both_backends(dtype, rng):
    x = rng.standard_normal((9, 3, 4)).astype(dtype)
    dy = rng.standard_normal((9, 12)).astype(dtype)
    results = []
    for name in ("c", "reference"):
        model = _model(dtype)
        model[3].weight.data = np.linspace(0.5, 1.5, 12)
        fastnn.manual_seed(99)
        with fastnn.use_backend(name):
            out = model(x)
            out.backward(dy)
        results.append([np.asarray(out), model[1].weight.grad.copy(), model[1].bias.grad.copy(),
                        model[3].weight.grad.copy(), model[1].running_var.copy()])
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, **tol)
    assert list(_model(dtype).state_dict()) == [
        "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
        "3.weight", "3.bias"]


def test_sequential_backward_matches_module_by_module(rng):
    x = rng.standard_normal((9, 3, 4))
    dy = rng.standard_normal((9, 12))
    model = _model(np.float64)
    fastnn.manual_seed(5)
    out = model(x)
    dx = model.backward(dy)
    # The same chain by hand from the same seed.
    layers = _model(np.float64)
    fastnn.manual_seed(5)
    h = x
    for m in layers:
        h = m(h)
    np.testing.assert_array_equal(np.asarray(h), np.asarray(out))
    g = dy
    for m in reversed(list(layers)):
        g = m.backward(g)
    np.testing.assert_array_equal(g, dx)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(layers[1].weight.grad, model[1].weight.grad)
    # The model in eval mode: dropout off, running stats used, gradients still flow.
    model.eval()
    out = model(x)
    assert np.all(np.isfinite(model.backward(dy)))
    assert math.isfinite(float(np.sum(out)))
