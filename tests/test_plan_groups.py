"""Compiled plans with several parameter groups, and scikit-learn's conventions.

Each group lives in its own arena and the plan updates it with its own hyper-parameters,
one optimizer pass per group, as ``opt.step()`` does: on the GEMM path (every product
> 262144 multiply-adds) parameters and state equal the eager loop's bit for bit, on the
direct small-layer path they agree to rounding. The scikit-learn options
(``weight_decay_per_row``, ``adam_eps="sklearn"``, ``l2_loss``) are checked against the eager
loop that sets the group options they stand for before every step.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from fastnn import nn
from fastnn import plan as fplan
from fastnn.optim import SGD, Adagrad, Adam, AdamW, RMSprop

from test_plan import assert_same_params, eager_step, make_data, make_net, params_of

# Weights and biases in two groups that differ in lr and weight decay (the biases of the
# layers interleave with the weights in the model, so each group is non-contiguous there).
LR = {"sgd": 0.05, "sgd_momentum": 0.05, "sgd_nesterov": 0.05, "adam": 0.01, "adam_amsgrad": 0.01,
      "adamw": 0.01, "rmsprop": 3e-3, "adagrad": 0.05}
OPTIMIZERS = {
    "sgd": lambda g: SGD(g, lr=LR["sgd"]),
    "sgd_momentum": lambda g: SGD(g, lr=LR["sgd_momentum"], momentum=0.9),
    "sgd_nesterov": lambda g: SGD(g, lr=LR["sgd_nesterov"], momentum=0.9, nesterov=True),
    "adam": lambda g: Adam(g, lr=LR["adam"]),
    "adam_amsgrad": lambda g: Adam(g, lr=LR["adam_amsgrad"], amsgrad=True),
    "adamw": lambda g: AdamW(g, lr=LR["adamw"]),
    "rmsprop": lambda g: RMSprop(g, lr=LR["rmsprop"], momentum=0.5),
    "adagrad": lambda g: Adagrad(g, lr=LR["adagrad"]),
}

GEMM_SIZES, GEMM_BATCH = [60, 130, 90, 80], 64   # every product on the packed GEMM path, batches 40 and 64
DIRECT = [([4, 3, 2], 4), ([30, 70, 5], 40)]      # tiny path, direct loops


def grouped(model, name):
    linears = [m for m in model if isinstance(m, nn.Linear)]
    groups = [{"params": [m.weight for m in linears], "weight_decay": 0.03},
              {"params": [m.bias for m in linears], "lr": 0.5 * LR[name], "weight_decay": 0.0}]
    return OPTIMIZERS[name](groups)


def setup(sizes, name, dtype):
    model = make_net(sizes, "tanh", dtype)
    return model, nn.CrossEntropyLoss(), grouped(model, name)


def assert_same_state(o1, o2, exact, dtype):
    s1, s2 = o1.state_dict(), o2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    assert s1["state"].keys() == s2["state"].keys()
    for k in s1["state"]:
        for key, v in s1["state"][k].items():
            if not isinstance(v, np.ndarray):
                assert s2["state"][k][key] == v, key
            elif exact:
                np.testing.assert_array_equal(s2["state"][k][key], v, err_msg=key)
            else:
                tol = dict(rtol=1e-3, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-12)
                np.testing.assert_allclose(s2["state"][k][key], v, err_msg=key, **tol)


def check(sizes, batch, name, dtype, exact, fused=False, epoch=False, steps=4):
    dtype = np.dtype(dtype)
    n = batch * steps - (batch // 3 if epoch else 0)  # epochs end on a short batch
    X, y = make_data(n, sizes, "ce", dtype)
    m1, l1, o1 = setup(sizes, name, dtype)
    m2, l2, o2 = setup(sizes, name, dtype)
    plan = fplan.compile(m2, l2, o2, fused=fused)
    eager = [eager_step(m1, l1, o1, X[s:s + batch], y[s:s + batch]) for s in range(0, n, batch)]
    if epoch:
        got = plan.epoch(X, y, batch_size=batch, shuffle=False)
    else:
        got = [plan.step(X[s:s + batch], y[s:s + batch]) for s in range(0, n, batch)]
    np.testing.assert_allclose(got, eager, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert_same_params(params_of(m1), params_of(m2), dtype, exact=exact)
    assert_same_state(o1, o2, exact, dtype)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("epoch", [False, True])
def test_groups_on_gemm_path_are_bitwise_equal_to_eager(name, fused, epoch, dtype):
    check(GEMM_SIZES, GEMM_BATCH, name, dtype, exact=True, fused=fused, epoch=epoch)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("sizes,batch", DIRECT)
def test_groups_on_direct_paths_agree(name, sizes, batch, dtype):
    check(sizes, batch, name, dtype, exact=False, epoch=True)
    check(sizes, batch, name, dtype, exact=False, fused=True)


def test_group_options_take_effect():
    """A plan with the two groups differs from one where both groups share the first's options."""
    dtype = np.float64
    X, y = make_data(64, GEMM_SIZES, "ce", dtype)
    m1, l1, o1 = setup(GEMM_SIZES, "adam", dtype)
    m2, l2, o2 = setup(GEMM_SIZES, "adam", dtype)
    o2.param_groups[1].update(lr=o2.param_groups[0]["lr"], weight_decay=o2.param_groups[0]["weight_decay"])
    fplan.compile(m1, l1, o1).step(X, y)
    fplan.compile(m2, l2, o2).step(X, y)
    assert not np.array_equal(m1[0].bias.data, m2[0].bias.data)
    np.testing.assert_array_equal(m1[0].weight.data, m2[0].weight.data)  # the weights' options are the same


def test_three_groups_and_a_group_with_one_layer():
    dtype = np.float64
    X, y = make_data(64, GEMM_SIZES, "ce", dtype)

    def make():
        model = make_net(GEMM_SIZES, "relu", dtype)
        lin = [m for m in model if isinstance(m, nn.Linear)]
        opt = SGD([{"params": [lin[0].weight, lin[0].bias], "lr": 0.02},
                   {"params": [lin[1].weight], "weight_decay": 0.1},
                   {"params": [lin[1].bias, lin[2].weight, lin[2].bias], "momentum": 0.5}], lr=0.05, momentum=0.9)
        return model, nn.CrossEntropyLoss(), opt

    (m1, l1, o1), (m2, l2, o2) = make(), make()
    plan = fplan.compile(m2, l2, o2, fused=True)
    for s in range(3):
        eager_step(m1, l1, o1, X, y)
        plan.step(X, y)
    assert_same_params(params_of(m1), params_of(m2), dtype, exact=True)
    assert_same_state(o1, o2, True, dtype)


# --- scikit-learn's conventions ----------------------------------------------------------------------
def sklearn_eager_epoch(model, loss_fn, opt, X, y, batch, wd, l2_scale, adam_sklearn):
    """The eager loop with the group options the plan's scikit-learn options stand for."""
    losses = []
    for s in range(0, len(X), batch):
        xb, yb = X[s:s + batch], y[s:s + batch]
        rows = len(xb)
        penalty = 0.0
        for g, base in zip(opt.param_groups, wd):
            g["weight_decay"] = base / rows
            if base:
                ss = sum(float(np.dot(p.data.ravel(), p.data.ravel())) for p in g["params"])
                penalty += l2_scale * 0.5 * g["weight_decay"] * ss
        if adam_sklearn:
            for gi, g in enumerate(opt.param_groups):
                t = float(opt._states[gi][0].get("step", 0.0)) + 1.0
                g["eps"] = adam_sklearn[gi] / math.sqrt(1.0 - g["betas"][1] ** t)
        losses.append(eager_step(model, loss_fn, opt, xb, yb) + penalty)
    for g, base in zip(opt.param_groups, wd):
        g["weight_decay"] = base
    if adam_sklearn:
        for g, e in zip(opt.param_groups, adam_sklearn):
            g["eps"] = e
    return np.array(losses)


@pytest.mark.parametrize("name", ["sgd_momentum", "adam", "adamw", "rmsprop"])
@pytest.mark.parametrize("fused", [False, True])
def test_sklearn_options_match_the_eager_loop(name, fused, dtype):
    dtype = np.dtype(dtype)
    rtol = 1e-5 if dtype == np.float32 else 1e-12  # losses: the penalty is summed in another order
    batch, n = GEMM_BATCH, 3 * GEMM_BATCH + 40  # short last batch (still on the GEMM path): decay wd / 40
    X, y = make_data(n, GEMM_SIZES, "ce", dtype)
    m1, l1, o1 = setup(GEMM_SIZES, name, dtype)
    m2, l2, o2 = setup(GEMM_SIZES, name, dtype)
    wd = [g["weight_decay"] for g in o1.param_groups]
    adam_sklearn = [g["eps"] for g in o1.param_groups] if name.startswith("adam") else None
    plan = fplan.compile(m2, l2, o2, fused=fused, weight_decay_per_row=True, l2_loss=2.0,
                         adam_eps="sklearn" if adam_sklearn else "pytorch")
    for _ in range(2):  # two epochs: Adam's t continues
        want = sklearn_eager_epoch(m1, l1, o1, X, y, batch, wd, 2.0, adam_sklearn)
        got = plan.epoch(X, y, batch_size=batch, shuffle=False)
        np.testing.assert_allclose(got, want, rtol=rtol)
        assert_same_params(params_of(m1), params_of(m2), dtype, exact=True)
    assert_same_state(o1, o2, True, dtype)
    # plan.step takes the same options
    xb, yb = X[:batch], y[:batch]
    want = sklearn_eager_epoch(m1, l1, o1, xb, yb, batch, wd, 2.0, adam_sklearn)
    np.testing.assert_allclose(plan.step(xb, yb), want[0], rtol=rtol)
    assert_same_params(params_of(m1), params_of(m2), dtype, exact=True)


def test_sklearn_options_change_the_result():
    """Each option does something: without it, the plan's result differs."""
    dtype = np.float64
    X, y = make_data(80, GEMM_SIZES, "ce", dtype)
    results = {}
    for opts in ({}, dict(weight_decay_per_row=True), dict(adam_eps="sklearn"), dict(l2_loss=1.0)):
        m, l, o = setup(GEMM_SIZES, "adam", dtype)
        losses = fplan.compile(m, l, o, **opts).epoch(X, y, batch_size=32, shuffle=False)
        results[tuple(opts)] = (losses, m[0].weight.data.copy())
    base_losses, base_w = results[()]
    assert not np.array_equal(results[("weight_decay_per_row",)][1], base_w)
    assert not np.array_equal(results[("adam_eps",)][1], base_w)
    np.testing.assert_array_equal(results[("l2_loss",)][1], base_w)  # the loss only
    assert np.all(results[("l2_loss",)][0] > base_losses)


def test_bad_sklearn_options():
    m, l, o = setup([4, 3, 2], "adam", np.float64)
    with pytest.raises(ValueError, match="adam_eps"):
        fplan.compile(m, l, o, adam_eps="keras")
    with pytest.raises(ValueError, match="l2_loss"):
        fplan.compile(m, l, o, l2_loss=float("nan"))
