"""fit(..., shuffle=False) visits the samples in order on every path (a bug once let the
whole-epoch plan path shuffle anyway): the eager loop and each compiled-plan path agree."""
import numpy as np
import pytest

import fastnn
from fastnn import nn, optim
from fastnn.train import Callback


class _PerBatch(Callback):  # Python between steps: the plan runs one C call per step
    def on_batch_end(self, batch, logs=None):
        pass


def _train(plan, shuffle, path):
    fastnn.manual_seed(4)
    model = nn.Sequential(nn.Linear(5, 8, dtype=np.float64), nn.Tanh(), nn.Linear(8, 3, dtype=np.float64))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((37, 5)), rng.integers(0, 3, 37)
    kw = {}
    if path == "epochs":  # a scheduler between epochs: one epoch per C call
        kw["scheduler"] = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    elif path == "steps":
        kw["callbacks"] = [_PerBatch()]
    h = fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, epochs=4, batch_size=6, shuffle=shuffle, seed=9,
                   verbose=0, plan=plan, **kw)
    return np.concatenate([p.data.ravel() for p in model.parameters()]), h.history["loss"]


@pytest.mark.parametrize("path", ["runs", "epochs", "steps"])
def test_shuffle_false_is_in_order_on_every_plan_path(path):
    eager, eager_loss = _train(False, False, path)
    planned, plan_loss = _train("auto", False, path)
    np.testing.assert_allclose(planned, eager, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(plan_loss, eager_loss, rtol=1e-10, atol=1e-12)
    # and the order matters here: shuffled training ends elsewhere
    shuffled, _ = _train("auto", True, path)
    assert np.abs(shuffled - planned).max() > 1e-6
