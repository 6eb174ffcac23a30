"""Optimizer options checked against PyTorch's formulas computed by hand in float64 (no fastnn
code in the expected values), and training resumed bit for bit from a checkpoint file."""
from __future__ import annotations

import math

import numpy as np
import pytest

import fastnn
from fastnn import optim
from fastnn.nn import Parameter

GRADS = [np.array([0.5, -1.0, 2.0]), np.array([-0.25, 0.75, 1.5]), np.array([1.0, 0.0, -3.0])]
START = np.array([1.0, -2.0, 0.5])


def _steps(opt, p):
    """Apply GRADS one step each; the parameter's values after every step."""
    seen = []
    for g in GRADS:
        opt.zero_grad()
        p.grad = g.copy()
        opt.step()
        seen.append(p.data.copy())
    return seen


def _by_hand(update):
    """Expected values: ``update(theta, g, t)`` element by element, in Python floats."""
    theta = [float(v) for v in START]
    out = []
    for t, g in enumerate(GRADS, start=1):
        theta = [update(i, th, float(gi), t) for i, (th, gi) in enumerate(zip(theta, g))]
        out.append(np.array(theta))
    return out


@pytest.mark.parametrize("maximize", [False, True])
def test_rmsprop_without_centring(maximize):
    lr, alpha, eps = 0.01, 0.9, 1e-8
    v = [0.0] * 3

    def update(i, th, g, t):
        g = -g if maximize else g
        v[i] = alpha * v[i] + (1 - alpha) * g * g
        return th - lr * g / (math.sqrt(v[i]) + eps)

    p = Parameter(START.copy())
    got = _steps(optim.RMSprop([p], lr=lr, alpha=alpha, eps=eps, maximize=maximize), p)
    for a, b in zip(got, _by_hand(update)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_maximize(amsgrad):
    lr, b1, b2, eps = 0.1, 0.9, 0.99, 1e-8
    m, v, vmax = [0.0] * 3, [0.0] * 3, [0.0] * 3

    def update(i, th, g, t):
        g = -g  # maximize: ascend
        m[i] = b1 * m[i] + (1 - b1) * g
        v[i] = b2 * v[i] + (1 - b2) * g * g
        vmax[i] = max(vmax[i], v[i])
        vv = vmax[i] if amsgrad else v[i]
        return th - lr * (m[i] / (1 - b1 ** t)) / (math.sqrt(vv / (1 - b2 ** t)) + eps)

    p = Parameter(START.copy())
    got = _steps(optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps, amsgrad=amsgrad, maximize=True), p)
    for a, b in zip(got, _by_hand(update)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert (got[0] - START)[0] > 0  # ascending the first gradient's direction


@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("init", [0.0, 0.5])
def test_adagrad_initial_accumulator_and_maximize(maximize, init):
    lr, lr_decay, eps = 0.1, 0.05, 1e-10
    s = [init] * 3

    def update(i, th, g, t):
        g = -g if maximize else g
        clr = lr / (1 + (t - 1) * lr_decay)
        s[i] += g * g
        return th - clr * g / (math.sqrt(s[i]) + eps)

    p = Parameter(START.copy())
    opt = optim.Adagrad([p], lr=lr, lr_decay=lr_decay, initial_accumulator_value=init, eps=eps, maximize=maximize)
    np.testing.assert_array_equal(opt.state_dict()["state"][0]["sum"], np.full(3, init))  # before any step
    got = _steps(opt, p)
    for a, b in zip(got, _by_hand(update)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


# --- resuming from a checkpoint file ---------------------------------------------------------------

RESUMABLE = {
    "adam_amsgrad": lambda ps: optim.Adam(ps, lr=0.05, amsgrad=True, weight_decay=0.01),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
}


def _model():
    fastnn.manual_seed(3)
    return fastnn.nn.Sequential(fastnn.nn.Linear(5, 8, dtype=np.float64), fastnn.nn.Tanh(),
                                fastnn.nn.Linear(8, 2, dtype=np.float64))


def _train(model, opt, sched, x, y, steps):
    loss_fn = fastnn.nn.MSELoss()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        sched.step()


@pytest.mark.parametrize("name", sorted(RESUMABLE))
def test_resume_from_a_checkpoint_file_is_bitwise(name, tmp_path):
    r = np.random.default_rng(0)
    x, y = r.standard_normal((16, 5)), r.standard_normal((16, 2))
    straight = _model()
    opt = RESUMABLE[name](straight.parameters())
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    _train(straight, opt, sched, x, y, 7)

    first = _model()
    opt1 = RESUMABLE[name](first.parameters())
    sched1 = optim.lr_scheduler.StepLR(opt1, step_size=2, gamma=0.5)
    _train(first, opt1, sched1, x, y, 3)
    path = tmp_path / "ck.fnn"
    fastnn.save({"model": first.state_dict(), "optimizer": opt1.state_dict(), "scheduler": sched1.state_dict()},
                path)
    ck = fastnn.load(path)
    resumed = _model()
    resumed.load_state_dict(ck["model"])
    opt2 = RESUMABLE[name](resumed.parameters())
    opt2.load_state_dict(ck["optimizer"])
    sched2 = optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    sched2.load_state_dict(ck["scheduler"])
    assert opt2.param_groups[0]["lr"] == opt1.param_groups[0]["lr"]
    _train(resumed, opt2, sched2, x, y, 4)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert a.data.tobytes() == b.data.tobytes()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
