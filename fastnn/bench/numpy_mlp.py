"""An MLP training step in NumPy as an expert writes it: ``matmul`` into preallocated buffers,
in-place ufuncs, no temporaries in the hot path. Benchmark code (the opponent), not the reference.

``NumpyMLP(sizes, acts, loss, lr, batch, dtype, seed)`` — ``acts[i]`` follows layer i
("relu", "sigmoid", "tanh" or None); loss "mse", "bce" (on a sigmoid output) or "ce"
(softmax cross-entropy on logits, integer labels). ``step(x, y)`` runs forward, loss,
backward and an SGD update and returns the loss.
"""
from __future__ import annotations

import numpy as np

__all__ = ["NumpyMLP"]


class NumpyMLP:
    def __init__(self, sizes, acts, loss: str, lr: float, batch: int, dtype=np.float32, seed: int = 0):
        r = np.random.default_rng(seed)
        self.W, self.b, self.dW, self.db = [], [], [], []
        for i in range(len(sizes) - 1):
            bound = 1.0 / np.sqrt(sizes[i])
            self.W.append(r.uniform(-bound, bound, (sizes[i + 1], sizes[i])).astype(dtype))
            self.b.append(r.uniform(-bound, bound, sizes[i + 1]).astype(dtype))
            self.dW.append(np.empty_like(self.W[-1]))
            self.db.append(np.empty_like(self.b[-1]))
        self.acts, self.loss, self.lr, self.batch = list(acts), loss, dtype(lr), batch
        self.dtype = np.dtype(dtype)
        self.h = [np.empty((batch, s), dtype) for s in sizes[1:]]       # activations
        self.g = [np.empty((batch, s), dtype) for s in sizes]           # gradients w.r.t. each layer's input/output
        self.tmp = [np.empty((batch, s), dtype) for s in sizes[1:]]
        self.rowbuf = np.empty((batch, 1), dtype)

    def step(self, x, y) -> float:
        n = x.shape[0]
        L = len(self.W)
        h_in = x
        for i in range(L):  # forward: h = act(x·Wᵀ + b), in place
            h = self.h[i][:n]
            np.matmul(h_in, self.W[i].T, out=h)
            h += self.b[i]
            a = self.acts[i]
            if a == "relu":
                np.maximum(h, 0, out=h)
            elif a == "sigmoid":
                np.negative(h, out=h)
                np.exp(h, out=h)
                h += 1
                np.reciprocal(h, out=h)
            elif a == "tanh":
                np.tanh(h, out=h)
            h_in = h
        out, g = self.h[-1][:n], self.g[-1][:n]
        if self.loss == "mse":
            np.subtract(out, y, out=g)
            loss = float(np.vdot(g, g)) / g.size
            g *= 2.0 / g.size
        elif self.loss == "bce":
            loss = -float(np.mean(y * np.log(out) + (1 - y) * np.log1p(-out)))
            # through the final sigmoid: d/dz = (p − y)/size; the layer's act' is folded in
            np.subtract(out, y, out=g)
            g *= 1.0 / g.size
        else:  # softmax cross-entropy on logits
            m = self.rowbuf[:n]
            np.max(out, axis=1, keepdims=True, out=m)
            np.subtract(out, m, out=g)
            np.exp(g, out=g)
            np.sum(g, axis=1, keepdims=True, out=m)
            g /= m
            rows = np.arange(n)
            loss = -float(np.mean(np.log(g[rows, y])))
            g[rows, y] -= 1
            g *= 1.0 / n
        for i in range(L - 1, -1, -1):  # backward
            dz = self.g[i + 1][:n]
            a = self.acts[i]
            h = self.h[i][:n]
            if i < L - 1 or self.loss != "bce":  # BCE folded the output sigmoid already
                if a == "relu":
                    np.multiply(dz, h > 0, out=dz)
                elif a == "sigmoid":
                    t = self.tmp[i][:n]
                    np.subtract(1, h, out=t)
                    t *= h
                    dz *= t
                elif a == "tanh":
                    t = self.tmp[i][:n]
                    np.multiply(h, h, out=t)
                    np.subtract(1, t, out=t)
                    dz *= t
            x_in = self.h[i - 1][:n] if i > 0 else x
            np.matmul(dz.T, x_in, out=self.dW[i])
            np.sum(dz, axis=0, out=self.db[i])
            if i > 0:
                np.matmul(dz, self.W[i], out=self.g[i][:n])
        for W, dW, b, db in zip(self.W, self.dW, self.b, self.db):  # SGD
            dW *= self.lr
            W -= dW
            db *= self.lr
            b -= db
        return loss
