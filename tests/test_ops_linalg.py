"""fastnn.ops matmul/linear/linear_backward match fastnn.reference in float32/float64 for odd and
block-edge sizes, every transpose and strided view, alpha/beta, every fused activation; gradients
match finite differences; results are bitwise identical for 1 and 2 threads; bad input raises."""
import os
import threading

import numpy as np
import pytest

from fastnn import _core, ops, reference
from conftest import num_threads

SIZES = [1, 2, 3, 17, 31, 64, 97, 255]
ACTS = [None, "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh"]
# Activations whose backward reads the pre-activation z rather than the output y.
FROM_Z = {"gelu", "gelu_tanh"}
EPS = {np.dtype(np.float32): np.finfo(np.float32).eps, np.dtype(np.float64): np.finfo(np.float64).eps}


def op(a, t):
    return a.T if t else a


def assert_product_close(actual, expected, a_op, b_op, dtype, extra=None):
    """|actual − expected| within a multiple of k·eps·(|A|·|B|) (+ |extra|): the forward error
    bound of a dot product of length k, which a missing or repeated term exceeds by far."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    k = a_op.shape[1]
    scale = np.abs(a_op).astype(np.float64) @ np.abs(b_op).astype(np.float64)
    if extra is not None:
        scale = scale + np.abs(extra)
    bound = 4 * (k + 2) * EPS[np.dtype(dtype)] * scale + 1e-30
    bad = np.abs(actual - expected) > bound
    assert not bad.any(), (f"{bad.sum()} elements off, worst at {np.unravel_index(np.argmax(np.abs(actual - expected) - bound), bad.shape)}"
                           f" max err {np.abs(actual - expected).max():.3g}")


def rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("trans_a", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["N", "T"])
def test_matmul_all_small_sizes(trans_a, trans_b, dtype, rng):
    # Every (m, n) pair with two k each, chosen so every (m, k) and (n, k) pair occurs too.
    triples = [(m, n, SIZES[(i + j + s) % len(SIZES)])
               for i, m in enumerate(SIZES) for j, n in enumerate(SIZES) for s in (0, 3)]
    for m, n, k in triples:
        a = rand(rng, (k, m) if trans_a else (m, k), dtype)
        b = rand(rng, (n, k) if trans_b else (k, n), dtype)
        c = ops.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
        assert c.dtype == dtype and c.shape == (m, n)
        expect = reference.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
        assert_product_close(c, expect, op(a, trans_a), op(b, trans_b), dtype)


def block_edge_shapes():
    """Sizes one below/at/above each register and cache block of the active kernels."""
    bs = _core.gemm_block_sizes()
    shapes = set()
    for key in ("float32", "float64"):
        b = bs[key]
        for d in (-1, 0, 1):
            shapes.add((b["MR"] * 3 + d, 40, 50))
            shapes.add((40, b["NR"] * 3 + d, 50))
            shapes.add((30, 40, b["KC"] + d))
            shapes.add((b["MC"] + d, 20, 30))
            shapes.add((8, b["NC"] + d, 9))
    return sorted(shapes)


@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (False, True), (True, False), (True, True)])
def test_matmul_block_edges(trans_a, trans_b, dtype, rng):
    for m, n, k in block_edge_shapes():
        a = rand(rng, (k, m) if trans_a else (m, k), dtype)
        b = rand(rng, (n, k) if trans_b else (k, n), dtype)
        c = ops.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
        assert_product_close(c, reference.matmul(a, b, trans_a=trans_a, trans_b=trans_b),
                             op(a, trans_a), op(b, trans_b), dtype)


def views(x):
    """Non-contiguous views holding the same values as the 2-D array x."""
    m, n = x.shape
    big = np.zeros((2 * m + 1, 3 * n + 2), x.dtype)
    step = big[1::2, 2::3]
    step[...] = x
    neg = np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1]
    trans = np.ascontiguousarray(x.T).T
    both = np.zeros((3 * n, 2 * m), x.dtype)[::-3, ::2]
    both = both.T  # shape (m, n), negative and non-unit strides, transposed
    both[...] = x
    return {"step": step, "negative": neg, "fortran": trans, "neg_step_T": both}


@pytest.mark.parametrize("shape", [(5, 7, 3), (97, 64, 31), (130, 150, 300)])
def test_matmul_strided_views(shape, dtype, rng):
    m, n, k = shape
    a = rand(rng, (m, k), dtype)
    b = rand(rng, (k, n), dtype)
    expect = reference.matmul(a, b)
    for name_a, va in views(a).items():
        for name_b, vb in views(b).items():
            assert_product_close(ops.matmul(va, vb), expect, a, b, dtype)
    # transposed flags on views of the transposes
    for name_a, va in views(np.ascontiguousarray(a.T)).items():
        assert_product_close(ops.matmul(va, b, trans_a=True), expect, a, b, dtype)
    # strided output
    out_big = np.full((2 * m, 2 * n), np.nan, dtype)
    out = out_big[::2, ::-2]
    res = ops.matmul(a, b, out=out)
    assert res is out
    assert_product_close(out, expect, a, b, dtype)
    assert np.isnan(out_big[1::2]).all()  # nothing written outside the view


@pytest.mark.parametrize("shape", [(3, 4, 5), (64, 97, 255), (300, 200, 500)])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (2.5, 0.0), (1.0, 1.0), (-0.5, 0.75), (0.0, 2.0)])
def test_matmul_alpha_beta(shape, alpha, beta, dtype, rng):
    m, n, k = shape
    a = rand(rng, (k, m), dtype)
    b = rand(rng, (k, n), dtype)
    c0 = rand(rng, (m, n), dtype)
    out = c0.copy() if beta != 0 else np.full((m, n), np.nan, dtype)  # beta == 0: never read
    res = ops.matmul(a, b, trans_a=True, out=out, alpha=alpha, beta=beta)
    assert res is out
    expect = reference.matmul(a, b, trans_a=True, out=c0.copy(), alpha=alpha, beta=beta)
    assert_product_close(out, expect, abs(alpha) * a.T, b, dtype, extra=abs(beta) * c0)


def test_matmul_zero_sizes(dtype, rng):
    for m, n, k in [(0, 3, 4), (3, 0, 4), (0, 0, 0), (3, 4, 0), (200, 300, 0)]:
        a = rand(rng, (m, k), dtype)
        b = rand(rng, (k, n), dtype)
        c = ops.matmul(a, b)
        assert c.shape == (m, n) and (c == 0).all()
        c0 = rand(rng, (m, n), dtype)
        out = c0.copy()
        ops.matmul(a, b, out=out, alpha=3.0, beta=0.5)
        np.testing.assert_array_equal(out, (c0 * dtype.type(0.5)).astype(dtype))


def test_matmul_dtype_promotion(rng):
    i = rng.integers(-5, 5, size=(4, 6))
    f = rng.standard_normal((6, 3))
    assert ops.matmul(i, i.T).dtype == np.float32
    np.testing.assert_allclose(ops.matmul(i, i.T), i @ i.T, rtol=1e-6)
    assert ops.matmul(i, f).dtype == np.float64
    assert ops.matmul(i.astype(np.float32), f.astype(np.float16)).dtype == np.float32
    assert ops.matmul(f.T.astype(np.float32), f).dtype == np.float64
    np.testing.assert_allclose(ops.matmul(i, f), reference.matmul(i, f), rtol=1e-12)


def test_residual_large_product(dtype, rng):
    """C·t against A·(B·t): a cheap independent check of a product too large to compare cheaply."""
    m, n, k = 700, 650, 900
    a = rand(rng, (m, k), dtype)
    b = rand(rng, (n, k), dtype)
    c = ops.matmul(a, b, trans_b=True)
    t = rng.standard_normal(n)
    lhs = c.astype(np.float64) @ t
    rhs = a.astype(np.float64) @ (b.T.astype(np.float64) @ t)
    scale = np.abs(a).astype(np.float64) @ (np.abs(b.T).astype(np.float64) @ np.abs(t))
    assert (np.abs(lhs - rhs) <= 4 * k * EPS[np.dtype(dtype)] * scale).all()


def test_threads_bitwise_identical(dtype, rng):
    m, n, k = 300, 200, 500
    a = rand(rng, (m, k), dtype)
    b = rand(rng, (n, k), dtype)
    bias = rand(rng, (n,), dtype)
    dy = rand(rng, (m, n), dtype)
    results = []
    for nt in (1, 2):
        with num_threads(nt):
            c = ops.matmul(a, b, trans_b=True)
            c2 = ops.matmul(a.T, b.T, trans_a=True)  # same product through strided packing
            y = ops.linear(a, b, bias, activation="tanh")
            gw = np.zeros((n, k), dtype)
            gb = np.zeros(n, dtype)
            gx = ops.linear_backward(dy, a, b, gw, gb, activation="tanh", saved=y)
            results.append((c, c2, y, gx, gw, gb))
    for r1, r2 in zip(*results):
        np.testing.assert_array_equal(r1, r2)


# ---------------------------------------------------------------- linear

def layer_data(rng, batch, n_in, n_out, dtype):
    x = rand(rng, (batch, n_in), dtype)
    w = (rng.standard_normal((n_out, n_in)) / np.sqrt(max(n_in, 1))).astype(dtype)
    b = rand(rng, (n_out,), dtype)
    return x, w, b


def act_tol(dtype):
    return dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("shape", [(1, 3, 2), (1, 300, 70), (3, 97, 200), (17, 31, 97), (64, 255, 33), (97, 64, 300)])
def test_linear_matches_reference(activation, shape, dtype, rng):
    batch, n_in, n_out = shape
    x, w, b = layer_data(rng, batch, n_in, n_out, dtype)
    for bias in (b, None):
        z = np.full((batch, n_out), np.nan, dtype)
        y = ops.linear(x, w, bias, activation=activation, negative_slope=0.2, preact_out=z)
        z_ref = np.empty_like(z)
        y_ref = reference.linear(x, w, bias, activation=activation, negative_slope=0.2, preact_out=z_ref)
        assert y.dtype == dtype and y.shape == (batch, n_out)
        assert_product_close(z, z_ref, x, w.T, dtype, extra=None if bias is None else np.abs(bias))
        np.testing.assert_allclose(y, y_ref, **act_tol(dtype))


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_linear_strided_inputs_and_outputs(activation, dtype, rng):
    x, w, b = layer_data(rng, 45, 70, 37, dtype)
    y_ref = reference.linear(x, w, b, activation=activation)
    xv = views(x)["neg_step_T"]
    wv = views(w)["step"]
    out = np.zeros((37, 90), dtype).T[::2]  # (45, 37), column-major with a step
    z = np.zeros((45, 74), dtype)[:, ::2]
    res = ops.linear(xv, wv, b, activation=activation, out=out, preact_out=z)
    assert res is out
    np.testing.assert_allclose(out, y_ref, **act_tol(dtype))
    np.testing.assert_allclose(z, reference.linear(x, w, b), **act_tol(dtype))


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("shape", [(2, 3, 4), (31, 17, 64), (97, 130, 70)])
def test_linear_backward_matches_reference(activation, shape, dtype, rng):
    batch, n_in, n_out = shape
    x, w, b = layer_data(rng, batch, n_in, n_out, dtype)
    z = reference.linear(x, w, b)
    y = reference.linear(x, w, b, activation=activation, negative_slope=0.1)
    saved = z if activation in FROM_Z else y
    dy = rand(rng, (batch, n_out), dtype)
    gw0 = rand(rng, (n_out, n_in), dtype)
    gb0 = rand(rng, (n_out,), dtype)
    gw, gb = gw0.copy(), gb0.copy()
    gx = ops.linear_backward(dy, x, w, gw, gb, activation=activation, saved=saved, negative_slope=0.1)
    gw_ref, gb_ref = gw0.copy(), gb0.copy()
    gx_ref = reference.linear_backward(dy, x, w, gw_ref, gb_ref, activation=activation, saved=saved,
                                       negative_slope=0.1)
    # dZ itself: the backward of a layer whose weight is the identity (its x is not read for dX).
    dz = reference.linear_backward(dy, np.zeros((batch, n_out), dtype), np.eye(n_out, dtype=dtype),
                                   activation=activation, saved=saved, negative_slope=0.1)
    assert gx.dtype == dtype and gx.shape == (batch, n_in)
    assert_product_close(gx, gx_ref, dz, w, dtype)
    assert_product_close(gw, gw_ref, dz.T, x, dtype, extra=gw0)
    tol = 4 * (batch + 2) * EPS[np.dtype(dtype)] * (np.abs(dz).sum(0) + np.abs(gb0))
    assert (np.abs(gb - gb_ref) <= tol + 1e-30).all()


def test_linear_backward_accumulates_and_skips(dtype, rng):
    x, w, b = layer_data(rng, 40, 50, 30, dtype)
    dy = rand(rng, (40, 30), dtype)
    gw = np.zeros((30, 50), dtype)
    gb = np.zeros(30, dtype)
    gx1 = ops.linear_backward(dy, x, w, gw, gb)
    gw1, gb1 = gw.copy(), gb.copy()
    gx2 = ops.linear_backward(dy, x, w, gw, gb)
    np.testing.assert_array_equal(gx1, gx2)
    np.testing.assert_allclose(gw, 2 * gw1, rtol=1e-6 if dtype == np.float32 else 1e-14)
    np.testing.assert_allclose(gb, 2 * gb1, rtol=1e-6 if dtype == np.float32 else 1e-14)
    assert ops.linear_backward(dy, x, w, gw, None, need_grad_input=False) is None
    np.testing.assert_allclose(gw, 3 * gw1, rtol=1e-5 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(gb, 2 * gb1, rtol=1e-6 if dtype == np.float32 else 1e-14)
    # Nothing to accumulate and no grad_input: still valid, returns None.
    assert ops.linear_backward(dy, x, w, need_grad_input=False) is None


@pytest.mark.parametrize("batch,n_in,n_out", [(3, 1024, 1024), (64, 300, 260), (61, 37, 9)])
def test_linear_backward_dx_and_dw_side_by_side(batch, n_in, n_out, dtype, rng):
    """dX and dW run side by side on halves of an even team when they are big enough for a fork
    (fnn_gemm_pair); a 3-row dX takes the direct loop instead and leaves dW the whole team; the
    last shape is below the fork threshold. Every thread count gives the same bits, dW still
    accumulates, and the values are the reference's."""
    x, w, _ = layer_data(rng, batch, n_in, n_out, dtype)
    dy = rand(rng, (batch, n_out), dtype)
    gw0 = rand(rng, (n_out, n_in), dtype)
    results = []
    for t in (1, 2, 3, 4):
        with num_threads(t):
            gw = gw0.copy()
            results.append((ops.linear_backward(dy, x, w, gw), gw))
    for gx, gw in results[1:]:
        np.testing.assert_array_equal(gx, results[0][0])
        np.testing.assert_array_equal(gw, results[0][1])
    assert_product_close(results[0][0], dy @ w, dy, w, dtype)
    assert_product_close(results[0][1], gw0 + dy.T @ x, dy.T, x, dtype, extra=gw0)


@pytest.mark.parametrize("activation", ACTS)
def test_linear_gradients_match_finite_differences(activation, rng):
    batch, n_in, n_out = 5, 4, 3
    x, w, b = layer_data(rng, batch, n_in, n_out, np.float64)
    r = rng.standard_normal((batch, n_out))  # loss = Σ r ⊙ linear(x)

    def loss(x_, w_, b_):
        return float((ops.linear(x_, w_, b_, activation=activation, negative_slope=0.1) * r).sum())

    z = np.empty((batch, n_out))
    y = ops.linear(x, w, b, activation=activation, negative_slope=0.1, preact_out=z)
    gw = np.zeros_like(w)
    gb = np.zeros_like(b)
    gx = ops.linear_backward(r, x, w, gw, gb, activation=activation,
                             saved=z if activation in FROM_Z else y, negative_slope=0.1)
    h = 1e-6
    for arr, grad in ((x, gx), (w, gw), (b, gb)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            keep = arr[idx]
            arr[idx] = keep + h
            up = loss(x, w, b)
            arr[idx] = keep - h
            down = loss(x, w, b)
            arr[idx] = keep
            num[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)


def test_linear_zero_sizes(dtype, rng):
    for batch, n_in, n_out in [(0, 3, 4), (3, 0, 4), (3, 4, 0)]:
        x, w, b = layer_data(rng, batch, n_in, n_out, dtype)
        y = ops.linear(x, w, b, activation="sigmoid")
        np.testing.assert_allclose(y, reference.linear(x, w, b, activation="sigmoid"), **act_tol(dtype))
        gw = np.zeros_like(w)
        gb = np.zeros_like(b)
        dy = rand(rng, (batch, n_out), dtype)
        gx = ops.linear_backward(dy, x, w, gw, gb, activation="relu", saved=y)
        assert gx.shape == (batch, n_in) and (gx == 0).all()
        np.testing.assert_allclose(gb, reference.relu_backward(dy, y).sum(0), **act_tol(dtype))


def test_concurrent_python_threads(rng):
    """Two Python threads multiplying at once (GIL released) each get their own workspace."""
    a = rand(rng, (200, 300), np.float32)
    b = rand(rng, (300, 150), np.float32)
    expect = ops.matmul(a, b)
    errors = []

    def work():
        try:
            for _ in range(30):
                np.testing.assert_array_equal(ops.matmul(a, b), expect)
        except Exception as e:  # any failure in a worker (not only a mismatch) fails the test
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def _rss_pages():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1])


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_no_memory_growth(rng):
    x, w, b = layer_data(rng, 64, 96, 80, np.float32)
    dy = rand(rng, (64, 80), np.float32)
    gw = np.zeros_like(w)
    gb = np.zeros_like(b)

    def step():
        y = ops.linear(x, w, b, activation="relu")
        ops.linear_backward(dy, x, w, gw, gb, activation="relu", saved=y)
        ops.matmul(x, w, trans_b=True)

    for _ in range(50):
        step()
    before = _rss_pages()
    for _ in range(2000):
        step()
    grown = (_rss_pages() - before) * os.sysconf("SC_PAGE_SIZE")
    assert grown < 8 * 2**20, f"RSS grew by {grown} bytes over 2000 calls"


# ---------------------------------------------------------------- errors

def test_matmul_errors(rng):
    a = rand(rng, (3, 4), np.float32)
    b = rand(rng, (4, 5), np.float32)
    with pytest.raises(ValueError, match="^a: expected a 2-D array"):
        ops.matmul(a[0], b)
    with pytest.raises(ValueError, match="^b: expected a 2-D array"):
        ops.matmul(a, b[None])
    with pytest.raises(ValueError, match="^b: inner dimensions do not match"):
        ops.matmul(a, b, trans_b=True)
    with pytest.raises(TypeError, match="^a: expected a numeric array, got dtype bool"):
        ops.matmul(a > 0, b)
    with pytest.raises(TypeError, match="^b: expected a real numeric array"):
        ops.matmul(a, b.astype(np.complex64))
    with pytest.raises(TypeError, match="^a: expected a real numeric array"):
        ops.matmul(np.array([[object()]]), b[:1])
    with pytest.raises(ValueError, match="^out: beta"):
        ops.matmul(a, b, beta=1.0)
    with pytest.raises(ValueError, match=r"^out: expected shape \(3, 5\)"):
        ops.matmul(a, b, out=np.empty((5, 3), np.float32))
    with pytest.raises(TypeError, match="^out: expected dtype float32"):
        ops.matmul(a, b, out=np.empty((3, 5), np.float64))
    ro = np.empty((3, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="^out: array is read-only"):
        ops.matmul(a, b, out=ro)
    sq = rand(rng, (4, 4), np.float32)
    with pytest.raises(ValueError, match="^out: must not overlap a"):
        ops.matmul(sq, sq.copy(), out=sq)
    with pytest.raises(ValueError, match="^out: must not overlap b"):
        ops.matmul(sq.copy(), sq.T, out=sq)
    with pytest.raises(TypeError, match="^alpha: expected a real number"):
        ops.matmul(a, b, alpha="2")
    with pytest.raises(ValueError, match="^beta: expected a finite number"):
        ops.matmul(a, b, out=np.zeros((3, 5), np.float32), beta=np.nan)


def test_linear_errors(rng):
    x, w, b = layer_data(rng, 32, 784, 256, np.float32)
    msg = r"^x: expected input with 784 features \(weight is \(256, 784\)\), got array of shape \(32, 100\)"
    with pytest.raises(ValueError, match=msg):
        ops.linear(x[:, :100], w, b)
    with pytest.raises(ValueError, match=r"^x: expected input with 784 features .* got array of shape \(784,\)"):
        ops.linear(x[0], w, b)
    with pytest.raises(ValueError, match=r"^bias: expected shape \(256,\)"):
        ops.linear(x, w, b[:10])
    with pytest.raises(ValueError, match="^activation: expected one of"):
        ops.linear(x, w, b, activation="swish")
    with pytest.raises(ValueError, match="^out: must not overlap x"):
        ops.linear(x[:, :256], w[:, :256], out=x[:, :256])
    with pytest.raises(ValueError, match=r"^preact_out: expected shape \(32, 256\)"):
        ops.linear(x, w, b, preact_out=np.empty((32, 255), np.float32))
    out = np.empty((32, 256), np.float32)
    with pytest.raises(ValueError, match="^preact_out: must not overlap out"):
        ops.linear(x, w, b, out=out, preact_out=out)


def test_linear_backward_errors(rng):
    x, w, b = layer_data(rng, 8, 6, 5, np.float32)
    dy = rand(rng, (8, 5), np.float32)
    with pytest.raises(ValueError, match=r"^grad_weight: expected shape \(5, 6\)"):
        ops.linear_backward(dy, x, w, np.zeros((6, 5), np.float32))
    with pytest.raises(TypeError, match="^grad_weight: expected dtype float32"):
        ops.linear_backward(dy, x, w, np.zeros((5, 6), np.float64))
    with pytest.raises(ValueError, match="^grad_weight: expected a C-contiguous"):
        ops.linear_backward(dy, x, w, np.zeros((6, 5), np.float32).T)
    ro = np.zeros((5, 6), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="^grad_weight: array is read-only"):
        ops.linear_backward(dy, x, w, ro)
    with pytest.raises(ValueError, match=r"^grad_bias: expected shape \(5,\)"):
        ops.linear_backward(dy, x, w, None, np.zeros(6, np.float32))
    with pytest.raises(ValueError, match=r"^grad_out: expected shape \(8, 5\)"):
        ops.linear_backward(dy[:, :4], x, w)
    with pytest.raises(ValueError, match="^saved: activation='relu' needs the forward output"):
        ops.linear_backward(dy, x, w, activation="relu")
    with pytest.raises(ValueError, match="^negative_slope: linear_backward"):
        ops.linear_backward(dy, x, w, activation="leaky_relu", saved=dy, negative_slope=-0.5)
    with pytest.raises(ValueError, match="^grad_weight: must not overlap weight"):
        ops.linear_backward(dy, x, w, w)


def test_fast_and_checked_paths_agree(rng):
    """Plain float arrays take a short path; anything unusual goes through full validation."""
    a = rand(rng, (5, 6), np.float32)
    b = rand(rng, (6, 4), np.float32)
    expect = reference.matmul(a, b)
    swapped = a.astype(a.dtype.newbyteorder())  # non-native byte order: converted, not misread
    assert_product_close(ops.matmul(swapped, b), expect, a, b, np.float32)
    assert_product_close(ops.matmul(a, b, alpha=1), expect, a, b, np.float32)  # int alpha
    with pytest.raises(ValueError, match="^alpha: expected a finite number"):
        ops.matmul(a, b, alpha=float("inf"))
    x, w, bias = layer_data(rng, 3, 6, 4, np.float32)
    with pytest.raises(ValueError, match=r"^bias: expected shape \(4,\)"):
        ops.linear(x, w, bias.reshape(2, 2))
    with pytest.raises(ValueError, match="^activation: expected one of"):
        ops.linear(x, w, bias, activation=["relu"])
    np.testing.assert_allclose(ops.linear(x, w, bias, activation="leaky_relu", negative_slope=0),
                               reference.linear(x, w, bias, activation="leaky_relu", negative_slope=0),
                               **act_tol(np.float32))
