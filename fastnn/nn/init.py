"""fastnn.nn.init — in-place initialisers with PyTorch's formulas.

Each function fills a ``Parameter`` (its ``.data``, in place, so an arena view
stays an arena view) or a writable float ndarray, drawing from fastnn's global
generator (``fastnn.manual_seed``) unless a ``numpy.random.Generator`` is
given, and returns its argument.

fan_in = shape[1]·receptive, fan_out = shape[0]·receptive, with receptive the
product of shape[2:] (1 for a Linear weight (out, in)).
"""
from __future__ import annotations

import math
import warnings
from numbers import Real

import numpy as np

from .._checks import check_choice, check_scalar
from ..random import default_generator
from .parameter import Parameter

_LINEAR_FNS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
               "conv_transpose3d")
_NONLINEARITIES = _LINEAR_FNS + ("sigmoid", "tanh", "relu", "leaky_relu", "selu")


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``:
    1 for linear/conv/sigmoid, 5/3 for tanh, √2 for relu, √(2/(1 + slope²)) for
    leaky_relu (slope = param, default 0.01), 3/4 for selu."""
    if nonlinearity not in _NONLINEARITIES:
        raise ValueError(f"nonlinearity: expected one of {', '.join(map(repr, _NONLINEARITIES))}, "
                         f"got {nonlinearity!r}")
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (bool, np.bool_)) or not isinstance(param, (Real, np.integer, np.floating)):
            raise ValueError(f"param: expected a number (the negative slope), got {param!r}")
        else:
            slope = check_scalar(param, "param")
        return math.sqrt(2.0 / (1 + slope ** 2))
    return 3.0 / 4  # selu


def _target(tensor) -> np.ndarray:
    """The array to fill in place."""
    if isinstance(tensor, Parameter):
        arr = tensor.data
    elif isinstance(tensor, np.ndarray):
        arr = tensor
    else:
        raise TypeError(f"tensor: expected a fastnn Parameter or a numpy.ndarray, got {type(tensor).__name__}")
    if arr.dtype.kind != "f":
        raise TypeError(f"tensor: expected a floating-point array, got dtype {arr.dtype}")
    if not arr.flags.writeable:
        raise ValueError("tensor: array is read-only")
    return arr


def _rng(generator) -> np.random.Generator:
    if generator is None:
        return default_generator()
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator: expected a numpy.random.Generator, got {type(generator).__name__}")
    return generator


def _calculate_fan_in_and_fan_out(arr: np.ndarray):
    if arr.ndim < 2:
        raise ValueError(f"tensor: fan in and fan out can not be computed for an array with fewer than "
                         f"2 dimensions, got shape {arr.shape}")
    receptive = int(np.prod(arr.shape[2:], dtype=np.int64))
    return arr.shape[1] * receptive, arr.shape[0] * receptive


def _fill(tensor, arr: np.ndarray, values) -> object:
    arr[...] = values
    return tensor


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U(a, b)."""
    arr = _target(tensor)
    a = check_scalar(a, "a")
    b = check_scalar(b, "b", low=a)
    return _fill(tensor, arr, _rng(generator).uniform(a, b, arr.shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std²)."""
    arr = _target(tensor)
    mean = check_scalar(mean, "mean")
    std = check_scalar(std, "std", low=0.0)
    return _fill(tensor, arr, _rng(generator).normal(mean, std, arr.shape))


def constant_(tensor, val: float):
    """Fill with val."""
    arr = _target(tensor)
    if isinstance(val, (bool, np.bool_)) or not isinstance(val, (Real, np.integer, np.floating)):
        raise TypeError(f"val: expected a real number, got {type(val).__name__}")
    return _fill(tensor, arr, val)


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """U(−a, a) with a = gain·√(6/(fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    arr = _target(tensor)
    gain = check_scalar(gain, "gain")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(arr)
    if arr.size == 0:
        return tensor
    a = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return _fill(tensor, arr, _rng(generator).uniform(-a, a, arr.shape))


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """N(0, std²) with std = gain·√(2/(fan_in + fan_out))."""
    arr = _target(tensor)
    gain = check_scalar(gain, "gain")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(arr)
    if arr.size == 0:
        return tensor
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return _fill(tensor, arr, _rng(generator).normal(0.0, std, arr.shape))


def _kaiming_std(arr, a, mode, nonlinearity):
    a = check_scalar(a, "a")
    check_choice(mode, "mode", ("fan_in", "fan_out"))
    fan_in, fan_out = _calculate_fan_in_and_fan_out(arr)
    gain = calculate_gain(nonlinearity, a)
    if arr.size == 0:
        return None
    return gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None):
    """U(−bound, bound), bound = gain·√(3/fan), gain = calculate_gain(nonlinearity, a)
    (He et al., 2015); fan is fan_in or fan_out per ``mode``."""
    arr = _target(tensor)
    std = _kaiming_std(arr, a, mode, nonlinearity)
    if std is None:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    bound = math.sqrt(3.0) * std
    return _fill(tensor, arr, _rng(generator).uniform(-bound, bound, arr.shape))


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None):
    """N(0, std²), std = gain/√fan."""
    arr = _target(tensor)
    std = _kaiming_std(arr, a, mode, nonlinearity)
    if std is None:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    return _fill(tensor, arr, _rng(generator).normal(0.0, std, arr.shape))


__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
]
