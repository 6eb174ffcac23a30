"""Plans on a persistent team (src_c/team.h): one parallel region per call, jobs between phases.

Every result must be the same bits as the plan without a team, for any thread count, any
schedule (a late helper, a slowed GEMM thread) and every layer, loss and optimizer a plan
takes. The nets are sized so that each part of a step goes to the team: packed products
above the direct-loop limit, an arena of several optimizer tiles, a layer wider than one
dZ/db column block."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest

import fastnn
from fastnn import _core, nn
from fastnn import plan as fplan
from fastnn.optim import SGD, Adagrad, Adam, RMSprop

from conftest import num_threads
from test_plan import OPTS, make_data, params_of, setup, step_both

SIZES = [40, 300, 17]   # 37×40×300 and 37×300×17 products, 17.4k parameters, 300 > 256 columns
BATCH, N = 37, 111      # three steps an epoch


@contextmanager
def team_mode(mode):
    old = _core.plan_team_mode(mode)
    try:
        yield
    finally:
        _core.plan_team_mode(old)


def opened_teams():
    return _core.team_stats()[0]


def state_of(opt):
    out = []
    for st in opt.state_dict()["state"].values():
        out.extend(np.array(v, copy=True) for k, v in sorted(st.items()) if isinstance(v, np.ndarray))
    return out


def train_epochs(build, X, y, threads, mode, epochs=2, count=opened_teams):
    """Two shuffled epochs through plan.epoch; (params, optimizer state, losses, how much
    `count` grew: teams opened by default)."""
    with num_threads(threads), team_mode(mode):
        m, l, o = build()
        plan = fplan.compile(m, l, o, batch_size=BATCH)
        before = count()
        losses = [plan.epoch(X, y, batch_size=BATCH, shuffle=True, seed=e) for e in range(epochs)]
        grew = count() - before
    return params_of(m), state_of(o), np.concatenate(losses), grew


def assert_runs_equal(a, b):
    for x, z in zip(a[0] + a[1], b[0] + b[1]):
        np.testing.assert_array_equal(x, z)
    np.testing.assert_array_equal(a[2], b[2])


def check_team_equals_alone(build, X, y, thread_counts=(2, 3, 4), count=opened_teams):
    alone = train_epochs(build, X, y, 1, "off", count=count)
    assert alone[3] == 0
    for t in thread_counts:
        teamed = train_epochs(build, X, y, t, "always", count=count)
        assert teamed[3] > 0, f"the plan did not run on a team ({count.__name__} did not grow)"
        assert_runs_equal(alone, teamed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["relu", "tanh", "gelu", "sigmoid"])
@pytest.mark.parametrize("opt", ["sgd_momentum", "adam", "adam_wd_amsgrad", "adamw"])
def test_team_is_bitwise_the_plan_alone(act, opt, dtype):
    X, y = make_data(N, SIZES, "ce", dtype)
    check_team_equals_alone(lambda: setup(SIZES, act, "ce", opt, dtype), X, y)


@pytest.mark.parametrize("loss", ["mse", "l1", "bce_logits", "ce_smooth_sum"])
def test_team_for_every_loss(loss):
    dtype = np.float32
    data_loss = "ce" if loss.startswith("ce") else loss
    X, y = make_data(N, SIZES, data_loss, dtype)
    check_team_equals_alone(lambda: setup(SIZES, "relu", loss, "adam", dtype), X, y, thread_counts=(2, 3))


# The optimizers OPTS leaves out, with their less common options (also test_plan_split).
MORE_OPTS = pytest.mark.parametrize("make_opt", [
    lambda ps: RMSprop(ps, lr=1e-3, momentum=0.5, centered=True),
    lambda ps: Adagrad(ps, lr=0.05, lr_decay=1e-3, weight_decay=1e-4),
    lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
], ids=["rmsprop", "adagrad", "nesterov"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@MORE_OPTS
def test_team_for_rmsprop_adagrad_and_nesterov(make_opt, dtype):
    def build():
        fastnn.manual_seed(3)
        m = nn.Sequential(nn.Linear(40, 300, dtype=dtype), nn.Tanh(), nn.Linear(300, 17, dtype=dtype))
        return m, nn.CrossEntropyLoss(), make_opt(m.parameters())
    X, y = make_data(N, SIZES, "ce", dtype)
    check_team_equals_alone(build, X, y, thread_counts=(2, 3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_team_with_norms_dropout_and_two_groups(dtype):
    def build():
        fastnn.manual_seed(4)
        m = nn.Sequential(nn.Linear(40, 300, dtype=dtype), nn.LayerNorm(300, dtype=dtype), nn.ReLU(),
                          nn.Dropout(0.2), nn.Linear(300, 280, dtype=dtype), nn.BatchNorm1d(280, dtype=dtype),
                          nn.Tanh(), nn.Linear(280, 17, dtype=dtype))
        weights = [p for name, p in m.named_parameters() if name.endswith("weight")]
        others = [p for name, p in m.named_parameters() if not name.endswith("weight")]
        o = Adam([{"params": weights, "weight_decay": 1e-3}, {"params": others, "lr": 3e-3}], lr=1e-2)
        return m, nn.CrossEntropyLoss(), o
    X, y = make_data(N, SIZES, "ce", dtype)
    check_team_equals_alone(build, X, y, thread_counts=(2, 4))


def test_team_step_and_fit_equal_the_plan_alone():
    dtype = np.float32
    X, y = make_data(N, SIZES, "ce", dtype)
    runs = []
    for threads, mode in [(1, "off"), (2, "always"), (3, "always")]:
        with num_threads(threads), team_mode(mode):
            m, l, o = setup(SIZES, "relu", "ce", "adam", dtype)
            plan = fplan.compile(m, l, o)
            step_losses = [plan.step(X[:BATCH], y[:BATCH]) for _ in range(3)]
            hist = fastnn.fit(m, l, o, X, y, epochs=3, batch_size=BATCH, seed=2, verbose=0,
                              validation_data=(X[:50], y[:50]))
            runs.append((params_of(m), step_losses, hist.history))
    for other in runs[1:]:
        for a, b in zip(runs[0][0], other[0]):
            np.testing.assert_array_equal(a, b)
        assert runs[0][1] == other[1]
        assert runs[0][2] == other[2]


def alone_and_late_helper(build, X, y, count=opened_teams):
    """train_epochs alone, and on 2 threads with helper 1 joining each job 300 µs late."""
    alone = train_epochs(build, X, y, 1, "off", count=count)
    try:
        _core._team_test_delay(1, 300)
        late = train_epochs(build, X, y, 2, "always", count=count)
    finally:
        _core._team_test_delay(1, 0)
    assert late[3] > 0
    return alone, late


def test_late_helper_and_skewed_products_change_nothing():
    """A helper that joins late (it mostly finds each job closed: thread 0 does the chunks) and
    a GEMM thread slowed before every tile (the other claims them) give the same bits."""
    dtype = np.float32
    X, y = make_data(N, SIZES, "ce", dtype)
    build = lambda: setup(SIZES, "gelu", "ce", "adam", dtype)  # noqa: E731
    alone, late = alone_and_late_helper(build, X, y)
    try:
        _core._gemm_test_delay(1, 200)
        skewed = train_epochs(build, X, y, 3, "always")
        delays = _core._gemm_test_delays()
    finally:
        _core._gemm_test_delay(1, 0)
    assert delays > 0, "the delayed thread took no tile: the test proves nothing"
    assert_runs_equal(alone, late)
    assert_runs_equal(alone, skewed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_team_matches_the_pytorch_style_loop_bit_for_bit(dtype):
    sizes = [64, 300, 280, 30]  # every product packed (above the direct loops)
    X, y = make_data(6 * 40, sizes, "ce", dtype)
    with num_threads(2), team_mode("always"):
        before = opened_teams()
        m1, o1, m2, o2 = step_both(setup(sizes, "relu", "ce", "adam", dtype),
                                   setup(sizes, "relu", "ce", "adam", dtype), X, y, 40, 6, dtype)
        assert opened_teams() > before
    for a, b in zip(params_of(m1), params_of(m2)):
        np.testing.assert_array_equal(a, b)


def test_auto_mode_opens_teams_only_where_they_pay():
    dtype = np.float32
    with num_threads(2), team_mode("auto"):
        big = [256, 128, 10]  # ~2.2 M to split a step at batch 32: a team for an epoch
        X, y = make_data(96, big, "ce", dtype)
        m, l, o = setup(big, "relu", "ce", "adam", dtype)
        plan = fplan.compile(m, l, o)
        before = opened_teams()
        plan.epoch(X, y, batch_size=32)
        assert opened_teams() > before
        small = [64, 128, 10]  # a tiny step that splits by units (test_plan_split), but 3 steps: not worth the fork
        X, y = make_data(96, small, "ce", dtype)
        m, l, o = setup(small, "relu", "ce", "adam", dtype)
        plan = fplan.compile(m, l, o)
        before = opened_teams()
        plan.epoch(X, y, batch_size=32)
        plan.step(X[:32], y[:32])
        assert opened_teams() == before
        # one step of the big net alone: not worth the fork that opens a team
        m, l, o = setup(big, "relu", "ce", "adam", dtype)
        plan = fplan.compile(m, l, o)
        X, y = make_data(32, big, "ce", dtype)
        plan.step(X, y)
        assert opened_teams() == before
    with num_threads(1), team_mode("always"):
        plan.step(X, y)
        assert opened_teams() == before  # one thread: nothing to share


def test_no_allocation_per_step_on_a_team():
    dtype = np.float32
    X, y = make_data(BATCH, SIZES, "ce", dtype)
    with num_threads(2), team_mode("always"):
        m, l, o = setup(SIZES, "relu", "ce", "adam", dtype)
        plan = fplan.compile(m, l, o)
        plan.step(X, y)
        plan.step(X, y)
        before = _core.plan_alloc_count()
        for _ in range(30):
            plan.step(X, y)
        assert _core.plan_alloc_count() == before


def test_team_mode_checks_its_argument():
    with pytest.raises(ValueError, match="mode"):
        _core.plan_team_mode("sometimes")
    assert _core.plan_team_mode() in ("off", "auto", "always")
    with pytest.raises(ValueError, match="microseconds"):
        _core._team_test_delay(1, -1)


def test_divergence_on_a_team_is_reported_before_the_update():
    dtype = np.float32
    X, y = make_data(N, SIZES, "mse", dtype)
    y = y * 1e18
    outcomes = []
    for threads, mode in [(1, "off"), (2, "always")]:
        with num_threads(threads), team_mode(mode):
            m, l, o = setup(SIZES, "relu", "mse", "sgd", dtype)
            o.param_groups[0]["lr"] = 10.0
            with pytest.raises(fastnn.DivergenceError) as info:
                fastnn.fit(m, l, o, X, y, epochs=3, batch_size=BATCH, seed=0, verbose=0)
            assert all(np.isfinite(p.data).all() for p in m.parameters())
            outcomes.append((info.value.step, str(info.value), params_of(m)))
    assert outcomes[0][:2] == outcomes[1][:2]
    for a, b in zip(outcomes[0][2], outcomes[1][2]):
        np.testing.assert_array_equal(a, b)


def test_wide_inputs_gather_and_check_on_the_team():
    """fit's shuffled gather (37 rows × 500 inputs) and its finite checks (40k parameters) run as
    team jobs: the same history and parameters as alone, and the same divergence report."""
    dtype = np.float32
    sizes = [500, 80, 12]
    X, y = make_data(N, sizes, "ce", dtype)
    runs = []
    for threads, mode in [(1, "off"), (2, "always"), (3, "always")]:
        with num_threads(threads), team_mode(mode):
            m, l, o = setup(sizes, "relu", "ce", "adamw", dtype)
            before = opened_teams()
            hist = fastnn.fit(m, l, o, X, y, epochs=3, batch_size=BATCH, seed=7, verbose=0)
            assert (opened_teams() > before) == (threads > 1)
            runs.append((params_of(m), hist.history))
    for other in runs[1:]:
        for a, b in zip(runs[0][0], other[0]):
            np.testing.assert_array_equal(a, b)
        assert runs[0][1] == other[1]
    outcomes = []
    for threads, mode in [(1, "off"), (2, "always")]:
        with num_threads(threads), team_mode(mode):
            m, l, o = setup(sizes, "relu", "mse", "sgd", dtype)
            o.param_groups[0]["lr"] = 10.0
            Xd, yd = make_data(N, sizes, "mse", dtype)
            with pytest.raises(fastnn.DivergenceError) as info:
                fastnn.fit(m, l, o, Xd, yd * 1e18, epochs=3, batch_size=BATCH, seed=0, verbose=0)
            outcomes.append((info.value.step, str(info.value), params_of(m)))
    assert outcomes[0][:2] == outcomes[1][:2]
    for a, b in zip(outcomes[0][2], outcomes[1][2]):
        np.testing.assert_array_equal(a, b)


def test_team_threads_says_what_a_call_will_do(capsys):
    """Plan.team_threads answers before the call what the call then does, and fit's verbose=2
    line says it."""
    dtype = np.float32
    with num_threads(2), team_mode("auto"):
        for sizes, batch, steps, want in [([256, 128, 10], 32, 3, 2), ([64, 128, 10], 32, 3, 1),
                                          ([256, 128, 10], 32, 1, 1)]:
            X, y = make_data(batch * steps, sizes, "ce", dtype)
            m, l, o = setup(sizes, "relu", "ce", "adam", dtype)
            plan = fplan.compile(m, l, o)
            assert plan.team_threads(batch, steps) == want
            before = opened_teams()
            plan.epoch(X, y, batch_size=batch, shuffle=False)
            assert (opened_teams() > before) == (want > 1)
        with pytest.raises(ValueError, match="batch_size"):
            plan.team_threads(0)
        m, l, o = setup([256, 128, 10], "relu", "ce", "adam", dtype)
        X, y = make_data(96, [256, 128, 10], "ce", dtype)
        fastnn.fit(m, l, o, X, y, epochs=1, batch_size=32, verbose=2)
        assert "one team of 2 threads" in capsys.readouterr().out
    with num_threads(1), team_mode("auto"):
        assert plan.team_threads(32, 100) == 1
