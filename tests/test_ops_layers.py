"""fastnn.ops dropout, batch_norm and layer_norm match fastnn.reference in float32/float64 on
odd and strided shapes, agree bitwise across thread counts, have finite-difference-correct
gradients, update BatchNorm running statistics as PyTorch does, and reject bad input."""
import numpy as np
import pytest

from fastnn import ops, reference
from conftest import PAR_N, assert_close, num_threads, strided

SHAPES = [(1, 3), (3, 17), (17, 1), (255, 7), (4099, 13)]  # the last is past the parallel threshold
# A shape with several column blocks and rows·cols past the threshold: threads really split it.
PAR_SHAPE = (2053, 67)
BWD_TOL = {np.dtype(np.float32): dict(rtol=1e-4, atol=1e-5), np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}


def _data(rng, shape, dtype, loc=0.0, scale=1.0):
    return (rng.standard_normal(shape) * scale + loc).astype(dtype)


# ---------------------------------------------------------------- dropout

@pytest.mark.parametrize("shape", SHAPES + [(PAR_N,)])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_dropout_matches_reference_bitwise(shape, p, dtype, rng):
    x = _data(rng, shape, dtype)
    dy = _data(rng, shape, dtype)
    seed = 987654321
    mask, rmask = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
    y = ops.dropout(x, p, seed, mask=mask)
    expect = reference.dropout(x, p, seed, mask=rmask)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_array_equal(mask, rmask)
    assert y.tobytes() == expect.tobytes()
    dx = ops.dropout_backward(dy, mask, p)
    assert dx.tobytes() == reference.dropout_backward(dy, mask, p).tobytes()


def test_dropout_kept_units_scaled_and_dropped_units_zero(rng):
    x = _data(rng, (300, 11), np.float32)
    mask = np.empty(x.shape, np.uint8)
    y = ops.dropout(x, 0.25, 7, mask=mask)
    assert set(np.unique(mask)) <= {0, 1}
    kept = mask == 1
    np.testing.assert_array_equal(y[kept], x[kept] * np.float32(1 / 0.75))
    np.testing.assert_array_equal(y[~kept], 0)
    assert 0 < kept.sum() < kept.size


def test_dropout_p0_is_identity_and_p1_is_zeros(dtype, rng):
    x = _data(rng, (37, 5), dtype)
    mask = np.empty(x.shape, np.uint8)
    np.testing.assert_array_equal(ops.dropout(x, 0.0, 3, mask=mask), x)
    assert mask.all()
    y = ops.dropout(x, 1.0, 3, mask=mask)
    assert np.all(y == 0) and not mask.any()
    np.testing.assert_array_equal(ops.dropout_backward(x, mask, 1.0), np.zeros_like(x))
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8])
def test_dropout_keep_fraction_close_to_one_minus_p(p):
    n = 1_000_003
    mask = np.empty(n, np.uint8)
    y = ops.dropout(np.ones(n, np.float64), p, 2024, mask=mask)
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(mask.mean() - (1 - p)) < 5 * sigma
    # Inverted dropout keeps the expectation: mean(y) ≈ 1.
    assert abs(y.mean() - 1) < 5 * sigma / (1 - p)


def test_dropout_masks_look_independent(rng):
    n = 400_000
    m = np.empty(n, np.uint8)
    m2 = np.empty(n, np.uint8)
    ops.dropout(np.ones(n, np.float32), 0.5, 11, mask=m)
    ops.dropout(np.ones(n, np.float32), 0.5, 12, mask=m2)   # the neighbouring seed
    a, b = m.astype(float) - 0.5, m2.astype(float) - 0.5
    bound = 5 / np.sqrt(n) * 0.25
    assert abs(np.mean(a[1:] * a[:-1])) < bound          # neighbouring elements
    assert abs(np.mean(a * b)) < bound                    # neighbouring seeds
    assert (m != m2).mean() > 0.45


def test_dropout_same_seed_same_mask_other_seed_other_mask(rng):
    x = _data(rng, (64, 9), np.float32)
    m1, m2, m3 = (np.empty(x.shape, np.uint8) for _ in range(3))
    ops.dropout(x, 0.5, 42, mask=m1)
    ops.dropout(x, 0.5, 42, mask=m2)
    ops.dropout(x, 0.5, 43, mask=m3)
    np.testing.assert_array_equal(m1, m2)
    assert (m1 != m3).any()
    # The decision is a function of the flat index: the mask does not depend on the shape.
    flat = np.empty(x.size, np.uint8)
    ops.dropout(x.ravel(), 0.5, 42, mask=flat)
    np.testing.assert_array_equal(flat.reshape(x.shape), m1)


def test_dropout_seed_range_ends():
    x = np.ones(1000, np.float32)
    for seed in (0, 2**63 - 1, 2**64 - 1):
        m, rm = np.empty(1000, np.uint8), np.empty(1000, np.uint8)
        ops.dropout(x, 0.5, seed, mask=m)
        reference.dropout(x, 0.5, seed, mask=rm)
        np.testing.assert_array_equal(m, rm)


def test_dropout_bitwise_across_thread_counts(rng):
    x = _data(rng, (100_003,), np.float32)
    res = []
    for t in (1, 2, 3, 4):
        with num_threads(t):
            mask = np.empty(x.shape, np.uint8)
            y = ops.dropout(x, 0.4, 99, mask=mask)
            dx = ops.dropout_backward(x, mask, 0.4)
            res.append((y.tobytes(), mask.tobytes(), dx.tobytes()))
    assert all(r == res[0] for r in res[1:])  # 2, 3 and 4 threads: the 1-thread bits


def test_dropout_strided_and_in_place(dtype, rng):
    x = _data(rng, (17, 9), dtype)
    expect = reference.dropout(x, 0.3, 5)
    assert ops.dropout(strided(x), 0.3, 5).tobytes() == expect.tobytes()
    np.testing.assert_array_equal(ops.dropout(np.asfortranarray(x), 0.3, 5), expect)
    buf = x.copy()
    assert ops.dropout(buf, 0.3, 5, out=buf) is buf
    np.testing.assert_array_equal(buf, expect)
    # Backward with a strided gradient and a bool mask.
    mask = np.empty(x.shape, np.uint8)
    ops.dropout(x, 0.3, 5, mask=mask)
    np.testing.assert_array_equal(ops.dropout_backward(strided(x), mask.astype(bool), 0.3),
                                  reference.dropout_backward(x, mask, 0.3))


def test_dropout_gradient_finite_differences(rng):
    x = rng.standard_normal((3, 5))
    dy = rng.standard_normal((3, 5))
    mask = np.empty(x.shape, np.uint8)
    ops.dropout(x, 0.4, 1234, mask=mask)
    dx = ops.dropout_backward(dy, mask, 0.4)
    h = 1e-6
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        num[i] = np.sum((ops.dropout(x + e, 0.4, 1234) - ops.dropout(x - e, 0.4, 1234)) * dy) / (2 * h)
    np.testing.assert_allclose(dx, num, rtol=1e-7, atol=1e-9)


def test_dropout_nan_propagates_like_torch():
    x = np.full(64, np.nan, np.float32)
    assert np.isnan(ops.dropout(x, 0.5, 1)).all()
    assert np.isnan(reference.dropout(x, 0.5, 1)).all()


def test_dropout_bad_inputs():
    x = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"p: expected a value <= 1.0, got 1.5"):
        ops.dropout(x, 1.5, 0)
    with pytest.raises(ValueError, match=r"p: expected a value >= 0.0"):
        ops.dropout(x, -0.1, 0)
    with pytest.raises(TypeError, match="p: expected a real number"):
        ops.dropout(x, "0.5", 0)
    with pytest.raises(TypeError, match="seed: expected an integer, got float"):
        ops.dropout(x, 0.5, 1.0)
    with pytest.raises(ValueError, match=r"seed: expected an integer in \[0, 2\*\*64\)"):
        ops.dropout(x, 0.5, -1)
    with pytest.raises(TypeError, match="mask: expected a uint8 array, got dtype int32"):
        ops.dropout(x, 0.5, 0, mask=np.empty((4, 3), np.int32))
    with pytest.raises(ValueError, match=r"mask: expected shape \(4, 3\), got \(3, 4\)"):
        ops.dropout(x, 0.5, 0, mask=np.empty((3, 4), np.uint8))
    with pytest.raises(TypeError, match="mask: expected a numpy.ndarray"):
        ops.dropout(x, 0.5, 0, mask=[0] * 12)
    ro = np.empty((4, 3), np.uint8)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="mask: array is read-only"):
        ops.dropout(x, 0.5, 0, mask=ro)
    with pytest.raises(TypeError, match="mask: expected a uint8 array, got dtype float32"):
        ops.dropout_backward(x, x, 0.5)
    with pytest.raises(ValueError, match="mask: expected shape"):
        ops.dropout_backward(x, np.ones(12, np.uint8), 0.5)
    with pytest.raises(TypeError, match="x: expected a numeric array, got dtype bool"):
        ops.dropout(np.ones(3, bool), 0.5, 0)
    with pytest.raises(ValueError, match="out: expected shape"):
        ops.dropout(x, 0.5, 0, out=np.empty(12, np.float32))
    buf = np.zeros(13, np.float32)
    with pytest.raises(ValueError, match="out: must not overlap x"):
        ops.dropout(buf[:12], 0.5, 0, out=buf[1:])


def test_dropout_converts_integer_input():
    y = ops.dropout(np.arange(6), 0.0, 0)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, np.arange(6))


# ------------------------------------------------------------- batch norm

def _bn_both(x, weight, bias, rm, rv, training, **kw):
    """Run ops and reference from identical state; return both results."""
    res = []
    for B in (ops, reference):
        c = x.shape[1]
        st = dict(rm=None if rm is None else rm.copy(), rv=None if rv is None else rv.copy(),
                  sm=np.empty(c, x.dtype), si=np.empty(c, x.dtype))
        st["y"] = B.batch_norm(x, weight, bias, st["rm"], st["rv"], training, save_mean=st["sm"],
                               save_invstd=st["si"], **kw)
        res.append(st)
    return res


@pytest.mark.parametrize("shape", SHAPES + [PAR_SHAPE])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine,track", [(True, True), (False, True), (True, False)])
def test_batch_norm_matches_reference(shape, training, affine, track, dtype, rng):
    n, c = shape
    x = _data(rng, shape, dtype, loc=3.0, scale=2.0)
    rm = _data(rng, c, dtype) if track else None
    rv = (rng.uniform(0.5, 2.0, c)).astype(dtype) if track else None
    if n == 1 and (training or not track):  # batch statistics of one row: rejected by both
        for B in (ops, reference):
            with pytest.raises(ValueError, match="x: Expected more than 1 value per channel"):
                B.batch_norm(x, None, None, rm, rv, training)
        return
    dy = _data(rng, shape, dtype)
    w = _data(rng, c, dtype) if affine else None
    b = _data(rng, c, dtype) if affine else None
    got, exp = _bn_both(x, w, b, rm, rv, training, momentum=0.2, eps=1e-4)
    for key in ("y", "sm", "si") + (("rm", "rv") if track else ()):
        assert_close(got[key], exp[key], dtype=dtype, atol=1e-5 if dtype == np.float32 else 1e-12)
    gw0 = _data(rng, c, dtype)  # grads accumulate onto what is there
    gb0 = _data(rng, c, dtype)
    outs = []
    for B in (ops, reference):
        gw, gb = gw0.copy(), gb0.copy()
        dx = B.batch_norm_backward(dy, x, w, got["sm"], got["si"], gw, gb, training=training or not track)
        outs.append((dx, gw, gb))
    for a, e in zip(outs[0], outs[1]):
        assert_close(a, e, dtype=dtype, **BWD_TOL[np.dtype(dtype)])


def test_batch_norm_strided_and_transposed_inputs(dtype, rng):
    x = _data(rng, (33, 17), dtype, loc=-1.0)
    w, b = _data(rng, 17, dtype), _data(rng, 17, dtype)
    expect = reference.batch_norm(x, w, b, None, None, True)
    assert_close(ops.batch_norm(strided(x), strided(w), b, None, None, True), expect)
    xt = np.ascontiguousarray(x.T).T  # column-major view
    assert_close(ops.batch_norm(xt, w, b, None, None, True), expect)
    sm, si = np.empty(17, dtype), np.empty(17, dtype)
    ops.batch_norm(x, w, b, None, None, True, save_mean=sm, save_invstd=si)
    dy = _data(rng, (33, 17), dtype)
    assert_close(ops.batch_norm_backward(strided(dy), xt, w, sm, si),
                 reference.batch_norm_backward(dy, x, w, sm, si), **BWD_TOL[np.dtype(dtype)])


def test_batch_norm_normalises_batch_and_uses_running_stats_in_eval(rng):
    x = _data(rng, (50, 6), np.float64, loc=4.0, scale=3.0)
    y = ops.batch_norm(x, None, None, None, None, True, eps=0.0)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), 1, rtol=1e-12)
    rm, rv = rng.standard_normal(6), rng.uniform(1, 2, 6)
    w, b = rng.standard_normal(6), rng.standard_normal(6)
    y = ops.batch_norm(x, w, b, rm.copy(), rv.copy(), False, eps=1e-3)
    np.testing.assert_allclose(y, (x - rm) / np.sqrt(rv + 1e-3) * w + b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0, 0.0])
def test_batch_norm_running_statistics_by_hand(momentum, dtype, rng):
    c = 5
    rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
    hand_m, hand_v = np.zeros(c), np.ones(c)
    for step in range(4):
        x = _data(rng, (8 + step, c), dtype, loc=step, scale=1 + step)
        ops.batch_norm(x, None, None, rm, rv, True, momentum=momentum)
        xd = x.astype(np.float64)
        hand_m = (1 - momentum) * hand_m + momentum * xd.mean(axis=0)
        hand_v = (1 - momentum) * hand_v + momentum * xd.var(axis=0, ddof=1)  # unbiased
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(rm, hand_m, **tol)
    np.testing.assert_allclose(rv, hand_v, **tol)


def test_batch_norm_eval_does_not_touch_running_stats(rng):
    rm, rv = np.arange(4, dtype=np.float32), np.full(4, 2.0, np.float32)
    ops.batch_norm(_data(rng, (9, 4), np.float32), None, None, rm, rv, False)
    np.testing.assert_array_equal(rm, np.arange(4))
    np.testing.assert_array_equal(rv, 2.0)


def _fd(f, arrays, i, h=1e-6):
    """Central difference of scalar f() w.r.t. each element of arrays[i] (perturbed in place)."""
    a = arrays[i]
    num = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + h
        fp = f()
        a[idx] = old - h
        fm = f()
        a[idx] = old
        num[idx] = (fp - fm) / (2 * h)
    return num


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_gradient_finite_differences(training, affine, rng):
    n, c = 6, 4
    x = rng.standard_normal((n, c)) * 2 + 1
    w = rng.standard_normal(c) if affine else None
    b = rng.standard_normal(c) if affine else None
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    dy = rng.standard_normal((n, c))
    arrays = [x, w, b]

    def loss():
        # Fresh copies: the training forward updates running stats, which must not drift.
        return np.sum(ops.batch_norm(x, w, b, rm.copy(), rv.copy(), training, eps=1e-3) * dy)

    sm, si = np.empty(c), np.empty(c)
    ops.batch_norm(x, w, b, rm.copy(), rv.copy(), training, eps=1e-3, save_mean=sm, save_invstd=si)
    gw, gb = np.zeros(c), np.zeros(c)
    dx = ops.batch_norm_backward(dy, x, w, sm, si, gw if affine else None, gb if affine else None,
                                 training=training)
    np.testing.assert_allclose(dx, _fd(loss, arrays, 0), rtol=1e-6, atol=1e-8)
    if affine:
        np.testing.assert_allclose(gw, _fd(loss, arrays, 1), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(gb, _fd(loss, arrays, 2), rtol=1e-6, atol=1e-8)


def test_batch_norm_backward_without_input_gradient(rng):
    x, dy = rng.standard_normal((7, 3)), rng.standard_normal((7, 3))
    sm, si = np.empty(3), np.empty(3)
    ops.batch_norm(x, None, None, None, None, True, save_mean=sm, save_invstd=si)
    gw, gb = np.zeros(3), np.zeros(3)
    assert ops.batch_norm_backward(dy, x, np.ones(3), sm, si, gw, gb, need_grad_input=False) is None
    np.testing.assert_allclose(gb, dy.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(gw, (dy * (x - sm) * si).sum(axis=0), rtol=1e-12)


def test_batch_norm_in_place(rng):
    x = _data(rng, (20, 5), np.float32)
    expect = reference.batch_norm(x, None, None, None, None, True)
    buf = x.copy()
    assert ops.batch_norm(buf, None, None, None, None, True, out=buf) is buf
    assert_close(buf, expect)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_bitwise_across_thread_counts(training, rng):
    n, c = PAR_SHAPE
    x = _data(rng, PAR_SHAPE, np.float32, loc=2.0)
    dy = _data(rng, PAR_SHAPE, np.float32)
    w, b = _data(rng, c, np.float32), _data(rng, c, np.float32)
    res = []
    for t in (1, 2, 3, 4):
        with num_threads(t):
            rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
            sm, si = np.empty(c, np.float32), np.empty(c, np.float32)
            y = ops.batch_norm(x, w, b, rm, rv, training, save_mean=sm, save_invstd=si)
            gw, gb = np.zeros(c, np.float32), np.zeros(c, np.float32)
            dx = ops.batch_norm_backward(dy, x, w, sm, si, gw, gb, training=training)
            res.append(b"".join(a.tobytes() for a in (y, rm, rv, sm, si, dx, gw, gb)))
    assert all(r == res[0] for r in res[1:])  # 2, 3 and 4 threads: the 1-thread bits


def test_batch_norm_bad_inputs():
    x = np.ones((4, 3), np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"x: Expected more than 1 value per channel when training, "
                                         r"got input of shape \(1, 3\)"):
        ops.batch_norm(np.ones((1, 3)), None, None, None, None, True)
    with pytest.raises(ValueError, match="x: Expected more than 1 value per channel"):
        reference.batch_norm(np.ones((1, 3)), None, None, None, None, True)
    with pytest.raises(ValueError, match="x: Expected more than 1 value"):  # batch stats in eval too
        ops.batch_norm(np.ones((1, 3)), None, None, None, None, False)
    assert ops.batch_norm(np.ones((1, 3), np.float32), None, None, rm.copy(), rv.copy(), False).shape == (1, 3)
    with pytest.raises(ValueError, match=r"x: expected a 2-D array, got shape \(4,\)"):
        ops.batch_norm(np.ones(4), None, None, None, None, True)
    with pytest.raises(ValueError, match=r"weight: expected shape \(3,\), got \(4,\)"):
        ops.batch_norm(x, np.ones(4), None, None, None, True)
    with pytest.raises(ValueError, match=r"bias: expected shape \(3,\)"):
        ops.batch_norm(x, None, np.ones((3, 1)), None, None, True)
    with pytest.raises(TypeError, match="running_mean: expected dtype float32, got float64"):
        ops.batch_norm(x, None, None, np.zeros(3), rv, True)
    with pytest.raises(TypeError, match="running_var: expected a numpy.ndarray"):
        ops.batch_norm(x, None, None, rm, [1.0, 1.0, 1.0], True)
    with pytest.raises(ValueError, match="running_mean: running_mean and running_var must both"):
        ops.batch_norm(x, None, None, rm, None, True)
    with pytest.raises(ValueError, match=r"running_var: expected shape \(3,\)"):
        ops.batch_norm(x, None, None, rm, np.ones(4, np.float32), True)
    with pytest.raises(ValueError, match="momentum: expected a value <= 1.0"):
        ops.batch_norm(x, None, None, rm, rv, True, momentum=1.5)
    with pytest.raises(ValueError, match="eps: expected a value >= 0.0"):
        ops.batch_norm(x, None, None, rm, rv, True, eps=-1e-5)
    with pytest.raises(TypeError, match="training: expected a bool, got str"):
        ops.batch_norm(x, None, None, rm, rv, "yes")
    with pytest.raises(TypeError, match="x: expected a real numeric array"):
        ops.batch_norm(np.ones((4, 3), complex), None, None, None, None, True)
    with pytest.raises(ValueError, match="running_var: must not overlap running_mean|running_mean: must not overlap"):
        ops.batch_norm(x, None, None, rm, rm, True)
    with pytest.raises(ValueError, match="out: must not overlap weight"):
        w = np.ones(12, np.float32)
        ops.batch_norm(x, w[:3], None, None, None, True, out=w.reshape(4, 3))
    sm, si = np.zeros(3, np.float32), np.ones(3, np.float32)
    with pytest.raises(TypeError, match="save_mean: expected the array saved by batch_norm, got None"):
        ops.batch_norm_backward(x, x, None, None, si)
    with pytest.raises(ValueError, match=r"x: expected shape \(4, 3\) \(as grad_out\), got \(3, 4\)"):
        ops.batch_norm_backward(x, x.T, None, sm, si)
    with pytest.raises(ValueError, match=r"save_invstd: expected shape \(3,\)"):
        ops.batch_norm_backward(x, x, None, sm, np.ones(4, np.float32))
    with pytest.raises(TypeError, match="grad_weight: expected dtype float32"):
        ops.batch_norm_backward(x, x, None, sm, si, grad_weight=np.zeros(3))
    ro = np.zeros(3, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="grad_bias: array is read-only"):
        ops.batch_norm_backward(x, x, None, sm, si, grad_bias=ro)
    with pytest.raises(ValueError, match="grad_weight: must not overlap save_mean"):
        ops.batch_norm_backward(x, x, None, sm, si, grad_weight=sm)


# ------------------------------------------------------------- layer norm

LN_SHAPES = SHAPES + [PAR_SHAPE, (7,), (2, 3, 5)]


@pytest.mark.parametrize("shape", LN_SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_reference(shape, affine, dtype, rng):
    c = shape[-1]
    x = _data(rng, shape, dtype, loc=-2.0, scale=3.0)
    dy = _data(rng, shape, dtype)
    w = _data(rng, c, dtype) if affine else None
    b = _data(rng, c, dtype) if affine else None
    st = {}
    for B in (ops, reference):
        sm, si = np.empty(shape[:-1], dtype), np.empty(shape[:-1], dtype)
        y = B.layer_norm(x, w, b, eps=1e-4, save_mean=sm, save_invstd=si)
        st[B] = (y, sm, si)
    for a, e in zip(st[ops], st[reference]):
        assert_close(a, e, dtype=dtype, atol=1e-5 if dtype == np.float32 else 1e-12)
    sm, si = st[ops][1], st[ops][2]
    gw0, gb0 = _data(rng, c, dtype), _data(rng, c, dtype)
    outs = []
    for B in (ops, reference):
        gw, gb = gw0.copy(), gb0.copy()
        dx = B.layer_norm_backward(dy, x, w, sm, si, gw, gb)
        outs.append((dx, gw, gb))
    for a, e in zip(outs[0], outs[1]):
        assert_close(a, e, dtype=dtype, **BWD_TOL[np.dtype(dtype)])


def test_layer_norm_rows_have_zero_mean_unit_variance(rng):
    x = _data(rng, (40, 9), np.float64, loc=5.0, scale=4.0)
    y = ops.layer_norm(x, None, None, eps=0.0)
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=-1), 1, rtol=1e-12)
    w, b = rng.standard_normal(9), rng.standard_normal(9)
    np.testing.assert_allclose(ops.layer_norm(x, w, b, eps=0.0), y * w + b, rtol=1e-12, atol=1e-12)


def test_layer_norm_strided_and_in_place(dtype, rng):
    x = _data(rng, (19, 13), dtype)
    w, b = _data(rng, 13, dtype), _data(rng, 13, dtype)
    expect = reference.layer_norm(x, w, b)
    assert_close(ops.layer_norm(strided(x), strided(w), b), expect)
    assert_close(ops.layer_norm(np.asfortranarray(x), w, b), expect)
    buf = x.copy()
    assert ops.layer_norm(buf, w, b, out=buf) is buf
    assert_close(buf, expect)
    sm, si = np.empty(19, dtype), np.empty(19, dtype)
    ops.layer_norm(x, w, b, save_mean=sm, save_invstd=si)
    dy = _data(rng, (19, 13), dtype)
    expect_dx = reference.layer_norm_backward(dy, x, w, sm, si)
    assert_close(ops.layer_norm_backward(strided(dy), np.asfortranarray(x), w, strided(sm), si),
                 expect_dx, **BWD_TOL[np.dtype(dtype)])
    g = dy.copy()  # dx written over grad_out
    assert ops.layer_norm_backward(g, x, w, sm, si, out=g) is g
    assert_close(g, expect_dx, **BWD_TOL[np.dtype(dtype)])


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_gradient_finite_differences(affine, rng):
    shape = (2, 3, 5)
    x = rng.standard_normal(shape) * 2 + 1
    w = rng.standard_normal(5) if affine else None
    b = rng.standard_normal(5) if affine else None
    dy = rng.standard_normal(shape)
    arrays = [x, w, b]

    def loss():
        return np.sum(ops.layer_norm(x, w, b, eps=1e-3) * dy)

    sm, si = np.empty(shape[:-1]), np.empty(shape[:-1])
    ops.layer_norm(x, w, b, eps=1e-3, save_mean=sm, save_invstd=si)
    gw, gb = np.zeros(5), np.zeros(5)
    dx = ops.layer_norm_backward(dy, x, w, sm, si, gw if affine else None, gb if affine else None)
    np.testing.assert_allclose(dx, _fd(loss, arrays, 0), rtol=1e-6, atol=1e-8)
    if affine:
        np.testing.assert_allclose(gw, _fd(loss, arrays, 1), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(gb, _fd(loss, arrays, 2), rtol=1e-6, atol=1e-8)
    gw2 = np.zeros(5)
    assert ops.layer_norm_backward(dy, x, w, sm, si, gw2, need_grad_input=False) is None
    if affine:
        np.testing.assert_array_equal(gw2, gw)


@pytest.mark.parametrize("shape", [(4099, 13), PAR_SHAPE])
def test_layer_norm_bitwise_across_thread_counts(shape, rng):
    c = shape[1]
    x = _data(rng, shape, np.float32, loc=1.0)
    dy = _data(rng, shape, np.float32)
    w, b = _data(rng, c, np.float32), _data(rng, c, np.float32)
    res = []
    for t in (1, 2, 3, 4):
        with num_threads(t):
            sm, si = np.empty(shape[0], np.float32), np.empty(shape[0], np.float32)
            y = ops.layer_norm(x, w, b, save_mean=sm, save_invstd=si)
            gw, gb = np.zeros(c, np.float32), np.zeros(c, np.float32)
            dx = ops.layer_norm_backward(dy, x, w, sm, si, gw, gb)
            res.append(b"".join(a.tobytes() for a in (y, sm, si, dx, gw, gb)))
    assert all(r == res[0] for r in res[1:])  # 2, 3 and 4 threads: the 1-thread bits


def test_layer_norm_bad_inputs():
    x = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="x: layer norm needs at least a 1-D array"):
        ops.layer_norm(np.float32(1), None, None)
    with pytest.raises(ValueError, match="x: layer norm over an empty last axis"):
        ops.layer_norm(np.ones((3, 0)), None, None)
    with pytest.raises(ValueError, match=r"weight: expected shape \(3,\), got \(4,\)"):
        ops.layer_norm(x, np.ones(4), None)
    with pytest.raises(TypeError, match="bias: expected a numeric array, got dtype bool"):
        ops.layer_norm(x, None, np.ones(3, bool))
    with pytest.raises(ValueError, match="eps: expected a finite number"):
        ops.layer_norm(x, None, None, eps=float("inf"))
    with pytest.raises(ValueError, match=r"save_mean: expected shape \(4,\), got \(3,\)"):
        ops.layer_norm(x, None, None, save_mean=np.empty(3, np.float32))
    with pytest.raises(TypeError, match="save_invstd: expected dtype float32"):
        ops.layer_norm(x, None, None, save_invstd=np.empty(4))
    sm, si = np.zeros(4, np.float32), np.ones(4, np.float32)
    with pytest.raises(TypeError, match="save_invstd: expected the array saved by layer_norm"):
        ops.layer_norm_backward(x, x, None, sm, None)
    with pytest.raises(ValueError, match=r"save_mean: expected shape \(4,\), got \(3,\)"):
        ops.layer_norm_backward(x, x, None, np.zeros(3), si)
    with pytest.raises(ValueError, match=r"x: expected shape \(4, 3\) \(as grad_out\)"):
        ops.layer_norm_backward(x, np.ones((4, 4)), None, sm, si)
    with pytest.raises(ValueError, match=r"grad_weight: expected shape \(3,\)"):
        ops.layer_norm_backward(x, x, None, sm, si, grad_weight=np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="need_grad_input: expected a bool"):
        ops.layer_norm_backward(x, x, None, sm, si, need_grad_input=None)
    buf = np.zeros(13, np.float32)
    with pytest.raises(ValueError, match="out: must not overlap x"):
        ops.layer_norm(buf[:12].reshape(4, 3), None, None, out=buf[1:].reshape(4, 3))


def test_empty_batches():
    assert ops.layer_norm(np.zeros((0, 3), np.float32), None, None).shape == (0, 3)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    assert ops.batch_norm(np.zeros((0, 3), np.float32), None, None, rm, rv, False).shape == (0, 3)
    assert ops.dropout(np.zeros((0, 3), np.float32), 0.5, 1).shape == (0, 3)
