"""vmath (src_c/vmath*): the vectorised exp, sigmoid, tanh and erf against libm over their
whole range — a sweep of every 2^12-th (float32) / 2^44-th (float64) bit pattern, a dense
uniform sweep of the working range, ±0, subnormals, ±inf, NaN, the saturation and overflow
points — with the README's ulp bounds, in both dtypes; tails (lengths 1, 3, 7, 8, 9, 17,
primes) give the same bits as full vectors; the GEMM epilogue's one-element path gives the
same bits as the array kernels; results do not depend on the thread count. The module runs
again with FASTNN_KERNELS=portable in a subprocess, so both kernel sets are checked."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from fastnn import _core
from conftest import num_threads

# Max error in ulps of the result (README "Vectorised activations"). exp, sigmoid and tanh are
# measured against long double (an exact reference to well below an ulp of a double); erf
# against libm's erf, itself within an ulp, which the float64 bound includes.
BOUND = {"exp": 1.5, "sigmoid": 2.5, "tanh": 3.0, "erf": 3.0}
LONG_DOUBLE_EXACT = np.finfo(np.longdouble).nmant >= 63
DTYPES = [np.float32, np.float64]
_erf = np.frompyfunc(math.erf, 1, 1)


def _vm(fn, x):
    y = np.empty_like(x)
    _core.vmath_eval(fn, y, x)
    return y


def _reference(fn, x):
    """The function in long double (erf: libm's double erf)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if fn == "erf":
            return np.asarray(_erf(x.astype(np.float64)), dtype=np.float64).astype(np.longdouble)
        xl = x.astype(np.longdouble)
        if fn == "exp":
            return np.exp(xl)
        if fn == "tanh":
            return np.tanh(xl)
        e = np.exp(-np.abs(xl))
        return np.where(xl >= 0, 1 / (1 + e), e / (1 + e))


def _ulp_error(y, ref, dtype):
    """|y − ref| in ulps of ref rounded to dtype (subnormal ulps below the normal range);
    0 where both are the same infinity or both NaN."""
    with np.errstate(over="ignore", invalid="ignore"):
        y = y.astype(np.longdouble)
        rr = ref.astype(dtype)
        ulp = np.maximum(np.spacing(np.abs(rr)).astype(np.longdouble),
                         np.longdouble(np.finfo(dtype).smallest_subnormal))
        err = np.abs(y - ref) / ulp
    same = (y == rr) | (np.isnan(y) & np.isnan(rr))
    err[same] = 0
    err[np.isnan(err)] = np.inf  # a NaN or infinity where the reference has none
    return err


def _bound(fn, dtype):
    b = BOUND[fn]
    if dtype == np.float64 and (fn == "erf" or not LONG_DOUBLE_EXACT):
        b += 1.0  # the reference is libm's double, within an ulp itself
    return b


def _bit_sweep(dtype, step_bits):
    """Every 2^step_bits-th bit pattern, positive and negative: all binades, subnormals,
    inf and NaN included."""
    if dtype == np.float32:
        bits = np.arange(0, 2**32, 2**step_bits, dtype=np.uint64).astype(np.uint32)
        return bits.view(np.float32)
    bits = np.arange(0, 2**20, dtype=np.uint64) << np.uint64(step_bits)
    return bits.view(np.float64)


WORKING_RANGE = {"exp": (-110.0, 90.0), "sigmoid": (-110.0, 110.0), "tanh": (-22.0, 22.0), "erf": (-7.0, 7.0)}


def _check(fn, x, dtype):
    y = _vm(fn, x)
    err = _ulp_error(y, _reference(fn, x), dtype)
    worst = int(np.argmax(err))
    assert err[worst] <= _bound(fn, dtype), (
        f"{fn} {np.dtype(dtype).name}: {err[worst]:.2f} ulp at x={x[worst]!r}: got {y[worst]!r}, "
        f"libm {_reference(fn, x[worst:worst + 1])[0]!r}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["exp", "sigmoid", "tanh", "erf"])
def test_whole_range_bit_sweep(fn, dtype):
    n_step = 12 if dtype == np.float32 else 44
    x = _bit_sweep(dtype, n_step)
    if fn == "erf":
        x = np.ascontiguousarray(x[::4])  # libm's erf through Python: keep it quick
    _check(fn, x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["exp", "sigmoid", "tanh", "erf"])
def test_dense_sweep_of_working_range(fn, dtype):
    lo, hi = WORKING_RANGE[fn]
    if fn == "exp" and dtype == np.float64:
        lo, hi = -750.0, 712.0
    n = 200_001 if fn != "erf" else 100_001
    x = np.linspace(lo, hi, n).astype(dtype)
    near0 = np.linspace(-1.5, 1.5, n // 2).astype(dtype)  # where the pieces of tanh and erf meet
    _check(fn, np.concatenate([x, near0]), dtype)


def _tiny(dtype):
    fi = np.finfo(dtype)
    return np.array([fi.smallest_subnormal, 3 * fi.smallest_subnormal, fi.tiny / 3, fi.tiny, fi.eps],
                    dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(dtype):
    inf, nan = dtype(np.inf), dtype(np.nan)
    sub = _tiny(dtype)
    big = np.array([40, 100, 1e4, np.finfo(dtype).max], dtype=dtype)

    def ev(fn, *vals):
        return _vm(fn, np.array(vals, dtype=dtype))

    # exp: e^±0 = 1, e^−inf = 0, e^inf = inf, overflow and underflow where libm has them.
    assert ev("exp", 0.0, -0.0, -inf, inf).tolist() == [1.0, 1.0, 0.0, np.inf]
    assert np.isnan(ev("exp", nan)).all()
    np.testing.assert_array_equal(_vm("exp", sub[:4]), np.ones(4, dtype=dtype))
    np.testing.assert_array_equal(_vm("exp", -sub[:4]), np.ones(4, dtype=dtype))
    edge = np.array([88.72283, 88.72284, 88.7229, -87.33654, -103.27893, -103.97, -104.0, 709.78, 709.79,
                     -708.39, -744.44, -745.14, -745.2], dtype=dtype)
    with np.errstate(over="ignore"):
        want = np.exp(edge.astype(np.longdouble)).astype(dtype)
    got = _vm("exp", edge)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_array_equal(got == 0, want == 0)
    # sigmoid: ½ at ±0, 0/1 at the infinities, exactly 1 once e^−x < ulp/2, NaN stays NaN.
    assert ev("sigmoid", 0.0, -0.0, inf, -inf).tolist() == [0.5, 0.5, 1.0, 0.0]
    assert (_vm("sigmoid", big) == 1).all()
    assert (_vm("sigmoid", -big[2:]) == 0).all()
    assert np.isnan(ev("sigmoid", nan)).all()
    # tanh: odd (signed zeros kept), x itself for subnormals, ±1 at and past saturation.
    z = ev("tanh", 0.0, -0.0)
    assert z.tolist() == [0.0, 0.0] and not np.signbit(z[0]) and np.signbit(z[1])
    np.testing.assert_array_equal(_vm("tanh", sub[:3]), sub[:3])
    np.testing.assert_array_equal(_vm("tanh", -sub[:3]), -sub[:3])
    assert (_vm("tanh", big) == 1).all() and (_vm("tanh", -big) == -1).all()
    assert ev("tanh", inf, -inf).tolist() == [1.0, -1.0]
    sat = 9.02 if dtype == np.float32 else 19.07  # the first points where tanh rounds to 1
    assert (ev("tanh", sat, sat + 0.5, 25.0) == 1).all()
    assert np.isnan(ev("tanh", nan)).all()
    # erf: odd, 2x/√π for subnormals (within an ulp), ±1 at the infinities and saturation.
    z = ev("erf", 0.0, -0.0)
    assert z.tolist() == [0.0, 0.0] and not np.signbit(z[0]) and np.signbit(z[1])
    e = _vm("erf", sub[:3])
    assert (np.abs(e.astype(np.longdouble) - sub[:3] * (2 / np.sqrt(np.longdouble(np.pi))))
            <= np.finfo(dtype).smallest_subnormal).all()
    assert ev("erf", inf, -inf, 6.0, -6.0, 30.0).tolist() == [1.0, -1.0, 1.0, -1.0, 1.0]
    assert np.isnan(ev("erf", nan)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["exp", "sigmoid", "tanh", "erf"])
def test_tails_match_full_vectors(fn, dtype):
    """An element's bits do not depend on its position: the tail of a short or odd-length
    call (masked vector) and a shifted call give what the full-vector path gives."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-8, 8, 211).astype(dtype)
    full = _vm(fn, x)
    for n in (1, 3, 7, 8, 9, 17, 31, 101, 211):
        np.testing.assert_array_equal(_vm(fn, x[:n].copy()), full[:n])
    for shift in (1, 3, 5):
        np.testing.assert_array_equal(_vm(fn, x[shift:].copy()), full[shift:])
    one = np.array([_vm(fn, x[i:i + 1].copy())[0] for i in range(23)], dtype=dtype)
    np.testing.assert_array_equal(one, full[:23])


ACTS = {"sigmoid": 3, "tanh": 4, "gelu": 5, "gelu_tanh": 6}


def _act(x, code):
    y = np.empty_like(x)
    _core.act_forward(y, x, code, 0.0)
    return y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(ACTS))
@pytest.mark.parametrize("shape", [(5, 7, 13), (67, 96, 81)])
def test_gemm_epilogue_matches_elementwise_kernel(name, dtype, shape):
    """The GEMM's fused epilogue applies the activation one element at a time (vmath's
    one-lane call); the elementwise kernel runs whole vectors: the same bits."""
    batch, n_in, n_out = shape
    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch, n_in)).astype(dtype)
    w = (rng.standard_normal((n_out, n_in)) / 2).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    y = np.empty((batch, n_out), dtype=dtype)
    z = np.empty_like(y)
    _core.dense_forward(_core.Workspace(), y, x, w, b, z, ACTS[name], 0.0)
    np.testing.assert_array_equal(y, _act(z, ACTS[name]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(ACTS))
def test_activations_independent_of_threads(name, dtype):
    rng = np.random.default_rng(3)
    x = rng.uniform(-9, 9, 300_007).astype(dtype)
    dy = rng.standard_normal(x.size).astype(dtype)
    outs = []
    for t in (1, 2, 3):
        with num_threads(t):
            y = _act(x, ACTS[name])
            dx = np.empty_like(x)
            saved = y if name in ("sigmoid", "tanh") else x
            _core.act_backward(dx, dy, saved, ACTS[name], 0.0)
            outs.append((y, dx))
    for y, dx in outs[1:]:
        np.testing.assert_array_equal(y, outs[0][0])
        np.testing.assert_array_equal(dx, outs[0][1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_and_derivatives_against_libm_formulas(dtype):
    """GELU, tanh-GELU and their derivatives against the same formulas on libm in long
    double: each is a few roundings of vmath results, so a few ulps of its own value, or of
    its largest term where the formula cancels (GELU's 1 + erf for x ≪ 0)."""
    x = np.concatenate([np.linspace(-12, 12, 48_001), np.linspace(-1, 1, 2001)]).astype(dtype)
    xl = x.astype(np.longdouble)
    erf = np.asarray(_erf((x.astype(np.float64) / math.sqrt(2))), dtype=np.float64).astype(np.longdouble)
    sig = lambda v: np.where(v >= 0, 1 / (1 + np.exp(-np.abs(v))), np.exp(-np.abs(v)) / (1 + np.exp(-np.abs(v))))  # noqa: E731
    u = np.sqrt(2 / np.longdouble(np.pi)) * (xl + 0.044715 * xl**3)
    s = sig(2 * u)
    du = np.sqrt(2 / np.longdouble(np.pi)) * (1 + 3 * 0.044715 * xl**2)
    pdf = np.exp(-xl * xl / 2) / np.sqrt(2 * np.longdouble(np.pi))
    want = {
        ("gelu", "f"): (0.5 * xl * (1 + erf), np.abs(xl)),
        ("gelu", "b"): (0.5 * (1 + erf) + xl * pdf, 1 + np.abs(xl * pdf)),
        ("gelu_tanh", "f"): (xl * s, np.abs(xl)),
        ("gelu_tanh", "b"): (s + 2 * xl * s * (1 - s) * du, 1 + np.abs(2 * xl * s * du)),
    }
    eps = np.finfo(dtype).eps
    # GELU's derivative rounds x² before exp: an extra x²·eps relative error in φ(x); the
    # tanh-GELU derivative's 1 − σ(2u) is an ulp of 1 off, times 2x·σ·u'.
    for (name, kind), (ref, scale) in want.items():
        if kind == "f":
            got = _act(x, ACTS[name])
        else:
            got = np.empty_like(x)
            _core.act_backward(got, np.ones_like(x), x, ACTS[name], 0.0)
        tol = 8 * eps * scale + (np.abs(xl * pdf) * xl * xl * eps if kind == "b" else 0)
        tol = tol + np.finfo(dtype).smallest_subnormal
        err = np.abs(got.astype(np.longdouble) - ref)
        worst = int(np.argmax(err / tol))
        assert err[worst] <= tol[worst], f"{name} {kind} at x={x[worst]!r}: {got[worst]!r} vs {ref[worst]!r}"


def test_kernel_set_follows_the_gemm():
    assert _core.vmath_kernel_name() == ("portable" if _core.gemm_kernel_name() == "portable" else "avx2")
    if os.environ.get("FASTNN_KERNELS") == "portable":
        assert _core.vmath_kernel_name() == "portable"


@pytest.mark.skipif(os.environ.get("FASTNN_KERNELS") == "portable", reason="already the portable run")
def test_portable_kernels_in_a_subprocess():
    """The whole module again with FASTNN_KERNELS=portable (the other kernel set)."""
    if _core.gemm_kernel_name() == "portable":
        pytest.skip("the portable set is the one in use: this run covered it")
    tests = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(tests)
    env = dict(os.environ, FASTNN_KERNELS="portable",
               PYTHONPATH=os.pathsep.join([root, env_path] if (env_path := os.environ.get("PYTHONPATH")) else [root]))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__],
                         cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
