"""Concurrency: every kernel releases the GIL while it runs, and two Python threads training two
different models at the same time get bitwise the results they get one after the other.

(One model used from two threads at once is not supported — see docs/README_reliability.md.)"""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import fastnn
from fastnn import nn, ops, optim


@pytest.fixture
def no_forced_switches():
    """With a switch interval of 1000 s the interpreter never takes the GIL from a running thread:
    another thread can only run while the current one has released it (blocking I/O, nogil C)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _runs_while(fn) -> bool:
    """True if a Python thread gets to run (and finish a short loop) during fn()."""
    go, done = threading.Event(), threading.Event()

    def other():
        go.wait()
        total = 0
        for i in range(200):
            total += i
        done.set()

    t = threading.Thread(target=other)
    t.start()
    go.set()          # `other` is runnable now, but needs the GIL, which this thread holds
    for _ in range(50):   # ...unless the kernel releases it; repeated so that the OS has time to
        fn()              # wake `other` up on a busy machine
        if done.is_set():
            break
    finished_during = done.is_set()
    t.join()
    return finished_during


@pytest.fixture(scope="module")
def kernels():
    rng = np.random.default_rng(0)
    return _kernels(rng)


def _kernels(rng):
    a = rng.standard_normal((500, 500)).astype(np.float32)
    x = rng.standard_normal(4_000_000).astype(np.float32)
    big = x.reshape(2000, 2000)
    labels = rng.integers(0, 2000, 2000)
    p, g, m, v = (rng.standard_normal(2_000_000).astype(np.float32) for _ in range(4))
    v = np.abs(v)
    return {
        "matmul": lambda: ops.matmul(a, a),
        "linear": lambda: ops.linear(a, a, a[0], activation="gelu"),
        "linear_backward": lambda: ops.linear_backward(a, a, a, grad_weight=np.zeros_like(a),
                                                       activation="tanh", saved=a),
        "relu": lambda: ops.relu(x),
        "gelu": lambda: ops.gelu(x),
        "softmax": lambda: ops.softmax(big),
        "cross_entropy": lambda: ops.cross_entropy(big, labels, grad=np.empty_like(big)),
        "mse_loss": lambda: ops.mse_loss(x, x[::-1].copy(), grad=np.empty_like(x)),
        "dropout": lambda: ops.dropout(x, 0.5, 1),
        "layer_norm": lambda: ops.layer_norm(big, None, None),
        "batch_norm": lambda: ops.batch_norm(big, None, None, None, None, True),
        "adam_step": lambda: ops.adam_step(p, g, m, v, step=3, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8),
        "grad_norm": lambda: ops.grad_norm(x),
    }


KERNELS = ["matmul", "linear", "linear_backward", "relu", "gelu", "softmax", "cross_entropy", "mse_loss",
           "dropout", "layer_norm", "batch_norm", "adam_step", "grad_norm"]


@pytest.mark.parametrize("name", KERNELS)
def test_kernel_releases_the_gil(name, kernels, no_forced_switches):
    fn = kernels[name]
    assert _runs_while(fn), f"{name}: no other Python thread could run while it computed"


def test_gil_probe_can_fail(no_forced_switches):
    """The probe is honest: a pure-Python busy loop (GIL held throughout) is reported as such."""
    def busy():
        s = 0
        for i in range(30_000):
            s += i
    assert not _runs_while(busy)


def _train(seed, threads_barrier=None, results=None, key=None, epochs=3):
    r = np.random.default_rng(seed)
    model = _models[seed]
    opt = optim.Adam(model.parameters(), lr=1e-3)
    X = r.standard_normal((512, 64)).astype(np.float32)
    y = r.integers(0, 10, 512)
    if threads_barrier is not None:
        threads_barrier.wait()  # start together
    fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, epochs=epochs, batch_size=128, seed=seed, verbose=0)
    digest = b"".join(np.ascontiguousarray(v).tobytes() for v in model.state_dict().values())
    digest += b"".join(np.asarray(v).tobytes() for st in opt.state_dict()["state"].values() for v in st.values())
    if results is not None:
        results[key] = digest
    return digest


_models = {}


def _fresh_models():
    # Built up front, in a fixed order: fastnn's global generator is shared by all threads, so
    # layers that draw from it (initialisation, Dropout) must not interleave their draws.
    fastnn.manual_seed(2024)
    for seed in (1, 2):
        _models[seed] = nn.Sequential(nn.Linear(64, 256), nn.LayerNorm(256), nn.GELU(), nn.Linear(256, 256),
                                      nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, 10))


def test_two_models_trained_concurrently_match_sequential_training():
    _fresh_models()
    sequential = {seed: _train(seed) for seed in (1, 2)}
    _fresh_models()
    results, errors = {}, []
    barrier = threading.Barrier(2)

    def run(seed):
        try:
            _train(seed, barrier, results, seed)
        except BaseException as e:  # surface errors from the worker threads
            errors.append(e)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert results[1] == sequential[1]
    assert results[2] == sequential[2]
    assert results[1] != results[2]


def test_many_threads_of_small_products_match_single_thread(rng):
    """Per-thread GEMM workspaces: products running at once from 4 Python threads never share a
    packing buffer (a shared one would mix their panels)."""
    mats = [rng.standard_normal((300, 257)).astype(np.float32) for _ in range(4)]
    expected = [ops.matmul(m, m, trans_b=True) for m in mats]
    got = [None] * 4

    def run(i):
        for _ in range(5):
            got[i] = ops.matmul(mats[i], mats[i], trans_b=True)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e, g in zip(expected, got):
        assert e.tobytes() == g.tobytes()


def test_one_model_interleaved_between_threads_is_detected(rng):
    """One model used from two threads: a forward from thread B between thread A's forward and its
    backward is detected (RuntimeError from the module's call-count check) instead of silently
    mixing B's activations into A's gradients. Fully concurrent use (both inside kernels at once)
    is not detected and not supported: see docs/README_reliability.md."""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    x_a = rng.standard_normal((4, 8)).astype(np.float32)
    x_b = rng.standard_normal((4, 8)).astype(np.float32)
    a_forward_done, b_forward_done = threading.Event(), threading.Event()
    outcome = {}

    def thread_a():
        out = model(x_a)
        a_forward_done.set()
        b_forward_done.wait(10)
        try:
            nn.MSELoss()(out, np.zeros((4, 2), np.float32)).backward()
            outcome["a"] = "no error"
        except RuntimeError as e:
            outcome["a"] = str(e)

    def thread_b():
        a_forward_done.wait(10)
        model(x_b)
        b_forward_done.set()

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "called again" in outcome["a"], outcome
    assert all(np.all(p.grad == 0) for p in model.parameters())  # nothing was accumulated
