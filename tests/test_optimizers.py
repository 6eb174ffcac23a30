"""fastnn.optim classes: PyTorch's defaults, validation, state names and step counts; parameter
groups, live hyper-parameters, several models, zero_grad; per-arena fused updates equal per-parameter
updates; resume from state_dict bit for bit; and, when torch is importable, the same trajectories as
torch.optim in float64."""
import copy

import numpy as np
import pytest

import fastnn
from fastnn import optim, reference
from fastnn.nn import Parameter

SHAPES = [(3, 5), (5,), (17,), (1,)]

# (class, kwargs, per-parameter reference step) for every optimizer and its main options.
CASES = {
    "sgd": (optim.SGD, dict(lr=0.1)),
    "sgd_momentum": (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "sgd_nesterov": (optim.SGD, dict(lr=0.005, momentum=0.8, nesterov=True, maximize=True)),
    "adam": (optim.Adam, dict(lr=0.01)),
    "adam_amsgrad": (optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True, maximize=True)),
    "adamw": (optim.AdamW, dict(lr=0.01)),
    "adamw_amsgrad": (optim.AdamW, dict(lr=0.02, weight_decay=0.3, amsgrad=True)),
    "rmsprop": (optim.RMSprop, dict(lr=0.01)),
    "rmsprop_centered": (optim.RMSprop, dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1)),
    "adagrad": (optim.Adagrad, dict(lr=0.1)),
    "adagrad_decay": (optim.Adagrad, dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.2, weight_decay=0.1)),
}


def make_params(dtype=np.float64, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]


def fake_backward(params, step):
    """A deterministic, state-dependent gradient: ∂/∂θ of Σ(θ − c)⁴/4 plus a step-dependent drift."""
    for k, p in enumerate(params):
        c = np.sin(np.arange(p.size) + k).reshape(p.shape)
        p.grad = (p.data - c) ** 3 + 0.1 * np.cos(step + np.arange(p.size)).reshape(p.shape)


def run(opt, params, steps, start=0):
    for t in range(start, start + steps):
        opt.zero_grad()
        fake_backward(params, t)
        opt.step()


# --- per-parameter reference: each parameter on its own, with fastnn.reference -------------------

def per_param_reference(cls, kw, params, steps):
    """Run the same updates parameter by parameter (no arenas) with fastnn.reference."""
    kw = dict(kw)
    state = [dict() for _ in params]
    for t in range(steps):
        fake_backward(params, t)
        for p, st in zip(params, state):
            data, grad = p.data.reshape(-1), p.grad.reshape(-1).copy()
            st["step"] = st.get("step", 0) + 1
            zeros = lambda: np.zeros_like(data)  # noqa: E731
            if cls is optim.SGD:
                o = dict(dict(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False), **kw)
                buf = st.setdefault("buf", zeros())
                reference.sgd_step(data, grad, buf, first_step=st["step"] == 1, **o)
            elif cls in (optim.Adam, optim.AdamW):
                o = dict(dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, amsgrad=False, maximize=False,
                              weight_decay=1e-2 if cls is optim.AdamW else 0.0), **kw)
                b1, b2 = o.pop("betas")
                m, v, vm = (st.setdefault(k, zeros()) for k in ("m", "v", "vm"))
                reference.adam_step(data, grad, m, v, vm, step=st["step"], beta1=b1, beta2=b2,
                                    decoupled_weight_decay=cls is optim.AdamW, **o)
            elif cls is optim.RMSprop:
                o = dict(dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False), **kw)
                v, ga, b = (st.setdefault(k, zeros()) for k in ("v", "ga", "b"))
                reference.rmsprop_step(data, grad, v, ga, b, **o)
            else:
                o = dict(dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10), **kw)
                s = st.setdefault("s", np.full_like(data, o.pop("initial_accumulator_value")))
                o.pop("initial_accumulator_value", None)
                reference.adagrad_step(data, grad, s, step=st["step"], **o)
    return [p.numpy() for p in params]


@pytest.mark.parametrize("case", CASES)
def test_fused_arena_update_equals_per_parameter_reference(case):
    cls, kw = CASES[case]
    params = make_params()
    expect = per_param_reference(cls, kw, make_params(), 4)
    run(cls(params, **kw), params, 4)
    for p, e in zip(params, expect):
        np.testing.assert_allclose(p.data, e, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_c_backend_matches_reference_backend(case, dtype):
    cls, kw = CASES[case]
    a, b = make_params(dtype), make_params(dtype)
    run(cls(a, **kw), a, 5)
    opt_b = cls(b, **kw)
    with fastnn.use_backend("reference"):
        run(opt_b, b, 5)
    for pa, pb in zip(a, b):
        np.testing.assert_allclose(pa.data, pb.data, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-7)


def test_adam_first_step_moves_each_weight_by_lr():
    # with bias correction, step 1 is θ − lr·g/(|g| + eps·…): every weight moves by ≈ lr
    params = make_params()
    before = [p.numpy() for p in params]
    opt = optim.Adam(params, lr=0.01)
    fake_backward(params, 0)
    grads = [p.grad.copy() for p in params]
    opt.step()
    for p, b, g in zip(params, before, grads):
        np.testing.assert_allclose(p.data, b - 0.01 * np.sign(g), rtol=0, atol=1e-8)


# --- defaults, validation, state ------------------------------------------------------------

def test_pytorch_defaults():
    p = make_params()
    assert {k: v for k, v in optim.Adam(p).defaults.items()} == dict(
        lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
        decoupled_weight_decay=False)
    w = optim.AdamW(make_params()).defaults
    assert w["weight_decay"] == 1e-2 and w["decoupled_weight_decay"] is True and w["lr"] == 1e-3
    assert optim.RMSprop(make_params()).defaults == dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                                                          momentum=0.0, centered=False, maximize=False)
    assert optim.Adagrad(make_params()).defaults == dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                                                          initial_accumulator_value=0.0, eps=1e-10, maximize=False)


@pytest.mark.parametrize("cls,kw,name", [
    (optim.Adam, dict(lr=-1.0), "lr: Invalid learning rate"),
    (optim.Adam, dict(eps=-1e-8), "eps: Invalid epsilon value"),
    (optim.Adam, dict(betas=(1.0, 0.999)), "betas: Invalid beta parameter at index 0"),
    (optim.Adam, dict(betas=(0.9, -0.1)), "betas: Invalid beta parameter at index 1"),
    (optim.Adam, dict(betas=(0.9,)), "betas:"),
    (optim.Adam, dict(weight_decay=-0.1), "weight_decay: Invalid weight_decay value"),
    (optim.AdamW, dict(lr=float("nan")), "lr: Invalid learning rate"),
    (optim.RMSprop, dict(alpha=-0.5), "alpha: Invalid alpha value"),
    (optim.RMSprop, dict(momentum=-0.5), "momentum: Invalid momentum value"),
    (optim.RMSprop, dict(eps=-1.0), "eps: Invalid epsilon value"),
    (optim.Adagrad, dict(lr_decay=-1.0), "lr_decay: Invalid lr_decay value"),
    (optim.Adagrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value: Invalid"),
    (optim.Adagrad, dict(weight_decay=-1.0), "weight_decay: Invalid"),
    (optim.SGD, dict(lr=0.1, nesterov=True), "nesterov:"),
])
def test_bad_hyper_parameters_raise_at_construction(cls, kw, name):
    with pytest.raises(ValueError, match="^" + name):
        cls(make_params(), **kw)


def test_bad_hyper_parameter_set_later_raises_at_step_without_touching_parameters():
    params = make_params()
    opt = optim.Adam(params)
    fake_backward(params, 0)
    before = [p.numpy() for p in params]
    opt.param_groups[0]["betas"] = (0.9, 1.5)
    with pytest.raises(ValueError, match="^betas:"):
        opt.step()
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.data, b)


@pytest.mark.parametrize("cls,kw,names", [
    (optim.SGD, dict(lr=0.1, momentum=0.9), {"momentum_buffer"}),
    (optim.Adam, dict(), {"step", "exp_avg", "exp_avg_sq"}),
    (optim.Adam, dict(amsgrad=True), {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
    (optim.AdamW, dict(), {"step", "exp_avg", "exp_avg_sq"}),
    (optim.RMSprop, dict(), {"step", "square_avg"}),
    (optim.RMSprop, dict(momentum=0.9, centered=True), {"step", "square_avg", "momentum_buffer", "grad_avg"}),
    (optim.Adagrad, dict(), {"step", "sum"}),
])
def test_state_names_and_step_count(cls, kw, names):
    params = make_params()
    opt = cls(params, **kw)
    run(opt, params, 3)
    sd = opt.state_dict()
    assert set(sd["state"]) == set(range(len(params)))
    for i, p in enumerate(params):
        assert set(sd["state"][i]) == names
        for k in names - {"step"}:
            assert sd["state"][i][k].shape == p.shape
        if "step" in names:
            assert sd["state"][i]["step"] == 3
    if cls is optim.Adagrad:  # like PyTorch, the accumulator exists before the first step
        fresh = optim.Adagrad(make_params(), initial_accumulator_value=0.5).state_dict()["state"][0]
        assert fresh["step"] == 0 and np.all(fresh["sum"] == 0.5)


# --- groups, live hyper-parameters, several models -------------------------------------------------

@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.RMSprop, optim.Adagrad])
def test_param_groups_with_their_own_lr(cls):
    a, b = make_params(seed=1), make_params(seed=2)
    opt = cls([{"params": a, "lr": 0.05}, {"params": b}], lr=0.01)
    assert opt.param_groups[0]["lr"] == 0.05 and opt.param_groups[1]["lr"] == 0.01
    run(opt, a + b, 3)
    # the same as two separate optimizers with those learning rates
    a2, b2 = make_params(seed=1), make_params(seed=2)
    oa, ob = cls(a2, lr=0.05), cls(b2, lr=0.01)
    for t in range(3):
        fake_backward(a2 + b2, t)  # same gradients as the joint run (depends on position k)
        oa.step()
        ob.step()
    for p, q in zip(a + b, a2 + b2):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad])
def test_live_lr_change_takes_effect(cls):
    params = make_params()
    opt = cls(params, lr=0.01)
    run(opt, params, 2)
    opt.param_groups[0]["lr"] = 0.0
    frozen = [p.numpy() for p in params]
    run(opt, params, 2, start=2)
    for p, f in zip(params, frozen):
        np.testing.assert_array_equal(p.data, f)
    opt.param_groups[0]["lr"] = 0.5
    run(opt, params, 1, start=4)
    assert any(not np.array_equal(p.data, f) for p, f in zip(params, frozen))


def test_live_momentum_and_betas_change_take_effect():
    params = make_params()
    opt = optim.Adam(params, lr=0.01)
    run(opt, params, 1)
    opt.param_groups[0]["betas"] = (0.0, 0.999)  # m becomes the plain gradient
    opt.zero_grad()
    fake_backward(params, 1)
    opt.step()
    # m + (1 − 0)(g − m) = g up to the rounding of that form
    np.testing.assert_allclose(opt.state_dict()["state"][0]["exp_avg"], params[0].grad, rtol=1e-14, atol=1e-15)


def test_one_optimizer_over_two_models():
    m1 = fastnn.nn.Linear(4, 3, dtype=np.float64)
    m2 = fastnn.nn.Linear(3, 2, dtype=np.float64)
    params = list(m1.parameters()) + list(m2.parameters())
    start = [p.numpy() for p in params]
    opt = optim.Adam(params, lr=0.1)
    run(opt, params, 3)
    # the same as running each model's parameters alone
    alone = [Parameter(s) for s in start]
    o1, o2 = optim.Adam(alone[:2], lr=0.1), optim.Adam(alone[2:], lr=0.1)
    for t in range(3):
        fake_backward(alone, t)
        o1.step()
        o2.step()
    for p, q in zip(params, alone):
        np.testing.assert_array_equal(p.data, q.data)
        assert not np.array_equal(p.data, start[params.index(p)])


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.RMSprop, optim.Adagrad])
def test_zero_grad_zeroes_every_gradient(cls):
    params = make_params(np.float32) + make_params(np.float64, seed=3)  # two arenas
    opt = cls(params, lr=0.01)
    fake_backward(params, 0)
    assert all(np.any(p.grad != 0) for p in params)
    opt.zero_grad()
    assert all(np.all(p.grad == 0) for p in params)


def test_mixed_dtypes_update_each_arena():
    params = make_params(np.float32) + make_params(np.float64, seed=3)
    before = [p.numpy() for p in params]
    opt = optim.Adam(params, lr=0.01)
    run(opt, params, 2)
    assert all(p.dtype == b.dtype and not np.array_equal(p.data, b) for p, b in zip(params, before))


# --- checkpoints -------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resume_from_state_dict_is_bitwise(case, dtype):
    cls, kw = CASES[case]
    params = make_params(dtype)
    opt = cls(params, **kw)
    run(opt, params, 4)
    saved_params = [p.numpy() for p in params]
    saved_opt = copy.deepcopy(opt.state_dict())
    run(opt, params, 3, start=4)  # continue
    fresh = [Parameter(np.zeros(s, dtype)) for s in SHAPES]
    for p, s in zip(fresh, saved_params):
        p.data = s
    opt2 = cls(fresh, **dict(kw, lr=123.0))  # lr (and all else) comes back from the dict
    opt2.load_state_dict(saved_opt)
    run(opt2, fresh, 3, start=4)
    for p, q in zip(params, fresh):
        assert p.data.tobytes() == q.data.tobytes()
    assert opt.state_dict()["param_groups"][0]["lr"] == opt2.state_dict()["param_groups"][0]["lr"]


# --- torch.optim trajectories ----------------------------------------------------------------------

TORCH_CASES = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd_momentum": ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "sgd_nesterov": ("SGD", dict(lr=0.005, momentum=0.8, nesterov=True, maximize=True, weight_decay=0.02)),
    "adam": ("Adam", dict(lr=0.01)),
    "adam_wd": ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    "adam_amsgrad": ("Adam", dict(lr=0.01, amsgrad=True, maximize=True)),
    "adamw": ("AdamW", dict(lr=0.01)),
    "adamw_amsgrad": ("AdamW", dict(lr=0.02, weight_decay=0.3, amsgrad=True)),
    "rmsprop": ("RMSprop", dict(lr=0.01)),
    "rmsprop_centered": ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1)),
    "rmsprop_momentum": ("RMSprop", dict(lr=0.01, momentum=0.9, maximize=True)),
    "adagrad": ("Adagrad", dict(lr=0.1)),
    "adagrad_decay": ("Adagrad", dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.2, weight_decay=0.1)),
    "adagrad_maximize": ("Adagrad", dict(lr=0.01, maximize=True)),
    "rmsprop_centered_max": ("RMSprop", dict(lr=0.001, centered=True, maximize=True)),
    "adamw_maximize": ("AdamW", dict(lr=0.001, maximize=True, weight_decay=0.05)),
}


@pytest.mark.parametrize("case", TORCH_CASES)
def test_same_trajectory_as_torch(case):
    torch = pytest.importorskip("torch")
    name, kw = TORCH_CASES[case]
    params = make_params(np.float64)
    tparams = [torch.tensor(p.numpy(), requires_grad=True) for p in params]
    opt = getattr(optim, name)(params, **kw)
    topt = getattr(torch.optim, name)(tparams, foreach=False, **kw)
    for t in range(5):
        fake_backward(params, t)
        for tp, p in zip(tparams, params):
            tp.grad = torch.tensor(p.grad)
        opt.step()
        topt.step()
        for tp, p in zip(tparams, params):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)
        # the gradients fed to torch were recomputed from our parameters: same trajectory both ways
    tstate = topt.state_dict()["state"]
    ours = opt.state_dict()["state"]
    for i in ours:
        for k, v in ours[i].items():
            tv = tstate[i][k]
            np.testing.assert_allclose(np.asarray(v), tv.numpy() if hasattr(tv, "numpy") else tv, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,kw", [("Adam", dict(lr=0.01, amsgrad=True)), ("SGD", dict(lr=0.1, momentum=0.9)),
                                     ("RMSprop", dict(lr=0.01, centered=True)), ("Adagrad", dict(lr=0.1))])
def test_resume_from_a_torch_checkpoint(name, kw):
    """A torch.optim state_dict (tensors, a 0-d `step`) loads and training continues as in torch."""
    torch = pytest.importorskip("torch")
    params = make_params(np.float64)
    tparams = [torch.tensor(p.numpy(), requires_grad=True) for p in params]
    topt = getattr(torch.optim, name)(tparams, foreach=False, **kw)
    for t in range(3):
        fake_backward(params, t)
        for tp, p in zip(tparams, params):
            tp.grad = torch.tensor(p.grad)
        topt.step()
        for tp, p in zip(tparams, params):
            p.data = tp.detach().numpy()
    opt = getattr(optim, name)(params, **dict(kw, lr=1.0))
    opt.load_state_dict(topt.state_dict())
    assert opt.param_groups[0]["lr"] == kw["lr"]
    for t in range(3, 6):
        fake_backward(params, t)
        for tp, p in zip(tparams, params):
            tp.grad = torch.tensor(p.grad)
        topt.step()
        opt.step()
    for tp, p in zip(tparams, params):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)
