"""Train a 64-128-10 MLP on the 8×8 handwritten digits with fastnn.fit.

    python examples/digits.py [--epochs 30] [--batch-size 32] [--lr 1e-3] [--seed 0]
    (from a source checkout without an install: PYTHONPATH=. python examples/digits.py)

The data ship with fastnn (``fastnn.datasets.load_digits``: 1,438 training and
359 test images, a fixed split), so this runs offline. Target: at least 97%
test accuracy in a few seconds on a laptop CPU.
"""
from __future__ import annotations

import argparse
import time

import fastnn as fnn
from fastnn import nn, optim
from fastnn.datasets import load_digits
from fastnn.train import evaluate, fit


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    args = parser.parse_args(argv)

    fnn.manual_seed(args.seed)  # weights and shuffling are reproducible
    X_train, y_train = load_digits("train")
    X_test, y_test = load_digits("test")

    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=args.lr)
    print(f"{type(opt).__name__} lr={opt.param_groups[0]['lr']:g}, {len(X_train)} training / "
          f"{len(X_test)} test images, {fnn.get_num_threads()} thread(s)")

    start = time.perf_counter()
    history = fit(model, loss_fn, opt, X_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                  validation_data=(X_test, y_test), verbose=args.verbose)
    elapsed = time.perf_counter() - start

    test = evaluate(model, loss_fn, X_test, y_test)
    print(f"test accuracy {100 * test['accuracy']:.2f}%  (test loss {test['loss']:.4f}, "
          f"final training loss {history.history['loss'][-1]:.4f})")
    print(f"wall time {elapsed:.2f}s for {args.epochs} epochs "
          f"({1e3 * elapsed / max(args.epochs, 1):.1f} ms/epoch, validation included)")
    return test["accuracy"]


if __name__ == "__main__":
    main()
