"""The GEMM's static and dynamic schedules give the same bits for every thread count, also when
one thread is held back (the test hook `_gemm_test_delay` makes it sleep before each tile it
takes, so the others claim its share): edge tiles, transposes, strided C, alpha/beta, float32 and
float64, the narrow (dot) path and fnn_gemm_pair's dX/dW."""
import contextlib

import numpy as np
import pytest

from fastnn import _core, ops
from conftest import num_threads
from test_ops_linalg import assert_product_close, layer_data, rand

THREADS = (1, 2, 3, 4)


@contextlib.contextmanager
def schedule(name, delay_tid=-1, delay_us=0):
    before = _core.gemm_schedule()
    _core.set_gemm_schedule(name)
    _core._gemm_test_delay(delay_tid, delay_us)
    try:
        yield
    finally:
        _core._gemm_test_delay(-1, 0)
        _core.set_gemm_schedule(before)


def _dynamic_available():
    before = _core.gemm_schedule()
    try:
        _core.set_gemm_schedule("dynamic")  # a serial build (no OpenMP) has only the static one
    except ValueError:
        return False
    _core.set_gemm_schedule(before)
    return True


# (schedule, thread held back, microseconds before each of its tiles)
SCHEDULES = [("static", -1, 0), ("static", 1, 200)]
if _dynamic_available():
    SCHEDULES += [("dynamic", -1, 0), ("dynamic", 0, 300), ("dynamic", 1, 300)]


def run_all(fn):
    """fn() under every schedule and thread count: list of (label, result)."""
    out = []
    for name, tid, us in SCHEDULES:
        for t in THREADS:
            with num_threads(t), schedule(name, tid, us):
                out.append(((name, tid, t), fn()))
    return out


def assert_all_equal(results):
    (_, first), rest = results[0], results[1:]
    for label, got in rest:
        for g, f in zip(got if isinstance(got, tuple) else (got,), first if isinstance(first, tuple) else (first,)):
            np.testing.assert_array_equal(g, f, err_msg=f"schedule/thread/team {label}")


def shapes(dtype):
    b = _core.gemm_block_sizes()[np.dtype(dtype).name]
    mr, nr, mc, kc = b["MR"], b["NR"], b["MC"], b["KC"]
    # Each past the threading threshold (m·n·k > 2^21) unless noted.
    return [
        (97, 131, 173),                         # primes, a few tiles
        (mc + 1, 12 * nr + 1, 67),              # one row past a row block, ragged last column group
        (2 * mc + mr - 1, 9 * nr - 1, kc + 1),  # K block edge: a thin second K block
        (67, 10 * nr, 2 * kc - 1),
        (17, 16 * nr + 3, 1201),                # one row block, edge rows
        (1000, 10, 311),                        # narrow: the dot path (row chunks) in float32
        (3, 200, 5000),                         # few rows: the direct loop (one thread)
        (1, 1, 1),
    ]


def test_schedule_switch_and_hook_validate():
    assert _core.gemm_schedule() in ("dynamic", "static")
    with pytest.raises(ValueError, match="name"):
        _core.set_gemm_schedule("guided")
    with pytest.raises(ValueError, match="microseconds"):
        _core._gemm_test_delay(0, -1)


@pytest.mark.parametrize("trans", [(False, False), (False, True), (True, False), (True, True)])
def test_products_bitwise_across_schedules_and_threads(trans, dtype, rng):
    ta, tb = trans
    for m, n, k in shapes(dtype):
        a = rand(rng, (k, m) if ta else (m, k), dtype)
        b = rand(rng, (n, k) if tb else (k, n), dtype)
        c0 = rand(rng, (m, n), dtype)

        def product():
            c = c0.copy()
            return ops.matmul(a, b, trans_a=ta, trans_b=tb, out=c, alpha=1.5, beta=-0.5)

        results = run_all(product)
        assert_all_equal(results)
        opa, opb = (a.T if ta else a), (b.T if tb else b)
        assert_product_close(results[0][1], 1.5 * (opa @ opb) - 0.5 * c0, 1.5 * opa, opb, dtype,
                             extra=0.5 * c0)


def test_strided_output_and_beta_zero_ignores_nan(dtype, rng):
    m, n, k = 131, 211, 300
    a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)

    def product():
        big = np.full((m, 2 * n), np.nan, dtype)
        c = big[:, ::2]  # column stride 2: the merge path of every tile; beta = 0 never reads NaN
        ops.matmul(a, b, out=c, alpha=-2.0, beta=0.0)
        return c.copy()

    results = run_all(product)
    assert_all_equal(results)
    assert not np.isnan(results[0][1]).any()
    assert_product_close(results[0][1], -2.0 * (a @ b), -2.0 * a, b, dtype)


def test_fused_linear_epilogue_bitwise(dtype, rng):
    x, w, bias = layer_data(rng, 200, 300, 257, dtype)

    def layer():
        z = np.empty((200, 257), dtype)
        y = ops.linear(x, w, bias, activation="tanh", preact_out=z)
        return y, z

    assert_all_equal(run_all(layer))


@pytest.mark.parametrize("batch,n_in,n_out", [(64, 300, 260), (256, 784, 130), (3, 1024, 300)])
def test_pair_dx_dw_bitwise(batch, n_in, n_out, dtype, rng):
    """linear_backward's dX and dW (fnn_gemm_pair: one tile pool for both in the dynamic
    schedule, halves of the team in the static one); dW accumulates."""
    x, w, _ = layer_data(rng, batch, n_in, n_out, dtype)
    dy = rand(rng, (batch, n_out), dtype)
    gw0 = rand(rng, (n_out, n_in), dtype)

    def backward():
        gw = gw0.copy()
        gx = ops.linear_backward(dy, x, w, gw)
        return gx, gw

    results = run_all(backward)
    assert_all_equal(results)
    gx, gw = results[0][1]
    assert_product_close(gx, dy @ w, dy, w, dtype)
    assert_product_close(gw, gw0 + dy.T @ x, dy.T, x, dtype, extra=gw0)


def test_delay_hook_holds_a_thread_back(rng):
    """The hook really delays a thread (else the tests above would not test a skewed schedule):
    in a 2-thread static product thread 1 sleeps before each of its row blocks, and the hook
    counts the sleeps it took (no clock involved)."""
    if _core.max_num_threads() < 2:
        pytest.skip("needs an OpenMP build")
    a, b = rand(rng, (512, 512), np.float32), rand(rng, (512, 512), np.float32)
    c = np.empty((512, 512), np.float32)
    with num_threads(2), schedule("static", 1, 1000):
        ops.matmul(a, b, out=c)
        assert _core._gemm_test_delays() >= 1


def test_bench_contended_section(tmp_path, capsys):
    """`fastnn bench --only contended` runs that section alone (no kernel table), both schedules,
    and its ratios are the ones its times give."""
    import json

    from fastnn.cli import main

    path = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--no-torch", "--only", "contended", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "## Contended" in out and "## Kernels" not in out
    d = json.loads(path.read_text())
    assert d["results"] == []
    rows = d["contended"]
    assert {r["schedule"] for r in rows} == ({"static", "dynamic"} if _dynamic_available() else {"static"})
    for r in rows:
        t = r["times_s"]
        assert r["match"] is True
        assert r["interleaved_vs_numpy"] == pytest.approx(t["interleaved"]["numpy"] / t["interleaved"]["fastnn"])
        assert r["busy_vs_idle"] == pytest.approx(t["idle"]["fastnn"] / t["busy"]["fastnn"])
        assert r["busy_vs_numpy"] == pytest.approx(t["busy"]["numpy"] / t["busy"]["fastnn"])
    assert _core.gemm_schedule() in ("dynamic", "static")  # the section restores the schedule


def test_busy_core_spins_pinned_and_stops():
    import os
    import time

    from fastnn.bench.contended import busy_core

    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    t0 = os.times()
    with busy_core() as cpu:
        assert cpu in os.sched_getaffinity(0)
        time.sleep(0.2)
    spent = os.times()
    # The child's CPU time is counted once it has been waited for: it really spun.
    assert spent.children_user + spent.children_system - t0.children_user - t0.children_system > 0.05
