"""The PyTorch-style loop's whole-model path (fastnn/_plan_eager.pxi) against the per-module path.

For a Sequential of Linear layers (each optionally followed by a fused activation) and Identity,
``model(x)`` runs the whole forward in one compiled call and ``loss.backward()`` the whole
backward in another; losses and SGD/Adam steps have one-call paths too. They must give the
per-module path's results bit for bit (.grad after backward, loss values, parameters, optimizer
state), keep its errors, and never run on a stale structure.
"""
import numpy as np
import pytest

import fastnn as fnn
from fastnn import _core, nn, optim
from fastnn.nn import container


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.uint64 if a.dtype == np.float64 else np.uint32)


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(_bits(a), _bits(b))


@pytest.fixture
def per_module(monkeypatch):
    """A context where every one-call path is off: what the loop did before them."""
    class Off:
        def __enter__(self):
            monkeypatch.setattr(container, "_whole_model", lambda seq: (None, "disabled"))
            monkeypatch.setattr(_core, "eager_loss", lambda *a: None)
            monkeypatch.setattr(_core, "eager_optimizer_step", lambda *a: False)

        def __exit__(self, *exc):
            monkeypatch.undo()
    return Off()


@pytest.fixture
def counted(monkeypatch):
    """Counts of the one-call paths that actually ran (so that no test compares a path with itself)."""
    counts = {"forward": 0, "loss": 0, "step": 0}
    eager_loss, eager_step = _core.eager_loss, _core.eager_optimizer_step

    def loss(*a):
        out = eager_loss(*a)
        counts["loss"] += out is not None
        return out

    def step(*a):
        done = eager_step(*a)
        counts["step"] += bool(done)
        return done
    monkeypatch.setattr(_core, "eager_loss", loss)
    monkeypatch.setattr(_core, "eager_optimizer_step", step)
    return counts


ACTS = {"relu": lambda: nn.ReLU(), "leaky": lambda: nn.LeakyReLU(0.1), "sigmoid": lambda: nn.Sigmoid(),
        "tanh": lambda: nn.Tanh(), "gelu": lambda: nn.GELU(), "gelu_tanh": lambda: nn.GELU("tanh"), None: None}


def _model(sizes, acts, dtype, bias=True, identity=False):
    mods = []
    for i in range(len(sizes) - 1):
        mods.append(nn.Linear(sizes[i], sizes[i + 1], bias=bias, dtype=dtype))
        if acts[i] is not None:
            mods.append(ACTS[acts[i]]())
        if identity and i == 0:
            mods.append(nn.Identity())
    return nn.Sequential(*mods)


LOSSES = {
    "mse": lambda: nn.MSELoss(), "mse_sum": lambda: nn.MSELoss(reduction="sum"), "l1": lambda: nn.L1Loss(),
    "bce": lambda: nn.BCELoss(), "bce_logits": lambda: nn.BCEWithLogitsLoss(),
    "ce": lambda: nn.CrossEntropyLoss(), "ce_smooth": lambda: nn.CrossEntropyLoss(label_smoothing=0.1),
}

OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1),
    "sgd_momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
    "sgd_nesterov_wd": lambda p: optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
    "adam": lambda p: optim.Adam(p, lr=0.01),
    "adam_amsgrad": lambda p: optim.Adam(p, lr=0.01, amsgrad=True, weight_decay=0.01),
    "adamw": lambda p: optim.AdamW(p, lr=0.01),
    "rmsprop": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.1),
}


def _data(n_in, n_out, loss, batch, dtype, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((batch, n_in)).astype(dtype)
    if loss.startswith("ce"):
        y = r.integers(0, n_out, batch).astype(np.int64)
    elif loss == "bce":
        y = r.integers(0, 2, (batch, n_out)).astype(dtype)
    elif loss == "bce_logits":
        y = r.uniform(0, 1, (batch, n_out)).astype(dtype)
    else:
        y = r.standard_normal((batch, n_out)).astype(dtype)
    return x, y


def _train(build, loss_name, opt_name, x, y, steps=3, accumulate=False):
    """Run the README loop; returns losses, and per step the grads and final params and state."""
    fnn.manual_seed(0)
    model = build()
    loss_fn = LOSSES[loss_name]()
    opt = OPTIMIZERS[opt_name](model.parameters())
    record = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        if accumulate:
            loss_fn(model(x), y).backward()
        grads = [p.grad.copy() for p in model.parameters()]
        opt.step()
        record.append((loss.item(), np.asarray(loss), grads))
    params = [p.data.copy() for p in model.parameters()]
    return model, record, params, opt.state_dict()


def _assert_same_runs(a, b):
    (_, rec_a, par_a, st_a), (_, rec_b, par_b, st_b) = a, b
    for (la, ta, ga), (lb, tb, gb) in zip(rec_a, rec_b):
        assert la == lb and _same(ta, tb)
        assert all(_same(u, v) for u, v in zip(ga, gb))
    assert all(_same(u, v) for u, v in zip(par_a, par_b))
    for i, s in st_a["state"].items():
        for k, v in s.items():
            w = st_b["state"][i][k]
            assert _same(v, w) if isinstance(v, np.ndarray) else v == w


NETS = [  # sizes, activations (after each Linear), loss
    ([2, 4, 1], ["tanh", "sigmoid"], "bce"),
    ([4, 3, 4], ["sigmoid", None], "mse"),
    ([64, 32, 10], ["relu", None], "ce"),
    ([5, 7, 6, 3], ["leaky", "gelu", None], "ce_smooth"),
    ([3, 9, 2], ["gelu_tanh", None], "bce_logits"),
    ([6, 5, 4], [None, "relu"], "l1"),
    ([3, 4], ["tanh"], "mse_sum"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 3, 17])
@pytest.mark.parametrize("net", range(len(NETS)))
def test_whole_model_loop_equals_per_module_loop(per_module, counted, net, batch, dtype):
    sizes, acts, loss = NETS[net]
    x, y = _data(sizes[0], sizes[-1], loss, batch, dtype)
    opt = ["sgd_momentum", "adam", "sgd"][net % 3]
    build = lambda: _model(sizes, acts, dtype)  # noqa: E731
    fast = _train(build, loss, opt, x, y)
    assert fast[0].whole_model_path.startswith("whole-model")
    assert fast[0]._eager.call == fast[0]._call_count  # the last forward took the whole-model path
    assert counted["loss"] == 3 and counted["step"] == 3
    with per_module:
        slow = _train(build, loss, opt, x, y)
        assert slow[0].whole_model_path.startswith("per-module")
    _assert_same_runs(fast, slow)


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_optimizer(per_module, opt, dtype):
    x, y = _data(5, 3, "mse", 4, dtype)
    build = lambda: _model([5, 6, 3], ["relu", None], dtype)  # noqa: E731
    fast = _train(build, "mse", opt, x, y, steps=4)
    with per_module:
        slow = _train(build, "mse", opt, x, y, steps=4)
    _assert_same_runs(fast, slow)


@pytest.mark.parametrize("variant", ["no_bias", "identity", "accumulate"])
def test_variants(per_module, variant):
    x, y = _data(4, 2, "mse", 3, np.float64)
    build = lambda: _model([4, 5, 2], ["tanh", None], np.float64, bias=variant != "no_bias",  # noqa: E731
                           identity=variant == "identity")
    kw = {"accumulate": variant == "accumulate"}
    fast = _train(build, "mse", "sgd_momentum", x, y, **kw)
    assert fast[0].whole_model_path.startswith("whole-model")
    with per_module:
        slow = _train(build, "mse", "sgd_momentum", x, y, **kw)
    _assert_same_runs(fast, slow)


def test_accumulation_doubles_the_gradient():
    fnn.manual_seed(0)
    model = _model([3, 4, 1], ["relu", None], np.float64)
    x, y = _data(3, 1, "mse", 5, np.float64)
    nn.MSELoss()(model(x), y).backward()
    once = [p.grad.copy() for p in model.parameters()]
    nn.MSELoss()(model(x), y).backward()
    assert all(np.array_equal(p.grad, 2 * g) for p, g in zip(model.parameters(), once))


def _composite_run(dtype):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = _model([4, 6], ["tanh"], dtype)
            self.mid = nn.Softmax()                      # per-module only
            self.dec = _model([6, 5, 3], ["relu", None], dtype)

        def forward(self, x):
            return self.dec(self.mid(self.enc(x)))

    fnn.manual_seed(1)
    net = Net()
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.5)
    x, y = _data(4, 3, "ce", 7, dtype)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        out = net(x)
        loss = nn.CrossEntropyLoss()(out, y)
        loss.backward()
        losses.append(loss.item())
        grads = [p.grad.copy() for p in net.parameters()]
        opt.step()
    # a chained call and a backward from a non-loss output with a given gradient
    chained = net.dec(net.mid(net.enc(x)))
    g = np.linspace(-1, 1, chained.size).reshape(chained.shape).astype(dtype)
    opt.zero_grad()
    chained.backward(g)
    grads.extend(p.grad.copy() for p in net.parameters())
    return net, losses, grads, [p.data.copy() for p in net.parameters()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_user_composites_mixing_both_paths(per_module, dtype):
    net, losses, grads, params = _composite_run(dtype)
    assert net.enc.whole_model_path.startswith("whole-model")
    with per_module:
        _, losses2, grads2, params2 = _composite_run(dtype)
    assert losses == losses2
    assert all(_same(a, b) for a, b in zip(grads, grads2))
    assert all(_same(a, b) for a, b in zip(params, params2))


def test_eval_mode_and_strided_inputs_equal_the_per_module_path(per_module):
    fnn.manual_seed(0)
    model = _model([6, 5, 2], ["gelu", "sigmoid"], np.float32)
    x = np.random.default_rng(0).standard_normal((9, 12)).astype(np.float32)[::2, ::2]  # strided
    outs = [np.array(model(x)), np.array(model.eval()(x)), np.array(model.train()(x[:1]))]
    with per_module:
        fnn.manual_seed(0)
        ref = _model([6, 5, 2], ["gelu", "sigmoid"], np.float32)
        refs = [np.array(ref(x)), np.array(ref.eval()(x)), np.array(ref.train()(x[:1]))]
    assert all(_same(a, b) for a, b in zip(outs, refs))


def test_outputs_of_earlier_calls_keep_their_values():
    fnn.manual_seed(0)
    model = _model([3, 4, 2], ["tanh", None], np.float32)
    a = np.ones((2, 3), np.float32)
    out1 = model(a)
    keep = np.array(out1)
    model(2 * a)
    assert np.array_equal(out1, keep) and not out1.flags.writeable


def _step(model, loss_fn, opt, x, y):
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def _modified_run(change, dtype=np.float64):
    fnn.manual_seed(3)
    model = _model([4, 5, 3], ["relu", None], dtype)
    x, y = _data(4, 3, "mse", 6, dtype)
    loss_fn = nn.MSELoss()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    record = [_step(model, loss_fn, opt, x, y)]
    if change == "reassign":
        model[0].weight = nn.Parameter(np.full((5, 4), 0.25, dtype))
        opt = optim.SGD(model.parameters(), lr=0.1)
    elif change == "swap":
        setattr(model, "1", nn.Tanh())
    elif change == "freeze":
        model[2].bias.requires_grad = False
    elif change == "new_optimizer":  # the parameters move to a new arena
        opt = optim.Adam(model.parameters(), lr=0.01)
    elif change == "batch":
        x, y = _data(4, 3, "mse", 11, dtype, seed=5)
    elif change == "slope":
        setattr(model, "1", nn.LeakyReLU(0.2))
        record.append(_step(model, loss_fn, opt, x, y))
        model[1].negative_slope = 0.05
    elif change == "unfuse":
        model.fuse = False
    for _ in range(2):
        record.append(_step(model, loss_fn, opt, x, y))
    grads = [p.grad.copy() for p in model.parameters()]
    return model, record, grads, [p.data.copy() for p in model.parameters()]


@pytest.mark.parametrize("change", ["reassign", "swap", "freeze", "new_optimizer", "batch", "slope", "unfuse"])
def test_models_modified_between_steps_never_use_a_stale_workspace(per_module, change):
    model, rec, grads, params = _modified_run(change)
    expect_fast = change != "unfuse"
    assert model.whole_model_path.startswith("whole-model" if expect_fast else "per-module")
    if expect_fast:
        assert model._eager.call == model._call_count  # the last forward took the whole-model path
    with per_module:
        _, rec2, grads2, params2 = _modified_run(change)
    assert rec == rec2
    assert all(_same(a, b) for a, b in zip(grads, grads2))
    assert all(_same(a, b) for a, b in zip(params, params2))
    if change == "freeze":
        assert np.all(model[2].bias.grad == 0)


def test_unsupported_models_take_the_per_module_path():
    drop = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 1))
    assert drop.whole_model_path.startswith("per-module: Dropout")
    soft = nn.Sequential(nn.Linear(3, 4), nn.Softmax())
    assert soft.whole_model_path.startswith("per-module: Softmax")
    lin = nn.Sequential(nn.Linear(3, 4))
    lin.forward = lambda x: x
    assert "overridden" in lin.whole_model_path
    with fnn.use_backend("reference"):
        assert nn.Sequential(nn.Linear(3, 4)).whole_model_path.startswith("per-module: the reference")


def test_instance_hooks_still_run():
    model = _model([2, 3, 1], ["relu", None], np.float64)
    calls = []
    original = model[0]._backward_fused

    def spy(*args, need_input_grad=True):
        calls.append(need_input_grad)
        return original(*args, need_input_grad=need_input_grad)
    model[0]._backward_fused = spy
    nn.MSELoss()(model(np.ones((2, 2))), np.zeros((2, 1))).backward()
    assert calls == [False]


def test_errors_are_those_of_the_per_module_path():
    fnn.manual_seed(0)
    model = _model([3, 4, 1], ["relu", None], np.float32)
    x, y = np.ones((2, 3), np.float32), np.zeros((2, 1), np.float32)
    with pytest.raises(ValueError, match=r"Linear\(3→4\) expected input with 3 features, got array of shape \(2, 5\)"):
        model(np.ones((2, 5), np.float32))
    with pytest.raises(TypeError, match="numeric"):
        model(np.array([["a", "b", "c"]]))
    out = model(x)
    loss = nn.MSELoss()(out, y)
    model(x)
    with pytest.raises(RuntimeError, match="called again"):
        loss.backward()
    out = model(x)
    model[0](x)
    with pytest.raises(RuntimeError, match="called on its own"):
        nn.MSELoss()(out, y).backward()
    with pytest.raises(RuntimeError, match="grad is required"):
        model(x).backward()
    with pytest.raises(ValueError, match="target: expected shape"):
        nn.MSELoss()(model(x), np.zeros((3, 1), np.float32))
    with pytest.raises(ValueError, match=r"input: expected probabilities in \[0, 1\]"):
        nn.BCELoss()(model(x) + 5, y)
    with pytest.raises(IndexError, match="label 7"):
        nn.CrossEntropyLoss()(_model([3, 4], [None], np.float32)(x), np.array([0, 7]))
    opt = optim.SGD(model.parameters(), lr=0.1)
    opt.param_groups[0]["lr"] = -1.0
    with pytest.raises(ValueError, match="lr"):
        opt.step()
    adam = optim.Adam(model.parameters(), lr=0.1)
    adam.param_groups[0]["betas"] = (1.5, 0.9)
    with pytest.raises(ValueError, match="betas"):
        adam.step()


def test_converted_inputs_give_the_per_module_results(per_module):
    x64 = np.random.default_rng(0).standard_normal((3, 4))
    fnn.manual_seed(0)
    model = _model([4, 2], ["tanh"], np.float32)
    a = [np.array(model(x64)), np.array(model((x64 * 10).astype(np.int64)))]
    with per_module:
        fnn.manual_seed(0)
        ref = _model([4, 2], ["tanh"], np.float32)
        b = [np.array(ref(x64)), np.array(ref((x64 * 10).astype(np.int64)))]
    assert all(_same(u, v) for u, v in zip(a, b))


def test_whole_model_path_equals_the_plan_on_the_gemm_path(per_module):
    """plan.step equals the eager loop bit for bit where the plan's products take the GEMM path."""
    from fastnn import plan as fplan
    dtype = np.float32
    x, y = _data(64, 10, "ce", 512, dtype)  # the head: 512·64·10 multiply-adds, above the direct loops'
    fnn.manual_seed(0)
    a = _model([64, 64, 10], ["relu", None], dtype)
    opt_a = optim.SGD(a.parameters(), lr=0.05, momentum=0.9)
    fnn.manual_seed(0)
    b = _model([64, 64, 10], ["relu", None], dtype)
    opt_b = optim.SGD(b.parameters(), lr=0.05, momentum=0.9)
    p = fplan.compile(b, nn.CrossEntropyLoss(), opt_b)
    for _ in range(2):
        la = _step(a, nn.CrossEntropyLoss(), opt_a, x, y)
        lb = p.step(x, y)
        assert np.float32(la) == np.float32(lb)
    assert all(_same(u.data, v.data) for u, v in zip(a.parameters(), b.parameters()))


def test_copies_of_a_model_train_on_their_own(per_module):
    import copy
    import pickle

    def run(make_copy):
        fnn.manual_seed(0)
        model = _model([3, 5, 2], ["tanh", None], np.float64)
        x, y = _data(3, 2, "mse", 4, np.float64)
        opt = optim.SGD(model.parameters(), lr=0.1)
        _step(model, nn.MSELoss(), opt, x, y)
        twin = make_copy(model)
        twin_opt = optim.SGD(twin.parameters(), lr=0.1)
        for _ in range(2):
            _step(twin, nn.MSELoss(), twin_opt, x, y)
        _step(model, nn.MSELoss(), opt, x, y)
        return model, twin, [p.data.copy() for p in model.parameters() + twin.parameters()]

    for make_copy in (copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))):
        model, twin, params = run(make_copy)
        assert twin._eager is not model._eager and twin._eager.call == twin._call_count
        with per_module:
            _, _, ref = run(make_copy)
        assert all(_same(a, b) for a, b in zip(params, ref))


def test_requires_grad_given_as_an_int(per_module):
    def run():
        fnn.manual_seed(0)
        model = _model([3, 2], [None], np.float64)
        model[0].bias.requires_grad = 0
        x, y = _data(3, 2, "mse", 4, np.float64)
        nn.MSELoss()(model(x), y).backward()
        return model, [p.grad.copy() for p in model.parameters()]
    model, grads = run()
    assert model._eager is not None and model._eager.call == model._call_count
    with per_module:
        _, ref = run()
    assert all(_same(a, b) for a, b in zip(grads, ref)) and not grads[1].any()


@pytest.mark.parametrize("layer", ["dropout", "batchnorm", "layernorm"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_models_on_the_per_module_path_keep_their_results(per_module, counted, layer, mode):
    """Dropout (seeded), BatchNorm1d and LayerNorm models take the per-module path for the model,
    while their losses, steps and backprop take the one-call paths: the same results as before."""
    def run():
        fnn.manual_seed(7)
        mid = {"dropout": lambda: nn.Dropout(0.3), "batchnorm": lambda: nn.BatchNorm1d(6),
               "layernorm": lambda: nn.LayerNorm(6)}[layer]()
        model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), mid, nn.Linear(6, 3))
        model.train(mode == "train")
        opt = optim.Adam(model.parameters(), lr=0.01)
        x, y = _data(4, 3, "ce", 9, np.float32)
        losses = [_step(model, nn.CrossEntropyLoss(), opt, x, y) for _ in range(3)]
        return model, losses, [p.data.copy() for p in model.parameters()], [p.grad.copy() for p in model.parameters()]
    model, losses, params, grads = run()
    assert model.whole_model_path.startswith("per-module")
    assert counted["loss"] == 3 and counted["step"] == 3
    with per_module:
        _, losses2, params2, grads2 = run()
    assert losses == losses2
    assert all(_same(a, b) for a, b in zip(params + grads, params2 + grads2))


def test_a_loss_gradient_someone_holds_is_never_overwritten():
    fnn.manual_seed(0)
    model = _model([3, 2], [None], np.float32)
    loss_fn = nn.MSELoss()
    x, y = _data(3, 2, "mse", 4, np.float32)
    loss_fn(model(x), y).backward()
    held = loss_fn._grad
    keep = held.copy()
    loss_fn(model(2 * x), y).backward()
    assert np.array_equal(held, keep) and loss_fn._grad is not held
    again = loss_fn._grad
    del held
    loss_fn(model(x), y)  # nothing else holds the last gradient now: it may be reused
    assert loss_fn._grad.shape == again.shape


def test_a_layer_put_straight_into_modules_is_seen(per_module):
    def run():
        fnn.manual_seed(0)
        model = _model([3, 4, 2], ["relu", None], np.float64)
        x, y = _data(3, 2, "mse", 5, np.float64)
        nn.MSELoss()(model(x), y).backward()
        model._modules["1"] = nn.Sigmoid()  # no __setattr__: no epoch bump
        model.zero_grad()
        loss = nn.MSELoss()(model(x), y)
        loss.backward()
        return loss.item(), [p.grad.copy() for p in model.parameters()], model
    loss, grads, model = run()
    assert model._eager.call == model._call_count  # rebuilt for the new layer, whole-model again
    with per_module:
        loss2, grads2, _ = run()
    assert loss == loss2 and all(_same(a, b) for a, b in zip(grads, grads2))


def test_loop_benchmark_runs(capsys):
    """fastnn.bench.loop (benchmarks/bench_loop.py, fastnn bench --only loop): rows and a table."""
    from fastnn.bench import loop
    threads = fnn.get_num_threads()
    rows = loop.run_loop_benchmarks(["tiny_xor"], repeats=1, threads=1, impls=["fastnn-loop", "numpy"])
    assert fnn.get_num_threads() == threads  # restored
    assert [r["impl"] for r in rows] == ["fastnn-loop", "numpy"]
    assert rows[0]["vs_numpy"] > 0 and all(r["time_per_step_s"] > 0 for r in rows)
    assert "tiny_xor" in loop.format_rows(rows)
