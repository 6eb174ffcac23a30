"""Small networks' steps split by hidden units on the persistent team (src_c/plan_split.inc).

When every product of a step runs on the direct loops, a team splits the step by units: each
thread owns a block of every hidden layer's units through forward, backward and update, and
the head runs by row blocks. Every result must be the same bits as the plan alone for any
team size and schedule, and every status (divergence, bad input) the same at the same step."""
from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn import _core, nn
from fastnn import plan as fplan
from fastnn.optim import Adam

from conftest import num_threads
from test_plan import make_data, params_of, setup
from test_plan_team import (BATCH, MORE_OPTS, N, alone_and_late_helper, assert_runs_equal, check_team_equals_alone,
                            team_mode)

# BATCH, N (37, 111): three steps an epoch; the head's last row block is 5 rows.


def split_steps():
    return _core.plan_split_steps()


def check_split_equals_alone(build, X, y, thread_counts=(2, 3, 4)):
    check_team_equals_alone(build, X, y, thread_counts, count=split_steps)


# (layer sizes, hidden activation, loss, optimizer): one hidden layer and two, a head of 10,
# of 3 (narrow: read from W without a transpose) and of 1 behind a Sigmoid (its own dZ pass),
# hidden widths that split into even and uneven 64-byte runs.
NETS = [
    ([40, 64, 10], "relu", "ce", "adam"),
    ([40, 48, 3], "tanh", "mse", "sgd_momentum"),
    ([24, 64, 32, 5], "gelu", "ce_smooth_sum", "adamw"),
    ([40, 80, 1], "sigmoid", "bce", "adam_wd_amsgrad"),
    ([33, 96, 7], "leaky_relu", "bce_logits", "sgd_nesterov"),
    ([20, 32, 40, 9], "gelu_tanh", "l1", "adam"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes, act, loss, opt", NETS)
def test_split_is_bitwise_the_plan_alone(sizes, act, loss, opt, dtype):
    data_loss = "ce" if loss.startswith("ce") else loss
    X, y = make_data(N, sizes, data_loss, dtype)
    check_split_equals_alone(lambda: setup(sizes, act, loss, opt, dtype), X, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@MORE_OPTS
def test_split_for_rmsprop_adagrad_and_nesterov(make_opt, dtype):
    def build():
        fastnn.manual_seed(3)
        m = nn.Sequential(nn.Linear(30, 64, dtype=dtype), nn.Tanh(), nn.Linear(64, 12, dtype=dtype))
        return m, nn.CrossEntropyLoss(), make_opt(m.parameters())
    X, y = make_data(N, [30, 64, 12], "ce", dtype)
    check_split_equals_alone(build, X, y, thread_counts=(2, 3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_with_two_groups_and_layers_without_bias(dtype):
    def build():
        fastnn.manual_seed(4)
        m = nn.Sequential(nn.Linear(30, 64, bias=False, dtype=dtype), nn.ReLU(),
                          nn.Linear(64, 48, dtype=dtype), nn.ReLU(), nn.Linear(48, 6, bias=False, dtype=dtype))
        weights = [p for name, p in m.named_parameters() if name.endswith("weight")]
        others = [p for name, p in m.named_parameters() if not name.endswith("weight")]
        o = Adam([{"params": weights, "weight_decay": 1e-3}, {"params": others, "lr": 3e-3}], lr=1e-2)
        return m, nn.CrossEntropyLoss(), o
    X, y = make_data(N, [30, 64, 48, 6], "ce", dtype)
    check_split_equals_alone(build, X, y, thread_counts=(2, 4))


def test_late_helper_changes_nothing():
    """A helper that joins late (thread 0 then claims its blocks) gives the same bits."""
    dtype = np.float32
    sizes = [40, 64, 10]
    X, y = make_data(N, sizes, "ce", dtype)
    alone, late = alone_and_late_helper(lambda: setup(sizes, "relu", "ce", "adam", dtype), X, y, count=split_steps)
    assert_runs_equal(alone, late)


def test_fit_splits_in_auto_mode_and_matches_one_thread():
    """fit on a digits-sized net (64-128-10, batch 32: ~0.65 M multiply-adds a step) splits its
    steps in auto mode; history, parameters and validation metrics equal one thread's."""
    dtype = np.float32
    sizes = [64, 128, 10]
    X, y = make_data(320, sizes, "ce", dtype)
    runs = []
    for threads in (1, 2):
        with num_threads(threads), team_mode("auto"):
            m, l, o = setup(sizes, "relu", "ce", "adam", dtype)
            before = split_steps()
            hist = fastnn.fit(m, l, o, X, y, epochs=3, batch_size=32, seed=2, verbose=0,
                              validation_data=(X[:50], y[:50]))
            runs.append((params_of(m), hist.history, split_steps() - before))
    # fit's first C calls are a few steps each (Ctrl-C stays responsive), too few for the fork
    assert runs[0][2] == 0 and 15 <= runs[1][2] <= 30
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]


def test_auto_mode_splits_only_where_it_pays():
    dtype = np.float32
    with num_threads(2), team_mode("auto"):
        sizes = [64, 128, 10]
        X, y = make_data(32 * 8, sizes, "ce", dtype)
        m, l, o = setup(sizes, "relu", "ce", "adam", dtype)
        plan = fplan.compile(m, l, o)
        before = split_steps()
        plan.epoch(X[:96], y[:96], batch_size=32)  # 3 steps a call: not worth the fork
        plan.step(X[:32], y[:32])
        assert split_steps() == before
        before = split_steps()
        fastnn.fit(m, l, o, X, y, epochs=2, batch_size=32, seed=0, verbose=0)
        assert split_steps() > before
        small = [16, 32, 4]  # 16·32·16·2 + 16·32·4·3 ≈ 22 k multiply-adds a step: below the line
        X, y = make_data(16 * 10, small, "ce", dtype)
        m, l, o = setup(small, "relu", "ce", "adam", dtype)
        before = split_steps()
        fastnn.fit(m, l, o, X, y, epochs=2, batch_size=16, seed=0, verbose=0)
        assert split_steps() == before
        wide_in = [3, 64, 4]  # an input narrower than a vector: the tiny path's narrow kernels, no split
        X, y = make_data(32 * 10, wide_in, "ce", dtype)
        m, l, o = setup(wide_in, "relu", "ce", "adam", dtype)
        with team_mode("always"):
            fastnn.fit(m, l, o, X, y, epochs=1, batch_size=32, seed=0, verbose=0)
        assert split_steps() == before


@pytest.mark.parametrize("scale, lr", [(1e20, 0.01), (1e18, 10.0), (1.0, 1e39)],
                         ids=["loss-overflows", "diverges", "update-overflows"])
def test_divergence_on_a_split_step_is_reported_as_alone(scale, lr):
    """A non-finite loss at once, a run that diverges after some steps, an update that
    overflows the parameters (fit reports it after that update): the same step, message and
    parameters as alone."""
    dtype = np.float32
    sizes = [40, 64, 3]
    X, y = make_data(N, sizes, "mse", dtype)
    y = y * scale
    outcomes = []
    for threads, mode in [(1, "off"), (2, "always")]:
        with num_threads(threads), team_mode(mode):
            m, l, o = setup(sizes, "relu", "mse", "sgd", dtype)
            o.param_groups[0]["lr"] = lr
            before = split_steps()
            with pytest.raises(fastnn.DivergenceError) as info:
                fastnn.fit(m, l, o, X, y, epochs=3, batch_size=BATCH, seed=0, verbose=0)
            assert (split_steps() > before) == (threads > 1)
            outcomes.append((info.value.step, str(info.value), params_of(m)))
    assert outcomes[0][:2] == outcomes[1][:2]
    for a, b in zip(outcomes[0][2], outcomes[1][2]):
        np.testing.assert_array_equal(a, b)


def test_no_allocation_per_split_step():
    dtype = np.float32
    sizes = [40, 64, 10]
    X, y = make_data(BATCH, sizes, "ce", dtype)
    with num_threads(2), team_mode("always"):
        m, l, o = setup(sizes, "relu", "ce", "adam", dtype)
        plan = fplan.compile(m, l, o)
        plan.step(X, y)
        before, steps = _core.plan_alloc_count(), split_steps()
        for _ in range(30):
            plan.step(X, y)
        assert _core.plan_alloc_count() == before
        assert split_steps() == steps + 30


def test_non_finite_gradient_with_a_finite_loss_stops_before_the_update():
    """Hidden units near float32's limit behind a head of subnormal weights: the loss is finite
    but the head's weight gradient overflows. Split or alone, fit stops before that update
    (the gradient check of every block's columns), with the same report."""
    dtype = np.float32
    sizes = [40, 64, 3]
    X, y = make_data(N, sizes, "mse", dtype)
    outcomes = []
    for threads, mode in [(1, "off"), (2, "always")]:
        with num_threads(threads), team_mode(mode):
            m, l, o = setup(sizes, "relu", "mse", "sgd", dtype)
            m[0].weight.data[...] *= np.float32(1e37)
            m[2].weight.data[...] *= np.float32(1e-39)
            start = params_of(m)
            with pytest.raises(fastnn.DivergenceError) as info:
                fastnn.fit(m, l, o, X, y * 1e3, epochs=1, batch_size=BATCH, seed=0, verbose=0)
            assert "gradient" in str(info.value)
            for a, b in zip(start, params_of(m)):  # stopped before the first update
                np.testing.assert_array_equal(a, b)
            outcomes.append((info.value.step, str(info.value)))
    assert outcomes[0] == outcomes[1]


def test_verbose_says_the_step_splits(capsys):
    dtype = np.float32
    sizes = [64, 128, 10]
    X, y = make_data(32 * 10, sizes, "ce", dtype)
    with num_threads(2), team_mode("auto"):
        m, l, o = setup(sizes, "relu", "ce", "adam", dtype)
        plan = fplan.compile(m, l, o)
        assert plan.splits_by_units(32) and plan.team_threads(32, 10) == 2
        assert not plan.splits_by_units(4096)  # products past the direct loops: split product by product
        fastnn.fit(m, l, o, X, y, epochs=1, batch_size=32, verbose=2)
        assert "one team of 2 threads, each step split by hidden units" in capsys.readouterr().out
