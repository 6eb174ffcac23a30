"""Memory: no growth of Python allocations (tracemalloc) or of the process (RSS) over 10,000
training steps, through the plain loop and through fit(); a deleted model, its optimizer state and
GEMM workspaces are freed (weakref + gc + RSS)."""
from __future__ import annotations

import gc
import os
import sys
import threading
import tracemalloc
import weakref

import numpy as np
import pytest

import fastnn
from fastnn import nn, ops, optim

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm"),
    pytest.mark.skipif(bool(os.environ.get("FASTNN_SANITIZE")), reason="ASan's quarantine holds freed memory"),
]

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _small(seed=0):
    fastnn.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 32), nn.LayerNorm(32), nn.GELU(), nn.Dropout(0.1), nn.Linear(32, 32),
                          nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 4))
    opt = optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    r = np.random.default_rng(seed)
    X = r.standard_normal((64, 8)).astype(np.float32)
    y = r.integers(0, 4, 64)
    return model, opt, X, y


def _loop(model, opt, X, y):
    loss_fn = nn.CrossEntropyLoss()

    def steps(n):
        for i in range(n):
            s = (i % 8) * 8
            opt.zero_grad()
            loss = loss_fn(model(X[s:s + 8]), y[s:s + 8])
            loss.backward()
            opt.step()
    return steps


def test_no_growth_over_10000_training_steps():
    model, opt, X, y = _small()
    steps = _loop(model, opt, X, y)
    steps(1000)  # warm-up: caches, allocator pools, lazily created optimizer state
    gc.collect()
    rss0, blocks0 = rss(), sys.getallocatedblocks()
    steps(10_000)
    gc.collect()
    rss1, blocks1 = rss(), sys.getallocatedblocks()
    # A leak of one small object per step is >= 10,000 blocks; of one array per step >= 10,000 × 100 bytes.
    assert blocks1 - blocks0 < 500, f"Python's allocator holds {blocks1 - blocks0} more blocks after 10,000 steps"
    assert rss1 - rss0 < 4 * 2**20, f"RSS grew by {(rss1 - rss0) / 2**20:.1f} MiB over 10,000 steps"


def test_no_python_growth_tracemalloc():
    """The same loop under tracemalloc (slow, so fewer steps): where any growth would come from.
    NumPy fills a bounded internal cache (~1 MiB) during the first ~20,000 calls of
    ``__array_interface__``, which the ops use; the traced warm-up runs past that."""
    model, opt, X, y = _small(2)
    steps = _loop(model, opt, X, y)
    steps(200)
    tracemalloc.start()
    try:
        for _ in range(25_000):
            X.__array_interface__
        steps(300)
        gc.collect()
        snap0 = tracemalloc.take_snapshot()
        steps(1500)
        gc.collect()
        snap1 = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = snap1.compare_to(snap0, "lineno")
    total = sum(st.size_diff for st in growth)
    assert total < 16 * 1024, "Python allocations grew over 1,500 steps:\n" + "\n".join(map(str, growth[:5]))


def test_no_growth_through_fit():
    # fit's own per-step work (batching, checks, callbacks, metrics) on a lighter network: the
    # layers' share is covered above.
    fastnn.manual_seed(1)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 4))
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    _, _, X, y = _small(1)
    kw = dict(batch_size=8, verbose=0, seed=0, validation_data=(X[:16], y[:16]))
    fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, epochs=40, **kw)  # warm-up
    gc.collect()
    rss0, blocks0 = rss(), sys.getallocatedblocks()
    hist = fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, epochs=1250, **kw)  # 10,000 steps
    assert hist.params["steps_done"] == 10_000
    del hist  # its per-epoch lists are legitimate growth
    gc.collect()
    rss1, blocks1 = rss(), sys.getallocatedblocks()
    assert blocks1 - blocks0 < 500, f"Python's allocator holds {blocks1 - blocks0} more blocks after 10,000 fit steps"
    assert rss1 - rss0 < 4 * 2**20, f"RSS grew by {(rss1 - rss0) / 2**20:.1f} MiB over 10,000 fit steps"


def test_deleted_model_and_optimizer_are_freed():
    """A 64 MiB weight, its gradient and Adam's two moments (4 × 64 MiB in arenas) must all go back
    to the OS when the model and optimizer are dropped: nothing (arena, workspace, a closure in a
    Tensor chain) keeps them alive."""
    gc.collect()
    base = rss()
    model = nn.Sequential(nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 8))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x = np.random.default_rng(0).standard_normal((16, 4096)).astype(np.float32)
    out = model(x)
    loss = nn.CrossEntropyLoss()(out, np.zeros(16, int))
    loss.backward()
    opt.step()
    peak = rss()
    # The test measures something (not all 256 MiB need show: pages the process freed earlier
    # and still holds may be reused).
    assert peak - base > 128 * 2**20
    refs = [weakref.ref(model), weakref.ref(opt), weakref.ref(model[0].weight), weakref.ref(model[0])]
    del model, opt, out, loss
    gc.collect()
    assert all(r() is None for r in refs), "a model, optimizer or parameter is still referenced"
    after = rss()
    assert after - base < 40 * 2**20, f"{(after - base) / 2**20:.0f} MiB still resident after deleting the model"


def test_thread_workspace_is_freed_with_its_thread():
    """Each Python thread gets its own GEMM workspace (fastnn.ops.linalg.workspace), freed when the
    thread ends. Here it holds a 64 MiB dZ scratch (linear_backward with an activation,
    4096 × 4096): above glibc's largest mmap threshold, so freeing it returns it to the OS."""
    rows = cols = 4096
    x = np.ones((rows, 4), np.float32)
    w = np.ones((cols, 4), np.float32)
    g = np.ones((rows, cols), np.float32)
    sizes = []

    def work():
        ops.linear_backward(g, x, w, grad_weight=np.zeros_like(w), activation="relu", saved=g)
        sizes.append(ops.linalg.workspace().nbytes)

    t = threading.Thread(target=work)   # one warm-up thread: OpenMP pool, malloc arena
    t.start()
    t.join()
    gc.collect()
    base = rss()
    grown = []
    for _ in range(3):
        t = threading.Thread(target=work)
        t.start()
        t.join()
        gc.collect()
        grown.append(rss() - base)
    assert min(sizes) >= rows * cols * 4                 # the workspace really held the scratch
    assert max(grown) < 16 * 2**20, f"finished threads left {[round(v / 2**20) for v in grown]} MiB resident"


def test_workspace_is_reused_not_regrown():
    ws = ops.linalg.workspace()
    r = np.random.default_rng(0)
    mats = [r.standard_normal((n, n)).astype(np.float32) for n in (300, 700, 150, 700, 500)]
    for m in mats:  # one pass of the mix: the workspace grows to its largest need here
        ops.matmul(m, m)
        ops.linear_backward(m, m, m, grad_weight=np.zeros_like(m), activation="tanh", saved=m)
    high = ws.nbytes
    assert high > 0
    for _ in range(4):
        for m in mats:
            ops.matmul(m, m)
            ops.linear_backward(m, m, m, grad_weight=np.zeros_like(m), activation="tanh", saved=m)
    assert ws.nbytes == high and ws is ops.linalg.workspace()  # repeating the mix grows nothing
    before = ws.nbytes
    for m in mats:
        ops.matmul(m, m)
    assert ws.nbytes == before   # the largest need was met once; smaller products reuse it
