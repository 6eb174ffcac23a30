"""Run by tests/test_distributed.py, under ``mpiexec -n N`` or as one plain process.

python tests/_mpi_worker.py fit OUT.npz   — every fit scenario; rank 0 writes the results
python tests/_mpi_worker.py raise DIR     — rank 1 raises during training (the job must abort)
python tests/_mpi_worker.py kill DIR      — rank 1 is SIGKILLed during training; rank 0 checkpoints
python tests/_mpi_worker.py exit DIR      — rank 1 calls sys.exit during training
python tests/_mpi_worker.py save DIR      — fastnn.save with and without all_ranks
python tests/_mpi_worker.py diverge -     — a loss that overflows on one rank only
python tests/_mpi_worker.py mismatch -    — the ranks pass different data
"""
import os
import signal
import sys

import numpy as np

import fastnn
import fastnn.distributed as dist
import fastnn.plan
from fastnn import nn, optim
from fastnn.train import Callback

# name -> (optimizer, validation, plan, metrics, n samples, batch size, loss[, dtype: float64[, extra]])
# extra: "sched" (a scheduler between epochs: one epoch per C call), "batch_cb" (a per-batch
# callback: one C call per step), "verbose" (progress output, on rank 0 only).
# Compiled plans run many epochs per C call unless extra says otherwise or a rank would get a
# stand-in row (fit_path in tests/test_distributed.py).
SCENARIOS = {
    "sgd_eager_val": ("sgd", True, False, "auto", 23, 4, "ce"),
    "sgd_plan_step": ("sgd", False, "auto", "auto", 23, 4, "ce"),
    "sgd_plan_epoch": ("sgd", True, "auto", None, 21, 4, "ce"),      # last batch of 1: a stand-in row
    "adam_eager": ("adam", False, False, "auto", 21, 4, "ce"),
    "adam_plan_step_val": ("adam", True, "auto", "auto", 23, 5, "ce"),
    "adam_plan_epoch": ("adam", False, "auto", None, 23, 5, "ce"),
    "adam_mse_sum_epoch": ("adam", True, "auto", None, 21, 4, "mse_sum"),
    "sgd_mse_eager": ("sgd", False, False, None, 22, 6, "mse"),
    "adam_plan_epoch_f32": ("adam", True, "auto", None, 23, 5, "ce", np.float32),
    "sgd_plan_sched_val": ("sgd", True, "auto", "auto", 23, 4, "ce", np.float64, "sched"),
    "adam_plan_batch_cb_val": ("adam", True, "auto", "auto", 23, 4, "ce", np.float64, "batch_cb"),
    "sgd_plan_verbose_val": ("sgd", True, "auto", "auto", 23, 4, "ce", np.float64, "verbose"),
    "sgd_eager_sched_val": ("sgd", True, False, "auto", 21, 4, "ce", np.float64, "sched"),
}


class _PerBatch(Callback):
    def on_batch_end(self, batch, logs=None):
        pass


def data(n, loss, seed=7):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    if loss == "ce":
        return X, rng.integers(0, 3, n)
    return X, rng.standard_normal((n, 3))


def run_fit(name):
    opt_name, val, plan, metrics, n, bs, loss = SCENARIOS[name][:7]
    dtype = SCENARIOS[name][7] if len(SCENARIOS[name]) > 7 else np.float64
    fastnn.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 7, dtype=dtype), nn.Tanh(), nn.Linear(7, 3, dtype=dtype))
    if dist.rank() != 0:  # fit must start from rank 0's parameters
        for p in model.parameters():
            p.data += 1.0
    opt = (optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if opt_name == "sgd"
           else optim.Adam(model.parameters(), lr=0.01))
    loss_fn = (nn.CrossEntropyLoss() if loss == "ce" else nn.MSELoss(reduction="sum") if loss == "mse_sum"
               else nn.MSELoss())
    X, y = data(n, loss)
    vd = data(9, loss, seed=8) if val else None
    extra = SCENARIOS[name][8] if len(SCENARIOS[name]) > 8 else None
    kw = {"verbose": int(extra == "verbose")}
    if extra == "sched":
        kw["scheduler"] = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    if extra == "batch_cb":
        kw["callbacks"] = [_PerBatch()]
    h = fastnn.fit(model, loss_fn, opt, X, y, epochs=3, batch_size=bs, seed=11, plan=plan,
                   metrics=metrics, validation_data=vd, **kw)
    return model, h


_hooked = []
_set_grad_hook = fastnn.plan.Plan.set_grad_hook


def _recording_set_grad_hook(self, fn):  # tells the test that fit's plan got the allreduce hook
    _hooked.append(fn is not None)
    return _set_grad_hook(self, fn)


fastnn.plan.Plan.set_grad_hook = _recording_set_grad_hook

_calls = {"EpochRun": 0, "step": 0}  # which plan path fit took
_EpochRun, _plan_step = fastnn._core.EpochRun, fastnn.plan.Plan.step


def _counting_epoch_run(*args, **kwargs):
    _calls["EpochRun"] += 1
    return _EpochRun(*args, **kwargs)


def _counting_step(self, xb, yb):
    _calls["step"] += 1
    return _plan_step(self, xb, yb)


fastnn._core.EpochRun = _counting_epoch_run
fastnn.plan.Plan.step = _counting_step


def cmd_fit(out):
    res = {}
    for name in SCENARIOS:
        del _hooked[:]
        _calls.update(EpochRun=0, step=0)
        ctx = dist._fit_context()
        model, h = run_fit(name)
        res[name + "/plan_hooked"] = np.array(any(_hooked))
        res[name + "/epoch_runs"] = np.array(_calls["EpochRun"])
        res[name + "/plan_steps"] = np.array(_calls["step"])
        res[name + "/allreduce_calls"] = np.array(ctx.allreduce_calls if ctx is not None else 0)
        flat = np.concatenate([p.data.ravel() for p in model.parameters()])
        if dist.world_size() > 1:  # every rank must hold the same parameters, bit for bit
            from mpi4py import MPI
            everyone = MPI.COMM_WORLD.allgather(flat)
            res[name + "/same_on_all_ranks"] = np.array(all(np.array_equal(everyone[0], f) for f in everyone))
        res[name + "/params"] = flat
        for k, v in h.history.items():
            res[name + "/history/" + k] = np.array(v)
        for k in ("world_size", "rank", "local_samples", "steps", "samples"):
            res[name + "/params_" + k] = np.array(h.params[k])
    if dist.rank() == 0:
        np.savez(out, **res)


class _Fail(Callback):
    def __init__(self, how, folder):
        self.how, self.folder = how, folder

    def on_epoch_end(self, epoch, logs=None):
        fastnn.save(self.model, os.path.join(self.folder, "ckpt.fnn"))  # rank 0 only
        if epoch == 2 and dist.rank() == 1:
            if self.how == "raise":
                raise RuntimeError("rank 1 fails on purpose")
            if self.how == "exit":  # SystemExit bypasses the excepthook; fit's end() aborts the job
                sys.exit(3)
            os.kill(os.getpid(), signal.SIGKILL)


def cmd_fail(how, folder):
    fastnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = optim.SGD(model.parameters(), lr=0.05)
    X, y = data(64, "ce")
    fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, epochs=1000, batch_size=8, seed=0, verbose=0,
               callbacks=[_Fail(how, folder)])


def cmd_diverge():
    """A sample that overflows the loss on whichever rank holds it: every rank must stop at the same step."""
    for plan in (False, "auto"):
        fastnn.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 3, dtype=np.float64))
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        X, y = data(22, "mse")
        X[13] = 1e300
        try:
            fastnn.fit(model, nn.MSELoss(), opt, X, y, epochs=2, batch_size=4, seed=5, verbose=0, plan=plan)
            step = -1
        except fastnn.DivergenceError as e:
            step = e.step
        flat = np.concatenate([p.data.ravel() for p in model.parameters()])
        if dist.world_size() > 1:
            from mpi4py import MPI
            everyone = MPI.COMM_WORLD.allgather((step, flat))
            assert all(s == step and np.array_equal(f, flat) for s, f in everyone), everyone
        if dist.rank() == 0:
            print(f"DIVERGED plan={plan} step={step} params={flat.sum():.17g}")


def cmd_mismatch():
    """Ranks passing different data: a clear ValueError on every rank, not a hang."""
    model = nn.Sequential(nn.Linear(5, 3))
    X, y = data(20 + dist.rank(), "ce")
    try:
        fastnn.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), X, y, epochs=1, verbose=0)
    except ValueError as e:
        print(f"MISMATCH rank {dist.rank()}: {e}")


def cmd_save(folder):
    model = nn.Sequential(nn.Linear(2, 2))
    fastnn.save(model, os.path.join(folder, f"main_only_{os.environ['PMI_RANK']}.fnn"))
    fastnn.save(model, os.path.join(folder, f"every_{os.environ['PMI_RANK']}.fnn"), all_ranks=True)
    dist.barrier()


if __name__ == "__main__":
    cmd, arg = sys.argv[1], sys.argv[2]
    if cmd != "save_before_init":  # fastnn.save knows rank 0 from the launcher even before init()
        dist.init()
    if cmd == "fit":
        cmd_fit(arg)
    elif cmd in ("raise", "kill", "exit"):
        cmd_fail(cmd, arg)
    elif cmd == "diverge":
        cmd_diverge()
    elif cmd == "mismatch":
        cmd_mismatch()
    elif cmd in ("save", "save_before_init"):
        cmd_save(arg)
    else:
        raise SystemExit(f"unknown command {cmd}")
