"""The 2×2 diagonal flip: a 4-3-4 network (31 parameters) learns to transpose a tiny image.

The image [[1, 0], [1, 1]] flattened row-major is [1, 0, 1, 1]; its transpose is
[1, 1, 0, 1]. With a learning rate of 0.1 and one example per step (online
learning) the mean squared error falls from about 0.9 to under 0.01; with a
learning rate of 10 every step overshoots, the loss explodes, and fastnn stops
the run with a DivergenceError instead of filling the weights with NaN.

Run:  python examples/diagonal_flip.py
"""
import numpy as np

import fastnn as fnn

X = np.array([[1, 0, 1, 1]], dtype=np.float32)
Y = np.array([[1, 1, 0, 1]], dtype=np.float32)


def make_model(seed: int = 0):
    fnn.manual_seed(seed)
    return fnn.nn.Sequential(fnn.nn.Linear(4, 3), fnn.nn.Sigmoid(), fnn.nn.Linear(3, 4))


def train(lr: float, epochs: int = 300, seed: int = 0, verbose: int = 0):
    """Returns (model, initial loss, history). Raises fnn.DivergenceError if the loss blows up."""
    model = make_model(seed)
    loss_fn = fnn.nn.MSELoss()
    initial = loss_fn(model(X), Y).item()
    opt = fnn.optim.SGD(model.parameters(), lr=lr)
    history = fnn.fit(model, loss_fn, opt, X, Y, epochs=epochs, batch_size=1, verbose=verbose, metrics=None)
    return model, initial, history


if __name__ == "__main__":
    model, initial, history = train(lr=0.1)
    print(f"parameters: {sum(p.size for p in model.parameters())}")
    print(f"lr=0.1: MSE {initial:.3f} before training, {history.history['loss'][-1]:.5f} after 300 steps")
    print(f"  prediction {np.round(np.asarray(model(X)), 3).ravel()} for target {Y.ravel()}")
    try:
        train(lr=10.0)
    except fnn.DivergenceError as err:
        print(f"lr=10: stopped — {err}")
