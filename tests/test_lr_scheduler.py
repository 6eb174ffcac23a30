"""fastnn.optim.lr_scheduler follows PyTorch: closed forms / hand-worked values for every scheduler
with two parameter groups, momentum cycling, errors, state_dict resume, and (when torch is
importable) the exact same learning-rate sequences as torch.optim.lr_scheduler."""
import copy
import math

import numpy as np
import pytest

from fastnn import optim
from fastnn.nn import Parameter
from fastnn.optim import lr_scheduler as S

LR0 = [0.1, 0.5]


def make_opt(cls=optim.SGD, **kw):
    groups = [{"params": [Parameter(np.ones(3))], "lr": LR0[0]},
              {"params": [Parameter(np.ones(2))], "lr": LR0[1]}]
    return cls(groups, **kw)


def lrs_over(sched, opt, epochs):
    """lr of each group at epochs 0..epochs-1 (read after construction, then after each step)."""
    out = [[g["lr"] for g in opt.param_groups]]
    for _ in range(epochs - 1):
        opt.step()
        sched.step()
        out.append([g["lr"] for g in opt.param_groups])
        assert sched.get_last_lr() == out[-1]
    return np.array(out)


def expect_each_group(fn, epochs):
    return np.array([[fn(lr0, e) for lr0 in LR0] for e in range(epochs)])


def test_steplr_closed_form():
    opt = make_opt()
    got = lrs_over(S.StepLR(opt, step_size=3, gamma=0.5), opt, 12)
    np.testing.assert_allclose(got, expect_each_group(lambda l0, e: l0 * 0.5 ** (e // 3), 12), rtol=1e-14)
    assert [g["initial_lr"] for g in opt.param_groups] == LR0


def test_multisteplr_closed_form_with_repeated_milestone():
    opt = make_opt()
    ms = [2, 5, 5, 8]
    got = lrs_over(S.MultiStepLR(opt, milestones=ms, gamma=0.1), opt, 11)
    np.testing.assert_allclose(got, expect_each_group(lambda l0, e: l0 * 0.1 ** sum(m <= e for m in ms), 11), rtol=1e-14)


def test_exponentiallr_closed_form():
    opt = make_opt()
    got = lrs_over(S.ExponentialLR(opt, gamma=0.9), opt, 15)
    np.testing.assert_allclose(got, expect_each_group(lambda l0, e: l0 * 0.9 ** e, 15), rtol=1e-13)


@pytest.mark.parametrize("eta_min", [0.0, 0.01])
def test_cosine_annealing_closed_form_including_past_t_max(eta_min):
    opt = make_opt()
    T = 10
    got = lrs_over(S.CosineAnnealingLR(opt, T_max=T, eta_min=eta_min), opt, 3 * T + 1)
    expect = expect_each_group(lambda l0, e: eta_min + (l0 - eta_min) * (1 + math.cos(math.pi * e / T)) / 2, 3 * T + 1)
    np.testing.assert_allclose(got, expect, rtol=1e-9, atol=1e-12)
    assert got[T] == pytest.approx([eta_min, eta_min], abs=1e-12)


def test_linearlr_closed_form():
    opt = make_opt()
    s, f, n = 0.25, 1.0, 4
    got = lrs_over(S.LinearLR(opt, start_factor=s, end_factor=f, total_iters=n), opt, 9)
    np.testing.assert_allclose(got, expect_each_group(lambda l0, e: l0 * (s + (f - s) * min(e, n) / n), 9), rtol=1e-13)


def _one_cycle_expected(max_lr, total, pct, div, final_div, e, lo_m=0.85, hi_m=0.95, linear=False):
    """OneCycleLR's two phases written out: warm-up to max_lr until step pct·total − 1, then down."""
    def anneal(a, b, x):
        return (b - a) * x + a if linear else b + (a - b) / 2 * (1 + math.cos(math.pi * x))
    init, end1 = max_lr / div, pct * total - 1
    if e <= end1:
        x = e / end1
        return anneal(init, max_lr, x), anneal(hi_m, lo_m, x)
    x = (e - end1) / (total - 1 - end1)
    return anneal(max_lr, init / final_div, x), anneal(lo_m, hi_m, x)


@pytest.mark.parametrize("linear", [False, True])
def test_one_cycle_lr_and_momentum(linear):
    opt = make_opt(optim.SGD, momentum=0.5)
    total = 20
    sched = S.OneCycleLR(opt, max_lr=[1.0, 2.0], total_steps=total, anneal_strategy="linear" if linear else "cos")
    for e in range(total + 1):
        for g, mx in zip(opt.param_groups, [1.0, 2.0]):
            lr, mom = _one_cycle_expected(mx, total, 0.3, 25.0, 1e4, e, linear=linear)
            assert g["lr"] == pytest.approx(lr, rel=1e-12)
            assert g["momentum"] == pytest.approx(mom, rel=1e-12)
        if e < total:
            opt.step()
            sched.step()
    assert opt.param_groups[0]["initial_lr"] == 1.0 / 25 and opt.param_groups[1]["max_lr"] == 2.0
    with pytest.raises(ValueError, match="^step:"):
        sched.step()


def test_one_cycle_cycles_adam_beta1_only():
    opt = make_opt(optim.Adam, betas=(0.9, 0.99))
    sched = S.OneCycleLR(opt, max_lr=0.1, epochs=2, steps_per_epoch=5)
    assert sched.total_steps == 10
    assert opt.param_groups[0]["betas"] == (0.95, 0.99)
    for _ in range(3):
        opt.step()
        sched.step()
    b1, b2 = opt.param_groups[0]["betas"]
    assert b1 == pytest.approx(_one_cycle_expected(0.1, 10, 0.3, 25.0, 1e4, 3)[1], rel=1e-12) and b2 == 0.99


def test_one_cycle_three_phase():
    opt = make_opt()
    total, mx = 20, 1.0
    sched = S.OneCycleLR(opt, max_lr=mx, total_steps=total, three_phase=True, cycle_momentum=False)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(total - 1):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    init = mx / 25
    assert lrs[0] == pytest.approx(init) and lrs[5] == pytest.approx(mx)   # up until 0.3·20 − 1 = 5
    assert lrs[10] == pytest.approx(init)                                  # back down at 2·0.3·20 − 2 = 10
    assert lrs[19] == pytest.approx(init / 1e4)                            # then to min_lr
    e = 7  # inside phase two: cos from max_lr back to init over steps 5..10
    assert lrs[e] == pytest.approx(init + (mx - init) / 2 * (1 + math.cos(math.pi * (e - 5) / 5)), rel=1e-12)


def test_reduce_on_plateau_hand_worked():
    opt = make_opt()
    sched = S.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2, threshold=0.1, cooldown=1)
    metrics = [10, 9, 9.5, 9.2, 9.1, 8, 8, 8, 8, 8, 8, 8, 8]
    # e1 best=10; e2 9 is not < 10·0.9 → bad 1; e3 bad 2; e4 bad 3 > 2 → halve, cooldown 1;
    # e5 bad ignored in cooldown; e6 8 < 9 → best; e7–e9 bad 1..3 → halve; e10 cooldown; e11–e13 → halve
    factors = [1, 1, 1, .5, .5, .5, .5, .5, .25, .25, .25, .25, .125]
    for m, f in zip(metrics, factors):
        sched.step(m)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([l0 * f for l0 in LR0], rel=1e-15)
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
    assert sched.last_epoch == len(metrics)


def test_reduce_on_plateau_min_lr_max_mode_abs_threshold():
    opt = make_opt()
    sched = S.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0, threshold=0.5, threshold_mode="abs",
                                min_lr=[0.02, 0.0])
    sched.step(1.0)   # best = 1
    sched.step(1.4)   # not > 1 + 0.5: bad 1 > 0 → reduce: max(0.01, 0.02) = 0.02 and 0.05
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.02, 0.05])
    sched.step(2.0)   # better
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.02, 0.05])
    sched.step(0.0)   # reduce again: group 0 at its floor (no change), group 1 to 0.005
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.02, 0.005])


def test_reduce_on_plateau_skips_changes_below_eps():
    opt = make_opt()
    opt.param_groups[0]["lr"] = 1e-9
    sched = S.ReduceLROnPlateau(opt, factor=0.5, patience=0, eps=1e-8)
    sched.step(1.0)
    sched.step(1.0)
    assert opt.param_groups[0]["lr"] == 1e-9 and opt.param_groups[1]["lr"] == 0.25


@pytest.mark.parametrize("make", [
    lambda o: S.StepLR(o, 2, 0.5), lambda o: S.CosineAnnealingLR(o, 7, 0.001),
    lambda o: S.OneCycleLR(o, 1.0, total_steps=30), lambda o: S.ReduceLROnPlateau(o, patience=1),
])
def test_state_dict_resume(make):
    metric = lambda e: 1.0 / (1 + (e % 4))  # noqa: E731
    opt = make_opt(momentum=0.9)
    sched = make(opt)
    plateau = isinstance(sched, S.ReduceLROnPlateau)

    def advance(o, s, start, n):
        out = []
        for e in range(start, start + n):
            o.step()
            s.step(metric(e)) if plateau else s.step()
            out.append([(g["lr"], g["momentum"]) for g in o.param_groups])
        return out

    advance(opt, sched, 0, 8)
    saved_opt, saved_sched = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
    expect = advance(opt, sched, 8, 10)
    opt2 = make_opt(momentum=0.9)
    sched2 = make(opt2)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    assert advance(opt2, sched2, 8, 10) == expect


@pytest.mark.parametrize("call,name", [
    (lambda o: S.StepLR(o, step_size=0), "step_size"),
    (lambda o: S.MultiStepLR(o, milestones=[5, 2]), "milestones"),
    (lambda o: S.CosineAnnealingLR(o, T_max=0), "T_max"),
    (lambda o: S.LinearLR(o, start_factor=0.0), "start_factor"),
    (lambda o: S.LinearLR(o, end_factor=1.5), "end_factor"),
    (lambda o: S.OneCycleLR(o, max_lr=1.0), "total_steps"),
    (lambda o: S.OneCycleLR(o, max_lr=[1.0], total_steps=5), "max_lr"),
    (lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=5, pct_start=1.5), "pct_start"),
    (lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=5, anneal_strategy="exp"), "anneal_strategy"),
    (lambda o: S.ReduceLROnPlateau(o, factor=1.0), "factor"),
    (lambda o: S.ReduceLROnPlateau(o, mode="up"), "mode"),
    (lambda o: S.ReduceLROnPlateau(o, threshold_mode="x"), "threshold_mode"),
    (lambda o: S.ReduceLROnPlateau(o, min_lr=[0.1]), "min_lr"),
])
def test_bad_arguments(call, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        call(make_opt())


def test_one_cycle_needs_momentum_or_betas():
    with pytest.raises(ValueError, match="^cycle_momentum:"):
        S.OneCycleLR(make_opt(optim.Adagrad), max_lr=1.0, total_steps=5)
    S.OneCycleLR(make_opt(optim.Adagrad), max_lr=1.0, total_steps=5, cycle_momentum=False)


def test_resuming_needs_initial_lr():
    with pytest.raises(KeyError):
        S.StepLR(make_opt(), step_size=2, last_epoch=3)


# --- the same sequences as torch ------------------------------------------------------------------

TORCH_SCHEDULERS = {
    "step": ("StepLR", dict(step_size=3, gamma=0.5)),
    "multistep": ("MultiStepLR", dict(milestones=[2, 5, 5, 8], gamma=0.3)),
    "exponential": ("ExponentialLR", dict(gamma=0.93)),
    "cosine": ("CosineAnnealingLR", dict(T_max=7, eta_min=0.003)),
    "linear": ("LinearLR", dict(start_factor=0.2, end_factor=0.9, total_iters=6)),
    "onecycle": ("OneCycleLR", dict(max_lr=[1.0, 0.3], total_steps=29)),
    "onecycle3": ("OneCycleLR", dict(max_lr=0.8, total_steps=29, three_phase=True, anneal_strategy="linear")),
}


@pytest.mark.parametrize("case", TORCH_SCHEDULERS)
@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_same_lr_sequence_as_torch(case, opt_name):
    torch = pytest.importorskip("torch")
    name, kw = TORCH_SCHEDULERS[case]
    extra = dict(momentum=0.9) if opt_name == "SGD" else {}
    opt = make_opt(getattr(optim, opt_name), **extra)
    topt = getattr(torch.optim, opt_name)([{"params": [torch.zeros(3, requires_grad=True)], "lr": LR0[0]},
                                           {"params": [torch.zeros(2, requires_grad=True)], "lr": LR0[1]}], **extra)
    sched = getattr(S, name)(opt, **kw)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    for _ in range(29):
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in topt.param_groups]
        key = "momentum" if opt_name == "SGD" else "betas"
        assert [g[key] for g in opt.param_groups] == [tuple(g[key]) if key == "betas" else g[key]
                                                      for g in topt.param_groups]
        opt.step()
        topt.step()
        sched.step()
        tsched.step()


def test_same_plateau_sequence_as_torch():
    torch = pytest.importorskip("torch")
    opt = make_opt()
    topt = torch.optim.SGD([{"params": [torch.zeros(3)], "lr": LR0[0]}, {"params": [torch.zeros(2)], "lr": LR0[1]}])
    kw = dict(mode="min", factor=0.3, patience=2, threshold=0.05, cooldown=2, min_lr=0.001)
    sched, tsched = S.ReduceLROnPlateau(opt, **kw), torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    rng = np.random.default_rng(0)
    for e in range(60):
        m = float(1.0 / (1 + e) + 0.05 * rng.random())
        sched.step(m)
        tsched.step(m)
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in topt.param_groups]
