"""The eager step's calls (fastnn.ops as fastnn's own layers and optimizers make them: plain
float arrays, plain floats) go through the one check path every call takes: they must give
the results of calls that need converting, and the documented errors."""
import warnings

import numpy as np
import pytest

import fastnn as fnn
from fastnn import _core, nn, ops
from fastnn.ops import losses
from fastnn.nn.linear import _dense_backward


# --- the byte-span overlap test ------------------------------------------------------------

def test_spans_disjoint_separate_arrays():
    a, b, c = np.zeros(6), np.zeros((2, 3)), np.zeros(4, np.float32)
    assert _core.spans_disjoint((a,), (b, c))
    assert _core.spans_disjoint((a, b), (c, None))
    assert _core.spans_disjoint((None,), (a,))


def test_spans_disjoint_sees_overlap_and_reversed_views():
    buf = np.zeros(10)
    assert not _core.spans_disjoint((buf[:5],), (buf[4:],))
    assert _core.spans_disjoint((buf[:5],), (buf[5:],))
    assert not _core.spans_disjoint((buf[:5], buf[3:8]), ())  # outputs among themselves
    # A negative stride reaches below the data pointer.
    assert not _core.spans_disjoint((buf[2:4],), (buf[6::-2],))
    assert _core.spans_disjoint((buf[7:],), (buf[6::-2],))


def test_spans_disjoint_is_conservative_for_interleaved_views():
    buf = np.zeros((4, 2))
    assert not np.shares_memory(buf[:, 0], buf[:, 1])
    assert not _core.spans_disjoint((buf[:, 0],), (buf[:, 1],))


def test_spans_disjoint_rejects_non_arrays():
    assert not _core.spans_disjoint(([1.0, 2.0],), (np.zeros(2),))
    assert not _core.spans_disjoint((np.zeros(2),), ([1.0],))


def _unaligned(a):
    """A copy of ``a`` whose data pointer is not aligned to its items."""
    raw = np.zeros(a.nbytes + 1, np.uint8)[1:].view(a.dtype).reshape(a.shape)
    raw[...] = a
    assert not raw.flags.aligned
    return raw


# --- linear_backward -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh"])
def test_linear_backward_plain_call_matches_converted_call(dtype, activation):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3)).astype(dtype)
    w = rng.standard_normal((7, 3)).astype(dtype)
    z = x @ w.T
    saved = None if activation is None else (z if activation.startswith("gelu") else np.tanh(z).astype(dtype))
    g = rng.standard_normal((5, 7)).astype(dtype)
    results = []
    for how in ("plain", "converted", "layer"):
        gw, gb = np.ones_like(w), np.ones(7, dtype)
        if how == "plain":
            gx = ops.linear_backward(g, x, w, grad_weight=gw, grad_bias=gb, activation=activation, saved=saved,
                                     negative_slope=0.1)
        elif how == "converted":  # unaligned copies (copied by the checks)
            gx = ops.linear_backward(_unaligned(g), _unaligned(x), _unaligned(w), grad_weight=gw,
                                     grad_bias=gb, activation=activation,
                                     saved=None if saved is None else _unaligned(saved), negative_slope=0.1)
        else:
            gx = _dense_backward(g, x, w, gw, gb, True, activation, saved, 0.1)
        results.append((gx, gw, gb))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_with_preact_plain_call_matches_converted_call(dtype):
    """GELU's layer keeps z: linear takes preact_out; a call that needs converting agrees."""
    rng = np.random.default_rng(2)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((5, 3), (7, 3), (7,)))
    z_fast, z_full = np.empty((5, 7), dtype), np.empty((5, 7), dtype)
    y_fast = ops.linear(x, w, b, activation="gelu", preact_out=z_fast)
    y_full = ops.linear(_unaligned(x), _unaligned(w), _unaligned(b), activation="gelu", preact_out=z_full)
    np.testing.assert_array_equal(y_fast, y_full)
    np.testing.assert_array_equal(z_fast, z_full)


def test_linear_preact_overlapping_an_input_still_raises():
    x = np.ones((3, 3), np.float32)
    with pytest.raises(ValueError, match="preact_out"):
        ops.linear(x, np.ones((3, 3), np.float32), activation="gelu", preact_out=x)


@pytest.mark.parametrize("fn", ["public", "layer"])
def test_linear_backward_overlap_still_raises(fn):
    w = np.ones((3, 4), np.float32)
    gw = np.zeros((3, 4), np.float32)
    g = np.ones((3, 3), np.float32)
    with pytest.raises(ValueError, match="grad_weight: must not overlap x"):
        if fn == "public":
            ops.linear_backward(g, gw, w, grad_weight=gw)
        else:
            _dense_backward(g, gw, w, gw, None, True)


def test_linear_backward_interleaved_outputs_still_work():
    # grad_weight sits inside x's byte range without sharing memory: the conservative span test
    # sends the call to the exact check, which lets it through.
    buf = np.zeros((4, 10))
    x = buf[:, :2]
    x[...] = np.arange(8.0).reshape(4, 2)
    gw = buf[1, 4:10].reshape(3, 2)
    assert not np.shares_memory(x, gw)
    w, g = np.ones((3, 2)), np.ones((4, 3))
    ops.linear_backward(g, x, w, grad_weight=gw)
    np.testing.assert_array_equal(gw, g.T @ np.arange(8.0).reshape(4, 2))


def test_linear_layer_input_aliasing_its_weight_grad_raises_as_before():
    lin = nn.Linear(3, 3, dtype=np.float64)
    out = lin(lin.weight.grad)  # the input is the very array backward accumulates into
    with pytest.raises(ValueError, match="grad_weight: must not overlap x"):
        out.backward(np.ones((3, 3)))


# --- losses --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "bce_with_logits_loss"])
def test_loss_plain_call_matches_converting_call(name):
    rng = np.random.default_rng(2)
    x = rng.random((6, 4))
    y = rng.random((6, 4))
    fn = getattr(ops, name)
    g1, g2 = np.empty_like(x), np.empty_like(x)
    with pytest.raises(ValueError, match="grad: must not overlap input"):
        fn(x, y, grad=x)
    v1 = fn(x, y, grad=g1)
    v2 = fn(x, np.asfortranarray(y), grad=g2)  # not contiguous: converted by the checks
    assert v1 == v2
    np.testing.assert_array_equal(g1, g2)


def test_loss_grad_overlapping_its_input_still_raises():
    x = np.zeros(8)
    with pytest.raises(ValueError, match="grad: must not overlap input"):
        ops.mse_loss(x[:4], np.zeros(4), grad=x[2:6])
    logits = np.zeros((2, 3))
    with pytest.raises(ValueError, match="grad: must not overlap input"):
        ops.cross_entropy(logits, np.array([0, 1]), grad=logits)


def test_loss_errors_name_the_argument():
    with pytest.raises(ValueError, match="empty batch"):
        losses.mse_loss(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="grad: array is read-only"):
        g = np.zeros(3)
        g.flags.writeable = False
        ops.mse_loss(np.zeros(3), np.zeros(3), grad=g)


def test_float32_loss_overflow_is_inf_without_a_warning():
    layer = nn.Linear(1, 1)
    layer.weight.data = np.array([[1e20]], np.float32)
    layer.bias.data = np.zeros(1, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = nn.MSELoss()(layer(np.ones((1, 1), np.float32)), np.zeros((1, 1), np.float32))
    assert loss.dtype == np.float32 and np.isinf(loss.item())


# --- optimizer updates ---------------------------------------------------------------------

def _arrays(seed, n=37, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(dtype) for _ in range(5)]


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_plain_floats_match_numpy_scalars_and_int_flags(momentum, nesterov):
    fast, slow = _arrays(3), _arrays(3)
    for first in (True, False):
        ops.sgd_step(fast[0], fast[1], fast[2], lr=0.1, momentum=momentum, weight_decay=0.01,
                     nesterov=nesterov, first_step=first)
        # numpy floats and 0/1 flags are valid too, and normalised to the same values
        ops.sgd_step(slow[0], slow[1], slow[2], lr=np.float64(0.1), momentum=momentum, weight_decay=0.01,
                     nesterov=int(nesterov), first_step=int(first))
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)


def test_adam_int_step_matches_numpy_step():
    fast, slow = _arrays(5), _arrays(5)
    for t in (1, 2, 3):
        ops.adam_step(fast[0], fast[1], fast[2], np.abs(fast[3]), step=t, lr=0.01, beta1=0.9, beta2=0.999,
                      eps=1e-8, weight_decay=0.1)
        ops.adam_step(slow[0], slow[1], slow[2], np.abs(slow[3]), step=np.int64(t), lr=0.01, beta1=0.9,
                      beta2=0.999, eps=1e-8, weight_decay=0.1)
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)


def test_optimizer_calls_keep_their_errors():
    p, g = np.zeros(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="param: expected a numpy.ndarray"):
        ops.sgd_step(None, g, lr=0.1)
    with pytest.raises(ValueError, match="momentum_buffer: required when momentum != 0"):
        ops.sgd_step(p, g, None, lr=0.1, momentum=0.9)
    with pytest.raises(TypeError, match="grad: expected dtype float32"):
        ops.sgd_step(p, g.astype(np.float64), lr=0.1)
    with pytest.raises(ValueError, match="must not share memory"):
        ops.sgd_step(p, p, lr=0.1)
    with pytest.raises(TypeError, match="exp_avg: expected a numpy.ndarray"):
        ops.adam_step(p, g, None, np.zeros(4, np.float32), step=1, lr=0.1, beta1=0.9, beta2=0.9, eps=1e-8)
    with pytest.raises(ValueError, match="max_exp_avg_sq: required"):
        ops.adam_step(p, g, np.zeros(4, np.float32), np.zeros(4, np.float32), step=1, lr=0.1, beta1=0.9,
                      beta2=0.9, eps=1e-8, amsgrad=True)


@pytest.mark.parametrize("bad,err", [({"lr": -0.1}, ValueError), ({"momentum": float("nan")}, ValueError),
                                     ({"lr": True}, TypeError), ({"dampening": float("inf")}, ValueError)])
def test_sgd_group_checks_at_step_keep_their_errors(bad, err):
    p = nn.Parameter(np.zeros(3, np.float32))
    opt = fnn.optim.SGD([p], lr=0.1)
    opt.param_groups[0].update(bad)
    with pytest.raises(err):
        opt.step()


# --- Tensor bookkeeping --------------------------------------------------------------------

def test_module_outputs_are_read_only_and_views_are_plain_data():
    out = nn.Linear(2, 3)(np.ones((4, 2), np.float32))
    assert isinstance(out, fnn.Tensor) and out.producer is not None
    assert not out.flags.writeable
    for derived in (out[1:], out.reshape(-1), out + 1, out.T, out.copy()):
        assert getattr(derived, "_link", None) is None
    with pytest.raises(RuntimeError, match="nothing to backpropagate"):
        out[1:].sum().backward()
