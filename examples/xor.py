"""XOR with a hidden layer: the PyTorch-style training loop, on fastnn.

A single sigmoid unit cannot separate XOR's four points; one hidden layer of
tanh units can. Run:  python examples/xor.py
"""
import numpy as np

import fastnn as fnn


def train_xor(epochs: int = 1000, lr: float = 0.5, seed: int = 0):
    fnn.manual_seed(seed)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    model = fnn.nn.Sequential(fnn.nn.Linear(2, 4), fnn.nn.Tanh(), fnn.nn.Linear(4, 1), fnn.nn.Sigmoid())
    loss_fn = fnn.nn.BCELoss()
    opt = fnn.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(epochs):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return model, loss.item(), np.asarray(model(x))


if __name__ == "__main__":
    model, loss, pred = train_xor()
    print(f"final BCE loss: {loss:.5f}")
    for inputs, p in zip([[0, 0], [0, 1], [1, 0], [1, 1]], pred.ravel()):
        print(f"  XOR{tuple(inputs)} -> {p:.3f}")
