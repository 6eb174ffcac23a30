"""fastnn.ops activations match fastnn.reference in float32/float64 on odd sizes, strided
inputs and both thread counts, and their gradients match finite differences."""
import numpy as np
import pytest

from fastnn import _core, ops, reference
from conftest import PAR_N, SIZES, assert_close, num_threads, strided

FORWARD = {
    "relu": {}, "leaky_relu": {"negative_slope": 0.2}, "sigmoid": {}, "tanh": {},
    "gelu": {"approximate": "none"}, "gelu_tanh": {"approximate": "tanh"},
}
# Backward functions that differentiate from the forward output rather than the input.
FROM_OUTPUT = {"sigmoid", "tanh"}


def _fn(name):
    return "gelu" if name == "gelu_tanh" else name


def _data(rng, n, dtype):
    # Spread over the interesting range, away from ReLU's kink at exactly 0.
    x = rng.uniform(-6, 6, size=n).astype(dtype)
    x[x == 0] = 0.5
    return x


def test_largest_size_reaches_the_parallel_path():
    """PAR_N, the largest length the elementwise tests use, forks the team even for the
    cheapest pass (ReLU, SGD), so their threaded path is what those tests check."""
    assert PAR_N >= _core.parallel_thresholds()["elementwise"]


@pytest.mark.parametrize("name", FORWARD)
@pytest.mark.parametrize("n", SIZES)
def test_forward_and_backward_match_reference(name, n, dtype, rng):
    kw = FORWARD[name]
    x = _data(rng, n, dtype)
    dy = rng.standard_normal(n).astype(dtype)
    y = getattr(ops, _fn(name))(x, **kw)
    assert y.dtype == dtype and y.shape == x.shape
    assert_close(y, getattr(reference, _fn(name))(x, **kw))
    saved = y if name in FROM_OUTPUT else x
    dx = getattr(ops, _fn(name) + "_backward")(dy, saved, **kw)
    assert_close(dx, getattr(reference, _fn(name) + "_backward")(dy, saved, **kw), rtol=1e-4 if dtype == np.float32 else 1e-11)


@pytest.mark.parametrize("name", FORWARD)
def test_strided_2d_and_out_alias(name, dtype, rng):
    kw = FORWARD[name]
    x = _data(rng, 3 * 17, dtype).reshape(3, 17)
    expect = getattr(reference, _fn(name))(x, **kw)
    assert_close(getattr(ops, _fn(name))(strided(x), **kw), expect)
    assert_close(getattr(ops, _fn(name))(x.T, **kw), expect.T)
    inplace = x.copy()
    res = getattr(ops, _fn(name))(inplace, out=inplace, **kw)
    assert res is inplace
    assert_close(inplace, expect)


@pytest.mark.parametrize("name", FORWARD)
def test_gradient_matches_finite_differences(name, rng):
    kw = FORWARD[name]
    x = _data(rng, 64, np.float64)
    dy = rng.standard_normal(64)
    f = getattr(ops, _fn(name))
    y = f(x, **kw)
    saved = y if name in FROM_OUTPUT else x
    dx = getattr(ops, _fn(name) + "_backward")(dy, saved, **kw)
    h = 1e-6
    numeric = (f(x + h, **kw) - f(x - h, **kw)) / (2 * h) * dy
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (5, 1), (256, 10), (37, 1031), (2, 3, 5)])
def test_softmax_matches_reference(shape, dtype, rng):
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    y = ops.softmax(x)
    assert_close(y, reference.softmax(x))
    assert_close(y.sum(axis=-1), np.ones(shape[:-1]), rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(ops.softmax_backward(dy, y), reference.softmax_backward(dy, y), atol=1e-6 if dtype == np.float32 else 1e-13)
    assert_close(ops.softmax(strided(x)), reference.softmax(x))


def test_softmax_is_stable_for_huge_logits():
    x = np.array([[1000.0, 1000.0, -1000.0]], dtype=np.float32)
    np.testing.assert_allclose(ops.softmax(x), [[0.5, 0.5, 0.0]])
    s = ops.sigmoid(np.array([-1000.0, 1000.0], dtype=np.float32))
    np.testing.assert_array_equal(s, [0.0, 1.0])


def test_softmax_gradient_finite_differences(rng):
    x = rng.standard_normal((4, 6))
    dy = rng.standard_normal((4, 6))
    dx = ops.softmax_backward(dy, ops.softmax(x))
    h = 1e-6
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        num[i] = np.sum((ops.softmax(x + e) - ops.softmax(x - e)) * dy) / (2 * h)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "gelu", "tanh"])
def test_bitwise_identical_across_thread_counts(name, rng):
    # Past the fork threshold of the cheapest pass (relu: cost 1), so every one of them runs
    # on the whole team, with an odd tail.
    x = _data(rng, _core.parallel_thresholds()["elementwise"] + 17, np.float32)
    with num_threads(1):
        one = getattr(ops, name)(x)
    for t in (2, 3):
        with num_threads(t):
            other = getattr(ops, name)(x)
        assert one.tobytes() == other.tobytes()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match="x: expected a numeric array, got dtype bool"):
        ops.relu(np.array([True, False]))
    with pytest.raises(TypeError, match="x: expected a real numeric array"):
        ops.relu(np.array([1 + 2j]))
    with pytest.raises(TypeError, match="x: expected a real numeric array"):
        ops.relu(np.array(["a"]))
    with pytest.raises(ValueError, match="approximate"):
        ops.gelu(np.ones(3), approximate="fast")
    with pytest.raises(ValueError, match="y: expected shape"):
        ops.sigmoid_backward(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="out: expected shape"):
        ops.relu(np.ones(3, np.float32), out=np.empty(4, np.float32))
    with pytest.raises(TypeError, match="out: expected dtype"):
        ops.relu(np.ones(3, np.float32), out=np.empty(3, np.float64))
    ro = np.ones(3, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        ops.relu(np.ones(3, np.float32), out=ro)
    with pytest.raises(ValueError, match="negative_slope: expected a finite"):
        ops.leaky_relu(np.ones(3), negative_slope=float("nan"))
    with pytest.raises(ValueError, match="empty last axis"):
        ops.softmax(np.ones((3, 0)))


def test_integer_and_float16_inputs_are_converted():
    assert ops.relu(np.array([-1, 2])).dtype == np.float32
    assert ops.relu(np.array([-1, 2], np.float16)).dtype == np.float32
    assert ops.relu([-1.0, 2.0]).tolist() == [0.0, 2.0]
    assert ops.relu(np.array([-1.0, 2.0])).dtype == np.float64


def test_empty_input_gives_empty_output():
    assert ops.relu(np.zeros((0, 3), np.float32)).shape == (0, 3)
    assert ops.softmax(np.zeros((0, 3), np.float32)).shape == (0, 3)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh", "gelu"])
def test_nan_propagates_like_numpy(name):
    x = np.array([np.nan, 1.0, -1.0], np.float32)
    assert np.isnan(getattr(ops, name)(x)[0])
    assert np.isnan(getattr(reference, name)(x)[0])
