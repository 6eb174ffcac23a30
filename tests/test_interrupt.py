"""Interruption: Ctrl-C (a real SIGINT) during fit() stops within one batch, leaving the parameters
of the last completed step and optimizer state that matches them (byte-compared with an
uninterrupted replay of the same number of steps); a checkpoint being written when the process is
killed (SIGKILL) or interrupted (SIGINT) is the old file or the new one, never a torn one."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import fastnn
from fastnn import nn, optim

from conftest import needs_ctrl_c

pytestmark = needs_ctrl_c


def _setup(seed=0, n=600):
    fastnn.manual_seed(seed)
    model = nn.Sequential(nn.Linear(20, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 5))
    opt = optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, 20)).astype(np.float32)
    y = r.integers(0, 5, n)
    return model, opt, X, y


def _state_bytes(model, opt):
    out = {k: np.ascontiguousarray(v).tobytes() for k, v in model.state_dict().items()}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"opt.{i}.{k}"] = np.asarray(v).tobytes()
    return out


class _StopAfter(fastnn.Callback):
    """Replay: end training after exactly `steps` optimizer steps."""

    def __init__(self, steps):
        self.steps = steps

    def on_batch_end(self, batch, logs=None):
        if logs["step"] >= self.steps:
            self.stop_training = True


def _replay(steps, **fit_kw):
    model, opt, X, y = _setup()
    if steps:
        fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, callbacks=[_StopAfter(steps)], **fit_kw)
    return _state_bytes(model, opt)


FIT_KW = dict(epochs=10_000, batch_size=32, seed=3, verbose=0)


class _SignalAt(fastnn.Callback):
    """Sends a real SIGINT to this process from on_batch_end of the given global step."""

    def __init__(self, step):
        self.step = step

    def on_batch_end(self, batch, logs=None):
        if logs["step"] == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("at_step", [1, 7, 19, 20])  # 19 steps per epoch: 19 is an epoch's last batch
def test_sigint_from_a_callback_stops_after_that_step(at_step):
    model, opt, X, y = _setup()
    with pytest.raises(KeyboardInterrupt) as info:
        fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, callbacks=[_SignalAt(at_step)], **FIT_KW)
    hist = info.value.history
    assert hist.params["steps_done"] == at_step   # stopped before the next step began
    # Epochs whose end (metrics, validation, on_epoch_end) ran; the interrupt is acted on right
    # after the step, so an epoch's last step does not complete its epoch.
    assert len(hist.epoch) == (at_step - 1) // 19
    assert all(m.training for m in model.modules())  # modes restored
    assert _state_bytes(model, opt) == _replay(at_step, **FIT_KW)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


@pytest.mark.parametrize("delay", [0.05, 0.13, 0.31])
def test_sigint_from_a_timer_thread_lands_anywhere_and_state_is_consistent(delay):
    """The signal arrives at an arbitrary point: inside a C kernel (GIL released), in Python
    between kernels, in the optimizer step. Whatever the point, the model ends at a step boundary."""
    model, opt, X, y = _setup()
    started = threading.Event()

    class Start(fastnn.Callback):
        def on_train_begin(self, logs=None):
            started.set()
            self.t0 = time.monotonic()

        def on_batch_end(self, batch, logs=None):
            if time.monotonic() - self.t0 > 30:   # safety net: never hang the suite
                self.stop_training = True

    def fire():
        started.wait(10)
        time.sleep(delay)
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=fire, daemon=True)
    timer.start()
    with pytest.raises(KeyboardInterrupt) as info:
        fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, callbacks=[Start()], **FIT_KW)
    timer.join()
    steps = info.value.history.params["steps_done"]
    assert steps > 0
    assert _state_bytes(model, opt) == _replay(steps, **FIT_KW)


def test_keyboardinterrupt_raised_by_a_callback_keeps_the_completed_step():
    class Boom(fastnn.Callback):
        def on_batch_end(self, batch, logs=None):
            if logs["step"] == 5:
                raise KeyboardInterrupt

    model, opt, X, y = _setup()
    with pytest.raises(KeyboardInterrupt) as info:
        fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, callbacks=[Boom()], **FIT_KW)
    assert info.value.history.params["steps_done"] == 5
    assert _state_bytes(model, opt) == _replay(5, **FIT_KW)


@pytest.mark.parametrize("use_plan", [False, True])
def test_training_resumes_after_an_interrupt(use_plan):
    """After Ctrl-C, continuing with the same model and optimizer gives the same bytes as training
    the total number of steps in one go (nothing half-applied survives the interrupt). The
    compiled plan and the PyTorch-style loop may round differently on small layers, so each
    run finishes on the path it started on."""
    model, opt, X, y = _setup()
    with pytest.raises(KeyboardInterrupt):
        fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, callbacks=[_SignalAt(4)], epochs=1, batch_size=32,
                   shuffle=False, verbose=0, plan="auto" if use_plan else False)
    # Finish the epoch by hand on the remaining batches, exactly as fit would have.
    loss_fn = nn.CrossEntropyLoss()
    compiled = fastnn.plan.compile(model, loss_fn, opt) if use_plan else None
    for start in range(4 * 32, len(X), 32):
        xb, yb = X[start:start + 32], y[start:start + 32]
        if compiled is not None:
            compiled.step(xb, yb)
        else:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    model2, opt2, _, _ = _setup()
    fastnn.fit(model2, nn.CrossEntropyLoss(), opt2, X, y, epochs=1, batch_size=32, shuffle=False, verbose=0,
               plan="auto" if use_plan else False)
    assert _state_bytes(model, opt) == _state_bytes(model2, opt2)


# --- checkpoints written when the process dies ---------------------------------------------------
_WRITER = textwrap.dedent("""
    import sys, numpy as np, fastnn
    path = sys.argv[1]
    big = [np.full(3_000_000, float(v), np.float32) for v in range(2)]   # 12 MB per version
    print("ready", flush=True)
    i = 0
    while True:
        v = i % 2
        fastnn.save({"version": v, "i": i, "a": big[v], "b": big[v][:1000] * 2}, path)
        i += 1
        print(i, flush=True)
""")


def _writer(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    path = tmp_path / "ckpt.fnn"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd()] + sys.path))
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, env=env,
                            cwd=os.getcwd(), text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc, path


def _check_intact(path):
    ck = fastnn.load(path)   # must not raise: the old file or the new one, complete
    v = ck["version"]
    assert v in (0, 1) and ck["i"] % 2 == v
    assert ck["a"].shape == (3_000_000,) and np.all(ck["a"] == v) and np.all(ck["b"] == 2 * v)
    return ck["i"]


@pytest.mark.parametrize("round_", range(3))
def test_sigkill_during_save_leaves_a_loadable_checkpoint(tmp_path, round_):
    proc, path = _writer(tmp_path)
    try:
        # Let it complete at least one save, then kill it at a pseudo-random moment of a later one.
        assert int(proc.stdout.readline()) >= 1
        time.sleep(0.01 + 0.037 * round_)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    _check_intact(path)
    # SIGKILL cannot be cleaned up after: a temporary file may remain, but never under the real name.
    assert all(p.name.startswith(".ckpt.fnn.") and p.name.endswith(".tmp")
               for p in tmp_path.iterdir() if p.name not in ("ckpt.fnn", "writer.py"))


def test_sigint_during_save_leaves_the_old_file_and_no_temporary(tmp_path):
    proc, path = _writer(tmp_path)
    try:
        assert int(proc.stdout.readline()) >= 1
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    _check_intact(path)
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == ["ckpt.fnn", "writer.py"], leftovers  # the KeyboardInterrupt removed its temporary


def test_sigint_during_on_train_end_is_not_swallowed():
    class LateSignal(fastnn.Callback):
        def on_train_end(self, logs=None):
            os.kill(os.getpid(), signal.SIGINT)

    model, opt, X, y = _setup()
    try:
        fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, epochs=1, batch_size=200, verbose=0,
                   callbacks=[LateSignal()])
    except KeyboardInterrupt:
        return
    raise AssertionError("fit returned normally although Ctrl-C was pressed while it ran")
