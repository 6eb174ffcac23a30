"""The runnable examples do what their docstrings promise: XOR is learned, the diagonal flip
converges at lr 0.1 and is stopped as divergent at lr 10, the digits MLP reaches 97%."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import fastnn as fnn

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_xor_is_learned():
    _, loss, pred = _load("xor").train_xor()
    assert loss < 0.01
    np.testing.assert_array_equal(pred.ravel() > 0.5, [False, True, True, False])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diagonal_flip_converges_at_lr_0_1(seed):
    example = _load("diagonal_flip")
    model, initial, history = example.train(lr=0.1, seed=seed)
    assert sum(p.size for p in model.parameters()) == 31
    assert initial > 0.3                      # untrained: far from the target
    assert history.history["loss"][-1] < 0.01
    np.testing.assert_allclose(np.asarray(model(example.X)), example.Y, atol=0.1)


def test_diagonal_flip_diverges_at_lr_10_and_keeps_finite_weights():
    example = _load("diagonal_flip")
    with pytest.raises(fnn.DivergenceError) as info:
        example.train(lr=10.0)
    err = info.value
    assert err.lr == 10.0 and err.epoch >= 1 and err.step >= 1 and not np.isfinite(err.loss)
    assert "try lr=1 or smaller" in str(err)
    # The same run by hand: the model left behind holds finite weights that still predict.
    model = example.make_model(0)
    opt = fnn.optim.SGD(model.parameters(), lr=10.0)
    with pytest.raises(fnn.DivergenceError):
        fnn.fit(model, fnn.nn.MSELoss(), opt, example.X, example.Y, epochs=300, batch_size=1, verbose=0)
    assert all(np.isfinite(p.data).all() for p in model.parameters())
    assert np.isfinite(np.asarray(model(example.X))).all()


def test_digits_mlp_reaches_97_percent():
    accuracy = _load("digits").main(["--verbose", "0"])
    assert accuracy >= 0.97
