"""fit through the compiled plan's C runs (many epochs per call, one epoch per call, one step
per call) against each other and against the PyTorch-style loop; Ctrl-C inside a multi-epoch
run; the plan cache; the reference backend.

The three plan paths run the same kernels in the same order, so parameters, optimizer state
and History are compared byte for byte. The eager loop rounds differently on small layers
(the plan's direct loops vs the GEMM), so it is compared with a tolerance.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

import fastnn
from fastnn import _core, nn, optim
from fastnn import plan as fplan

from conftest import needs_ctrl_c

LOSSES = {"mse": nn.MSELoss, "l1": nn.L1Loss, "bce": nn.BCELoss, "bce_logits": nn.BCEWithLogitsLoss,
          "ce": nn.CrossEntropyLoss, "ce_sum_smooth": lambda: nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1),
          "mse_sum": lambda: nn.MSELoss(reduction="sum")}
OPTS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.05),
    "sgd_momentum": lambda ps: optim.SGD(ps, lr=0.02, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam_amsgrad": lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.01),
    "rmsprop_centered": lambda ps: optim.RMSprop(ps, lr=0.005, momentum=0.5, centered=True),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.05, lr_decay=1e-3),
}
LAYERS = {
    "tanh": lambda a, b: [nn.Linear(a, 9), nn.Tanh(), nn.Linear(9, b)],
    "relu_deep": lambda a, b: [nn.Linear(a, 12), nn.ReLU(), nn.Linear(12, 7), nn.LeakyReLU(0.1), nn.Linear(7, b)],
    "gelu_layernorm": lambda a, b: [nn.Linear(a, 8), nn.GELU(), nn.LayerNorm(8), nn.Linear(8, b)],
    "wide": lambda a, b: [nn.Linear(a, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, b)],
    "batchnorm_dropout": lambda a, b: [nn.Linear(a, 10), nn.BatchNorm1d(10), nn.ReLU(), nn.Dropout(0.2),
                                       nn.Linear(10, b)],
}


class EpochHook(fastnn.Callback):
    """Does nothing, but at the end of every epoch: the epochs then run one C call at a time."""

    def on_epoch_end(self, epoch, logs=None):
        pass


class BatchHook(fastnn.Callback):
    """Does nothing, but after every batch: the steps then run one C call at a time."""

    def on_batch_end(self, batch, logs=None):
        pass


PATHS = {"runs": [], "epochs": [EpochHook], "steps": [BatchHook]}
NOTES = {"runs": "many epochs per C call", "epochs": "one epoch per C call", "steps": "one C call per step"}


def make(layers, loss, opt, n=37, n_in=5, n_out=3, seed=0):
    fastnn.manual_seed(seed)
    mods = LAYERS[layers](n_in, n_out)
    if loss == "bce":
        mods.append(nn.Sigmoid())
    model = nn.Sequential(*mods)
    o = OPTS[opt](model.parameters())
    if loss.endswith("sum"):
        o.param_groups[0]["lr"] *= 0.05
    r = np.random.default_rng(seed + 1)
    dtype = np.float32
    X = r.standard_normal((n, n_in)).astype(dtype)
    if loss.startswith("ce"):
        y = r.integers(0, n_out, n)
    elif loss.startswith("bce"):
        y = (r.uniform(0, 1, (n, n_out)) > 0.5).astype(dtype)
    else:
        y = r.standard_normal((n, n_out)).astype(dtype)
    return model, LOSSES[loss](), o, X, y


def state_bytes(model, opt):
    out = {k: np.ascontiguousarray(v).tobytes() for k, v in model.state_dict().items()}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"opt.{i}.{k}"] = np.asarray(v).tobytes()
    return out


def train(path, layers, loss, opt, validation=False, plan="auto", seed=0, epochs=4, extra=(), **kw):
    model, loss_fn, o, X, y = make(layers, loss, opt, seed=seed)
    callbacks = [c() for c in PATHS[path]] + list(extra)
    vd = (X[:11], y[:11]) if validation else None
    if plan != False:  # noqa: E712 - plan may be "auto"
        note = fplan.explain(model, loss_fn, o, callbacks=callbacks, validation_data=vd,
                             scheduler=kw.get("scheduler"))
        expected = NOTES[path] if not (path == "runs" and validation and layers == "batchnorm_dropout") \
            else NOTES["epochs"]
        if kw.get("scheduler") is not None and path == "runs":
            expected = NOTES["epochs"]
        assert expected in note, note
    h = fastnn.fit(model, loss_fn, o, X, y, epochs=epochs, batch_size=8, seed=3, verbose=0, plan=plan,
                   validation_data=vd, callbacks=callbacks, **kw)
    return model, o, h


def assert_same_history(h1, h2):
    assert h1.epoch == h2.epoch
    assert list(h1.history) == list(h2.history)
    for k in h1.history:
        assert h1.history[k] == h2.history[k], k   # exact: the same float values


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("opt", sorted(OPTS))
def test_every_loss_and_optimizer_same_on_every_plan_path(loss, opt):
    results = {p: train(p, "tanh", loss, opt, validation=True) for p in PATHS}
    ref = results["runs"]
    for p in ("epochs", "steps"):
        assert state_bytes(ref[0], ref[1]) == state_bytes(results[p][0], results[p][1]), p
        assert_same_history(ref[2], results[p][2])
    names = {"loss", "val_loss", "lr"} | ({"accuracy", "val_accuracy"} if loss.startswith(("ce", "bce")) else set())
    assert set(ref[2].history) == names


@pytest.mark.parametrize("layers", sorted(LAYERS))
@pytest.mark.parametrize("validation", [False, True])
@pytest.mark.parametrize("loss", ["ce", "bce_logits", "mse"])
def test_every_layer_same_on_every_plan_path_and_close_to_the_eager_loop(layers, validation, loss):
    # Adam turns the rounding noise of a bias before batch norm (gradient ~0) into full steps: SGD there.
    opt = "sgd_momentum" if "batchnorm" in layers else "adam_amsgrad"
    results = {p: train(p, layers, loss, opt, validation=validation) for p in PATHS}
    ref = results["runs"]
    for p in ("epochs", "steps"):
        assert state_bytes(ref[0], ref[1]) == state_bytes(results[p][0], results[p][1]), p
        assert_same_history(ref[2], results[p][2])
    m, o, h = train("steps", layers, loss, opt, validation=validation, plan=False)
    assert list(h.history) == list(ref[2].history)
    for k in h.history:
        np.testing.assert_allclose(ref[2].history[k], h.history[k], rtol=2e-4, atol=1e-6, err_msg=k)
    for k, v in m.state_dict().items():
        np.testing.assert_allclose(ref[0].state_dict()[k], v, rtol=2e-3, atol=2e-5, err_msg=k)


def test_accuracy_counted_in_c_equals_numpy_count():
    """The plan's C counts (argmax with class labels, thresholds 0.5 and 0) against NumPy on the
    final model's outputs."""
    for loss in ("ce", "bce", "bce_logits"):
        model, loss_fn, o, X, y = make("tanh", loss, "adam_amsgrad", n=50)
        h = fastnn.fit(model, loss_fn, o, X, y, epochs=3, batch_size=50, shuffle=False, verbose=0,
                       validation_data=(X, y))
        model.eval()
        out = np.asarray(model(X))
        if loss == "ce":
            want = np.mean(out.argmax(1) == y)
        else:
            want = np.mean((out > (0.5 if loss == "bce" else 0.0)) == (y > 0.5))
        assert h.history["val_accuracy"][-1] == pytest.approx(want, abs=1e-12), loss


@pytest.mark.parametrize("make_sched", [
    lambda o: optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
    lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, mode="max", patience=0, factor=0.5),  # falls: cuts lr
])
def test_schedulers_same_between_epochs_and_steps(make_sched):
    out = []
    for path in ("runs", "steps"):
        model, loss_fn, o, X, y = make("tanh", "ce", "sgd_momentum")
        cbs = [c() for c in PATHS[path]]
        h = fastnn.fit(model, loss_fn, o, X, y, epochs=6, batch_size=8, seed=1, verbose=0, callbacks=cbs,
                       scheduler=make_sched(o), validation_data=(X[:9], y[:9]))
        out.append((state_bytes(model, o), h))
    assert out[0][0] == out[1][0]
    assert_same_history(out[0][1], out[1][1])
    assert len(set(out[0][1].history["lr"])) > 1  # the scheduler did change the lr between epochs


def test_early_stopping_same_between_epochs_and_steps():
    out = []
    for path in ("runs", "steps"):
        model, loss_fn, o, X, y = make("tanh", "mse", "adam_amsgrad")
        o.param_groups[0]["lr"] = 0.2  # noisy: val_loss stops improving early
        es = fastnn.EarlyStopping(monitor="val_loss", patience=1)
        h = fastnn.fit(model, loss_fn, o, X, y, epochs=40, batch_size=8, seed=1, verbose=0,
                       callbacks=[c() for c in PATHS[path]] + [es], validation_data=(X[:9], y[:9]))
        out.append((state_bytes(model, o), h, es.stopped_epoch))
    assert out[0][0] == out[1][0]
    assert_same_history(out[0][1], out[1][1])
    assert out[0][2] == out[1][2] and out[0][2] is not None and out[0][2] < 40


def _diverging(path, plan="auto"):
    """Finite data whose one huge target makes the loss overflow at a known batch."""
    model, loss_fn, o, X, y = make("tanh", "mse", "sgd")
    y = y.copy()
    y[20] = 3e20   # (out - y)² overflows float32: the loss of the batch holding it is inf

    with pytest.raises(fastnn.DivergenceError) as info:
        fastnn.fit(model, loss_fn, o, X, y, epochs=5, batch_size=8, shuffle=False, verbose=0, plan=plan,
                   callbacks=[c() for c in PATHS[path]])
    h = info.value.history
    return model, o, info.value, h


def test_divergence_reported_the_same_on_every_path():
    ref = _diverging("runs")
    for path, plan in (("epochs", "auto"), ("steps", "auto"), ("steps", False)):
        m, o, e, h = _diverging(path, plan)
        assert str(e) == str(ref[2]), (path, plan)
        assert (e.epoch, e.step, e.batch, e.loss, e.lr) == (ref[2].epoch, ref[2].step, ref[2].batch, ref[2].loss,
                                                           ref[2].lr)
        assert h.epoch == ref[3].epoch
        if plan != False:  # noqa: E712
            assert state_bytes(m, o) == state_bytes(ref[0], ref[1])
    assert ref[2].epoch == 1 and ref[2].batch == 3 and ref[2].step == 3   # sample 20 is in batch 3
    assert "the loss became non-finite" in str(ref[2])


def test_divergence_in_a_later_epoch_keeps_the_completed_epochs():
    """lr grows by a scheduler-free trick: a huge lr on SGD makes training blow up after some
    epochs; every path stops at the same step with the same completed epochs."""
    res = []
    for path in ("runs", "steps"):
        model, loss_fn, o, X, y = make("tanh", "mse", "sgd")
        o.param_groups[0]["lr"] = 3.0
        with pytest.raises(fastnn.DivergenceError) as info:
            fastnn.fit(model, loss_fn, o, X, y * 100, epochs=500, batch_size=8, seed=2, verbose=0,
                       callbacks=[c() for c in PATHS[path]])
        res.append((info.value, state_bytes(model, o)))
    (e1, s1), (e2, s2) = res
    assert str(e1) == str(e2) and s1 == s2
    assert_same_history(e1.history, e2.history)
    assert len(e1.history.epoch) == e1.epoch - 1


EPOCHS = 200_000  # far more than run in the 0.2 s before the signal, and a bound if it were lost


@needs_ctrl_c
def test_sigint_inside_a_multi_epoch_run_leaves_the_last_completed_step():
    # a wide network: few enough steps run before the signal for the step-by-step replay to be quick
    model, loss_fn, o, X, y = make("wide", "ce", "adam_amsgrad", n=300)
    assert NOTES["runs"] in fplan.explain(model, loss_fn, o, callbacks=[])

    started = threading.Event()

    class Started(fastnn.Callback):  # on_train_begin only: the epochs still run many per C call
        def on_train_begin(self, logs=None):
            started.set()

    def fire():
        started.wait(30)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=fire, daemon=True)
    t.start()
    with pytest.raises(KeyboardInterrupt) as info:
        fastnn.fit(model, loss_fn, o, X, y, epochs=EPOCHS, batch_size=8, seed=4, verbose=0, callbacks=[Started()])
    t.join()
    hist = info.value.history
    steps = hist.params["steps_done"]
    per_epoch = hist.params["steps"]
    assert 0 < steps < EPOCHS * per_epoch
    assert len(hist.epoch) == steps // per_epoch
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    class StopAfter(fastnn.Callback):
        def on_batch_end(self, batch, logs=None):
            if logs["step"] >= steps:
                self.stop_training = True

    m2, l2, o2, X2, y2 = make("wide", "ce", "adam_amsgrad", n=300)
    h2 = fastnn.fit(m2, l2, o2, X2, y2, epochs=EPOCHS, batch_size=8, seed=4, verbose=0, callbacks=[StopAfter()])
    assert state_bytes(model, o) == state_bytes(m2, o2)
    assert len(hist.epoch) > 0, "expected the interrupt after a few epochs"
    assert h2.history["loss"][:len(hist.epoch)] == hist.history["loss"]


def test_per_epoch_orders_are_those_of_successive_permutations():
    """The C run visits each epoch in rng.permuted(tile(arange(n)), axis=1)'s rows: the same
    orders (and generator state after) as one rng.permutation(n) per epoch, which Batches draws."""
    for n in (2, 5, 37, 1000):
        r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
        a = np.stack([r1.permutation(n) for _ in range(7)])
        b = r2.permuted(np.tile(np.arange(n, dtype=np.int64), (7, 1)), axis=1)
        np.testing.assert_array_equal(a, b)
        assert r1.integers(0, 2**62) == r2.integers(0, 2**62)


# --- the plan cache -------------------------------------------------------------------------
def _slot(o):
    return o.__dict__.get("_fit_plan")


def test_plan_is_reused_and_equals_a_fresh_compile():
    model, loss_fn, o, X, y = make("tanh", "ce", "adam_amsgrad")
    twin, tl, to, _, _ = make("tanh", "ce", "adam_amsgrad")
    fastnn.fit(model, loss_fn, o, X, y, epochs=2, batch_size=8, seed=1, verbose=0)
    first = _slot(o).plan
    fastnn.fit(model, nn.CrossEntropyLoss(), o, X, y, epochs=2, batch_size=8, seed=2, verbose=0)
    assert _slot(o).plan is first   # an equal loss, same model, optimizer and batch size
    fastnn.fit(twin, tl, to, X, y, epochs=2, batch_size=8, seed=1, verbose=0)
    to.__dict__.pop("_fit_plan")    # forget the plan: the second fit compiles afresh
    fastnn.fit(twin, tl, to, X, y, epochs=2, batch_size=8, seed=2, verbose=0)
    assert state_bytes(model, o) == state_bytes(twin, to)


def _add_layer_and_group(m, o):
    m.append(nn.Linear(3, 3))
    o.add_param_group({"params": list(m[-1].parameters())})   # two groups: the eager loop trains
    return o


def _swap_weight(m, o):
    m[0].weight = nn.Parameter(m[0].weight.data.copy() * 0.5)
    return optim.Adam(m.parameters(), lr=0.01, amsgrad=True)


CHANGES = {
    "batch_size": (lambda m, o: o, dict(batch_size=5)),
    "dropout_p": (lambda m, o: (setattr(m[3], "p", 0.5), o)[1], {}),
    "slope": (lambda m, o: (setattr(m[4], "negative_slope", 0.3), o)[1], {}),
    "append_layer": (lambda m, o: (m.append(nn.Tanh()), o)[1], {}),
    "stolen_arena": (lambda m, o: (optim.SGD(list(m.parameters())[:2], lr=0.1), o)[1], {}),
    "loss_options": (lambda m, o: o, dict(loss=nn.CrossEntropyLoss(label_smoothing=0.2))),
    "param_groups": (_add_layer_and_group, {}),
    "new_weight": (_swap_weight, {}),
    "lr": (lambda m, o: (o.param_groups[0].update(lr=0.05), o)[1], {}),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_plan_cache_rebuilds_after_a_change_and_never_trains_stale_state(change):
    """Train, change something the plan depends on, train again: the same bytes as a twin whose
    second fit starts without a cached plan."""
    how, kw = CHANGES[change]
    results = []
    for forget in (False, True):
        fastnn.manual_seed(0)
        m = nn.Sequential(nn.Linear(5, 9), nn.Tanh(), nn.Linear(9, 6), nn.Dropout(0.1), nn.LeakyReLU(0.05),
                          nn.Linear(6, 3))
        o = optim.Adam(m.parameters(), lr=0.01, amsgrad=True)
        r = np.random.default_rng(1)
        X, y = r.standard_normal((30, 5)).astype(np.float32), r.integers(0, 3, 30)
        fastnn.manual_seed(7)
        fastnn.fit(m, nn.CrossEntropyLoss(), o, X, y, epochs=2, batch_size=8, seed=1, verbose=0)
        o2 = how(m, o)
        if forget:
            o2.__dict__.pop("_fit_plan", None)
        loss = kw.get("loss", nn.CrossEntropyLoss())
        fastnn.fit(m, loss, o2, X, y, epochs=2, batch_size=kw.get("batch_size", 8), seed=2, verbose=0)
        results.append({k: v.tobytes() for k, v in m.state_dict().items()})
    assert results[0] == results[1]


def test_plan_cache_follows_the_dtype():
    """A model of another dtype has other parameters (and arena): its own plan."""
    for dtype in (np.float32, np.float64, np.float32):
        fastnn.manual_seed(0)
        m = nn.Sequential(nn.Linear(4, 6, dtype=dtype), nn.Tanh(), nn.Linear(6, 2, dtype=dtype))
        o = optim.SGD(m.parameters(), lr=0.1)
        X, y = np.random.default_rng(0).standard_normal((20, 4)), np.random.default_rng(1).integers(0, 2, 20)
        fastnn.fit(m, nn.CrossEntropyLoss(), o, X, y, epochs=1, verbose=0)
        assert _slot(o).plan.dtype == dtype


def test_validation_in_c_allocates_nothing_once_the_plan_is_cached():
    model, loss_fn, o, X, y = make("tanh", "ce", "adam_amsgrad", n=300)
    vd = (X[:257], y[:257])   # two validation batches: 256 + 1
    fastnn.fit(model, loss_fn, o, X, y, epochs=2, batch_size=8, seed=1, verbose=0, validation_data=vd)
    before = _core.plan_alloc_count()
    fastnn.fit(model, loss_fn, o, X, y, epochs=3, batch_size=8, seed=1, verbose=0, validation_data=vd)
    fastnn.fit(model, loss_fn, o, X, y, epochs=1, batch_size=8, seed=1, verbose=0, validation_data=vd,
               callbacks=[BatchHook()])
    assert _core.plan_alloc_count() == before


# --- the reference backend -------------------------------------------------------------------
def test_reference_backend_trains_on_numpy_only():
    model, loss_fn, o, X, y = make("tanh", "ce", "sgd")
    before = _core.plan_alloc_count()
    with fastnn.use_backend("reference"):
        fastnn.fit(model, loss_fn, o, X, y, epochs=1, verbose=0)
        assert "use_backend('reference')" in fplan.explain(model, loss_fn, o)
        with pytest.raises(fplan.PlanUnsupported, match="^plan: a compiled plan was required, but .*reference"):
            fastnn.fit(model, loss_fn, o, X, y, epochs=1, verbose=0, plan=True)
        with pytest.raises(fplan.PlanUnsupported, match="^backend: .*reference"):
            fplan.compile(model, loss_fn, o)
    assert _core.plan_alloc_count() == before   # no plan was built
    assert _slot(o) is None


def test_overflowing_update_reported_the_same_on_every_plan_path():
    """A parameter with zero gradient and state under eps=0 becomes 0/0 = NaN in the update itself:
    reported after that step (applied=True). With one batch per epoch that step is also the
    epoch's last: the epoch still does not count as completed, on every path."""
    res = []
    for path in PATHS:
        fastnn.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 3))
        model[0].weight.data[...] = 0.0   # no gradient reaches it through zero layer-1 rows
        model[1].weight.data[...] = 0.0
        o = optim.Adam(model.parameters(), eps=0.0)
        X = np.random.default_rng(0).standard_normal((12, 2)).astype(np.float32)
        y = np.arange(12) % 3
        with pytest.raises(fastnn.DivergenceError, match="update overflowed") as info:
            fastnn.fit(model, nn.CrossEntropyLoss(), o, X, y, epochs=3, batch_size=None, verbose=0,
                       callbacks=[c() for c in PATHS[path]])
        e = info.value
        res.append((str(e), e.epoch, e.step, e.batch, e.history.epoch, state_bytes(model, o)))
    assert res[0] == res[1] == res[2]
    assert res[0][1:5] == (1, 1, 1, [])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_argmax_count_breaks_ties_and_nans_as_numpy(dtype):
    """The plan's argmax count on outputs with ties, signed zeros and NaNs: numpy.argmax's
    answer (the first maximum; the first NaN wins) for every label."""
    rows = [[1, 3, 3, 2], [-0.0, 0.0, -1, -2], [0.0, -0.0, 5, 5], [2, np.nan, 3, np.nan],
            [np.nan, 1, 1, 1], [4, 4, 4, 4], [-np.inf, -np.inf, -5, -np.inf], [1, 2, np.inf, np.inf]]
    for row in rows:
        out = np.array(row, dtype=dtype)
        x = np.zeros((4, 3), dtype=dtype)
        y = np.arange(4, dtype=np.int64)  # every label once
        lin = nn.Linear(3, 4, dtype=dtype)
        lin.weight.data[...] = 0
        lin.bias.data[...] = out  # every row of the output is `row`
        model = nn.Sequential(lin)
        p = fplan.compile(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.0))
        p.check_finite = False
        p.set_metric(_core.PLAN_METRICS["argmax"])
        p.step(x, y)
        assert p.last_count == (int(np.sum(np.argmax(np.tile(out, (4, 1)), axis=1) == y)), 4), row


@pytest.mark.parametrize("n, k", [(0, 3), (1, 4), (2, 5), (4, 1000), (17, 9), (1000, 3), (65539, 2), (6, 0)])
@pytest.mark.parametrize("bit_generator", ["PCG64", "MT19937", "Philox"])
def test_epoch_orders_are_the_ones_numpy_draws(n, k, bit_generator):
    """A C run's per-epoch orders (drawn up front by _core.epoch_orders) are rng.permutation(n)
    epoch after epoch, as the step-by-step path draws them, and leave rng where NumPy would
    (draws below and above 2^16, rejection included; any BitGenerator)."""
    make = lambda: np.random.Generator(getattr(np.random, bit_generator)(n * 31 + k))  # noqa: E731
    a, b, c = make(), make(), make()
    mine = _core.epoch_orders(a, k, n)
    assert mine.dtype == np.int64 and mine.shape == (k, n)
    np.testing.assert_array_equal(mine, b.permuted(np.tile(np.arange(n, dtype=np.int64), (k, 1)), axis=1))
    for row in mine:
        np.testing.assert_array_equal(row, c.permutation(n))
    assert a.integers(1 << 62) == b.integers(1 << 62) == c.integers(1 << 62)
    # ... drawn by fastnn's loop, not by NumPy's fallback (the NumPy versions tested shuffle alike)
    assert _core._check_orders()
    with pytest.raises(ValueError, match="k, n"):
        _core.epoch_orders(a, -1, n)
