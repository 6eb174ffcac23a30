"""Fuzzed input to every fastnn.ops kernel: bad input raises a ValueError/TypeError/IndexError
naming the argument before C runs; valid input (any dtype that converts, any layout, NaN/Inf,
empty and odd shapes) gives the reference's answer. Never a crash, a hang or silent corruption."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import ops
from fastnn import reference as ref

# --- hypothesis profiles: "ci" (default, fixed seed, few examples) and "fuzz" (long runs) ------
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("fuzz", max_examples=2000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ERRORS = (ValueError, TypeError, IndexError)

# dtypes a user may pass: those that convert (ints, unsigned, float16) and those that must be refused.
CONVERTIBLE = [np.float32, np.float64, np.float16, np.int8, np.int32, np.int64, np.uint8, np.uint64]
REFUSED = [np.bool_, np.complex64, np.complex128, np.object_, np.str_]
ALL_DTYPES = CONVERTIBLE + REFUSED

SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 1e-40, 88.0, -88.0, 1e4])


def expect_error(fn, names, types=ERRORS):
    """fn() must raise one of ``types`` whose message starts with one of ``names``."""
    names = (names,) if isinstance(names, str) else tuple(names)
    with pytest.raises(types) as info:
        fn()
    msg = str(info.value)
    assert re.match(r"^(%s)\b" % "|".join(map(re.escape, names)), msg), \
        f"error message does not start with the argument name {names}: {msg!r}"
    return info.value


def make_values(seed: int, shape, special_frac: float) -> np.ndarray:
    """float64 values: mostly moderate, a fraction of NaN/±Inf/huge/subnormal/zero."""
    r = np.random.default_rng(seed)
    v = np.array(r.standard_normal(shape) * 3)
    if special_frac and v.size:
        mask = np.array(r.random(shape) < special_frac)
        v[mask] = r.choice(SPECIALS, size=int(mask.sum()))
    return v


def cast(v: np.ndarray, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    v = np.asarray(v, np.float64)
    if dtype.kind in "iu":
        with np.errstate(invalid="ignore"):
            v = np.nan_to_num(v, nan=0, posinf=100, neginf=-100)
            v = np.asarray(np.clip(np.round(v), np.iinfo(dtype).min if dtype.kind == "i" else 0, 100))
        return v.astype(dtype)
    if dtype.kind == "b":
        return np.asarray(v > 0)
    if dtype.kind == "O":
        return v.astype(object)
    if dtype.kind == "U":
        return v.astype(str)
    with np.errstate(over="ignore", invalid="ignore"):
        return v.astype(dtype)


LAYOUTS = ["contiguous", "strided", "reversed", "transposed", "readonly", "list"]


def layout(a: np.ndarray, how: str):
    """The same values in another memory layout (or as a nested list)."""
    if how == "strided" and a.ndim:
        big = np.empty(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if how == "reversed" and a.ndim:
        return a[::-1].copy()[::-1]
    if how == "transposed" and a.ndim >= 2:
        return np.ascontiguousarray(a.T).T
    if how == "readonly":
        a = a.copy()
        a.flags.writeable = False
        return a
    if how == "list" and a.dtype.kind in "fiu" and a.size < 200:
        return a.tolist()
    return a


dims = st.sampled_from([0, 1, 2, 3, 5, 17, 64])
shapes = st.lists(dims, min_size=0, max_size=3).map(tuple)
seeds = st.integers(0, 2**32 - 1)
special_fracs = st.sampled_from([0.0, 0.0, 0.05, 0.5])


def close(actual, expected, dtype):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    tol = dict(rtol=2e-5, atol=1e-6) if np.dtype(dtype) == np.float32 else dict(rtol=1e-11, atol=1e-13)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(actual, expected, equal_nan=True, **tol)


def ref_quiet(fn, *a, **k):
    with np.errstate(all="ignore"):
        return fn(*a, **k)


def ref_call(fn, *arrays, **k):
    """The reference on 0-d arrays too (fastnn.reference's GELU cannot take a 0-d array:
    np.frompyfunc returns a Python float there), via a 1-element view."""
    if arrays and np.ndim(arrays[0]) == 0:
        return ref_quiet(fn, *[np.reshape(a, (1,)) for a in arrays], **k).reshape(())
    return ref_quiet(fn, *arrays, **k)


# --- elementwise activations ------------------------------------------------------------------
ACTS = [("relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("sigmoid", {}), ("tanh", {}),
        ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("softmax", {})]
# backward: name, which saved array it takes ("x" = forward input, "y" = forward output)
BACKS = [("relu_backward", "x", {}), ("leaky_relu_backward", "x", {"negative_slope": 0.2}),
         ("sigmoid_backward", "y", {}), ("tanh_backward", "y", {}), ("gelu_backward", "x", {}),
         ("softmax_backward", "y", {})]


@given(act=st.sampled_from(ACTS), shape=shapes, dtype=st.sampled_from(ALL_DTYPES),
       how=st.sampled_from(LAYOUTS), seed=seeds, frac=special_fracs)
def test_activation_forward_fuzz(act, shape, dtype, how, seed, frac):
    name, kw = act
    x = layout(cast(make_values(seed, shape, frac), dtype), how)
    f, r = getattr(ops, name), getattr(ref, name)
    if np.dtype(dtype) in map(np.dtype, REFUSED):
        expect_error(lambda: f(x, **kw), "x", TypeError)
        return
    if name == "softmax" and (len(shape) == 0 or shape[-1] == 0):
        expect_error(lambda: f(x, **kw), "x", ValueError)
        return
    expected = ref_call(r, x, **kw)
    before = np.array(x, copy=True)
    got = f(x, **kw)
    close(got, expected, got.dtype)
    np.testing.assert_array_equal(np.asarray(x), before)  # the input is never written


@given(back=st.sampled_from(BACKS), shape=shapes, dtype=st.sampled_from([np.float32, np.float64]),
       saved_dtype=st.sampled_from(ALL_DTYPES), how=st.sampled_from(LAYOUTS), seed=seeds,
       frac=special_fracs, mismatch=st.booleans())
def test_activation_backward_fuzz(back, shape, dtype, saved_dtype, how, seed, frac, mismatch):
    name, saved_name, kw = back
    g = cast(make_values(seed, shape, frac), dtype)
    sshape = shape + (2,) if mismatch else shape
    s = make_values(seed + 1, sshape, frac)
    if saved_name == "y":  # a real forward output (the derivative formulas assume one)
        fwd = getattr(ref, name.replace("_backward", ""))
        s = s if (name == "softmax_backward" and (not sshape or sshape[-1] == 0)) else ref_call(fwd, s)
    s = layout(cast(s, saved_dtype), how)
    f, r = getattr(ops, name), getattr(ref, name)
    if np.dtype(saved_dtype) in map(np.dtype, REFUSED):
        expect_error(lambda: f(g, s, **kw), saved_name, TypeError)
        return
    if mismatch:
        expect_error(lambda: f(g, s, **kw), saved_name, ValueError)
        return
    if name == "softmax_backward" and (len(shape) == 0 or shape[-1] == 0):
        expect_error(lambda: f(g, s, **kw), ("x", "y", "grad_out"), ValueError)
        return
    # fastnn.ops converts the saved array to grad_out's dtype; give the reference the same input.
    close(f(g, s, **kw), ref_call(r, g, np.asarray(s, dtype), **kw), dtype)


OUT_CASES = ["ok", "alias", "shape", "dtype", "readonly", "strided", "partial", "list"]


@pytest.mark.parametrize("case", OUT_CASES)
@pytest.mark.parametrize("name", ["relu", "sigmoid", "gelu", "softmax"])
def test_activation_out_argument(name, case, rng):
    x = rng.standard_normal((6, 9)).astype(np.float32)
    f = getattr(ops, name)
    expected = getattr(ref, name)(x)
    if case == "ok":
        out = np.full_like(x, np.nan)
        assert f(x, out=out) is out
        close(out, expected, np.float32)
    elif case == "alias":  # in place is allowed and exact
        y = x.copy()
        f(y, out=y)
        close(y, expected, np.float32)
    elif case == "shape":
        expect_error(lambda: f(x, out=np.empty((6, 8), np.float32)), "out", ValueError)
    elif case == "dtype":
        expect_error(lambda: f(x, out=np.empty_like(x, np.float64)), "out", TypeError)
    elif case == "readonly":
        out = np.empty_like(x)
        out.flags.writeable = False
        expect_error(lambda: f(x, out=out), "out", ValueError)
    elif case == "strided":
        expect_error(lambda: f(x, out=np.empty((6, 18), np.float32)[:, ::2]), "out", ValueError)
    elif case == "partial":
        # Regression: out shifted by one element over x used to be accepted and the
        # kernel read values it had already overwritten (silent corruption).
        buf = np.concatenate([x.ravel(), np.zeros(9, np.float32)])
        src, dst = buf[:54].reshape(6, 9), buf[9:63].reshape(6, 9)
        expect_error(lambda: f(src, out=dst), "out", ValueError)
        np.testing.assert_array_equal(buf[:54], x.ravel())  # nothing was written
    elif case == "list":
        expect_error(lambda: f(x, out=x.tolist()), "out", TypeError)


@pytest.mark.parametrize("name,saved", [("relu_backward", "x"), ("sigmoid_backward", "y"),
                                        ("softmax_backward", "y")])
def test_activation_backward_partial_overlap(name, saved, rng):
    g = rng.standard_normal((4, 8)).astype(np.float64)
    s = ref.sigmoid(rng.standard_normal((4, 8)))
    f = getattr(ops, name)
    expected = getattr(ref, name)(g, s)
    buf = np.concatenate([s.ravel(), np.zeros(8)])
    expect_error(lambda: f(g, buf[:32].reshape(4, 8), out=buf[8:].reshape(4, 8)), "out", ValueError)
    gg = g.copy()
    close(f(gg, s, out=gg), expected, np.float64)     # exact alias of grad_out: fine
    ss = s.copy()
    close(f(g, ss, out=ss), expected, np.float64)     # exact alias of the saved array: fine


# Slopes beyond float32's range are left out: they become inf in a float32 kernel, where C's
# x < 0 ? x·s : x and the reference's x > 0 ? x : x·s disagree at x = 0 (0 vs 0·inf = NaN).
@given(hp=st.one_of(st.floats(min_value=-1e38, max_value=1e38), st.floats(allow_nan=True, allow_infinity=True).filter(
                        lambda v: not np.isfinite(v)), st.none(), st.text(max_size=2),
                    st.booleans(), st.complex_numbers(max_magnitude=1)))
def test_activation_hyperparameters(hp):
    x = np.linspace(-2, 2, 7, dtype=np.float32)
    if isinstance(hp, float) and np.isfinite(hp):
        close(ops.leaky_relu(x, hp), ref.leaky_relu(x, hp), np.float32)
    else:
        expect_error(lambda: ops.leaky_relu(x, hp), "negative_slope")
    expect_error(lambda: ops.gelu(x, approximate=hp), "approximate", ValueError)


# --- losses -----------------------------------------------------------------------------------
ELEMENTWISE_LOSSES = ["mse_loss", "l1_loss", "bce_loss", "bce_with_logits_loss"]


@given(name=st.sampled_from(ELEMENTWISE_LOSSES), shape=shapes.filter(lambda s: np.prod(s) > 0),
       dtype=st.sampled_from([np.float32, np.float64]), tdtype=st.sampled_from(ALL_DTYPES),
       how=st.sampled_from(LAYOUTS), seed=seeds, frac=special_fracs,
       reduction=st.sampled_from(["mean", "sum", "none", "avg", None]), mismatch=st.booleans(),
       with_grad=st.booleans())
def test_elementwise_loss_fuzz(name, shape, dtype, tdtype, how, seed, frac, reduction, mismatch, with_grad):
    f, r = getattr(ops, name), getattr(ref, name)
    x = make_values(seed, shape, frac)
    y = make_values(seed + 1, shape + (2,) if mismatch else shape, frac)
    if name == "bce_loss":
        x = 1 / (1 + np.exp(-np.nan_to_num(x)))  # probabilities, some exactly 0/1 after rounding
    if name in ("bce_loss", "bce_with_logits_loss"):
        y = np.abs(np.sin(y))                    # targets in [0, 1] (NaN stays NaN)
    x = cast(x, dtype)
    y = layout(cast(y, tdtype), how)
    grad = np.empty(x.shape, x.dtype) if with_grad else None
    call = lambda: f(x, y, reduction=reduction, grad=grad)  # noqa: E731
    if reduction not in ("mean", "sum"):
        expect_error(call, "reduction", ValueError)
    elif np.dtype(tdtype) in map(np.dtype, REFUSED):
        expect_error(call, "target", TypeError)
    elif mismatch:
        expect_error(call, "target", ValueError)
    else:
        rgrad = np.empty(x.shape, x.dtype) if with_grad else None
        expected = ref_quiet(r, x, y, reduction=reduction, grad=rgrad)
        got = call()
        assert isinstance(got, float)
        close(got, expected, np.float64 if dtype == np.float64 else np.float32)
        if with_grad:
            close(grad, rgrad, dtype)


@pytest.mark.parametrize("which,value", [("input", -0.5), ("input", 1.5), ("target", -1e-3), ("target", 2.0)])
def test_bce_range_errors_name_argument(which, value):
    x = np.full(40000, 0.5, np.float32)  # more than one reduction block: a parallel pass
    y = np.full(40000, 0.25, np.float32)
    (x if which == "input" else y)[31234] = value
    e = expect_error(lambda: ops.bce_loss(x, y), which, ValueError)
    assert "31234" in str(e)


@given(rows=st.sampled_from([0, 1, 3, 17, 300]), cols=st.sampled_from([0, 1, 2, 10, 300]),
       labels_kind=st.sampled_from(["ok", "negative", "too_big", "float_int", "float_frac", "nan", "bool",
                                    "uint64_huge", "shape", "object", "list"]),
       seed=seeds, smoothing=st.sampled_from([0.0, 0.1, 1.0, -0.1, 1.5, float("nan")]),
       dtype=st.sampled_from([np.float32, np.float64]), frac=special_fracs)
def test_cross_entropy_fuzz(rows, cols, labels_kind, seed, smoothing, dtype, frac):
    r = np.random.default_rng(seed)
    x = cast(make_values(seed, (rows, cols), frac), dtype)
    t = r.integers(0, max(cols, 1), rows)
    bad_at = int(r.integers(0, rows)) if rows else 0
    if labels_kind == "negative" and rows:
        t[bad_at] = -1
    elif labels_kind == "too_big" and rows:
        t[bad_at] = cols
    elif labels_kind == "float_int":
        t = t.astype(np.float64)
    elif labels_kind in ("float_frac", "nan") and rows:
        t = t.astype(np.float64)
        t[bad_at] = 0.5 if labels_kind == "float_frac" else np.nan
    elif labels_kind == "bool":
        t = t > 0
    elif labels_kind == "uint64_huge" and rows:
        t = t.astype(np.uint64)
        t[bad_at] = np.uint64(2**64 - 1)
    elif labels_kind == "shape":
        t = t.reshape(-1, 1)
    elif labels_kind == "object":
        t = t.astype(object)
    elif labels_kind == "list":
        t = t.tolist()
    grad = np.empty(x.shape, x.dtype)
    call = lambda: ops.cross_entropy(x, t, label_smoothing=smoothing, grad=grad)  # noqa: E731
    if not (0.0 <= smoothing <= 1.0):
        expect_error(call, "label_smoothing", ValueError)
    elif rows == 0 or cols == 0:
        expect_error(call, "input", ValueError)
    elif labels_kind in ("bool", "object"):
        expect_error(call, "target", TypeError)
    elif labels_kind == "shape" and rows != 1:
        expect_error(call, "target", ValueError)
    elif labels_kind in ("float_frac", "nan"):
        expect_error(call, "target", TypeError)
    elif labels_kind in ("negative", "too_big", "uint64_huge"):
        e = expect_error(call, "target", IndexError)
        assert f"index {bad_at}" in str(e)
    else:
        t_ok = np.asarray(t).reshape(rows)
        rgrad = np.empty_like(grad)
        expected = ref_quiet(ref.cross_entropy, x, t_ok, label_smoothing=smoothing, grad=rgrad)
        close(call(), expected, dtype)
        close(grad, rgrad, dtype)


def test_loss_grad_argument_checks(rng):
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = rng.standard_normal((5, 4)).astype(np.float32)
    expect_error(lambda: ops.mse_loss(x, y, grad=x), "grad", ValueError)          # overlaps input
    expect_error(lambda: ops.mse_loss(x, y, grad=y), "grad", ValueError)          # overlaps target
    expect_error(lambda: ops.mse_loss(x, y, grad=np.empty((5, 5), np.float32)), "grad", ValueError)
    expect_error(lambda: ops.mse_loss(x, y, grad=np.empty((5, 4))), "grad", TypeError)
    ro = np.empty_like(x)
    ro.flags.writeable = False
    expect_error(lambda: ops.mse_loss(x, y, grad=ro), "grad", ValueError)
    expect_error(lambda: ops.mse_loss(np.empty((0, 4)), np.empty((0, 4))), "input", ValueError)
    expect_error(lambda: ops.cross_entropy(x, [0, 1, 2, 3, 0], grad=x), "grad", ValueError)


# --- matmul and the dense layer ---------------------------------------------------------------
def view2d(a: np.ndarray, how: str) -> np.ndarray:
    """A 2-D matrix with the same values in another layout: negative strides, transposed storage,
    column slices, or Fortran order."""
    if how == "neg":
        return a[::-1, ::-1].copy()[::-1, ::-1]
    if how == "T":
        return np.ascontiguousarray(a.T).T
    if how == "slice":
        big = np.zeros((a.shape[0], 3 * a.shape[1] + 1), a.dtype)
        big[:, 1::3] = a
        return big[:, 1::3]
    if how == "F":
        return np.asfortranarray(a)
    if how == "odd":  # element strides that are not multiples of the item size (NumPy allows them)
        isz = a.itemsize
        rs = a.shape[1] * (isz + 1) + 1
        raw = np.zeros(max(a.shape[0], 1) * rs + 8, np.uint8)
        v = np.ndarray(a.shape, a.dtype, buffer=raw, offset=0, strides=(rs, isz + 1))
        v[...] = a
        return v
    return a


def unaligned(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` whose data pointer is one byte off its dtype's alignment."""
    raw = np.zeros(a.size * a.itemsize + 1, np.uint8)[1:]
    v = raw.view(a.dtype).reshape(a.shape)
    v[...] = a
    assert not v.flags.aligned
    return v


mdims = st.sampled_from([0, 1, 2, 5, 16, 17, 33])
layouts2d = st.sampled_from(["c", "neg", "T", "slice", "F", "odd"])


@given(m=mdims, k=mdims, n=mdims, kb=st.one_of(st.none(), mdims), ta=st.booleans(), tb=st.booleans(),
       la=layouts2d, lb=layouts2d, da=st.sampled_from(CONVERTIBLE + [np.bool_, np.complex64]),
       db=st.sampled_from([np.float32, np.float64, np.int32]), seed=seeds, frac=special_fracs)
def test_matmul_fuzz(m, k, n, kb, ta, tb, la, lb, da, db, seed, frac):
    kb = k if kb is None else kb
    a = cast(make_values(seed, (k, m) if ta else (m, k), frac), da)
    b = cast(make_values(seed + 1, (n, kb) if tb else (kb, n), frac), db)
    a, b = view2d(a, la) if a.dtype.kind in "fiu" else a, view2d(b, lb)
    # A view NumPy calls contiguous (empty, or one element per axis) with element strides that are
    # not whole items: a known bug, tested below.
    assume(not any(v.flags.c_contiguous and any(s % v.itemsize for s in v.strides) for v in (a, b)))
    call = lambda: ops.matmul(a, b, trans_a=ta, trans_b=tb)  # noqa: E731
    if np.dtype(da) in (np.dtype(np.bool_), np.dtype(np.complex64)):
        expect_error(call, "a", TypeError)
    elif kb != k:
        expect_error(call, "b", ValueError)
    else:
        got = call()
        expected = ref_quiet(ref.matmul, a, b, trans_a=ta, trans_b=tb)
        assert got.dtype == expected.dtype
        # Products of moderate values: compare with a tolerance scaled by the row/column norms.
        fa = np.abs(np.asarray(a, np.float64))
        fb = np.abs(np.asarray(b, np.float64))
        with np.errstate(all="ignore"):
            scale = (fa.T if ta else fa) @ (fb.T if tb else fb)
            eps = 1e-5 if got.dtype == np.float32 else 1e-12
            finite = np.isfinite(scale) & np.isfinite(expected)
            assert np.all(np.abs(got - expected)[finite] <= eps * (scale[finite] + 1))
        # Non-finite entries agree (NaN/Inf propagate the same way as in NumPy) where NumPy is unambiguous.
        nonfinite = np.isnan(expected)
        assert np.all(~np.isfinite(got[nonfinite]))


@given(batch=mdims, n_in=mdims.filter(bool), n_out=mdims.filter(bool),
       x_in=st.one_of(st.none(), mdims), act=st.sampled_from(list(ops.linalg.ACTIVATIONS) + ["swish"]),
       lx=layouts2d, lw=layouts2d, bias_shape=st.sampled_from(["ok", "none", "short", "2d"]),
       xdtype=st.sampled_from(ALL_DTYPES), seed=seeds, frac=special_fracs)
def test_linear_fuzz(batch, n_in, n_out, x_in, act, lx, lw, bias_shape, xdtype, seed, frac):
    x_in = n_in if x_in is None else x_in
    x = cast(make_values(seed, (batch, x_in), frac), xdtype)
    if x.dtype.kind in "fiu":
        x = view2d(x, lx)
    w = view2d(make_values(seed + 1, (n_out, n_in), 0).astype(np.float32), lw)
    bias = {"ok": np.linspace(-1, 1, n_out, dtype=np.float32), "none": None,
            "short": np.zeros(n_out + 1, np.float32), "2d": np.zeros((1, n_out), np.float32)}[bias_shape]
    call = lambda: ops.linear(x, w, bias, activation=act)  # noqa: E731
    bad = [name for name, is_bad in (("activation", act not in ops.linalg.ACTIVATIONS),
                                     ("x", np.dtype(xdtype) in map(np.dtype, REFUSED) or x_in != n_in),
                                     ("bias", bias_shape in ("short", "2d"))) if is_bad]
    if bad:
        expect_error(call, bad)
    else:
        got = call()
        expected = ref_quiet(ref.linear, x, w, bias, activation=act)
        assert got.dtype == expected.dtype
        with np.errstate(invalid="ignore"):
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * (1 + np.sqrt(n_in)), equal_nan=True)


def test_linear_backward_argument_checks(rng):
    x = rng.standard_normal((6, 5)).astype(np.float32)
    w = rng.standard_normal((4, 5)).astype(np.float32)
    g = rng.standard_normal((6, 4)).astype(np.float32)
    y = ops.linear(x, w, activation="relu")
    gw, gb = np.zeros_like(w), np.zeros(4, np.float32)
    expect_error(lambda: ops.linear_backward(g[:, :3], x, w), "grad_out", ValueError)
    expect_error(lambda: ops.linear_backward(g, x, w, activation="relu"), "saved", ValueError)
    expect_error(lambda: ops.linear_backward(g, x, w, activation="relu", saved=y[:3]), "saved", ValueError)
    expect_error(lambda: ops.linear_backward(g, x, w, grad_weight=gw[:, ::2]), "grad_weight", ValueError)
    expect_error(lambda: ops.linear_backward(g, x, w, grad_weight=gw.T), "grad_weight", ValueError)
    expect_error(lambda: ops.linear_backward(g, x, w, grad_weight=gw.astype(np.float64)), "grad_weight", TypeError)
    expect_error(lambda: ops.linear_backward(g, x, w, grad_weight=w), "grad_weight", ValueError)  # aliases weight
    expect_error(lambda: ops.linear_backward(g, x, w, grad_bias=gb[:3]), "grad_bias", ValueError)
    expect_error(lambda: ops.linear_backward(g, x, w, activation="leaky_relu", saved=y, negative_slope=-1),
                 "negative_slope", ValueError)
    ro = np.zeros_like(w)
    ro.flags.writeable = False
    expect_error(lambda: ops.linear_backward(g, x, w, grad_weight=ro), "grad_weight", ValueError)
    # A valid call on a negative-stride, transposed-storage input agrees with the reference.
    xs = view2d(x, "neg")
    gw2, gw3 = np.zeros_like(w), np.zeros_like(w)
    gx = ops.linear_backward(g, xs, w, grad_weight=gw2, activation="relu", saved=y)
    gx_ref = ref.linear_backward(g, x, w, grad_weight=gw3, activation="relu", saved=y)
    close(gx, gx_ref, np.float32)
    close(gw2, gw3, np.float32)


@pytest.mark.parametrize("k,n", [(0, 3), (1, 1)])
def test_matmul_contiguous_view_with_byte_strides(k, n):
    b = view2d(np.ones((k, n), np.float32), "odd")
    assert b.flags.c_contiguous and b.strides[1] % b.itemsize
    out = ops.matmul(np.ones((2, k), np.float32), b)
    np.testing.assert_array_equal(out, np.full((2, n), k, np.float32))


def test_matmul_out_argument(rng):
    a = rng.standard_normal((7, 5))
    b = rng.standard_normal((5, 3))
    buf = rng.standard_normal((12, 12))
    expect_error(lambda: ops.matmul(buf[:7, :5], buf[:5, 5:8], out=buf[3:10, 3:6]), "out", ValueError)
    expect_error(lambda: ops.matmul(a, b, out=np.empty((7, 3), np.float32)), "out", TypeError)
    expect_error(lambda: ops.matmul(a, b, out=np.empty((3, 7))), "out", ValueError)
    expect_error(lambda: ops.matmul(a, b, beta=1.0), "out", ValueError)
    expect_error(lambda: ops.matmul(a, b, alpha=float("nan")), "alpha", ValueError)
    zero_stride = np.lib.stride_tricks.as_strided(np.zeros(3), (7, 3), (0, 8))
    expect_error(lambda: ops.matmul(a, b, out=zero_stride), "out")
    out = np.empty((14, 6))[::-2, ::2]  # negative and doubled strides: allowed, written exactly
    assert ops.matmul(a, b, out=out) is out
    close(out, a @ b, np.float64)


# --- dropout, batch norm, layer norm ----------------------------------------------------------
bad_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.text(max_size=1),
                       st.booleans(), st.integers(-3, 3))


@given(p=bad_floats, seed=st.one_of(st.integers(-2, 2**65), st.floats(), st.none(), st.booleans()),
       shape=shapes, dtype=st.sampled_from(CONVERTIBLE))
def test_dropout_fuzz(p, seed, shape, dtype):
    x = cast(make_values(7, shape, 0.1), dtype)
    call = lambda: ops.dropout(x, p, seed)  # noqa: E731
    p_ok = (not isinstance(p, (bool, str, type(None)))) and np.isfinite(p) and 0 <= p <= 1
    seed_ok = isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**64
    if not p_ok:
        expect_error(call, "p")
    elif not seed_ok:
        expect_error(call, "seed")
    else:
        mask, rmask = np.empty(np.shape(x), np.uint8), np.empty(np.shape(x), np.uint8)
        got = ops.dropout(x, p, seed, mask=mask)
        expected = ref_quiet(ref.dropout, x, p, seed, mask=rmask)
        np.testing.assert_array_equal(mask, rmask)
        close(got, expected, got.dtype)


@given(n=st.sampled_from([0, 1, 2, 3, 17]), c=st.sampled_from([1, 2, 7, 70]),
       momentum=bad_floats, eps=bad_floats, training=st.sampled_from([True, False, 1, None]),
       running=st.sampled_from(["both", "none", "mean_only", "wrong_dtype", "readonly", "list"]),
       seed=seeds, frac=special_fracs, dtype=st.sampled_from([np.float32, np.float64]))
def test_batch_norm_fuzz(n, c, momentum, eps, training, running, seed, frac, dtype):
    x = cast(make_values(seed, (n, c), frac), dtype)
    w = cast(make_values(seed + 1, (c,), 0), dtype)
    b = cast(make_values(seed + 2, (c,), 0), dtype)
    rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
    if running == "none":
        rm = rv = None
    elif running == "mean_only":
        rv = None
    elif running == "wrong_dtype":
        rv = rv.astype(np.float16)
    elif running == "readonly":
        rv.flags.writeable = False
    elif running == "list":
        rm = rm.tolist()
    args = (x, w, b, rm, rv, training)
    call = lambda: ops.batch_norm(*args, momentum=momentum, eps=eps)  # noqa: E731

    def num_ok(v, **bounds):
        if isinstance(v, (bool, str, type(None))) or not np.isfinite(v):
            return False
        return v >= bounds.get("low", -np.inf) and v <= bounds.get("high", np.inf)
    if not isinstance(training, bool):
        expect_error(call, "training", TypeError)
    elif not num_ok(momentum, low=0, high=1):
        expect_error(call, "momentum")
    elif not num_ok(eps, low=0):
        expect_error(call, "eps")
    elif running == "mean_only":
        expect_error(call, "running_mean", ValueError)
    elif running in ("wrong_dtype", "readonly", "list"):
        expect_error(call, ("running_mean", "running_var"))
    elif (training or running == "none") and n < 2:
        expect_error(call, "x", ValueError)
    else:
        rm2 = None if rm is None else rm.copy()
        rv2 = None if rv is None else rv.copy()
        got = call()
        expected = ref_quiet(ref.batch_norm, x, w, b, rm2, rv2, training, momentum=momentum, eps=eps)
        close(got, expected, dtype)
        if rm is not None:
            close(rm, rm2, dtype)
            close(rv, rv2, dtype)


@given(shape=shapes, eps=bad_floats, wshape=st.sampled_from(["ok", "none", "short"]), seed=seeds,
       frac=special_fracs, dtype=st.sampled_from(CONVERTIBLE), how=st.sampled_from(LAYOUTS))
def test_layer_norm_fuzz(shape, eps, wshape, seed, frac, dtype, how):
    x = layout(cast(make_values(seed, shape, frac), dtype), how)
    cols = shape[-1] if shape else 1
    w = {"ok": np.ones(cols), "none": None, "short": np.ones(cols + 1)}[wshape]
    call = lambda: ops.layer_norm(x, w, None, eps=eps)  # noqa: E731
    eps_ok = not isinstance(eps, (bool, str, type(None))) and np.isfinite(eps) and eps >= 0
    if len(shape) == 0 or shape[-1] == 0:
        expect_error(call, "x", ValueError)
    elif not eps_ok:
        expect_error(call, "eps")
    elif wshape == "short":
        expect_error(call, "weight", ValueError)
    else:
        got = call()
        close(got, ref_quiet(ref.layer_norm, x, w, None, eps=eps), got.dtype)


def test_norm_outputs_must_not_overlap(rng):
    x = rng.standard_normal((5, 4))
    expect_error(lambda: ops.layer_norm(x, None, None, save_mean=x[:, 0].copy().reshape(5)[::1],
                                        save_invstd=x[0]), "save_invstd", ValueError)
    buf = np.zeros(10)
    expect_error(lambda: ops.batch_norm(x, None, None, None, None, True, save_mean=buf[:4],
                                        save_invstd=buf[2:6]), "save_mean", ValueError)
    expect_error(lambda: ops.dropout(x, 0.5, 1, out=np.empty((5, 4)), mask=np.empty((5, 4), np.float32)),
                 "mask", TypeError)
    y = x.copy()
    expect_error(lambda: ops.dropout(y[:4], 0.5, 1, out=y[1:]), "out", ValueError)


# --- optimizer kernels ---------------------------------------------------------------------------
def _opt_arrays(n, dtype, k):
    r = np.random.default_rng(n + k)
    return [r.standard_normal(n).astype(dtype) for _ in range(k)]


HP_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64), st.sampled_from([0.0, 1.0, -1.0, 0.999]),
                      st.none(), st.booleans(), st.integers(-2, 2))


def _hp_ok(v, low=None, high=None, high_open=False):
    if isinstance(v, (bool, type(None))) or not np.isfinite(v):
        return False
    if low is not None and v < low:
        return False
    if high is not None and (v > high or (high_open and v == high)):
        return False
    return True


@given(lr=HP_VALUES, beta1=HP_VALUES, beta2=HP_VALUES, eps=HP_VALUES, wd=HP_VALUES,
       step=st.one_of(st.integers(-1, 3), st.integers(2**62, 2**70), st.floats(0, 3), st.none()),
       amsgrad=st.sampled_from([True, False, 2, None]), n=st.sampled_from([1, 17, 1027]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_adam_hyperparameters_fuzz(lr, beta1, beta2, eps, wd, step, amsgrad, n, dtype):
    p, g, m, v, vmax = _opt_arrays(n, dtype, 5)
    m, v, vmax = np.zeros_like(m), np.zeros_like(v), np.zeros_like(vmax)
    before = p.copy()
    kw = dict(step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=wd, amsgrad=amsgrad)
    call = lambda: ops.adam_step(p, g, m, v, vmax, **kw)  # noqa: E731
    checks = [("step", isinstance(step, int) and not isinstance(step, bool) and 1 <= step < 2**63),
              ("lr", _hp_ok(lr, 0)), ("beta1", _hp_ok(beta1, 0, 1, True)), ("beta2", _hp_ok(beta2, 0, 1, True)),
              ("eps", _hp_ok(eps, 0)), ("weight_decay", _hp_ok(wd, 0)),
              ("amsgrad", isinstance(amsgrad, bool))]
    bad = [name for name, ok in checks if not ok]
    if bad:
        expect_error(call, bad)
        np.testing.assert_array_equal(p, before)  # nothing changed
        return
    p2, m2, v2, vmax2 = p.copy(), m.copy(), v.copy(), vmax.copy()
    with np.errstate(all="ignore"):
        call()
        ref.adam_step(p2, g, m2, v2, vmax2, **kw)
    for a, b in ((p, p2), (m, m2), (v, v2), (vmax, vmax2)):
        close(a, b, dtype)


@given(which=st.sampled_from(["sgd", "sgd_momentum", "rmsprop", "adagrad"]), lr=HP_VALUES, a=HP_VALUES,
       b=HP_VALUES, array_case=st.sampled_from(["ok", "dtype", "size", "noncontig", "readonly", "alias",
                                                "overlap", "list", "int"]))
def test_optimizer_kernels_fuzz(which, lr, a, b, array_case):
    n = 40000  # above the parallel threshold
    p, g, s1, s2 = _opt_arrays(n, np.float32, 4)
    s1, s2 = np.abs(s1), np.zeros_like(s2)
    target = {"dtype": "grad", "size": "grad", "noncontig": "param", "readonly": "param", "alias": "grad",
              "overlap": None, "list": "param", "int": "param"}.get(array_case)
    if array_case == "dtype":
        g = g.astype(np.float64)
    elif array_case == "size":
        g = g[:-1]
    elif array_case == "noncontig":
        p = np.repeat(p, 2)[::2]
    elif array_case == "readonly":
        p.flags.writeable = False
    elif array_case == "alias":
        g = p
    elif array_case == "list":
        p = p[:5].tolist()
        g = g[:5]
    elif array_case == "int":
        p = p.astype(np.int32)
    if which == "sgd":
        call = lambda: ops.sgd_step(p, g, lr=lr, weight_decay=a)  # noqa: E731
        ref_call = lambda P, G: ref.sgd_step(P, G, lr=lr, weight_decay=a)  # noqa: E731
        hp = [("lr", _hp_ok(lr, 0)), ("weight_decay", _hp_ok(a, 0))]
        state = []
    elif which == "sgd_momentum":
        buf = s2 if array_case != "overlap" else (p := np.zeros(2 * n, np.float32))[n // 2:n // 2 + n]
        if array_case == "overlap":
            p = p[:n]
            target = ("param", "momentum_buffer")
        call = lambda: ops.sgd_step(p, g, buf, lr=lr, momentum=a, dampening=b)  # noqa: E731
        ref_call = lambda P, G, B: ref.sgd_step(P, G, B, lr=lr, momentum=a, dampening=b)  # noqa: E731
        hp = [("lr", _hp_ok(lr, 0)), ("momentum", _hp_ok(a, 0)), ("dampening", _hp_ok(b))]
        state = [buf]
    elif which == "rmsprop":
        sq = s1 if array_case != "overlap" else g
        if array_case == "overlap":
            target = ("grad", "square_avg")
        call = lambda: ops.rmsprop_step(p, g, sq, lr=lr, alpha=a, eps=b)  # noqa: E731
        ref_call = lambda P, G, S: ref.rmsprop_step(P, G, S, lr=lr, alpha=a, eps=b)  # noqa: E731
        hp = [("lr", _hp_ok(lr, 0)), ("alpha", _hp_ok(a, 0)), ("eps", _hp_ok(b, 0))]
        state = [sq]
    else:
        ss = s1 if array_case != "overlap" else p
        if array_case == "overlap":
            target = ("param", "state_sum")
        call = lambda: ops.adagrad_step(p, g, ss, step=1, lr=lr, lr_decay=a, eps=b)  # noqa: E731
        ref_call = lambda P, G, S: ref.adagrad_step(P, G, S, step=1, lr=lr, lr_decay=a, eps=b)  # noqa: E731
        hp = [("lr", _hp_ok(lr, 0)), ("lr_decay", _hp_ok(a, 0)), ("eps", _hp_ok(b, 0))]
        state = [ss]
    if which == "sgd_momentum" and hp[1][1] and hp[2][1] and a == 0 and array_case == "overlap":
        target = None  # momentum 0: the buffer is not used, so its overlap is irrelevant
    bad_hp = [name for name, ok in hp if not ok]
    snapshot = [np.array(x, copy=True) for x in [p, g] + state]
    if array_case != "ok" and target is not None:
        # Array checks come first or second: either way an error naming an argument.
        expect_error(call, tuple(bad_hp) + ((target,) if isinstance(target, str) else tuple(target)))
    elif bad_hp:
        expect_error(call, bad_hp)
    else:  # valid: the kernel's update is the reference's, on copies of the same arrays
        with np.errstate(all="ignore"):
            call()
            copies = [x.copy() for x in snapshot]
            ref_call(*copies)
        for got, want in zip([p] + state, [copies[0]] + copies[2:]):
            close(got, want, np.float32)
        np.testing.assert_array_equal(g, snapshot[1])  # the gradient is only read
        return
    for before, now in zip(snapshot, [p, g] + state):  # an error leaves every array untouched
        np.testing.assert_array_equal(np.asarray(now), before)


@given(norm_type=st.one_of(HP_VALUES, st.just(float("inf"))), dtype=st.sampled_from(ALL_DTYPES),
       shape=shapes, seed=seeds, frac=special_fracs)
def test_grad_norm_and_all_finite_fuzz(norm_type, dtype, shape, seed, frac):
    x = cast(make_values(seed, shape, frac), dtype)
    p_ok = not isinstance(norm_type, (bool, type(None))) and norm_type > 0  # inf allowed
    refused = np.dtype(dtype) in map(np.dtype, REFUSED)
    if not p_ok:
        expect_error(lambda: ops.grad_norm(x, norm_type), "norm_type")
    elif refused:
        expect_error(lambda: ops.grad_norm(x, norm_type), "x", TypeError)
    else:
        got = ops.grad_norm(x, norm_type)
        expected = ref_quiet(ref.grad_norm, x, norm_type)
        np.testing.assert_allclose(got, expected, rtol=1e-6 if x.dtype != np.float64 else 1e-10, equal_nan=True)
    if refused:
        expect_error(lambda: ops.all_finite(x), "x", TypeError)
    else:
        assert ops.all_finite(x) == bool(np.isfinite(np.asarray(x, np.float64)).all())


def test_step_count_beyond_int64_is_a_value_error():
    # Regression: step=2**63 used to escape as an OverflowError from the Cython call.
    p, g = np.zeros(4, np.float32), np.ones(4, np.float32)
    for step in (2**63, 2**70):
        expect_error(lambda: ops.adam_step(p, g, np.zeros(4, np.float32), np.zeros(4, np.float32), step=step,
                                           lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8), "step", ValueError)
        expect_error(lambda: ops.adagrad_step(p, g, np.zeros(4, np.float32), step=step, lr=0.1), "step", ValueError)
    ops.adam_step(p, g, np.zeros(4, np.float32), np.zeros(4, np.float32), step=2**63 - 1, lr=1e-3,
                  beta1=0.9, beta2=0.999, eps=1e-8)
    assert np.isfinite(p).all()


# --- huge shapes ------------------------------------------------------------------------------------
def test_huge_shapes_raise_memory_error_not_a_crash():
    """Shapes whose results cannot be allocated (4 TiB), given as zero-stride views that cost
    nothing: NumPy's MemoryError for the output, and the C workspace's out-of-memory path (a
    4 TiB dZ scratch) turned into MemoryError — never a crash or a silent partial result."""
    n = 2**20
    ones = lambda *shape: np.broadcast_to(np.float32(1), shape)  # noqa: E731
    with pytest.raises(MemoryError):
        ops.relu(ones(2**40))
    with pytest.raises(MemoryError):
        ops.matmul(ones(n, 1), ones(1, n))
    with pytest.raises(MemoryError, match="workspace"):
        ops.linear_backward(ones(n, n), ones(n, 1), np.ones((n, 1), np.float32), activation="relu",
                            saved=ones(n, n))
    # The failed growth left the thread's workspace usable.
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(ops.matmul(a, a.T), a @ a.T)


# --- misaligned arrays ----------------------------------------------------------------------------
# NumPy allows arrays whose data pointer is not a multiple of the item size (np.frombuffer at an
# odd offset, packed structured dtypes). C may not load a float from such an address (undefined
# behaviour; UBSan reports it). The Cython wrappers (_checks.pxi) refuse such arrays before C runs.

def test_unaligned_outputs_are_refused_before_c(rng):
    # Regression: an unaligned out/param/grad used to reach C (UB, reported by UBSan).
    x = rng.standard_normal(1000)
    expect_error(lambda: ops.relu(x, out=unaligned(x)), "out", ValueError)
    expect_error(lambda: ops.sgd_step(unaligned(x), x, lr=0.1), "param", ValueError)
    expect_error(lambda: ops.mse_loss(x, x, grad=unaligned(x)), "grad", ValueError)
    p = x.copy()
    expect_error(lambda: ops.adam_step(p, x, unaligned(x), np.zeros_like(x), step=1, lr=0.1, beta1=0.9,
                                       beta2=0.99, eps=1e-8), "exp_avg", ValueError)
    np.testing.assert_array_equal(p, x)
    expect_error(lambda: ops.layer_norm(x.reshape(10, 100), None, None, save_mean=unaligned(np.zeros(10))),
                 "save_mean", ValueError)


@pytest.mark.parametrize("which", ["relu", "mse_loss", "softmax", "matmul", "linear"])
def test_unaligned_inputs_are_copied(which, rng):
    """An unaligned input is valid data: the op must give the aligned array's result, and C must
    only ever see aligned memory."""
    x = rng.standard_normal((20, 50))
    u = unaligned(x)
    fn = {"relu": lambda a: ops.relu(a), "mse_loss": lambda a: ops.mse_loss(a, x),
          "softmax": lambda a: ops.softmax(a), "matmul": lambda a: ops.matmul(a, x.T),
          "linear": lambda a: ops.linear(a, x[:7])}[which]
    saw = []
    got = _spy_unaligned(lambda: fn(u), saw)
    assert not saw, "an unaligned array reached C"
    np.testing.assert_array_equal(np.asarray(got), np.asarray(fn(x)))


def _spy_unaligned(fn, seen):
    """Run fn, recording every unaligned ndarray handed to a _core wrapper."""
    import fastnn._core as core
    names = ["act_forward", "softmax_forward", "gemm", "dense_forward", "mse_loss_fused"]
    saved = {n: getattr(core, n) for n in names}

    def spy(orig):
        def f(*args):
            seen.extend(a for a in args if isinstance(a, np.ndarray) and not a.flags.aligned)
            return orig(*args)
        return f
    try:
        for n in names:
            setattr(core, n, spy(saved[n]))
        return fn()
    finally:
        for n in names:
            setattr(core, n, saved[n])


# --- threads ---------------------------------------------------------------------------------------
def test_set_num_threads_rejects_bad_counts():
    before = fastnn.get_num_threads()
    try:
        expect_error(lambda: fastnn.set_num_threads(1.5), "n", TypeError)
        expect_error(lambda: fastnn.set_num_threads(2**40), "n", ValueError)
    finally:
        fastnn.set_num_threads(before)


@pytest.mark.skipif(bool(os.environ.get("FASTNN_SANITIZE")), reason="the crash would be an ASan report")
def test_absurd_thread_count_is_refused_not_a_crash():
    code = ("import numpy as np, fastnn\n"
            "try:\n"
            "    fastnn.set_num_threads(100000)\n"
            "except ValueError as e:\n"
            "    assert str(e).startswith('n'), e\n"
            "    print('refused')\n"
            "else:\n"
            "    print(float(fastnn.ops.relu(np.ones(10**6, np.float32)).sum()))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd()] + sys.path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, f"the interpreter died (status {proc.returncode}): {proc.stderr[-500:]}"
    assert proc.stdout.strip() in ("refused", "1000000.0")


def test_set_num_threads_rejects_nonpositive():
    for n in (0, -1):
        expect_error(lambda: fastnn.set_num_threads(n), "n", ValueError)
    with pytest.raises(TypeError):
        fastnn.set_num_threads("2")


# --- 64-bit index arithmetic ----------------------------------------------------------------------
@pytest.mark.skipif(bool(os.environ.get("FASTNN_SANITIZE")), reason="ASan would shadow-map the 11 GB reservation")
def test_element_offsets_beyond_int32(rng):
    """Element offsets i·rs_a beyond 2³¹ in the GEMM's packing and the dense layer.

    A is a (70000, 2) column slice of a (70000, 40000) float32 array: row i starts
    40000·i elements in, up to 2.8e9 > 2³¹, so 32-bit index arithmetic would wrap and read the
    wrong rows (or crash). The big array is calloc'ed and only a few rows are ever written, so
    its pages stay virtual (shared zero page on reads): resident memory stays a few hundred MB.
    """
    try:
        big = np.zeros((70000, 40000), np.float32)   # 11.2 GB virtual, untouched
    except MemoryError:
        pytest.skip("cannot reserve 11 GB of address space")
    rows = np.array([0, 1, 53687, 53688, 69999])     # 53688·40000 > 2³¹
    vals = rng.standard_normal((len(rows), 2)).astype(np.float32)
    big[rows, :2] = vals
    a = big[:, :2]
    b = rng.standard_normal((2, 3)).astype(np.float32)
    out = ops.matmul(a, b)
    expected = np.zeros((70000, 3), np.float32)
    expected[rows] = vals @ b
    np.testing.assert_allclose(out[rows], expected[rows], rtol=1e-6, atol=1e-6)
    assert np.count_nonzero(out) == np.count_nonzero(expected)
    w = rng.standard_normal((3, 2)).astype(np.float32)
    y = ops.linear(a, w, activation="relu")
    np.testing.assert_allclose(y[rows], np.maximum(vals @ w.T, 0), rtol=1e-6, atol=1e-6)
    gw = np.zeros_like(w)
    ops.linear_backward(np.ones((70000, 3), np.float32), a, w, grad_weight=gw, need_grad_input=False)
    np.testing.assert_allclose(gw, np.ones((3, 1)) * vals.sum(0, dtype=np.float64), rtol=1e-5, atol=1e-5)
    del big
