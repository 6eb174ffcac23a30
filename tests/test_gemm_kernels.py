"""Every micro-kernel set this CPU can run (forced with set_gemm_kernels) gives products, fused
epilogues and backward passes close to the reference at its own register/cache block edges; the
dispatch introspection and the FASTNN_KERNELS override behave."""
import os
import subprocess
import sys

import numpy as np
import pytest

from fastnn import _core, ops, reference
from conftest import num_threads
from test_ops_linalg import ACTS, FROM_Z, act_tol, assert_product_close, layer_data, rand

KERNELS = _core.gemm_available_kernels()


@pytest.fixture(params=KERNELS)
def kernels(request):
    before = _core.gemm_kernel_name()
    _core.set_gemm_kernels(request.param)
    try:
        yield request.param
    finally:
        _core.set_gemm_kernels(before)


def edge_shapes(dtype):
    b = _core.gemm_block_sizes()[np.dtype(dtype).name]
    mr, nr, kc = b["MR"], b["NR"], b["KC"]
    shapes = []
    for d in (-1, 0, 1):
        shapes += [(mr + d, nr + d, 33), (2 * mr + d, 3 * nr - d, kc + d), (mr * 5, nr * 2 + d, 2 * kc + d)]
    shapes += [(b["MC"] + 1, nr + 1, 40), (7, 5, 3), (1, 1, 1)]
    return shapes


@pytest.mark.parametrize("trans", [(False, False), (False, True), (True, False), (True, True)])
def test_matmul_each_kernel(kernels, trans, dtype, rng):
    assert _core.gemm_kernel_name() == kernels
    ta, tb = trans
    for m, n, k in edge_shapes(dtype):
        a = rand(rng, (k, m) if ta else (m, k), dtype)
        b = rand(rng, (n, k) if tb else (k, n), dtype)
        c0 = rand(rng, (m, n), dtype)
        c = c0.copy()
        ops.matmul(a, b, trans_a=ta, trans_b=tb, out=c, alpha=1.5, beta=-0.5)
        expect = reference.matmul(a, b, trans_a=ta, trans_b=tb, out=c0.copy(), alpha=1.5, beta=-0.5)
        assert_product_close(c, expect, 1.5 * (a.T if ta else a), b.T if tb else b, dtype, extra=0.5 * c0)


@pytest.mark.parametrize("activation", ACTS)
def test_linear_each_kernel(kernels, activation, dtype, rng):
    b = _core.gemm_block_sizes()[np.dtype(dtype).name]
    batch, n_in, n_out = 3 * b["MR"] + 1, b["KC"] + 5, 2 * b["NR"] + 3
    x, w, bias = layer_data(rng, batch, n_in, n_out, dtype)
    z = np.empty((batch, n_out), dtype)
    y = ops.linear(x, w, bias, activation=activation, negative_slope=0.3, preact_out=z)
    y_ref = reference.linear(x, w, bias, activation=activation, negative_slope=0.3)
    np.testing.assert_allclose(y, y_ref, **act_tol(dtype))
    np.testing.assert_allclose(z, reference.linear(x, w, bias), **act_tol(dtype))
    dy = rand(rng, (batch, n_out), dtype)
    saved = z if activation in FROM_Z else y
    gw, gb = np.ones_like(w), np.ones_like(bias)
    gw_ref, gb_ref = np.ones_like(w), np.ones_like(bias)
    gx = ops.linear_backward(dy, x, w, gw, gb, activation=activation, saved=saved, negative_slope=0.3)
    gx_ref = reference.linear_backward(dy, x, w, gw_ref, gb_ref, activation=activation, saved=saved,
                                       negative_slope=0.3)
    for got, want in ((gx, gx_ref), (gw, gw_ref), (gb, gb_ref)):
        np.testing.assert_allclose(got, want, rtol=5e-4 if dtype == np.float32 else 1e-10,
                                   atol=5e-4 if dtype == np.float32 else 1e-10)


def test_kernel_threads_bitwise(kernels, dtype, rng):
    a = rand(rng, (300, 500), dtype)
    b = rand(rng, (500, 200), dtype)
    with num_threads(1):
        c1 = ops.matmul(a, b)
    with num_threads(2):
        c2 = ops.matmul(a, b)
    np.testing.assert_array_equal(c1, c2)


def test_relu_epilogue_keeps_nan(kernels, dtype, rng):
    x, w, bias = layer_data(rng, 40, 50, 70, dtype)
    x[3, 7] = np.nan
    y = ops.linear(x, w, bias, activation="relu")
    assert np.isnan(y[3]).all() and not np.isnan(np.delete(y, 3, axis=0)).any()


def test_introspection():
    assert _core.gemm_kernel_name() in KERNELS
    assert "portable" in KERNELS
    bs = _core.gemm_block_sizes()
    for key in ("float32", "float64"):
        b = bs[key]
        assert b["MC"] % b["MR"] == 0 and b["NC"] % b["NR"] == 0 and b["KC"] > 0
    with pytest.raises(ValueError, match="^name: expected one of"):
        _core.set_gemm_kernels("sse9")
    for name in ("avx512", "avx2"):
        if name not in KERNELS:
            with pytest.raises(ValueError, match="^name: this CPU cannot run"):
                _core.set_gemm_kernels(name)


def test_environment_forces_portable():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, FASTNN_KERNELS="portable", PYTHONPATH=root)
    out = subprocess.run([sys.executable, "-c", "from fastnn import _core; print(_core.gemm_kernel_name())"],
                         env=env, capture_output=True, text=True, timeout=60, cwd=root)
    assert out.stdout.strip() == "portable", out.stderr


@pytest.mark.parametrize("n", [2, 10, 17, 40])
def test_direct_and_packed_a_agree_bitwise(kernels, n, dtype, rng):
    """Narrow products read a row-major A in place instead of packing it; both paths must
    perform the same operations in the same order (so 1 and N threads agree too)."""
    a = rand(rng, (301, 700), dtype)
    b = rand(rng, (700, n), dtype)
    direct = ops.matmul(a, b)                                   # row-major A: read in place
    packed = ops.matmul(np.asfortranarray(a).T, b, trans_a=True)  # column-major A: packed
    np.testing.assert_array_equal(direct, packed)
    with num_threads(1):
        one = ops.matmul(a, b)
    np.testing.assert_array_equal(direct, one)
    assert_product_close(direct, reference.matmul(a, b), a, b, dtype)


def ragged(full):
    """Remainders of a last panel against tiles `full` wide: each narrower tile shape's
    edges (1, 2, 4, 8, 16 and one past) and one short of full."""
    return sorted({r for r in (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, full - 1) if 0 < r < full})


@pytest.mark.parametrize("trans", [(False, False), (True, True)])
def test_ragged_tiles_bitwise(kernels, trans, dtype, rng):
    """A ragged last panel runs on a narrower tile (8 or 4 rows, 16 or 8 columns): every
    element is still summed over k in the same order, so the product equals, bit for bit,
    the same rows and columns computed inside a larger product of whole tiles."""
    b = _core.gemm_block_sizes()[np.dtype(dtype).name]
    mr, nr, k = b["MR"], b["NR"], 211  # k: every product takes the packed loops
    ta, tb = trans
    big_a = rand(rng, (3 * mr, k), dtype)
    big_b = rand(rng, (k, 3 * nr), dtype)
    whole = ops.matmul(big_a, big_b)
    for rm in ragged(mr):
        for rn in ragged(nr):
            m, n = 2 * mr + rm, 2 * nr + rn
            a = np.ascontiguousarray(big_a[:m].T).T if ta else big_a[:m].copy()
            bb = np.ascontiguousarray(big_b[:, :n].T).T if tb else big_b[:, :n].copy()
            np.testing.assert_array_equal(ops.matmul(a, bb), whole[:m, :n], err_msg=f"{m}x{n}x{k}")


def test_simd_packers_selftest():
    """The transposing packers of every width (AVX-512's included) match the plain loop."""
    result = _core.gemm_selftest()
    if result == -1:
        pytest.skip("no AVX2 on this CPU")
    assert result == 0


def narrow_shapes(dtype):
    """Products narrow enough for the blocked dot-product path (n·itemsize < 64) and its
    3-row × 4-column blocks: every remainder, the 48-row chunk edge, SIMD-width tails of k,
    and (613 rows, k = 1025) one big enough to be split between threads."""
    n_max = 64 // np.dtype(dtype).itemsize - 1
    ks = (1, 7, 8, 9, 31, 300, 1025)
    return [(m, n, k) for m, n in ((1, 1), (2, 3), (3, 4), (4, 5), (47, n_max), (48, n_max - 2), (49, 6),
                                   (301, 2), (97, n_max - 1), (613, n_max)) for k in ks]


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-0.5, 0.75)])
def test_narrow_products(kernels, alpha, beta, dtype, rng):
    """A·Bᵀ with few columns (a classifier head) on every kernel set, against the reference,
    into contiguous and strided outputs, bitwise equal at 1 and 2 threads."""
    shapes = narrow_shapes(dtype)
    assert max(m * n * k for m, n, k in shapes) >= _core.parallel_thresholds()["gemm"]
    for m, n, k in shapes:
        a = rand(rng, (m, k), dtype)
        w = rand(rng, (n, k), dtype)
        c0 = rand(rng, (m, n), dtype)
        expect = reference.matmul(a, w, trans_b=True, out=c0.copy(), alpha=alpha, beta=beta)
        c1, c2 = c0.copy(), c0.copy()
        strided = np.zeros((m, 2 * n), dtype)[:, ::2]
        strided[...] = c0
        with num_threads(1):
            ops.matmul(a, w, trans_b=True, out=c1, alpha=alpha, beta=beta)
        with num_threads(2):
            ops.matmul(a, w, trans_b=True, out=c2, alpha=alpha, beta=beta)
            ops.matmul(a, w, trans_b=True, out=strided, alpha=alpha, beta=beta)
        assert_product_close(c1, expect, alpha * a, w.T, dtype, extra=beta * c0)
        np.testing.assert_array_equal(c1, c2)
        np.testing.assert_array_equal(c1, strided)


@pytest.mark.parametrize("activation", ACTS)
def test_narrow_linear_epilogues(kernels, activation, dtype, rng):
    """A dense layer with 10 outputs (the head of an MLP): bias, activation and saved
    pre-activation applied on the narrow path match the reference; NaN in a row stays there."""
    x, w, bias = layer_data(rng, 131, 517, 7 if dtype == np.float64 else 10, dtype)
    z = np.empty((131, w.shape[0]), dtype)
    y = ops.linear(x, w, bias, activation=activation, negative_slope=0.3, preact_out=z)
    np.testing.assert_allclose(y, reference.linear(x, w, bias, activation=activation, negative_slope=0.3),
                               **act_tol(dtype))
    np.testing.assert_allclose(z, reference.linear(x, w, bias), **act_tol(dtype))
    x[5, 516] = np.nan  # in the masked tail of k (517 = 64·8 + 5)
    y = ops.linear(x, w, bias, activation=activation, negative_slope=0.3)
    assert np.isnan(y[5]).all() and not np.isnan(np.delete(y, 5, axis=0)).any()


def test_fma_peak_probe_runs_on_each_kernel_set(kernels):
    """The FMA-ceiling probe (the benchmarks' yardstick) runs every set's chains on the team and
    reports a positive finite rate; bad durations are refused."""
    with num_threads(2):
        gflops = _core.fma_peak_gflops(0.01)
    assert np.isfinite(gflops) and gflops > 0
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="^seconds: expected a positive duration"):
            _core.fma_peak_gflops(bad)
