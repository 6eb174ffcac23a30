"""fastnn.ops losses match fastnn.reference (value and fused gradient) in float32/float64 on odd,
2-D, non-contiguous and parallel-sized inputs, their gradients match finite differences, hand-worked
values and PyTorch's clamps hold, the loss is bitwise identical across thread counts, and bad input
raises a clear error naming the argument."""
import math

import numpy as np
import pytest

from fastnn import ops, reference
from conftest import PAR_N, assert_close, num_threads, strided

ELEMENTWISE = ["mse_loss", "l1_loss", "bce_loss", "bce_with_logits_loss"]
BACKENDS = {"ops": ops, "reference": reference}
# 1, tiny, a prime, and PAR_N (the kernels' parallel path).
SIZES = [1, 2, 3, 17, 255, 1021, PAR_N]
REDUCTIONS = ["mean", "sum"]


def _pair(name, rng, shape, dtype):
    """(input, target) in each loss's domain; |x − y| kept away from 0 for L1's kink."""
    if name == "bce_loss":
        x = rng.uniform(0.02, 0.98, shape)
        y = rng.uniform(0, 1, shape)
    elif name == "bce_with_logits_loss":
        x = rng.standard_normal(shape) * 4
        y = rng.uniform(0, 1, shape)
    else:
        x = rng.standard_normal(shape) * 3
        y = x + rng.choice([-1, 1], shape) * rng.uniform(0.01, 2, shape)
    return x.astype(dtype), y.astype(dtype)


def _loss_tol(dtype, name=""):
    # Both sides sum float64 terms of the same float32/float64 inputs: only the order differs.
    # Except float32 cross-entropy, BCE and BCE-with-logits, whose exp/log/log1p run in float
    # (a few float ulps each; the reference's in double).
    if name in ("cross_entropy", "bce_loss", "bce_with_logits_loss") and dtype == np.float32:
        return dict(rtol=1e-6, atol=1e-7)
    return dict(rtol=1e-10, atol=0)


def _run(backend, name, *args, **kw):
    """(loss, grad) from one fused call."""
    x = np.asarray(args[0])
    dt = x.dtype if x.dtype in (np.float32, np.float64) else np.float32
    g = np.full(x.shape, np.nan, dt)
    loss = getattr(BACKENDS[backend], name)(*args, grad=g, **kw)
    assert isinstance(loss, float)
    return loss, g


# ---------------------------------------------------------------- against the reference

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_matches_reference(name, n, reduction, dtype, rng):
    x, y = _pair(name, rng, n, dtype)
    loss, g = _run("ops", name, x, y, reduction=reduction)
    ref_loss, ref_g = _run("reference", name, x, y, reduction=reduction)
    np.testing.assert_allclose(loss, ref_loss, **_loss_tol(dtype, name))
    assert g.dtype == dtype
    assert_close(g, ref_g)
    # Without grad: the same loss, bitwise (the gradient is a by-product of the same pass).
    assert getattr(ops, name)(x, y, reduction=reduction) == loss


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_2d_and_non_contiguous(name, dtype, rng):
    x, y = _pair(name, rng, (7, 3), dtype)
    ref_loss, ref_g = _run("reference", name, x, y)
    loss, g = _run("ops", name, x, y)
    np.testing.assert_allclose(loss, ref_loss, **_loss_tol(dtype, name))
    assert g.shape == (7, 3)
    assert_close(g, ref_g)
    # Strided and transposed views give the same numbers as their contiguous copies.
    loss_s, g_s = _run("ops", name, strided(x), strided(y))
    assert loss_s == loss and g_s.tobytes() == g.tobytes()
    loss_t, g_t = _run("ops", name, x.T, y.T)
    np.testing.assert_allclose(loss_t, ref_loss, **_loss_tol(dtype, name))
    assert_close(g_t, ref_g.T)


CE_SHAPES = [(1, 1), (1, 5), (2, 3), (3, 17), (17, 2), (255, 7), (7, 5003), (4099, 10)]


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", CE_SHAPES)
def test_cross_entropy_matches_reference(shape, reduction, eps, dtype, rng):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    t = rng.integers(0, shape[1], shape[0])
    loss, g = _run("ops", "cross_entropy", x, t, reduction=reduction, label_smoothing=eps)
    ref_loss, ref_g = _run("reference", "cross_entropy", x, t, reduction=reduction, label_smoothing=eps)
    np.testing.assert_allclose(loss, ref_loss, **_loss_tol(dtype, "cross_entropy"))
    assert g.dtype == dtype
    # p − 1 at the label cancels: allow a few ulps of 1 (times the 1/N of 'mean') absolute error.
    scale = 1 / shape[0] if reduction == "mean" else 1
    assert_close(g, ref_g, atol=(1e-7 if dtype == np.float32 else 8e-16) * scale)
    assert ops.cross_entropy(x, t, reduction=reduction, label_smoothing=eps) == loss


def test_cross_entropy_non_contiguous_and_label_dtypes(dtype, rng):
    x = (rng.standard_normal((9, 4)) * 3).astype(dtype)
    t = rng.integers(0, 4, 9)
    loss, g = _run("ops", "cross_entropy", x, t, label_smoothing=0.1)
    for xs, ts in [(strided(x), t), (x, strided(t)), (np.asfortranarray(x), t)]:
        loss_s, g_s = _run("ops", "cross_entropy", xs, ts, label_smoothing=0.1)
        assert loss_s == loss and g_s.tobytes() == g.tobytes()
    for ldt in (np.int8, np.uint8, np.int32, np.uint64, np.float64):
        assert ops.cross_entropy(x, t.astype(ldt), label_smoothing=0.1) == loss
        np.testing.assert_allclose(reference.cross_entropy(x, t.astype(ldt), label_smoothing=0.1), loss,
                                   **_loss_tol(dtype, "cross_entropy"))
    assert ops.cross_entropy(x, t.tolist(), label_smoothing=0.1) == loss


# ---------------------------------------------------------------- finite differences

def _fd(f, x, h=1e-6):
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        num[i] = (f(x + e) - f(x - e)) / (2 * h)
    return num


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_gradient_matches_finite_differences(backend, name, reduction, rng):
    x, y = _pair(name, rng, (4, 3), np.float64)
    if name == "bce_loss":
        x = np.clip(x, 0.05, 0.95)
    _, g = _run(backend, name, x, y, reduction=reduction)
    f = getattr(BACKENDS[backend], name)
    np.testing.assert_allclose(g, _fd(lambda v: f(v, y, reduction=reduction), x), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_gradient_matches_finite_differences(backend, reduction, eps, rng):
    x = rng.standard_normal((5, 4)) * 2
    t = np.array([0, 3, 1, 3, 2])
    _, g = _run(backend, "cross_entropy", x, t, reduction=reduction, label_smoothing=eps)
    f = BACKENDS[backend].cross_entropy
    np.testing.assert_allclose(g, _fd(lambda v: f(v, t, reduction=reduction, label_smoothing=eps), x),
                               rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- hand-worked values

@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_values(backend, dtype):
    m = BACKENDS[backend]
    g = np.empty(2, dtype)
    # MSE of [1, 2] vs [0, 0]: (1 + 4)/2; gradient 2(x − y)/2 = x.
    assert m.mse_loss(np.array([1, 2], dtype), np.zeros(2, dtype), grad=g) == pytest.approx(2.5, rel=1e-15)
    np.testing.assert_array_equal(g, [1, 2])
    assert m.mse_loss(np.array([1, 2], dtype), np.zeros(2, dtype), reduction="sum") == pytest.approx(5.0, rel=1e-15)
    # L1 of [1, −2, 3] vs [0, 0, 3]: (1 + 2 + 0)/3; gradient sign/3 with 0 where equal.
    g3 = np.empty(3, dtype)
    assert m.l1_loss(np.array([1, -2, 3], dtype), np.array([0, 0, 3], dtype), grad=g3) == pytest.approx(1.0, rel=1e-15)
    np.testing.assert_allclose(g3, [1 / 3, -1 / 3, 0], rtol=1e-7)
    # BCE of [0.25, 0.75] vs [0, 1]: −log(0.75) each; gradient (x − y)/(x(1 − x))/2 = ±(1/0.75)/2.
    # (float32 takes its logs in float: within a few float roundings.)
    assert m.bce_loss(np.array([0.25, 0.75], dtype), np.array([0, 1], dtype), grad=g) == pytest.approx(
        -math.log(0.75), rel=1e-12 if dtype == np.float64 else 3e-7)
    np.testing.assert_allclose(g, [2 / 3, -2 / 3], rtol=1e-6)
    # BCE with logits at x = 0 is log 2 whatever y is; gradient (1/2 − y)/N.
    # (float32 takes log1p in float: within one float rounding of log 2.)
    assert m.bce_with_logits_loss(np.zeros(2, dtype), np.array([0, 1], dtype), grad=g) == pytest.approx(
        math.log(2), rel=1e-12 if dtype == np.float64 else 1e-7)
    np.testing.assert_allclose(g, [0.25, -0.25], rtol=1e-7)
    # Cross-entropy of uniform logits is log C for any labels and any smoothing.
    gce = np.empty((4, 5), dtype)
    for eps in (0.0, 0.1):
        assert m.cross_entropy(np.zeros((4, 5), dtype), [0, 4, 2, 2], label_smoothing=eps, grad=gce) == pytest.approx(math.log(5), rel=1e-12)
    expect = np.full((4, 5), 0.2) - (0.9 * np.eye(5)[[0, 4, 2, 2]] + 0.1 / 5)
    np.testing.assert_allclose(gce, expect / 4, rtol=1e-6, atol=1e-8)
    # Logits [0, log 3], label 1: p = (1/4, 3/4); smoothing mixes in mean(−log p).
    x = np.array([[0.0, math.log(3)]], dtype)
    assert m.cross_entropy(x, [1]) == pytest.approx(-math.log(0.75), rel=1e-6)
    smoothed = 0.9 * -math.log(0.75) + 0.1 * (-math.log(0.25) - math.log(0.75)) / 2
    assert m.cross_entropy(x, [1], label_smoothing=0.1) == pytest.approx(smoothed, rel=1e-6)
    assert m.cross_entropy(x, np.array([1, 0]).reshape(2)[:1], reduction="sum") == pytest.approx(-math.log(0.75), rel=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bce_clamps_logs_at_minus_100(backend, dtype):
    m = BACKENDS[backend]
    g = np.empty(2, dtype)
    # Confidently wrong at exactly 0 and 1: each log clamps to −100, so 100 per element.
    assert m.bce_loss(np.array([0, 1], dtype), np.array([1, 0], dtype), grad=g) == 100.0
    assert m.bce_loss(np.array([0, 1], dtype), np.array([1, 0], dtype), reduction="sum") == 200.0
    # PyTorch's gradient: (x − y)/max(x(1 − x), 1e-12)/N — huge but finite.
    np.testing.assert_allclose(g, [-0.5e12, 0.5e12], rtol=1e-6)
    # Confidently right at 0 and 1: y·log x is 0·(−100), not NaN.
    assert m.bce_loss(np.array([0, 1], dtype), np.array([0, 1], dtype)) == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_extreme_logits_stay_finite(backend, dtype):
    m = BACKENDS[backend]
    x = np.array([[1000, -1000, 0], [-1000, 1000, 1000]], dtype)
    g = np.empty_like(x)
    assert m.cross_entropy(x, [0, 1], grad=g) == pytest.approx(math.log(2) / 2, rel=1e-6)
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, [[0, 0, 0], [0, -0.25, 0.25]], atol=1e-7)
    assert m.cross_entropy(x, [1, 0], reduction="sum") == pytest.approx(2000 + 2000 + math.log(2), rel=1e-6)
    assert np.isfinite(m.cross_entropy(x, [2, 0], label_smoothing=0.1))
    gl = np.empty(4, dtype)
    xl = np.array([1000, -1000, 1000, -1000], dtype)
    assert m.bce_with_logits_loss(xl, np.array([1, 0, 0, 1], dtype), reduction="sum", grad=gl) == pytest.approx(2000, rel=1e-12)
    np.testing.assert_array_equal(gl, [0, 0, 1, -1])


def test_float32_softmax_exp_over_its_whole_range():
    # float32 cross-entropy uses fastnn's own vectorised exp: check it on logits spanning
    # exp's useful range (down to underflow) against the float64 reference.
    x = np.linspace(-90, 0, 9001, dtype=np.float32)[::-1].reshape(1, -1).copy()
    _, g = _run("ops", "cross_entropy", x, [5], reduction="sum")
    _, ref = _run("reference", "cross_entropy", x, [5], reduction="sum")
    np.testing.assert_allclose(g, ref, rtol=5e-7, atol=1e-37)


def test_float32_bce_over_the_whole_unit_interval():
    # float32 BCE uses fastnn's own vectorised log: check single elements at the edges (0,
    # subnormals either side of the −100 clamp, tiny, near 1, 1) and a dense sweep of [0, 1].
    tiny = np.array([26, 27, 1000], np.uint32).view(np.float32)  # log < −100, > −100, subnormal
    special = np.concatenate([[0, 1e-45], tiny, [1e-38, 1e-12, 1.1e-12, 1e-8, 1e-4, 0.25, 0.5,
                                                 1 - 2.0**-24, 1]]).astype(np.float32)
    for xi in special:
        for yi in (0.0, 1.0, 0.3):
            xa, ya = np.array([xi], np.float32), np.array([yi], np.float32)
            loss, g = _run("ops", "bce_loss", xa, ya)
            ref_loss, ref_g = _run("reference", "bce_loss", xa, ya)
            np.testing.assert_allclose(loss, ref_loss, rtol=3e-7, atol=1e-7, err_msg=f"x={xi!r} y={yi}")
            np.testing.assert_allclose(g, ref_g, rtol=1e-7, err_msg=f"x={xi!r} y={yi}")
    x = np.linspace(0, 1, 20001, dtype=np.float32)
    y = np.resize(np.array([0, 1, 0.3], np.float32), x.size)
    loss, g = _run("ops", "bce_loss", x, y, reduction="sum")
    ref_loss, ref_g = _run("reference", "bce_loss", x, y, reduction="sum")
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-7)
    np.testing.assert_allclose(g, ref_g, rtol=1e-7)


def test_float32_bce_with_logits_over_a_wide_range_of_logits():
    # float32 BCE-with-logits uses fastnn's own vectorised exp and log1p: check loss terms and
    # gradients on logits from −100 to 100 (past exp's underflow) against the float64 reference.
    x = np.linspace(-100, 100, 20001, dtype=np.float32)
    y = np.resize(np.array([0, 1, 0.3], np.float32), x.size)
    loss, g = _run("ops", "bce_with_logits_loss", x, y, reduction="sum")
    ref_loss, ref_g = _run("reference", "bce_with_logits_loss", x, y, reduction="sum")
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-7)
    # sigmoid carries exp's float error (~1e-7 relative): absolute where sigmoid(x) − y cancels.
    np.testing.assert_allclose(g, ref_g, rtol=5e-7, atol=3e-8)
    # Where y = 1 and x >> 0 the tiny gradient −e/(1+e) keeps its relative accuracy.
    big = (x > 20) & (x < 80) & (y == 1)
    np.testing.assert_allclose(g[big], ref_g[big], rtol=5e-7)
    for xi, yi in [(-100, 1), (-3, 0.3), (0.5, 0), (100, 0)]:
        one = ops.bce_with_logits_loss(np.array([xi], np.float32), np.array([yi], np.float32))
        np.testing.assert_allclose(one, reference.bce_with_logits_loss(np.array([xi], np.float32),
                                                                       np.array([yi], np.float32)), rtol=3e-7)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ELEMENTWISE + ["cross_entropy"])
def test_nan_propagates_to_the_loss(backend, name, dtype):
    f = getattr(BACKENDS[backend], name)
    if name == "cross_entropy":
        for col in (0, 2):
            x = np.zeros((2, 3), dtype)
            x[1, col] = np.nan
            assert math.isnan(f(x, [0, 1]))
        return
    x = np.array([0.5, np.nan, 0.25], dtype)
    assert math.isnan(f(x, np.array([0, 1, 1], dtype)))
    # NaN is not a range error for BCE's input or target either: it reaches the loss.
    assert math.isnan(f(np.array([0.5, 0.1], dtype), np.array([np.nan, 1], dtype)))


# ---------------------------------------------------------------- threads

@pytest.mark.parametrize("name", ELEMENTWISE + ["cross_entropy"])
def test_bitwise_identical_across_thread_counts(name, dtype, rng):
    if name == "cross_entropy":
        args = ((rng.standard_normal((4099, 10)) * 3).astype(dtype), rng.integers(0, 10, 4099))
        kw = {"label_smoothing": 0.1}
    else:
        args, kw = _pair(name, rng, 100_003, dtype), {}
    results = []
    for n in (1, 2, 3, 4):  # 3 and 4: the block sums still add up in index order
        with num_threads(n):
            results.append(_run("ops", name, *args, **kw))
    (l1, g1) = results[0]
    for l2, g2 in results[1:]:
        assert l1 == l2 and g1.tobytes() == g2.tobytes()


# ---------------------------------------------------------------- conversions

def test_dtype_conversions():
    g = np.empty(2, np.float32)
    # Integer input is float32; a float64 target is converted to the input's dtype.
    assert ops.mse_loss(np.array([1, 2]), np.array([0.0, 0.0]), grad=g) == 2.5
    with pytest.raises(TypeError, match="grad: expected dtype float32"):
        ops.mse_loss(np.array([1, 2]), np.zeros(2), grad=np.empty(2))
    assert ops.mse_loss([1.0, 2.0], [0, 0]) == 2.5
    # float16 input computes in float32: same loss as the float32 copy.
    h = np.array([0.1, 0.7, 0.3], np.float16)
    assert ops.bce_loss(h, [0, 1, 1]) == ops.bce_loss(h.astype(np.float32), np.array([0, 1, 1], np.float32))
    # A float32 input with a float64 target: the target is rounded to float32 first.
    y64 = np.array([0.1, 0.2, 0.3])
    x32 = np.ones(3, np.float32)
    assert ops.mse_loss(x32, y64) == ops.mse_loss(x32, y64.astype(np.float32))
    assert reference.mse_loss(x32, y64) == pytest.approx(ops.mse_loss(x32, y64), rel=1e-12)


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_bad_inputs(backend, name):
    f = getattr(BACKENDS[backend], name)
    x = np.full((32, 1), 0.5, np.float32)
    with pytest.raises(ValueError, match=r"reduction: .*'none' is not supported"):
        f(x, x.copy(), reduction="none")
    with pytest.raises(ValueError, match="reduction: expected 'mean' or 'sum', got 'avg'"):
        f(x, x.copy(), reduction="avg")
    with pytest.raises(ValueError, match=r"target: expected shape \(32, 1\) to match input, got \(32,\)"):
        f(x, np.zeros(32, np.float32))
    with pytest.raises(ValueError, match="input: empty batch"):
        f(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32))
    with pytest.raises(TypeError, match="input: expected a numeric array, got dtype bool"):
        f(np.array([True]), np.array([1.0]))
    with pytest.raises(TypeError, match="target: expected a real numeric array"):
        f(np.array([0.5]), np.array(["a"]))
    with pytest.raises(ValueError, match=r"grad: expected shape \(32, 1\)"):
        f(x, x.copy(), grad=np.empty(32, np.float32))
    with pytest.raises(TypeError, match="grad: expected dtype float32"):
        f(x, x.copy(), grad=np.empty((32, 1), np.float64))
    ro = np.empty((32, 1), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="grad: array is read-only"):
        f(x, x.copy(), grad=ro)
    with pytest.raises(ValueError, match="grad: expected a C-contiguous array"):
        f(x, x.copy(), grad=np.empty((32, 2), np.float32)[:, :1])
    with pytest.raises(ValueError, match="grad: must not overlap input"):
        xc = x.copy()
        f(xc, x.copy(), grad=xc)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bce_range_errors(backend, dtype):
    m = BACKENDS[backend]
    ok = np.array([0.5, 0.5, 0.5], dtype)
    for bad in (1.5, -0.25):
        with pytest.raises(ValueError, match=rf"input: expected probabilities in \[0, 1\], got {bad} at index 2"):
            m.bce_loss(np.array([0.5, 1.0, bad], dtype), ok, grad=np.empty(3, dtype))
        with pytest.raises(ValueError, match=rf"target: expected values in \[0, 1\], got {bad} at index 1"):
            m.bce_loss(ok, np.array([0.0, bad, 1.0], dtype))
        with pytest.raises(ValueError, match=rf"target: expected values in \[0, 1\], got {bad} at index \(1, 0\)"):
            m.bce_with_logits_loss(np.full((2, 2), 3.0, dtype), np.array([[0, 1], [bad, 1]], dtype))
    # The first bad element in C order is reported, whichever array it is in.
    with pytest.raises(ValueError, match="target: expected values in \\[0, 1\\], got 3.0 at index 0"):
        m.bce_loss(np.array([0.5, 2.0], dtype), np.array([3.0, 0.5], dtype))
    with pytest.raises(ValueError, match="input: expected probabilities in \\[0, 1\\], got 2.0 at index 0"):
        m.bce_loss(np.array([2.0, 0.5], dtype), np.array([3.0, 0.5], dtype))
    # Logits may be anything; only their targets are range-checked.
    assert np.isfinite(m.bce_with_logits_loss(np.array([-7.0, 50.0], dtype), np.array([0.0, 1.0], dtype)))


def test_bce_range_error_found_in_parallel_blocks(dtype):
    # The first bad element is reported, even when it lies in a later block than another bad one would.
    x = np.full(100_003, 0.5, dtype)
    x[90_000] = 2.0
    x[99_999] = -1.0
    for n in (1, 2):
        with num_threads(n), pytest.raises(ValueError, match="got 2.0 at index 90000"):
            ops.bce_loss(x, np.zeros_like(x), grad=np.empty_like(x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_entropy_bad_inputs(backend):
    ce = BACKENDS[backend].cross_entropy
    x = np.zeros((3, 5), np.float32)
    with pytest.raises(ValueError, match=r"input: expected logits of shape \(N, C\), got shape \(5,\)"):
        ce(np.zeros(5, np.float32), [1])
    with pytest.raises(ValueError, match=r"input: expected logits of shape \(N, C\)"):
        ce(np.zeros((2, 3, 4), np.float32), [1, 2])
    with pytest.raises(ValueError, match="input: empty batch"):
        ce(np.zeros((0, 5), np.float32), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="input: expected at least one class"):
        ce(np.zeros((2, 0), np.float32), [0, 0])
    for label in (5, -1, 10**12, np.iinfo(np.int64).min):
        with pytest.raises(IndexError, match=rf"target: label {label} at index 1 is out of range for 5 classes"):
            ce(x, np.array([0, label, 2], np.int64), grad=np.empty_like(x))
    with pytest.raises(IndexError, match="target: label 18446744073709551615 at index 2 is out of range"):
        ce(x, np.array([0, 1, 2**64 - 1], np.uint64))
    with pytest.raises(IndexError, match="target: label 7.0 at index 0 is out of range for 5 classes"):
        ce(x, np.array([7.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="target: expected integer class labels, got 1.5 at index 1"):
        ce(x, np.array([0.0, 1.5, 2.0]))
    with pytest.raises(TypeError, match="target: expected integer class labels, got dtype bool"):
        ce(x, np.array([True, False, True]))
    with pytest.raises(ValueError, match=r"target: expected shape \(3,\) to match input's batch, got \(3, 1\)"):
        ce(x, np.zeros((3, 1), np.int64))
    with pytest.raises(ValueError, match=r"target: expected shape \(3,\)"):
        ce(x, [0, 1])
    for eps in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="label_smoothing: expected"):
            ce(x, [0, 1, 2], label_smoothing=eps)
    with pytest.raises(ValueError, match=r"reduction: .*'none' is not supported"):
        ce(x, [0, 1, 2], reduction="none")
    with pytest.raises(ValueError, match=r"grad: expected shape \(3, 5\)"):
        ce(x, [0, 1, 2], grad=np.empty(15, np.float32))
    with pytest.raises(ValueError, match="grad: must not overlap input"):
        xc = x.copy()
        ce(xc, [0, 1, 2], grad=xc)
    # label_smoothing = 1 is allowed: the loss is then mean_c(−log p_c), blind to the labels.
    assert ce(x, [0, 1, 2], label_smoothing=1.0) == pytest.approx(math.log(5))


def test_bad_label_in_parallel_rows_found_before_use():
    x = np.zeros((4099, 10), np.float32)
    t = np.zeros(4099, np.int64)
    t[3000] = 10**15
    t[4000] = -(10**15)
    for n in (1, 2):
        with num_threads(n), pytest.raises(IndexError, match="label 1000000000000000 at index 3000"):
            ops.cross_entropy(x, t, grad=np.empty_like(x))
