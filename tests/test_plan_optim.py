"""Compiled training plans with RMSprop and Adagrad against the PyTorch-style loop.

The plan runs the optimizers' own kernels on their own state buffers, so wherever the plan's
products are the eager loop's (the GEMM path) parameters and state are equal bit for bit;
on the direct small-layer path they agree to float rounding (as for SGD and Adam).
"""
from __future__ import annotations

import io
import itertools

import numpy as np
import pytest

import fastnn
from fastnn import _core, nn
from fastnn import plan as fplan
from fastnn.optim import SGD, Adagrad, RMSprop

from conftest import num_threads
from test_plan import assert_same_params, eager_step, make_data, make_net, params_of, step_both

RMSPROP_OPTIONS = [dict(centered=c, momentum=m, weight_decay=w, maximize=x)
                   for c, m, w, x in itertools.product([False, True], [0.0, 0.9], [0.0, 1e-2], [False, True])]
ADAGRAD_OPTIONS = [dict(lr_decay=d, weight_decay=w, initial_accumulator_value=a, maximize=x)
                   for d, w, a, x in itertools.product([0.0, 0.05], [0.0, 1e-2], [0.0, 0.1], [False, True])]
CASES = ([("rmsprop", o) for o in RMSPROP_OPTIONS] + [("adagrad", o) for o in ADAGRAD_OPTIONS])


def case_id(case):
    name, opts = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in opts.items())


def make_opt(name, params, opts):
    if name == "rmsprop":
        return RMSprop(params, lr=3e-3, alpha=0.9, eps=1e-6, **opts)
    return Adagrad(params, lr=0.05, eps=1e-8, **opts)


def setup(sizes, name, opts, dtype, act="tanh", seed=0):
    model = make_net(sizes, act, dtype, seed)
    return model, nn.CrossEntropyLoss(), make_opt(name, model.parameters(), opts)


# Every product of these takes the GEMM's packed path (> 262144 multiply-adds) for batches of
# 44 and 64, so the plan calls the eager loop's kernels in its order: bit for bit.
GEMM_SIZES, GEMM_BATCH = [60, 130, 90, 80], 64
# The direct small-layer loops (agree to rounding): the tiny path and a mid-sized one.
DIRECT = [([4, 3, 2], 4), ([30, 70, 5], 40)]
# Adam and RMSprop divide each step by a running root mean square: a last-bit difference in a
# near-zero gradient (the eager loop's packed products and the plan's direct loops round
# differently) can move a weight by up to ~2·lr and its state with it. Seen in the -O1
# sanitizer build on the 30-70-5 net: Adam 2.8e-5 on one weight of 2100, centered RMSprop's
# momentum buffer 1.2e-3 relative on one element. Everything else agrees to rounding.
NORMALISED_TOL = dict(rtol=5e-3, atol=1e-4)


def assert_same_state(o1, o2, exact, dtype=None, tol=None):
    s1, s2 = o1.state_dict(), o2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    assert s1["state"].keys() == s2["state"].keys()
    for k in s1["state"]:
        a, b = s1["state"][k], s2["state"][k]
        assert a.keys() == b.keys(), (a.keys(), b.keys())
        assert a["step"] == b["step"]
        for name in a:
            if exact:
                np.testing.assert_array_equal(b[name], a[name], err_msg=name)
            else:
                t = tol or (dict(rtol=1e-3, atol=1e-5) if np.dtype(dtype) == np.float32 else dict(rtol=1e-9, atol=1e-12))
                np.testing.assert_allclose(b[name], a[name], err_msg=name, **t)


def run_steps(sizes, batch, name, opts, dtype, steps=4, fused=False):
    X, y = make_data(batch * steps, sizes, "ce", dtype)
    return step_both(setup(sizes, name, opts, dtype), setup(sizes, name, opts, dtype), X, y, batch, steps,
                     dtype, fused)


# --- every option combination ------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_gemm_path_is_bitwise_equal_to_eager(case, dtype):
    name, opts = case
    m1, o1, m2, o2 = run_steps(GEMM_SIZES, GEMM_BATCH, name, opts, dtype)
    assert_same_params(params_of(m1), params_of(m2), dtype, exact=True)
    assert_same_state(o1, o2, exact=True)
    assert o2.state_dict()["state"][0]["step"] == 4.0


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_direct_paths_agree_with_eager(case, dtype):
    name, opts = case
    for sizes, batch in DIRECT:
        m1, o1, m2, o2 = run_steps(sizes, batch, name, opts, dtype)
        if name in ("adam", "rmsprop") and sizes[1] == 70 and np.dtype(dtype) == np.float32:
            for pa, pb in zip(params_of(m1), params_of(m2)):
                np.testing.assert_allclose(pa, pb, **NORMALISED_TOL)
            assert_same_state(o1, o2, exact=False, dtype=dtype, tol=NORMALISED_TOL)
        else:
            assert_same_params(params_of(m1), params_of(m2), dtype)
            assert_same_state(o1, o2, exact=False, dtype=dtype)


def test_state_is_created_as_the_eager_optimizer_creates_it():
    """RMSprop's buffers appear at the first step, only those its options need; Adagrad's sum
    exists from construction (filled with initial_accumulator_value)."""
    for opts, keys in ((dict(), {"step", "square_avg"}),
                       (dict(momentum=0.5), {"step", "square_avg", "momentum_buffer"}),
                       (dict(centered=True), {"step", "square_avg", "grad_avg"})):
        m, l, o = setup([3, 4, 2], "rmsprop", opts, np.float32)
        assert o.state_dict()["state"] == {}
        X, y = make_data(4, [3, 4, 2], "ce", np.float32)
        fplan.compile(m, l, o).step(X, y)
        assert set(o.state_dict()["state"][0]) == keys
    m, l, o = setup([3, 4, 2], "adagrad", dict(initial_accumulator_value=0.25), np.float64)
    before = o.state_dict()["state"]
    assert before[0]["step"] == 0.0 and (before[0]["sum"] == 0.25).all()
    fplan.compile(m, l, o).step(*make_data(4, [3, 4, 2], "ce", np.float64))
    after = o.state_dict()["state"]
    assert after[0]["step"] == 1.0 and (after[0]["sum"] > 0.25).any()


# --- epochs, fused, threads ---------------------------------------------------------------------------
EPOCH_CASES = [("rmsprop", dict(centered=True, momentum=0.9, weight_decay=1e-2)),
               ("rmsprop", dict(maximize=True)),
               ("adagrad", dict(lr_decay=0.05, weight_decay=1e-2, initial_accumulator_value=0.1)),
               ("adagrad", dict(maximize=True))]


@pytest.mark.parametrize("case", EPOCH_CASES, ids=case_id)
def test_epoch_matches_eager_loop(case, dtype):
    """Shuffled epochs with a short last batch (44 rows): on the GEMM path bit for bit."""
    name, opts = case
    for sizes, bs, n, exact in ((GEMM_SIZES, GEMM_BATCH, 300, True), ([5, 9, 3], 8, 53, False)):
        X, y = make_data(n, sizes, "ce", dtype)
        m1, l1, o1 = setup(sizes, name, opts, dtype)
        m2, l2, o2 = setup(sizes, name, opts, dtype)
        plan = fplan.compile(m2, l2, o2)
        for epoch in range(2):
            perm = np.random.default_rng(epoch).permutation(n)
            ref = [eager_step(m1, l1, o1, X[perm[s:s + bs]], y[perm[s:s + bs]]) for s in range(0, n, bs)]
            losses = plan.epoch(X, y, batch_size=bs, shuffle=True, seed=epoch)
            np.testing.assert_allclose(losses, ref, rtol=1e-5)
        assert_same_params(params_of(m1), params_of(m2), dtype, exact=exact)
        assert_same_state(o1, o2, exact=exact, dtype=dtype)
        assert o2.state_dict()["state"][0]["step"] == 2.0 * -(-n // bs)


@pytest.mark.parametrize("case", EPOCH_CASES, ids=case_id)
def test_fused_takes_the_unfused_update_and_matches_eager(case, dtype):
    """fused=True: RMSprop and Adagrad update each layer with their kernels after its dW
    product (written to .grad), giving the eager loop's bits on the GEMM path."""
    name, opts = case
    m1, o1, m2, o2 = run_steps(GEMM_SIZES, GEMM_BATCH, name, opts, dtype, steps=3, fused=True)
    assert_same_params(params_of(m1), params_of(m2), dtype, exact=True)
    assert_same_state(o1, o2, exact=True)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p2.grad, p1.grad)
    # and on the tiny path (where fused has no effect)
    m1, o1, m2, o2 = run_steps([4, 3, 2], 4, name, opts, dtype, steps=3, fused=True)
    assert_same_params(params_of(m1), params_of(m2), dtype)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("name", ["rmsprop", "adagrad"])
def test_bitwise_identical_across_thread_counts(name, fused, dtype):
    sizes = [200, 300, 260, 10]  # products and the arena (~141k elements) above the parallel thresholds
    X, y = make_data(128 * 2, sizes, "ce", dtype)
    opts = dict(centered=True, momentum=0.9, weight_decay=1e-3) if name == "rmsprop" else \
        dict(lr_decay=0.01, weight_decay=1e-3, initial_accumulator_value=0.1)
    results = []
    for t in (1, 2):
        with num_threads(t):
            m, l, o = setup(sizes, name, opts, dtype, act="gelu")
            plan = fplan.compile(m, l, o, fused=fused)
            plan.epoch(X, y, batch_size=128, shuffle=True, seed=5)
            plan.step(X[:100], y[:100])
            results.append((params_of(m), o))
    assert_same_params(results[0][0], results[1][0], dtype, exact=True)
    assert_same_state(results[0][1], results[1][1], exact=True)


# --- the optimizer's state: shared with the eager loop and checkpoints ---------------------------------
@pytest.mark.parametrize("sizes,batch", [([5, 8, 3], 5), (GEMM_SIZES, GEMM_BATCH)])
@pytest.mark.parametrize("case", EPOCH_CASES[::2], ids=case_id)
def test_interleaving_with_eager_steps_and_lr_changes(case, sizes, batch):
    name, opts = case
    dtype = np.float32
    exact = sizes == GEMM_SIZES
    X, y = make_data(batch * 8, sizes, "ce", dtype)
    m1, l1, o1 = setup(sizes, name, opts, dtype)
    m2, l2, o2 = setup(sizes, name, opts, dtype)
    plan = fplan.compile(m2, l2, o2)
    for s in range(8):
        xb, yb = X[s * batch:(s + 1) * batch], y[s * batch:(s + 1) * batch]
        if s == 4:
            for o in (o1, o2):
                o.param_groups[0]["lr"] *= 0.5
                o.param_groups[0]["weight_decay"] = 0.0
        eager_step(m1, l1, o1, xb, yb)
        if s % 3 == 1:
            eager_step(m2, l2, o2, xb, yb)
        else:
            plan.step(xb, yb)
    assert_same_params(params_of(m1), params_of(m2), dtype, exact=exact)
    assert_same_state(o1, o2, exact=exact, dtype=dtype)
    assert o2.state_dict()["state"][0]["step"] == 8.0


@pytest.mark.parametrize("case", EPOCH_CASES, ids=case_id)
def test_state_dict_round_trip(case, dtype, tmp_path):
    """A checkpoint taken after plan steps restores into a fresh model and optimizer whose plan
    continues exactly as the original (and a checkpoint of eager steps continues in a plan)."""
    name, opts = case
    sizes, batch = GEMM_SIZES, GEMM_BATCH
    X, y = make_data(batch * 6, sizes, "ce", dtype)
    batches = [(X[s * batch:(s + 1) * batch], y[s * batch:(s + 1) * batch]) for s in range(6)]
    m1, l1, o1 = setup(sizes, name, opts, dtype)
    p1 = fplan.compile(m1, l1, o1)
    for xb, yb in batches[:3]:
        p1.step(xb, yb)
    fastnn.save({"model": m1.state_dict(), "opt": o1.state_dict()}, tmp_path / "ckpt.fnn")
    ckpt = fastnn.load(tmp_path / "ckpt.fnn")
    m2, l2, o2 = setup(sizes, name, opts, dtype, seed=9)
    m2.load_state_dict(ckpt["model"])
    o2.load_state_dict(ckpt["opt"])
    assert_same_state(o1, o2, exact=True)
    p2 = fplan.compile(m2, l2, o2)
    m3, l3, o3 = setup(sizes, name, opts, dtype, seed=9)  # the eager loop from the same checkpoint
    m3.load_state_dict(ckpt["model"])
    o3.load_state_dict(ckpt["opt"])
    for xb, yb in batches[3:]:
        p1.step(xb, yb)
        p2.step(xb, yb)
        eager_step(m3, l3, o3, xb, yb)
    for m, o in ((m2, o2), (m3, o3)):
        assert_same_params(params_of(m1), params_of(m), dtype, exact=True)
        assert_same_state(o1, o, exact=True)


def test_adagrad_without_its_sum_is_refused_like_the_eager_step():
    m, l, o = setup([3, 4, 2], "adagrad", {}, np.float32)
    sd = o.state_dict()
    sd["state"] = {}
    o.load_state_dict(sd)  # a checkpoint without Adagrad's sum
    plan = fplan.compile(m, l, o)
    X, y = make_data(4, [3, 4, 2], "ce", np.float32)
    before = params_of(m)
    with pytest.raises(KeyError, match="'sum' is missing"):
        plan.step(X, y)
    with pytest.raises(KeyError):
        o.step()
    assert_same_params(before, params_of(m), np.float32, exact=True)


@pytest.mark.parametrize("name", ["rmsprop", "adagrad"])
def test_no_allocation_per_step(name):
    sizes, batch = [64, 32, 10], 32
    X, y = make_data(batch, sizes, "ce", np.float32)
    m, l, o = setup(sizes, name, dict(centered=True, momentum=0.5) if name == "rmsprop" else {}, np.float32)
    plan = fplan.compile(m, l, o)
    plan.step(X, y)  # creates RMSprop's state buffers and the plan's workspace
    before = _core.plan_alloc_count()
    for _ in range(20):
        plan.step(X, y)
    assert _core.plan_alloc_count() == before


# --- explain() and fit() ---------------------------------------------------------------------------------
def test_explain_accepts_rmsprop_and_adagrad_but_not_subclasses():
    m = make_net([3, 4, 2], "relu", np.float32)
    for opt in (RMSprop(m.parameters(), lr=0.1, centered=True, momentum=0.5),
                Adagrad(m.parameters(), lr=0.1, lr_decay=0.1)):
        assert fplan.explain(m, nn.MSELoss(), opt) is None

    class MyRMSprop(RMSprop):  # may change the update, which a plan would bypass
        pass

    reason = fplan.explain(m, nn.MSELoss(), MyRMSprop(m.parameters(), lr=0.1))
    assert reason.startswith("optimizer: plans support SGD, Adam, AdamW, RMSprop and Adagrad, got MyRMSprop")


@pytest.mark.parametrize("metrics", [None, "auto"])  # whole epochs in C / one plan call per step
@pytest.mark.parametrize("case", EPOCH_CASES, ids=case_id)
def test_fit_uses_a_plan_and_matches_the_eager_loop(case, metrics, dtype):
    from fastnn.train import ProgressBar
    name, opts = case
    for sizes, bs, exact in (([6, 12, 4], 16, False), (GEMM_SIZES, GEMM_BATCH, True)):
        X, y = make_data(300 if exact else 70, sizes, "ce", dtype)
        results = []
        for plan in (False, "auto"):
            m, l, o = setup(sizes, name, opts, dtype)
            buf = io.StringIO()
            h = fastnn.fit(m, l, o, X, y, epochs=2, batch_size=bs, seed=3, verbose=2, metrics=metrics,
                           validation_data=(X[:20], y[:20]), plan=plan, callbacks=[ProgressBar(2, file=buf)])
            assert ("fit: compiled plan" in buf.getvalue()) == (plan == "auto"), buf.getvalue()
            results.append((params_of(m), o, h.history))
        assert_same_params(results[0][0], results[1][0], dtype, exact=exact)
        assert_same_state(results[0][1], results[1][1], exact=exact, dtype=dtype)
        assert results[0][2].keys() == results[1][2].keys()
        for k in results[0][2]:
            np.testing.assert_allclose(results[1][2][k], results[0][2][k], rtol=1e-5)


def test_fit_divergence_through_an_rmsprop_plan_keeps_last_finite_parameters():
    X, y = make_data(40, [3, 8, 2], "mse", np.float32)
    y = y * 1e30
    outcomes = []
    for plan in (False, True):
        model = make_net([3, 8, 2], "relu", np.float32)
        o = RMSprop(model.parameters(), lr=1e10)
        with pytest.raises(fastnn.DivergenceError) as info:
            fastnn.fit(model, nn.MSELoss(), o, X, y, epochs=5, batch_size=4, seed=0, verbose=0, plan=plan)
        assert all(np.isfinite(p.data).all() for p in model.parameters())
        outcomes.append((info.value.step, params_of(model)))
    assert outcomes[0][0] == outcomes[1][0]
    assert_same_params(outcomes[0][1], outcomes[1][1], np.float32)


def test_sgd_plans_are_unchanged_by_the_new_optimizers():
    """The optimizer kind is read per plan: an SGD plan next to an RMSprop one keeps SGD's update."""
    X, y = make_data(20, [3, 4, 2], "ce", np.float32)
    ma, la, oa = setup([3, 4, 2], "rmsprop", dict(momentum=0.9), np.float32)
    mb = make_net([3, 4, 2], "tanh", np.float32)
    ob = SGD(mb.parameters(), lr=0.1, momentum=0.9)
    mc = make_net([3, 4, 2], "tanh", np.float32)
    oc = SGD(mc.parameters(), lr=0.1, momentum=0.9)
    pa, pb = fplan.compile(ma, la, oa), fplan.compile(mb, nn.CrossEntropyLoss(), ob)
    for s in range(4):
        pa.step(X[s * 5:(s + 1) * 5], y[s * 5:(s + 1) * 5])
        pb.step(X[s * 5:(s + 1) * 5], y[s * 5:(s + 1) * 5])
        eager_step(mc, nn.CrossEntropyLoss(), oc, X[s * 5:(s + 1) * 5], y[s * 5:(s + 1) * 5])
    assert_same_params(params_of(mc), params_of(mb), np.float32)
    assert "step" not in ob.state_dict()["state"][0]


# Direct-path layers whose Wᵀ the plan builds by register transposes: widths around the
# 8×8 (float) and 4×4 (double) blocks, a partial last block (out % 8 or in % 8 != 0) and the
# largest direct layer (64·128 at batch 32, exactly plan_direct_work).
@pytest.mark.parametrize("sizes,batch", [([17, 8, 9, 3], 5), ([9, 15, 33, 2], 7), ([3, 31, 16, 4], 6),
                                         ([64, 128, 10], 32)])
def test_direct_forward_transposes_every_width(sizes, batch, dtype):
    m1, o1, m2, o2 = run_steps(sizes, batch, "adam", {}, dtype, steps=3)
    assert_same_params(params_of(m1), params_of(m2), dtype)
    assert_same_state(o1, o2, exact=False, dtype=dtype)
    with num_threads(1):
        m3, o3, m4, o4 = run_steps(sizes, batch, "adam", {}, dtype, steps=3)
    for a, b in zip(params_of(m2), params_of(m4)):  # the plan's bits do not depend on the threads
        np.testing.assert_array_equal(a, b)
