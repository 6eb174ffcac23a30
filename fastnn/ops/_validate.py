"""Argument checks and coercions shared by every op in ``fastnn.ops``.

They turn array-likes into arrays the C kernels can take (contiguous, float32 or
float64) and raise ``TypeError``/``ValueError`` whose message names the
argument and says what was expected, before any C code runs.
"""
from __future__ import annotations

import math
from numbers import Real

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _reject_non_numeric(a: np.ndarray, name: str) -> None:
    kind = a.dtype.kind
    if kind == "b":
        raise TypeError(f"{name}: expected a numeric array, got dtype bool")
    if kind not in "iuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {a.dtype}")


def result_dtype(*arrays) -> np.dtype:
    """float64 if any input is float64, else float32 (the library default)."""
    for a in arrays:
        if a is not None and getattr(a, "dtype", None) == np.float64:
            return np.dtype(np.float64)
    return np.dtype(np.float32)


def as_float(x, name: str, dtype=None, ndim=None, contiguous: bool = True) -> np.ndarray:
    """``x`` as a float32/float64 ndarray.

    Integer, unsigned and float16 inputs are converted (to ``dtype`` or
    float32); float32/float64 keep their dtype unless ``dtype`` says otherwise.
    bool, complex, object and string inputs raise ``TypeError``.
    """
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype not in FLOAT_DTYPES or (dtype is not None and a.dtype != dtype):
        _reject_non_numeric(a, name)
        a = a.astype(dtype if dtype is not None else (a.dtype if a.dtype in FLOAT_DTYPES else np.float32))
    if ndim is not None and a.ndim not in (ndim if isinstance(ndim, tuple) else (ndim,)):
        raise ValueError(f"{name}: expected a {_ndim_words(ndim)} array, got shape {a.shape}")
    if contiguous and not (a.flags.c_contiguous and a.flags.aligned):
        a = np.array(a, order="C")  # a real copy: ascontiguousarray keeps unaligned arrays as they are
    return a


def _ndim_words(ndim) -> str:
    if isinstance(ndim, tuple):
        return " or ".join(f"{d}-D" for d in ndim)
    return f"{ndim}-D"


def check_out(out, name: str, shape, dtype, contiguous: bool = True) -> np.ndarray:
    """Validate a caller-supplied output array: exact shape and dtype, aligned, writable, and
    C-contiguous (or, with ``contiguous=False``, any strides that are whole elements — for
    kernels that take strides, such as the GEMM)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {out.shape}")
    if out.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {out.dtype}")
    if contiguous and not out.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    if not contiguous and any(s % out.itemsize for s in out.strides):
        raise ValueError(f"{name}: strides {out.strides} are not multiples of the item size")
    if not out.flags.aligned:
        raise ValueError(f"{name}: expected an array aligned to its items")
    if not out.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    return out


def out_or_new(out, name: str, shape, dtype) -> np.ndarray:
    return np.empty(shape, dtype) if out is None else check_out(out, name, shape, dtype)


def check_no_overlap(out: np.ndarray, name: str, *inputs) -> None:
    """Raise if ``out`` shares memory with an input it must not overwrite."""
    for other_name, a in inputs:
        if a is not None and np.may_share_memory(out, a) and np.shares_memory(out, a):
            raise ValueError(f"{name}: must not overlap {other_name}")


def check_scalar(value, name: str, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """A finite real hyper-parameter inside [low, high] (open ends where asked)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name}: expected a value {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name}: expected a value {'<' if high_open else '<='} {high}, got {v}")
    return v


def check_logits(x: np.ndarray):
    """(rows, classes) of logits that must be a non-empty (N, C) array."""
    if x.ndim != 2:
        raise ValueError(f"input: expected logits of shape (N, C), got shape {x.shape}")
    rows, classes = x.shape
    if rows == 0:
        raise ValueError(f"input: empty batch (shape {x.shape})")
    if classes == 0:
        raise ValueError(f"input: expected at least one class, got shape {x.shape}")
    return rows, classes


def check_choice(value, name: str, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
