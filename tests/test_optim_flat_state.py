"""The optimizer owns its state schema: flat_state() hands plans and the one-call eager step the
state arrays and step count, plans and the eager loop agree bit for bit after load_state_dict,
and nothing outside fastnn/optim reads the optimizer's private state."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn import nn
from fastnn import plan as fplan
from fastnn.optim import SGD, Adagrad, Adam, AdamW, RMSprop

from test_plan import assert_same_params, eager_step, make_data, make_net, params_of

KINDS = {
    "sgd_momentum": lambda p: SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3),
    "sgd_nesterov": lambda p: SGD(p, lr=0.05, momentum=0.8, nesterov=True),
    "adam": lambda p: Adam(p, lr=1e-2),
    "adam_amsgrad": lambda p: Adam(p, lr=1e-2, amsgrad=True, weight_decay=1e-3),
    "adamw": lambda p: AdamW(p, lr=1e-2),
    "rmsprop": lambda p: RMSprop(p, lr=3e-3, momentum=0.5, centered=True),
    "adagrad": lambda p: Adagrad(p, lr=0.05, initial_accumulator_value=0.1),
}
# Every product takes the GEMM's packed path at this batch: the plan runs the eager loop's kernels.
SIZES, BATCH = [60, 130, 90, 80], 64


def setup(kind, dtype, seed=0):
    model = make_net(SIZES, "tanh", dtype, seed)
    return model, nn.CrossEntropyLoss(), KINDS[kind](model.parameters())


def assert_same_state(o1, o2):
    s1, s2 = o1.state_dict(), o2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    assert s1["state"].keys() == s2["state"].keys()
    for k in s1["state"]:
        a, b = s1["state"][k], s2["state"][k]
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(np.asarray(b[name]), np.asarray(a[name]), err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", list(KINDS))
def test_plan_and_eager_agree_after_load_state_dict_into_fresh_optimizers(kind, dtype):
    X, y = make_data(BATCH * 6, SIZES, "ce", dtype)
    batches = [(X[s * BATCH:(s + 1) * BATCH], y[s * BATCH:(s + 1) * BATCH]) for s in range(6)]
    m1, l1, o1 = setup(kind, dtype)
    for xb, yb in batches[:3]:
        eager_step(m1, l1, o1, xb, yb)
    model_sd, opt_sd = m1.state_dict(), o1.state_dict()
    twins = []
    for _ in range(2):
        m, l, o = setup(kind, dtype, seed=7)
        m.load_state_dict(model_sd)
        o.load_state_dict(opt_sd)
        twins.append((m, l, o))
    (m2, l2, o2), (m3, l3, o3) = twins
    plan = fplan.compile(m2, l2, o2)
    for xb, yb in batches[3:]:
        eager_step(m1, l1, o1, xb, yb)
        plan.step(xb, yb)
        eager_step(m3, l3, o3, xb, yb)
    for m, o in ((m2, o2), (m3, o3)):
        assert_same_params(params_of(m1), params_of(m), dtype, exact=True)
        assert_same_state(o1, o)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_plan_follows_load_state_dict_after_it_stepped(kind):
    """load_state_dict replaces the state arrays under a compiled plan (flat_version changes): the
    plan takes the new ones, including an empty state (SGD's first step copies the gradient again)."""
    dtype = np.float32
    X, y = make_data(BATCH * 4, SIZES, "ce", dtype)
    batches = [(X[s * BATCH:(s + 1) * BATCH], y[s * BATCH:(s + 1) * BATCH]) for s in range(4)]
    fresh_sd = setup(kind, dtype)[2].state_dict()
    m1, l1, o1 = setup(kind, dtype)
    m2, l2, o2 = setup(kind, dtype)
    plan = fplan.compile(m2, l2, o2)
    for xb, yb in batches[:2]:
        eager_step(m1, l1, o1, xb, yb)
        plan.step(xb, yb)
    mid = o1.state_dict()
    o1.load_state_dict(fresh_sd)
    o2.load_state_dict(fresh_sd)
    eager_step(m1, l1, o1, *batches[2])
    plan.step(*batches[2])
    o1.load_state_dict(mid)
    o2.load_state_dict(mid)
    eager_step(m1, l1, o1, *batches[3])
    plan.step(*batches[3])
    assert_same_params(params_of(m1), params_of(m2), dtype, exact=True)
    assert_same_state(o1, o2)


def test_flat_state_contract():
    model = make_net([3, 4, 2], "tanh", np.float32, 0)
    opt = Adam(model.parameters(), lr=1e-2)
    assert opt.state_slots == ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    v0 = opt.flat_version
    fs = opt.flat_state(0)
    assert opt.flat_version > v0  # buffers were made
    assert fs.arena is opt.group_arenas(0)[0]
    m, v, vmax = fs.buffers
    assert vmax is None  # amsgrad is off: not made
    assert m.shape == v.shape == fs.arena.data.shape and m.dtype == np.float32
    assert fs.step.shape == () and fs.step.dtype == np.float64 and float(fs.step) == 0.0 and not fs.first
    v1 = opt.flat_version
    assert opt.flat_state(0).buffers[0] is m and opt.flat_version == v1  # nothing new: same arrays
    opt.param_groups[0]["amsgrad"] = True
    assert opt.flat_state(0).buffers[2] is not None and opt.flat_version > v1
    opt.advance_steps(0, 3)
    sd = opt.state_dict()
    assert sd["state"][0]["step"] == 3.0 and type(sd["state"][0]["step"]) is float
    # The arrays handed out are the optimizer's own (state_dict copies them).
    m[:] = 1.0
    assert (opt.state_dict()["state"][0]["exp_avg"] == 1.0).all()

    sgd = SGD(model.parameters(), lr=0.1, momentum=0.9)
    fs = sgd.flat_state(0)
    assert sgd.state_slots == ("momentum_buffer",) and fs.first and fs.step is None
    assert not sgd.flat_state(0).first  # made already
    sgd.advance_steps(0, 1)  # SGD counts no steps
    assert "step" not in sgd.state_dict()["state"][0]

    assert RMSprop(model.parameters()).state_slots == ("square_avg", "grad_avg", "momentum_buffer")
    ada = Adagrad(model.parameters(), initial_accumulator_value=0.5)
    fs = ada.flat_state(0)
    assert ada.state_slots == ("sum",) and float(fs.step) == 0.0
    assert fs.buffers[0] is not None


def test_flat_state_refuses_groups_of_several_dtypes():
    from fastnn.nn import Parameter
    opt = SGD([Parameter(np.zeros(3, np.float32)), Parameter(np.zeros(2, np.float64))], lr=0.1)
    assert len(opt.group_arenas(0)) == 2
    with pytest.raises(ValueError, match="dtypes"):
        opt.flat_state(0)


PRIVATE = re.compile(r"\._states\b|\._arenas\b|_current_arenas|[\"']_(states|arenas)[\"']|\.zeros_like\(\)")


def test_nothing_outside_optim_reads_the_optimizers_private_state():
    """Only fastnn/optim knows how an optimizer keeps its state (and makes it); fastnn/nn/arena.py
    defines Arena.zeros_like."""
    root = Path(fastnn.__file__).resolve().parent
    offenders = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".py", ".pyx", ".pxi", ".pxd") or "optim" in path.relative_to(root).parts[:1]:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if PRIVATE.search(code) and not (path.name == "arena.py" and "def zeros_like" in code):
                offenders.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
