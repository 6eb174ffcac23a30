"""fastnn.distributed: 2-rank fit equals 1-process fit; faults end the job; rank-0 checkpoints.

The MPI runs are subprocesses (``mpiexec -n 2 python tests/_mpi_worker.py ...``, 1 thread per
rank) under timeouts, so a hang fails the test instead of blocking the suite. Skipped when
mpi4py or mpiexec is missing (``pip install "fastnn-cpu[mpi]"``; CI installs it).
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import fastnn
import fastnn.plan

WORKER = os.path.join(os.path.dirname(__file__), "_mpi_worker.py")
# Subprocesses run outside the source tree (cwd would come first on sys.path for -c and -m).
ELSEWHERE = tempfile.gettempdir()
MPIEXEC = shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
                               reason="needs mpi4py and mpiexec (pip install 'fastnn-cpu[mpi]')")


def _env():
    env = dict(os.environ, FASTNN_NUM_THREADS="1", OMP_NUM_THREADS="1", FASTNN_MPI_AGREE_TIMEOUT="2")
    # the subprocesses import the fastnn this test imported (the source tree or an installed wheel)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__))) + os.pathsep + \
        env.get("PYTHONPATH", "")
    for k in [k for k in env if k.startswith(("PMI_", "OMPI_", "PMIX_", "MV2_"))]:
        del env[k]  # a test run under mpiexec must not leak its own launch into these
    return env


def _mpiexec(n, *args, timeout=120):
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, WORKER, *args], env=_env(), cwd=ELSEWHERE,
                          capture_output=True, text=True, timeout=timeout)


def test_single_process_init_is_a_noop():
    code = ("import sys, fastnn.distributed as d; d.init(); d.init(); d.barrier(); "
            "print(d.is_initialized(), d.rank(), d.world_size(), d.is_main(), 'mpi4py' in sys.modules, "
            "d._fit_context())")
    out = subprocess.run([sys.executable, "-c", code], env=_env(), cwd=ELSEWHERE, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "0", "1", "True", "False", "None"]


def test_single_process_history_params():
    from fastnn import nn, optim
    model = nn.Sequential(nn.Linear(3, 2))
    h = fastnn.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), np.ones((5, 3)), np.ones((5, 2)),
                   epochs=1, verbose=0)
    assert (h.params["world_size"], h.params["rank"], h.params["local_samples"]) == (1, 0, 5)


@pytest.fixture(scope="module")
def fit_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mpi_fit")
    out = _mpiexec(2, "fit", str(folder / "two.npz"))
    assert out.returncode == 0, out.stdout + out.stderr
    one = subprocess.run([sys.executable, WORKER, "fit", str(folder / "one.npz")], env=_env(), cwd=ELSEWHERE,
                         capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stdout + one.stderr
    return dict(np.load(folder / "one.npz")), dict(np.load(folder / "two.npz"))


sys.path.insert(0, os.path.dirname(__file__))
from _mpi_worker import SCENARIOS  # noqa: E402


def fit_path(name, ranks):
    """The path fit takes on `ranks` ranks: "eager", "steps" (one C call per step), "epochs" or "runs"."""
    plan, n, bs = SCENARIOS[name][2], SCENARIOS[name][4], SCENARIOS[name][5]
    extra = SCENARIOS[name][8] if len(SCENARIOS[name]) > 8 else None
    if plan is False:
        return "eager"
    if extra == "batch_cb" or 0 < n % bs < ranks:  # a stand-in row on some rank (MPI)
        return "steps"
    return "epochs" if extra in ("sched", "verbose") else "runs"


@needs_mpi
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_two_ranks_equal_one_process(fit_results, name):
    one, two = fit_results
    assert bool(two[name + "/same_on_all_ranks"])
    # The same training to float rounding (the shares' sums round differently from one sum).
    f32 = len(SCENARIOS[name]) > 7 and SCENARIOS[name][7] == np.float32
    rtol, atol = (1e-5, 1e-6) if f32 else (1e-12, 1e-14)  # measured: a few ulps
    np.testing.assert_allclose(two[name + "/params"], one[name + "/params"], rtol=rtol, atol=atol)
    keys = sorted(k for k in one if k.startswith(name + "/history/"))
    assert keys == sorted(k for k in two if k.startswith(name + "/history/"))
    assert any(k.endswith("/val_loss") for k in keys) == SCENARIOS[name][1]
    for k in keys:
        np.testing.assert_allclose(two[k], one[k], rtol=rtol, atol=atol, err_msg=k)
    n, bs = SCENARIOS[name][4], SCENARIOS[name][5]
    assert int(two[name + "/params_world_size"]) == 2 and int(one[name + "/params_world_size"]) == 1
    assert int(two[name + "/params_rank"]) == 0
    # one allreduce per step, inside the compiled plan's step unless plan=False
    assert int(two[name + "/allreduce_calls"]) == 3 * -(-n // bs)
    assert bool(two[name + "/plan_hooked"]) == (SCENARIOS[name][2] is not False)
    assert int(two[name + "/params_steps"]) == int(one[name + "/params_steps"]) == -(-n // bs)
    # the path fit took on both: runs of all 3 epochs in one C call, one epoch per C call, or one step
    for res, ranks in ((one, 1), (two, 2)):
        path = fit_path(name, ranks)
        runs, steps = int(res[name + "/epoch_runs"]), int(res[name + "/plan_steps"])
        assert (runs, steps) == {"runs": (1, 0), "epochs": (3, 0), "steps": (0, 3 * -(-n // bs)),
                                 "eager": (0, 0)}[path], (ranks, path, runs, steps)
    # rank 0's share: ceil of half of every global batch
    expect = sum(-(-min(bs, n - s) // 2) for s in range(0, n, bs))
    assert int(two[name + "/params_local_samples"]) == expect
    assert int(one[name + "/params_local_samples"]) == n


@needs_mpi
@pytest.mark.parametrize("how", ["raise", "kill", "exit"])
def test_failing_rank_ends_the_job(tmp_path, how):
    out = _mpiexec(2, how, str(tmp_path), timeout=90)  # a hang raises TimeoutExpired: the test fails
    assert out.returncode != 0
    if how == "raise":
        assert "rank 1 fails on purpose" in out.stderr and "aborting all ranks" in out.stderr
    if how == "exit":
        assert "fit stopped on rank 1 with SystemExit" in out.stderr and "aborting all ranks" in out.stderr
    # The checkpoint rank 0 wrote is a complete one: fastnn.save writes a temporary file and
    # renames it, so an abort mid-write leaves at most a hidden ".ckpt.fnn.*.tmp" beside it.
    files = os.listdir(tmp_path)
    assert "ckpt.fnn" in files
    assert all(f.startswith(".ckpt.fnn.") and f.endswith(".tmp") for f in files if f != "ckpt.fnn")
    model = fastnn.load(str(tmp_path / "ckpt.fnn"))
    assert model[0].weight.shape == (16, 5)


@needs_mpi
def test_divergence_on_one_rank_stops_every_rank_at_the_same_step():
    out = _mpiexec(2, "diverge", "-", timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    one = subprocess.run([sys.executable, WORKER, "diverge", "-"], env=_env(), cwd=ELSEWHERE, capture_output=True,
                         text=True, timeout=60)
    assert one.returncode == 0, one.stdout + one.stderr
    lines = [l for l in out.stdout.splitlines() if l.startswith("DIVERGED")]
    assert len(lines) == 2 and all("step=-1" not in l for l in lines)
    # the same step as one process, and the parameters from before it (to rounding)
    for two_line, one_line in zip(lines, [l for l in one.stdout.splitlines() if l.startswith("DIVERGED")]):
        assert two_line.split()[:3] == one_line.split()[:3]
        assert float(two_line.split("params=")[1]) == pytest.approx(float(one_line.split("params=")[1]), rel=1e-12)


@needs_mpi
def test_ranks_with_different_data_get_a_clear_error():
    out = _mpiexec(2, "mismatch", "-", timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    # the two ranks' lines may interleave in mpiexec's merged stdout: count, don't split
    for r in (0, 1):
        assert out.stdout.count(f"MISMATCH rank {r}: fit under 2 MPI ranks: X has a different number of "
                                f"samples on rank 1 than on rank 0") == 1, out.stdout


@needs_mpi
@pytest.mark.parametrize("how", ["save", "save_before_init"])
def test_save_is_rank0_only_unless_asked(tmp_path, how):
    out = _mpiexec(2, how, str(tmp_path), timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(os.listdir(tmp_path)) == ["every_0.fnn", "every_1.fnn", "main_only_0.fnn"]


@needs_mpi
def test_cli_train_under_mpiexec(tmp_path):
    out = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "fastnn", "train", "--epochs", "2",
                          "--threads", "1", "--save", str(tmp_path / "m.fnn")],
                         env=_env(), cwd=ELSEWHERE, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("test accuracy") == 1  # rank 0 alone reports
    assert "2 MPI ranks" in out.stdout
    assert os.listdir(tmp_path) == ["m.fnn"]


# --- the plan's gradient hook (no MPI needed) --------------------------------------------------
def _plan_setup(n_in=6, hidden=9, dtype=np.float64):
    from fastnn import nn, optim
    fastnn.manual_seed(1)
    model = nn.Sequential(nn.Linear(n_in, hidden, dtype=dtype), nn.ReLU(), nn.Linear(hidden, 2, dtype=dtype))
    opt = optim.SGD(model.parameters(), lr=0.1)
    plan = fastnn.plan.compile(model, nn.MSELoss(), opt)
    plan.check_finite = True
    rng = np.random.default_rng(0)
    return model, opt, plan, rng.standard_normal((5, n_in)).astype(dtype), rng.standard_normal((5, 2)).astype(dtype)


@pytest.mark.parametrize("n_in", [6, 900])  # the tiny path and the packed-GEMM path of the plan's step
def test_plan_grad_hook_runs_between_backward_and_update(n_in):
    import fastnn.plan  # noqa: F401
    model, opt, plan, xb, yb = _plan_setup(n_in)
    before = [p.data.copy() for p in model.parameters()]
    seen = []

    def halve(batch):  # what the allreduce does: rewrite the arena in place
        seen.append((batch, float(np.abs(opt._arenas[0][0].grad).sum())))
        opt._arenas[0][0].grad *= 0.5
    plan.set_grad_hook(halve)
    plan.step(xb, yb)
    assert len(seen) == 1 and seen[0][0] == 5 and seen[0][1] > 0
    grads = [p.grad.copy() for p in model.parameters()]  # halved by the hook
    for p, b, g in zip(model.parameters(), before, grads):
        np.testing.assert_allclose(p.data, b - 0.1 * g, rtol=1e-12, atol=1e-15)  # the update used them
    # without the hook the same step uses the full gradient (twice the halved one)
    model2, opt2, plan2, _, _ = _plan_setup(n_in)
    plan2.step(xb, yb)
    for p, g in zip(model2.parameters(), grads):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-12, atol=1e-15)
    plan.set_grad_hook(None)
    plan.step(xb, yb)
    assert len(seen) == 1


def test_plan_grad_hook_error_stops_before_the_update():
    model, opt, plan, xb, yb = _plan_setup()
    before = [p.data.copy() for p in model.parameters()]

    def fail(batch):
        raise ConnectionError("peer gone")
    plan.set_grad_hook(fail)
    with pytest.raises(ConnectionError, match="peer gone"):
        plan.step(xb, yb)
    with pytest.raises(ConnectionError, match="peer gone"):
        plan.epoch(np.vstack([xb] * 4), np.vstack([yb] * 4), batch_size=5)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)


def test_plan_grad_hook_joins_on_a_nonfinite_loss():
    # A non-finite loss on this process still calls the hook (the other ranks wait in it), with a
    # NaN in the gradient so that everyone sees a non-finite gradient; nothing is updated.
    model, opt, plan, xb, yb = _plan_setup()
    before = [p.data.copy() for p in model.parameters()]
    calls = []
    plan.set_grad_hook(lambda batch: calls.append(np.isnan(opt._arenas[0][0].grad[0])))
    yb = yb.copy()
    yb[0, 0] = 1e300  # (out - y)² overflows
    plan.step(xb, yb)
    assert plan.last_status == fastnn._core.PLAN_STATUS["nonfinite_loss"]
    assert calls == [True]
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)
