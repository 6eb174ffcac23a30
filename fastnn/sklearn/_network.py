"""The network behind the estimators: sklearn's layout (coefs_ (in, out)) <-> fastnn modules.

scikit-learn keeps an MLP as ``coefs_``/``intercepts_`` lists; those lists are the
estimators' state (what pickles). Training builds a fastnn ``Sequential`` from them and
copies the result back; prediction runs fastnn's fused ``ops.linear`` on them directly,
so predicting never touches fastnn's global random generator.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from .. import nn, ops

# hidden activation -> (fastnn module factory, ops.linear activation name)
HIDDEN_ACTIVATIONS = {
    "relu": (nn.ReLU, "relu"),
    "tanh": (nn.Tanh, "tanh"),
    "logistic": (nn.Sigmoid, "sigmoid"),
    "identity": (None, None),
    "gelu": (nn.GELU, "gelu"),
    "leaky_relu": (lambda: nn.LeakyReLU(0.01), "leaky_relu"),
}


def glorot_init(rng, layer_units, activation, dtype):
    """scikit-learn's initialisation, draw for draw (same random_state -> same start):
    uniform in ±sqrt(factor / (fan_in + fan_out)), factor 2 for logistic, 6 otherwise;
    each layer's coefficients, then its intercepts."""
    coefs, intercepts = [], []
    factor = 2.0 if activation == "logistic" else 6.0
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coefs.append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype, copy=False))
        intercepts.append(rng.uniform(-bound, bound, fan_out).astype(dtype, copy=False))
    return coefs, intercepts


def build_model(coefs, intercepts, activation, dropout, dtype):
    """(Sequential, its Linear layers) holding copies of coefs/intercepts in ``dtype``.

    Layout: Linear, activation, Dropout (if dropout > 0) for each hidden layer, then the
    output Linear (its activation lives in the loss). Building draws Linear's default
    initialisation from fastnn's generator; the caller owns that generator (see _fitting).
    """
    make_act = HIDDEN_ACTIVATIONS[activation][0]
    modules, linears = [], []
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        lin = nn.Linear(W.shape[0], W.shape[1], dtype=dtype)
        lin.weight.data[...] = W.T
        lin.bias.data[...] = b
        modules.append(lin)
        linears.append(lin)
        if i < len(coefs) - 1:
            if make_act is not None:
                modules.append(make_act())
            if dropout > 0:
                modules.append(nn.Dropout(dropout))
    return nn.Sequential(*modules), linears


def read_back(linears):
    """(coefs_, intercepts_) copies in sklearn's layout from the model's Linear layers."""
    coefs = [np.ascontiguousarray(lin.weight.data.T) for lin in linears]
    intercepts = [lin.bias.data.copy() for lin in linears]
    return coefs, intercepts


def forward(X, coefs, intercepts, activation):
    """The network's last pre-activation for X (float64), through fastnn's fused kernels."""
    act = HIDDEN_ACTIVATIONS[activation][1]
    a = np.ascontiguousarray(X, dtype=np.float64)
    last = len(coefs) - 1
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        a = ops.linear(a, np.ascontiguousarray(W.T, dtype=np.float64), np.asarray(b, dtype=np.float64),
                       activation=None if i == last else act)
    return a


def output_activation(z, name):
    """scikit-learn's out_activation_ applied to the last pre-activation (a new array)."""
    if name == "identity":
        return np.array(z, copy=True)
    if name == "logistic":
        return expit(z)
    e = np.exp(z - z.max(axis=1, keepdims=True))  # softmax
    return e / e.sum(axis=1, keepdims=True)
