"""fit() trains to convergence in online, mini-batch and full-batch modes, records honest metrics, stops on divergence, Ctrl-C and early stopping as documented, and rejects bad input."""
from __future__ import annotations

import io
import signal

import numpy as np
import pytest

import fastnn as fnn
from fastnn import nn, optim
from fastnn.train import Callback, EarlyStopping, History, ProgressBar, evaluate, fit




# --- problems --------------------------------------------------------------------------------
def linear_problem(n=64, seed=0):
    """Noise-free y = X·w + b: least squares has an exact solution (loss 0)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)).astype(np.float32)
    y = (X @ np.array([1.5, -2.0, 0.5]) + 0.3).astype(np.float32)[:, None]
    return X, y


def blobs(n_per=40, seed=0):
    """Three well separated Gaussian clusters in 2-D, labels 0..2."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    X = np.concatenate([c + 0.5 * rng.standard_normal((n_per, 2)) for c in centers]).astype(np.float32)
    y = np.repeat(np.arange(3), n_per)
    return X, y


class Recorder(Callback):
    """Records every batch's logs and a copy of the parameters after every step and epoch."""

    def on_train_begin(self, logs=None):
        self.batches, self.states, self.epoch_states, self.began = [], [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.began.append(epoch)

    def on_batch_end(self, batch, logs=None):
        self.batches.append((batch, dict(logs)))
        self.states.append(self.model.state_dict())

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_states.append(self.model.state_dict())


class ModeProbe(nn.Module):
    """Identity layer recording whether it ran in training mode."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(self.training)
        return np.asarray(x)

    def backward(self, grad_out, need_input_grad=True):
        return grad_out


class PoisonGrad(nn.Module):
    """Identity forward; backward turns the gradient into +inf (the loss itself stays finite)."""

    def forward(self, x):
        return np.asarray(x)

    def backward(self, grad_out, need_input_grad=True):
        return np.full_like(np.asarray(grad_out), np.inf)


def states_equal(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# --- convergence in the three batch modes ---------------------------------------------------------
# A linear model on noise-free linear data is a well-conditioned least-squares problem
# (X has i.i.d. N(0,1) columns, so XᵀX/n ≈ I): gradient descent contracts the error by a
# constant factor per step, and SGD also converges to the exact fit because every sample's
# gradient vanishes there. From an initial MSE of about 7 (the variance of y), the step
# counts below shrink it by well over 1e4; the threshold 1e-3 leaves a wide float32 margin.
@pytest.mark.parametrize("batch_size, epochs, lr", [(1, 15, 0.02), (16, 60, 0.1), (64, 150, 0.1), (None, 150, 0.1)],
                         ids=["online", "minibatch", "full-batch", "full-batch-None"])
def test_linear_regression_converges(batch_size, epochs, lr):
    fnn.manual_seed(1)
    X, y = linear_problem()
    model = nn.Linear(3, 1)
    loss_fn = nn.MSELoss()
    initial = evaluate(model, loss_fn, X, y)["loss"]
    h = fit(model, loss_fn, optim.SGD(model.parameters(), lr=lr), X, y, epochs=epochs,
            batch_size=batch_size, seed=0, verbose=0)
    losses = h.history["loss"]
    assert len(losses) == epochs and h.epoch == list(range(1, epochs + 1))
    assert initial > 1.0
    assert losses[-1] < losses[0] and all(b <= a * 1.5 for a, b in zip(losses, losses[1:]))
    final = evaluate(model, loss_fn, X, y)["loss"]
    assert final < 1e-3
    np.testing.assert_allclose(model.weight.data[0], [1.5, -2.0, 0.5], atol=0.02)
    np.testing.assert_allclose(model.bias.data, [0.3], atol=0.02)
    assert h.params["steps"] == -(-64 // (batch_size or 64))


def test_xor_full_batch_bce_reaches_full_accuracy():
    # A hidden layer can learn XOR; a fixed seed keeps the test deterministic.
    fnn.manual_seed(0)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([[0], [1], [1], [0]], np.float32)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Sigmoid())
    h = fit(model, nn.BCELoss(), optim.SGD(model.parameters(), lr=0.5, momentum=0.9), X, y,
            epochs=300, batch_size=None, verbose=0)
    assert h.history["accuracy"][-1] == 1.0
    assert h.history["loss"][-1] < 0.05
    model.eval()
    pred = np.asarray(model(X)) > 0.5
    assert np.array_equal(pred, y > 0.5)


def test_classification_minibatch_with_validation_metrics():
    fnn.manual_seed(3)
    X, y = blobs(seed=0)
    Xv, yv = blobs(n_per=20, seed=1)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    loss_fn = nn.CrossEntropyLoss()
    h = fit(model, loss_fn, optim.SGD(model.parameters(), lr=0.1, momentum=0.9), X, y, epochs=15,
            batch_size=16, validation_data=(Xv, yv), seed=0, verbose=0)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(v) == 15 for v in h.history.values())
    # The last epoch's validation numbers are those of the final model, computed independently here.
    model.eval()
    logits = np.asarray(model(Xv), dtype=np.float64)
    z = logits - logits.max(1, keepdims=True)
    nll = -(z[np.arange(len(yv)), yv] - np.log(np.exp(z).sum(1))).mean()
    assert h.history["val_loss"][-1] == pytest.approx(nll, rel=1e-5)
    assert h.history["val_accuracy"][-1] == np.mean(logits.argmax(1) == yv)
    assert h.history["val_accuracy"][-1] >= 0.95 and h.history["accuracy"][-1] >= 0.95
    assert h.history["lr"] == [0.1] * 15


def test_metrics_none_and_regression_have_no_accuracy():
    fnn.manual_seed(0)
    X, y = blobs()
    model = nn.Linear(2, 3)
    h = fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), X, y, epochs=1,
            metrics=None, verbose=0)
    assert set(h.history) == {"loss", "lr"}
    X, y = linear_problem()
    h = fit(nn.Linear(3, 1), nn.MSELoss(), optim.SGD(nn.Linear(3, 1).parameters(), lr=0.0), X, y,
            epochs=1, verbose=0)
    assert set(h.history) == {"loss", "lr"}


def test_bce_with_logits_accuracy_threshold_zero():
    # lr=0: nothing changes, so the epoch accuracy must equal the fixed model's accuracy at threshold 0.
    fnn.manual_seed(5)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 2)).astype(np.float32)
    y = (rng.random(30) < 0.5).astype(np.float32)[:, None]
    model = nn.Linear(2, 1)
    h = fit(model, nn.BCEWithLogitsLoss(), optim.SGD(model.parameters(), lr=0.0), X, y, epochs=1,
            batch_size=7, verbose=0)
    expected = np.mean((np.asarray(model(X)) > 0) == (y > 0.5))
    assert h.history["accuracy"] == [pytest.approx(expected)]


# --- batches and epoch bookkeeping ------------------------------------------------------------------
def test_last_short_batch_steps_and_sizes():
    X, y = linear_problem(n=10)
    model = nn.Linear(3, 1)
    rec = Recorder()
    h = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), X, y, epochs=3, batch_size=4,
            callbacks=[rec], verbose=0, seed=0)
    assert [b for b, _ in rec.batches] == [0, 1, 2] * 3
    assert [logs["size"] for _, logs in rec.batches] == [4, 4, 2] * 3
    assert [logs["step"] for _, logs in rec.batches] == list(range(1, 10))
    assert rec.began == [1, 2, 3] and h.params["steps"] == 3


def test_epoch_loss_is_the_sample_mean_not_the_batch_mean():
    # With lr=0 the parameters never move, so the epoch loss must equal the loss over all
    # samples, whatever the (unequal) batches: 10 samples in batches of 4, 4, 2.
    X, y = linear_problem(n=10)
    fnn.manual_seed(2)
    for reduction in ("mean", "sum"):
        model = nn.Linear(3, 1)
        loss_fn = nn.MSELoss(reduction=reduction)
        h = fit(model, loss_fn, optim.SGD(model.parameters(), lr=0.0), X, y, epochs=1, batch_size=4,
                verbose=0)
        pred = np.asarray(model(X), dtype=np.float64)
        expected = np.mean((pred - y) ** 2)  # per-sample mean (one output per sample)
        assert h.history["loss"][0] == pytest.approx(expected, rel=1e-5)


def test_batch_size_above_n_is_full_batch_and_epochs_zero_trains_nothing():
    X, y = linear_problem(n=10)
    model = nn.Linear(3, 1)
    before = model.state_dict()
    h = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), X, y, epochs=0, verbose=0)
    assert h.epoch == [] and h.history == {} and states_equal(before, model.state_dict())
    rec = Recorder()
    fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), X, y, epochs=2, batch_size=1000,
        callbacks=[rec], verbose=0)
    assert [logs["size"] for _, logs in rec.batches] == [10, 10]


# --- reproducibility ------------------------------------------------------------------------------
def _train(seed=None, global_seed=0):
    fnn.manual_seed(global_seed)
    X, y = blobs()
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    h = fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9), X, y,
            epochs=3, batch_size=8, seed=seed, verbose=0)
    return h, model.state_dict()


def test_same_seed_same_history_and_parameters():
    h1, s1 = _train(seed=7)
    h2, s2 = _train(seed=7)
    assert h1.history == h2.history and states_equal(s1, s2)
    h3, s3 = _train(seed=8)  # same init, other shuffling
    assert not states_equal(s1, s3)


def test_manual_seed_makes_unseeded_fit_reproducible():
    h1, s1 = _train(seed=None, global_seed=11)
    h2, s2 = _train(seed=None, global_seed=11)
    assert h1.history == h2.history and states_equal(s1, s2)


def test_shuffle_false_visits_samples_in_order():
    X = np.arange(10, dtype=np.float32)[:, None]
    y = np.zeros((10, 1), np.float32)
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(np.asarray(x)[:, 0].copy())
            return np.asarray(x)

        def backward(self, g, need_input_grad=True):
            return g

    model = nn.Sequential(Spy(), nn.Linear(1, 1))
    fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.0), X, y, epochs=2, batch_size=4,
        shuffle=False, verbose=0)
    assert np.array_equal(np.concatenate(seen), np.tile(np.arange(10), 2))
    seen.clear()
    fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.0), X, y, epochs=2, batch_size=4,
        shuffle=True, seed=0, verbose=0)
    a, b = np.concatenate(seen[:3]), np.concatenate(seen[3:])
    assert sorted(a) == sorted(b) == list(range(10)) and not np.array_equal(a, b)


# --- modes --------------------------------------------------------------------------------------
def test_validation_runs_in_eval_mode_and_modes_are_restored():
    X, y = blobs(n_per=5)
    probe = ModeProbe()
    model = nn.Sequential(probe, nn.Linear(2, 3))
    model.eval()
    fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), X, y, epochs=2, batch_size=5,
        validation_data=(X, y), verbose=0)
    # each epoch: 3 training batches (train mode), then one validation batch (eval mode)
    assert probe.seen == [True, True, True, False] * 2
    assert model.training is False and probe.training is False


# --- early stopping --------------------------------------------------------------------------------
def test_early_stopping_restores_best_weights():
    # One weight, trained by full-batch GD from 0 toward 4 (train targets y = 4x). The validation
    # targets are y = 1x, so the validation loss falls while w < 1 and rises after: its minimum
    # is in the middle of training.
    X = np.linspace(-1, 1, 21, dtype=np.float32)[:, None]
    model = nn.Linear(1, 1, bias=False)
    model.weight.data = [[0.0]]
    rec = Recorder()
    es = EarlyStopping(monitor="val_loss", patience=3)
    h = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.2), X, 4 * X, epochs=100, batch_size=None,
            validation_data=(X, 1 * X), callbacks=[rec, es], verbose=0)
    val = h.history["val_loss"]
    best = int(np.argmin(val))
    assert 0 < best < len(val) - 1, "the construction must make val_loss fall then rise"
    assert es.best_epoch == best + 1 and es.best == val[best]
    assert es.stopped_epoch == best + 1 + 3 == len(h.epoch) < 100
    assert states_equal(model.state_dict(), rec.epoch_states[best])
    assert not states_equal(rec.epoch_states[-1], rec.epoch_states[best])
    assert evaluate(model, nn.MSELoss(), X, 1 * X)["loss"] == pytest.approx(val[best], rel=1e-6)


def test_early_stopping_on_loss_without_restore_and_bad_monitor():
    X, y = linear_problem(n=8)
    model = nn.Linear(3, 1)
    opt = optim.SGD(model.parameters(), lr=0.0)  # no progress at all: stops after `patience` epochs
    es = EarlyStopping(monitor="loss", patience=2, restore_best_weights=False)
    h = fit(model, nn.MSELoss(), opt, X, y, epochs=50, callbacks=[es], verbose=0)
    assert len(h.epoch) == 3 and es.best_epoch == 1 and es.stopped_epoch == 3
    with pytest.raises(ValueError, match="^monitor: 'val_loss'.*validation_data"):
        fit(model, nn.MSELoss(), opt, X, y, epochs=2, callbacks=[EarlyStopping()], verbose=0)
    with pytest.raises(ValueError, match="^patience"):
        EarlyStopping(patience=-1)


# --- divergence ------------------------------------------------------------------------------------
DIAG_X = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1]], np.float32)
DIAG_Y = DIAG_X.reshape(-1, 2, 2).transpose(0, 2, 1).reshape(-1, 4)  # the 2×2 image flipped


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_divergence_raises_before_the_step_and_keeps_finite_parameters():
    # The 4-3-4 "diagonal flip" network of the background story with η = 10: the loss explodes.
    fnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 4))
    rec = Recorder()
    with pytest.raises(fnn.DivergenceError) as info:
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=10.0), DIAG_X, DIAG_Y, epochs=200,
            batch_size=1, callbacks=[rec], seed=0, verbose=0)
    e = info.value
    completed = len(rec.batches)
    assert e.step == completed + 1
    assert e.epoch == completed // 4 + 1 and e.batch == completed % 4 + 1
    assert e.lr == 10.0 and not np.isfinite(e.loss)
    msg = str(e)
    assert f"epoch {e.epoch}/200" in msg and f"global step {e.step}" in msg and "lr=10" in msg
    assert "try lr=1 or smaller" in msg
    # the failing step was never applied: parameters are those after the last completed step
    assert states_equal(model.state_dict(), rec.states[-1])
    assert all(np.isfinite(p.data).all() for p in model.parameters())
    assert isinstance(e.history, History) and len(e.history.epoch) == e.epoch - 1


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_non_finite_gradient_raises_before_the_step():
    fnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), PoisonGrad(), nn.Linear(3, 4))
    before = model.state_dict()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(fnn.DivergenceError, match="gradient became non-finite") as info:
        fit(model, nn.MSELoss(), opt, DIAG_X, DIAG_Y, epochs=1, batch_size=2, verbose=0)
    assert info.value.step == 1 and np.isfinite(info.value.loss) and info.value.lr == 0.1
    assert states_equal(model.state_dict(), before)
    assert opt.state_dict()["state"] == {}  # the optimizer never stepped


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_overflowing_update_is_reported_as_applied():
    # Finite loss and gradients, but lr·g overflows float32: the update itself breaks the parameters.
    X, y = linear_problem(n=4)
    y = 1000 * y  # gradients of order 1e3, so lr·g ≈ 1e41 > float32 max
    model = nn.Linear(3, 1)
    with pytest.raises(fnn.DivergenceError, match="update overflowed.*was applied") as info:
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=1e38), X, y, epochs=3, verbose=0)
    assert info.value.step == 1 and np.isfinite(info.value.loss) and info.value.lr == 1e38


@pytest.mark.parametrize("plan", ["auto", False])
@pytest.mark.parametrize("batch_size", [8, None])
@pytest.mark.parametrize("make_opt", [lambda ps: optim.Adam(ps, lr=1e-2, eps=0.0),
                                      lambda ps: optim.RMSprop(ps, lr=1e-3, eps=0.0),
                                      lambda ps: optim.Adagrad(ps, lr=1e-2, eps=0.0)],
                         ids=["adam", "rmsprop", "adagrad"])
def test_eps_zero_nan_in_arena_padding_is_not_divergence(make_opt, batch_size, plan):
    """eps=0 turns the zero-gradient, zero-state alignment padding into 0/0 = NaN. It belongs to no
    parameter: fit trains on (eager loop, plan steps and plan epochs) as with eps>0, and the
    padding is zero again afterwards. (Tanh: no exactly-zero gradient in a real parameter.)"""
    X, y = blobs()
    fnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 3))  # 10, 5, 15, 3 elements: padded
    opt = make_opt(model.parameters())
    hist = fit(model, nn.CrossEntropyLoss(), opt, X, y, epochs=3, batch_size=batch_size, verbose=0, plan=plan)
    assert len(hist.history["loss"]) == 3 and all(np.isfinite(hist.history["loss"]))
    arena = opt._arenas[0][0]
    assert arena.data.size > sum(p.size for p in model.parameters())  # there is padding
    assert np.isfinite(arena.data).all()
    assert all(np.isfinite(p.data).all() for p in model.parameters())


def test_eps_zero_nan_in_a_parameter_is_still_divergence():
    # A parameter with zero gradient and zero state gets 0/0 = NaN for real (as in PyTorch).
    X, y = blobs()
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 3))
    with np.errstate(all="ignore"):
        model[0].weight.data[...] = 0.0  # no gradient reaches layer 0's weight through zero layer-1 rows
        model[1].weight.data[...] = 0.0
    with pytest.raises(fnn.DivergenceError, match="update overflowed"):
        fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), eps=0.0), X, y, epochs=1,
            batch_size=None, verbose=0)


# --- Ctrl-C ---------------------------------------------------------------------------------------
def test_keyboard_interrupt_from_a_callback_carries_history():
    X, y = linear_problem(n=8)
    model = nn.Linear(3, 1)

    class Boom(Callback):
        def on_batch_end(self, batch, logs=None):
            if logs["epoch"] == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), X, y, epochs=5, batch_size=4,
            callbacks=[Boom()], verbose=0)
    assert info.value.history.epoch == [1]


def test_sigint_during_a_step_is_deferred_until_the_step_completes():
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT has a non-default handler in this test process")
    X, y = blobs(n_per=8)

    def run(interrupt_at=None, stop_after=None):
        fnn.manual_seed(4)
        model = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 3))
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
        real_step, count = opt.step, [0]

        def step(*a, **k):
            count[0] += 1
            if count[0] == interrupt_at:
                signal.raise_signal(signal.SIGINT)  # arrives while this step is running
            return real_step(*a, **k)

        opt.step = step

        class Stop(Callback):
            def on_batch_end(self, batch, logs=None):
                if logs["step"] == stop_after:
                    self.stop_training = True

        try:
            fit(model, nn.CrossEntropyLoss(), opt, X, y, epochs=3, batch_size=5, seed=1, verbose=0,
                callbacks=[Stop()])
        except KeyboardInterrupt as e:
            return model.state_dict(), count[0], e
        return model.state_dict(), count[0], None

    interrupted, steps, exc = run(interrupt_at=7)
    assert exc is not None and "after step 7" in str(exc)
    assert steps == 7 and exc.history.epoch == [1]  # 5 steps per epoch
    reference, _, none = run(stop_after=7)
    assert none is None and states_equal(interrupted, reference)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --- schedulers ----------------------------------------------------------------------------------
class Halve:
    def __init__(self, opt):
        self.opt, self.calls = opt, 0

    def step(self):
        self.calls += 1
        for g in self.opt.param_groups:
            g["lr"] *= 0.5


class Plateau:
    def __init__(self):
        self.seen = []

    def step(self, metrics):
        self.seen.append(metrics)


def test_epoch_batch_and_plateau_schedulers():
    X, y = linear_problem(n=12)
    model = nn.Linear(3, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = Halve(opt)
    h = fit(model, nn.MSELoss(), opt, X, y, epochs=3, batch_size=4, scheduler=sched, verbose=0)
    assert h.history["lr"] == [0.1, 0.05, 0.025] and sched.calls == 3
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = Halve(opt)
    h = fit(model, nn.MSELoss(), opt, X, y, epochs=2, batch_size=4, scheduler=sched, scheduler_interval="batch",
            verbose=0)
    assert sched.calls == 6 and h.history["lr"] == [0.1, 0.1 * 0.5 ** 3]
    plateau = Plateau()
    h = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), X, y, epochs=3, scheduler=plateau,
            validation_data=(X[:5], y[:5]), verbose=0)
    assert plateau.seen == h.history["val_loss"]
    plateau = Plateau()
    h = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), X, y, epochs=2, scheduler=plateau, verbose=0)
    assert plateau.seen == h.history["loss"]
    with pytest.raises(ValueError, match="^scheduler_interval"):
        fit(model, nn.MSELoss(), opt, X, y, scheduler=Plateau(), scheduler_interval="batch", verbose=0)


# --- progress output --------------------------------------------------------------------------------
def _fit_quiet_problem(**kw):
    X, y = blobs(n_per=4)
    model = nn.Linear(2, 3)
    return fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), X, y, epochs=3,
               batch_size=4, seed=0, **kw)


def test_progress_plain_one_line_per_epoch():
    out = io.StringIO()
    _fit_quiet_problem(verbose=1, callbacks=[ProgressBar(file=out)])
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in out.getvalue()
    assert lines[0].startswith("Epoch 1/3 - 3/3") and "loss" in lines[0] and "accuracy" in lines[0]


def test_progress_tty_updates_one_line_in_place():
    out = io.StringIO()
    _fit_quiet_problem(verbose=1, callbacks=[ProgressBar(file=out, tty=True, min_interval=0.0)])
    text = out.getvalue()
    assert text.count("\n") == 3 and text.count("\r") >= 3 * 3
    assert "1/3" in text and "2/3" in text


def test_progress_verbose2_diagnostics_and_verbose0_silence(capsys):
    _fit_quiet_problem(verbose=0)
    assert capsys.readouterr().out == ""
    _fit_quiet_problem(verbose=2)
    out = capsys.readouterr().out
    assert out.count("Epoch ") == 3 and out.count("samples/s") == 3 and "|grad|" in out and "Trained 3" in out
    _fit_quiet_problem(verbose=1)
    assert capsys.readouterr().out.count("\n") == 3


# --- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(y=np.zeros((9, 1))), ValueError, "^y: expected 10 samples"),
    (dict(X=np.zeros((0, 3)), y=np.zeros((0, 1))), ValueError, "^X: expected at least one sample"),
    (dict(X=np.array([["a", "b", "c"]] * 10)), TypeError, "^X: expected a numeric array"),
    (dict(X=np.full((10, 3), np.nan)), ValueError, "^X: contains NaN"),
    (dict(batch_size=0), ValueError, "^batch_size"),
    (dict(batch_size=2.5), TypeError, "^batch_size"),
    (dict(epochs=-1), ValueError, "^epochs"),
    (dict(epochs=1.5), TypeError, "^epochs"),
    (dict(validation_data=np.zeros((4, 3))), TypeError, "^validation_data: expected an \\(X_val, y_val\\) pair"),
    (dict(validation_data=(np.zeros((4, 3)),) * 3), TypeError, "^validation_data"),
    (dict(validation_data=(np.zeros((4, 3)), np.zeros((3, 1)))), ValueError, "^validation_data\\[1\\]"),
    (dict(validation_data=(np.zeros((4, 2)), np.zeros((4, 1)))), ValueError, "^validation_data\\[0\\]"),
    (dict(verbose=3), ValueError, "^verbose"),
    (dict(metrics=["f1"]), ValueError, "^metrics"),
    (dict(metrics=["accuracy"]), ValueError, "^metrics: 'accuracy' needs"),
    (dict(callbacks=[object()]), TypeError, "^callbacks"),
    (dict(seed=-3), ValueError, "^seed"),
])
def test_bad_inputs_raise_naming_the_argument(kwargs, exc, pattern):
    X, y = linear_problem(n=10)
    model = nn.Linear(3, 1)
    before = model.state_dict()
    args = dict(X=X, y=y, verbose=0)
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), **args)
    assert states_equal(before, model.state_dict())


def test_bad_model_and_optimizer():
    X, y = linear_problem(n=4)
    model = nn.Linear(3, 1)
    with pytest.raises(TypeError, match="^model"):
        fit(lambda x: x, nn.MSELoss(), optim.SGD(model.parameters()), X, y)
    with pytest.raises(TypeError, match="^optimizer"):
        fit(model, nn.MSELoss(), object(), X, y)
