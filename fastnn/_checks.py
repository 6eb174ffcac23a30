"""Every argument check of fastnn, in one place: plain Python over NumPy, nothing compiled.

``fastnn.ops`` (the C kernels), ``fastnn.reference`` (the NumPy spec), ``fastnn.nn`` and
``fastnn.optim`` all call these, so a bad argument gets the same exception and message from
either backend. The functions raise ``TypeError``/``ValueError`` whose message starts with the
argument's name and says what was expected; the ``as_*`` ones also convert array-likes.

Each check is written once, with its common case first: a plain float32/float64 ndarray or a
plain Python float passes after a few attribute tests, so the per-call cost stays small for
tiny arrays. The memory-safety invariants the C kernels depend on (dtype, contiguity,
alignment, sizes, writability, overlap of outputs with inputs) are checked again by the
compiled wrappers in ``fastnn/_core.pyx``, with the same messages, right before C runs; for
the reference backend these functions are the only check.

This module imports NumPy only: ``fastnn.reference`` must run without the compiled core.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

_ndarray = np.ndarray  # (one global lookup instead of two per test, on every call)
F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
FLOAT_DTYPES = (F32, F64)

_INF = math.inf
ACTIVATIONS = (None, "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh")
REDUCTIONS = ("mean", "sum")

# --- arrays ---------------------------------------------------------------------------------


def _reject_non_numeric(a: np.ndarray, name: str) -> None:
    kind = a.dtype.kind
    if kind == "b":
        raise TypeError(f"{name}: expected a numeric array, got dtype bool")
    if kind not in "iuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {a.dtype}")


def result_dtype(*arrays) -> np.dtype:
    """float64 if any input is float64, else float32 (the library default)."""
    for a in arrays:
        if a is not None:
            d = getattr(a, "dtype", None)  # identity first: comparing dtypes with == is slow
            if d is F64 or (d is not None and d is not F32 and d == F64):
                return F64
    return F32


def _ndim_words(ndim) -> str:
    if isinstance(ndim, tuple):
        return " or ".join(f"{d}-D" for d in ndim)
    return f"{ndim}-D"


def _odd_strides(a: np.ndarray) -> bool:
    """Some stride is not a whole number of items (C cannot index such an array by element)."""
    size = a.itemsize
    for s in a.strides:
        if s % size:
            return True
    return False


def as_float(x, name: str, dtype=None, ndim=None, contiguous: bool = True) -> np.ndarray:
    """``x`` as a float32/float64 ndarray C may read.

    Integer, unsigned and float16 inputs are converted (to ``dtype`` or float32); float32/float64
    keep their dtype unless ``dtype`` says otherwise. bool, complex, object and string inputs
    raise ``TypeError``. ``contiguous``: copy unless C-contiguous and aligned; otherwise copy only
    unaligned arrays and strides that are not whole elements (the GEMM reads any such strides).
    """
    if type(x) is _ndarray:  # the usual case first: nothing to convert, a few attribute tests
        dt = x.dtype
        if (dt is dtype) if dtype is not None else (dt is F32 or dt is F64):
            flags = x.flags
            if flags.aligned and (flags.c_contiguous or not (contiguous or _odd_strides(x))):
                if ndim is not None and x.ndim not in (ndim if isinstance(ndim, tuple) else (ndim,)):
                    raise ValueError(f"{name}: expected a {_ndim_words(ndim)} array, got shape {x.shape}")
                return x
    a = x if type(x) is _ndarray else np.asarray(x)
    dt = a.dtype
    if dt not in FLOAT_DTYPES or (dtype is not None and dt != dtype):
        _reject_non_numeric(a, name)
        a = a.astype(dtype if dtype is not None else (dt if dt in FLOAT_DTYPES else F32))
    if ndim is not None and a.ndim not in (ndim if isinstance(ndim, tuple) else (ndim,)):
        raise ValueError(f"{name}: expected a {_ndim_words(ndim)} array, got shape {a.shape}")
    flags = a.flags
    if not flags.aligned or (not flags.c_contiguous and (contiguous or _odd_strides(a))):
        a = np.array(a, order="C")  # a real copy: ascontiguousarray keeps unaligned arrays as they are
    return a


def as_matrix(a, name: str, dtype) -> np.ndarray:
    """``a`` as a 2-D float array of ``dtype``, keeping its strides when they are whole elements."""
    if type(a) is _ndarray and a.dtype is dtype and a.ndim == 2:  # the usual case, as as_float takes it
        flags = a.flags
        if flags.aligned and (flags.c_contiguous or not _odd_strides(a)):
            return a
    a = as_float(a, name, dtype, None, False)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {a.shape}")
    return a


def check_out(out, name: str, shape, dtype, contiguous: bool = True) -> np.ndarray:
    """Validate a caller-supplied output array: exact shape and dtype, aligned, writable, and
    C-contiguous (or, with ``contiguous=False``, any strides that are whole elements — for
    kernels that take strides, such as the GEMM)."""
    if not isinstance(out, _ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(out).__name__}")
    if out.shape != (shape if type(shape) is tuple else tuple(shape)):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {out.shape}")
    out_dtype = out.dtype
    if out_dtype is not dtype and out_dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {out_dtype}")
    flags = out.flags
    if contiguous and not flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    if not contiguous and not flags.c_contiguous and _odd_strides(out):
        raise ValueError(f"{name}: strides {out.strides} are not multiples of the item size")
    if not flags.aligned:
        raise ValueError(f"{name}: expected an array aligned to its {out.itemsize}-byte items, got data at "
                         f"address {out.__array_interface__['data'][0]:#x} (np.array(a) makes an aligned copy)")
    if not flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    return out


def out_or_new(out, name: str, shape, dtype) -> np.ndarray:
    return np.empty(shape, dtype) if out is None else check_out(out, name, shape, dtype)


def check_inplace(a, name: str, shape, dtype) -> np.ndarray | None:
    """An optional array updated in place: must already have the exact shape and dtype."""
    if a is None:
        return None
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray (it is updated in place), got {type(a).__name__}")
    return check_out(a, name, shape, dtype)


def check_state_array(a, name: str, like=None, writable: bool = True, memory: bool = True) -> np.ndarray:
    """An optimizer array updated in place (no coercion): an ndarray of param's dtype and size
    (or, for param itself, float32/float64), C-contiguous, aligned, writable when updated.

    ``memory=False`` checks only that it is an ndarray: fastnn.ops passes the rest to the
    compiled wrapper, which checks dtype, size, layout and writability with these messages."""
    if not isinstance(a, _ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray (updated in place), got {type(a).__name__}")
    if not memory:
        return a
    if like is None:
        if a.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {a.dtype}")
    else:
        if a.dtype != like.dtype:
            raise TypeError(f"{name}: expected dtype {like.dtype}, got {a.dtype}")
        if a.size != like.size:
            raise ValueError(f"{name}: expected {like.size} elements, got {a.size}")
    flags = a.flags
    if not flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    if not flags.aligned:
        raise ValueError(f"{name}: expected an array aligned to its {a.itemsize}-byte items, got data at "
                         f"address {a.__array_interface__['data'][0]:#x} (np.array(a) makes an aligned copy)")
    if writable and not flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    return a


# --- overlap ---------------------------------------------------------------------------------


def same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` and ``b`` are the same elements at the same addresses (an exact alias)."""
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.strides == b.strides and a.shape == b.shape)


def check_no_overlap(outputs, inputs, may_alias=()) -> None:
    """Every output shares no memory with another output or an input, except an exact alias
    of an input named in ``may_alias`` (kernels that read each element of those before they
    write the same element of the output). ``outputs``/``inputs``: (name, array or None)."""
    outs = [(n, a) for n, a in outputs if a is not None]
    for i, (name, out) in enumerate(outs):
        for other_name, a in outs[i + 1:] + [(n, a) for n, a in inputs if a is not None]:
            if np.may_share_memory(out, a) and np.shares_memory(out, a):
                if other_name in may_alias and same_memory(out, a):
                    continue
                if other_name in may_alias:
                    raise ValueError(f"{name}: must not overlap {other_name} "
                                     f"({name} may be {other_name} itself, not a shifted view of it)")
                raise ValueError(f"{name}: must not overlap {other_name}")


def check_disjoint(named) -> None:
    """No two of the arrays share memory (the optimizer kernels' restrict pointers); the
    message names the later argument first: "<later>: must not share memory with <earlier>"."""
    arrays = [(n, a) for n, a in named if a is not None and a.size]
    for j, (name, a) in enumerate(arrays):
        for other, b in arrays[:j]:
            if np.may_share_memory(a, b) and np.shares_memory(a, b):
                raise ValueError(f"{name}: must not share memory with {other}")


# --- scalars and choices ---------------------------------------------------------------------


def finite(value, name: str) -> float:
    """``check_scalar(value, name)`` with no bounds (a finite real number, as a float)."""
    if type(value) is float and -math.inf < value < math.inf:
        return value
    return check_scalar(value, name)


def nonnegative(value, name: str) -> float:
    """``check_scalar(value, name, low=0.0)``: a finite real number >= 0, as a float."""
    if type(value) is float and 0.0 <= value < math.inf:
        return value
    return check_scalar(value, name, low=0.0)


def check_scalar(value, name: str, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """A finite real hyper-parameter inside [low, high] (open ends where asked), as a float."""
    t = type(value)
    if t is float:
        v = value
    elif t is int:  # (not bool: type(True) is bool)
        v = float(value)
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    else:
        v = float(value)
    if not (-math.inf < v < math.inf):  # also NaN
        raise ValueError(f"{name}: expected a finite number, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name}: expected a value {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name}: expected a value {'<' if high_open else '<='} {high}, got {v}")
    return v


def check_hyper(value, name: str, what: str, **bounds) -> float:
    """``check_scalar`` with PyTorch's "Invalid <what>: <value>" ValueError (the optimizers')."""
    try:
        return check_scalar(value, name, **bounds)
    except ValueError as e:
        detail = str(e).split(": ", 1)[-1]
        raise ValueError(f"{name}: Invalid {what}: {value!r} ({detail})") from None


def check_flag(value, name: str, *, ints: bool = False) -> bool:
    """True or False (or a numpy bool), as a bool. ``ints``: the integers 0 and 1 too — the
    optimizers' flags, which PyTorch code and checkpoints may spell as 0/1."""
    if value is True or value is False:
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if ints and isinstance(value, (Integral, np.integer)) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")


def optimizer_flag(value, name: str) -> bool:
    """``check_flag(value, name, ints=True)`` with the plain bools first (the optimizers' flags)."""
    if value is True or value is False:
        return value
    return check_flag(value, name, ints=True)


def check_choice(value, name: str, choices):
    try:
        ok = value in choices
    except (TypeError, ValueError):  # an array compares elementwise
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_activation(activation, negative_slope):
    """(activation, slope) of a dense layer: a name of ``ACTIVATIONS`` and a finite slope."""
    if not (type(activation) is str or activation is None) or activation not in ACTIVATIONS:
        check_choice(activation, "activation", ACTIVATIONS)
    if not (type(negative_slope) is float and -_INF < negative_slope < _INF):
        negative_slope = check_scalar(negative_slope, "negative_slope")
    return activation, negative_slope


def check_reduction(reduction) -> str:
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        hint = " (reduction='none' is not supported: losses are reduced in C)" if reduction == "none" else ""
        raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}{hint}")
    return reduction


def check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an integer, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed: expected an integer in [0, 2**64), got {seed}")
    return seed


def check_p(p) -> float:
    return check_scalar(p, "p", low=0.0, high=1.0)


def check_label_smoothing(value) -> float:
    """cross_entropy's label_smoothing: a finite real number in [0, 1], as a float."""
    if type(value) is float and 0.0 <= value <= 1.0:  # the usual case, as check_scalar would return it
        return value
    return check_scalar(value, "label_smoothing", low=0.0, high=1.0)


def check_step(value, name: str = "step") -> int:
    """An optimizer step count: an integer in [1, 2**63) (counted after the increment)."""
    if type(value) is int and 1 <= value < 2**63:
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise TypeError(f"{name}: expected an integer step count, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name}: expected a step count >= 1 (counted after the increment), got {value}")
    if value >= 2**63:  # the kernels take an int64 step count
        raise ValueError(f"{name}: expected a step count < 2**63, got {value}")
    return int(value)


def check_norm_type(norm_type) -> float:
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(norm_type, (Real, np.floating, np.integer)):
        raise TypeError(f"norm_type: expected a real number, got {type(norm_type).__name__}")
    p = float(norm_type)
    if not (p > 0):  # also rejects NaN
        raise ValueError(f"norm_type: expected a value > 0 or inf, got {p}")
    return p


def check_bounds(low, high):
    vals = []
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (Real, np.floating, np.integer)):
            raise TypeError(f"{name}: expected a real number, got {type(v).__name__}")
        v = float(v)
        if math.isnan(v):
            raise ValueError(f"{name}: expected a number, got nan")
        vals.append(v)
    if vals[0] > vals[1]:
        raise ValueError(f"low: expected low <= high, got low={vals[0]}, high={vals[1]}")
    return vals


# --- losses ------------------------------------------------------------------------------------


def check_loss_pair(input, target, grad):
    """input and target as same-shape, same-dtype contiguous float arrays; grad checked
    (its overlap with them is checked by the caller: C's wrapper, or check_no_overlap)."""
    x = as_float(input, "input")
    if x.size == 0:
        raise ValueError(f"input: empty batch (shape {x.shape})")
    y = as_float(target, "target", dtype=x.dtype)
    if y.shape != x.shape:
        raise ValueError(f"target: expected shape {x.shape} to match input, got {y.shape}")
    if grad is not None:
        check_out(grad, "grad", x.shape, x.dtype)
    return x, y


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


def label_error(value, index: int, classes: int) -> IndexError:
    return IndexError(f"target: label {value!r} at index {index} is out of range for {classes} classes "
                      f"(expected 0 <= label < {classes})")


def check_labels(target, rows: int, classes: int, *, check_range: bool = True) -> np.ndarray:
    """Integer class labels (rows,) as contiguous int64. Float labels must be integral; labels
    out of [0, classes) raise ``IndexError`` (``check_range=False``: only those int64 cannot
    hold and float ones — the C kernel range-checks the rest itself)."""
    t = target if isinstance(target, np.ndarray) else np.asarray(target)
    if t.dtype is np.dtype(np.int64) and t.shape == (rows,) and t.flags.c_contiguous \
            and t.flags.aligned and not check_range:
        return t
    kind = t.dtype.kind
    if kind == "b" or kind not in "iuf":
        raise TypeError(f"target: expected integer class labels, got dtype {t.dtype}")
    if t.shape != (rows,):
        raise ValueError(f"target: expected shape ({rows},) to match input's batch, got {t.shape}")
    if kind == "f":
        ok = np.isfinite(t) & (t == np.floor(t))
        if not ok.all():
            bad = int(np.argmin(ok))
            raise TypeError(f"target: expected integer class labels, got {float(t[bad])} at index {bad}")
    if check_range or kind == "f":
        out = (t < 0) | (t >= classes)
        if out.any():
            bad = int(np.argmax(out))
            raise label_error(float(t[bad]) if kind == "f" else int(t[bad]), bad, classes)
    elif kind == "u" and t.dtype.itemsize == 8:
        too_big = t > np.iinfo(np.int64).max
        if too_big.any():
            bad = int(np.argmax(too_big))
            raise label_error(int(t[bad]), bad, classes)
    return np.ascontiguousarray(t, dtype=np.int64)


# --- optimizer updates -----------------------------------------------------------------------
# Each returns the normalised hyper-parameters. ``memory=False`` (fastnn.ops): check only that
# the arrays are ndarrays, and leave dtype, size, layout, writability and overlap to the
# compiled wrapper, which checks them right before C with the same messages.


def check_sgd(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov,
              maximize, first_step, memory=True):
    param = check_state_array(param, "param", memory=memory)
    grad = check_state_array(grad, "grad", like=param, writable=False, memory=memory)
    hp = dict(lr=nonnegative(lr, "lr"), momentum=nonnegative(momentum, "momentum"),
              dampening=finite(dampening, "dampening"),
              weight_decay=nonnegative(weight_decay, "weight_decay"),
              nesterov=optimizer_flag(nesterov, "nesterov"),
              maximize=optimizer_flag(maximize, "maximize"),
              first_step=optimizer_flag(first_step, "first_step"))
    check_nesterov(hp["nesterov"], hp["momentum"], hp["dampening"])
    if hp["momentum"] != 0:
        if momentum_buffer is None:
            raise ValueError("momentum_buffer: required when momentum != 0")
        check_state_array(momentum_buffer, "momentum_buffer", like=param, memory=memory)
    else:
        momentum_buffer = None
    if memory:
        check_disjoint([("param", param), ("grad", grad), ("momentum_buffer", momentum_buffer)])
    return hp


def check_nesterov(nesterov, momentum, dampening) -> None:
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("nesterov: Nesterov momentum requires a momentum > 0 and zero dampening, "
                         f"got momentum={momentum}, dampening={dampening}")


def check_adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
               weight_decay, amsgrad, maximize, decoupled_weight_decay, memory=True):
    param = check_state_array(param, "param", memory=memory)
    grad = check_state_array(grad, "grad", like=param, writable=False, memory=memory)
    check_state_array(exp_avg, "exp_avg", like=param, memory=memory)
    check_state_array(exp_avg_sq, "exp_avg_sq", like=param, memory=memory)
    hp = dict(step=(step if type(step) is int and 1 <= step < 2**63 else check_step(step)),
              lr=nonnegative(lr, "lr"),
              beta1=(beta1 if type(beta1) is float and 0.0 <= beta1 < 1.0
                     else check_scalar(beta1, "beta1", low=0.0, high=1.0, high_open=True)),
              beta2=(beta2 if type(beta2) is float and 0.0 <= beta2 < 1.0
                     else check_scalar(beta2, "beta2", low=0.0, high=1.0, high_open=True)),
              eps=nonnegative(eps, "eps"),
              weight_decay=nonnegative(weight_decay, "weight_decay"),
              amsgrad=optimizer_flag(amsgrad, "amsgrad"),
              maximize=optimizer_flag(maximize, "maximize"),
              decoupled_weight_decay=optimizer_flag(decoupled_weight_decay, "decoupled_weight_decay"))
    if hp["amsgrad"]:
        if max_exp_avg_sq is None:
            raise ValueError("max_exp_avg_sq: required when amsgrad=True")
        check_state_array(max_exp_avg_sq, "max_exp_avg_sq", like=param, memory=memory)
    else:
        max_exp_avg_sq = None
    if memory:
        check_disjoint([("param", param), ("grad", grad), ("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq),
                        ("max_exp_avg_sq", max_exp_avg_sq)])
    return hp


def check_rmsprop(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, weight_decay,
                  momentum, centered, maximize, memory=True):
    param = check_state_array(param, "param", memory=memory)
    grad = check_state_array(grad, "grad", like=param, writable=False, memory=memory)
    check_state_array(square_avg, "square_avg", like=param, memory=memory)
    hp = dict(lr=nonnegative(lr, "lr"), alpha=nonnegative(alpha, "alpha"),
              eps=nonnegative(eps, "eps"),
              weight_decay=nonnegative(weight_decay, "weight_decay"),
              momentum=nonnegative(momentum, "momentum"),
              centered=optimizer_flag(centered, "centered"),
              maximize=optimizer_flag(maximize, "maximize"))
    if hp["centered"]:
        if grad_avg is None:
            raise ValueError("grad_avg: required when centered=True")
        check_state_array(grad_avg, "grad_avg", like=param, memory=memory)
    else:
        grad_avg = None
    if hp["momentum"] > 0:
        if momentum_buffer is None:
            raise ValueError("momentum_buffer: required when momentum > 0")
        check_state_array(momentum_buffer, "momentum_buffer", like=param, memory=memory)
    else:
        momentum_buffer = None
    if memory:
        check_disjoint([("param", param), ("grad", grad), ("square_avg", square_avg), ("grad_avg", grad_avg),
                        ("momentum_buffer", momentum_buffer)])
    return hp


def check_adagrad(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize, memory=True):
    param = check_state_array(param, "param", memory=memory)
    grad = check_state_array(grad, "grad", like=param, writable=False, memory=memory)
    check_state_array(state_sum, "state_sum", like=param, memory=memory)
    hp = dict(step=check_step(step), lr=nonnegative(lr, "lr"),
              lr_decay=nonnegative(lr_decay, "lr_decay"),
              weight_decay=nonnegative(weight_decay, "weight_decay"),
              eps=nonnegative(eps, "eps"), maximize=optimizer_flag(maximize, "maximize"))
    if memory:
        check_disjoint([("param", param), ("grad", grad), ("state_sum", state_sum)])
    return hp


# --- matrix product and the dense layer ------------------------------------------------------
# Each returns the arguments normalised (arrays of one float dtype C may read, floats, shapes).
# ``overlap``: also check that outputs share no memory with inputs (fastnn.ops leaves that to
# the compiled wrapper, which checks it exactly before C runs).


def _layer(weight) -> str:
    return f"weight is {tuple(weight.shape)}"


def check_matmul(a, b, trans_a, trans_b, out, alpha, beta, overlap=True):
    """(a, b, (m, n), out or None, alpha, beta) for out = alpha·op(a)·op(b) + beta·out."""
    dt = getattr(a, "dtype", None)
    if (dt is not F32 and dt is not F64) or getattr(b, "dtype", None) is not dt:
        dt = result_dtype(a, b)  # (the same rule, for mixed or converted inputs)
    a = as_matrix(a, "a", dt)
    b = as_matrix(b, "b", dt)
    alpha = finite(alpha, "alpha")
    beta = finite(beta, "beta")
    m, k = a.shape[::-1] if trans_a else a.shape
    kb, n = b.shape[::-1] if trans_b else b.shape
    if kb != k:
        raise ValueError(
            f"b: inner dimensions do not match: op(a) has shape ({m}, {k}), op(b) has shape ({kb}, {n})"
            f" (a {a.shape}, trans_a={bool(trans_a)}; b {b.shape}, trans_b={bool(trans_b)})")
    if out is None:
        if beta != 0:
            raise ValueError(f"out: beta={beta} needs an out array to scale and add to")
    else:
        check_out(out, "out", (m, n), dt, contiguous=False)
        if overlap:
            check_no_overlap([("out", out)], [("a", a), ("b", b)])
    return a, b, (m, n), out, alpha, beta


def _check_x(x, weight, n_in, dt) -> np.ndarray:
    x = as_float(x, "x", dtype=dt, contiguous=False)
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ValueError(f"x: expected input with {n_in} features ({_layer(weight)}), got array of shape {x.shape}")
    return x


def check_linear(x, weight, bias, activation, negative_slope, out, preact_out, overlap=True):
    """(x, weight, bias, activation, slope, shape) for y = act(x·weightᵀ + bias)."""
    dt = getattr(x, "dtype", None)
    if ((dt is not F32 and dt is not F64) or getattr(weight, "dtype", None) is not dt
            or (bias is not None and getattr(bias, "dtype", None) is not dt)):
        dt = result_dtype(x, weight, bias)
    weight = as_matrix(weight, "weight", dt)
    n_out, n_in = weight.shape
    x = _check_x(x, weight, n_in, dt)
    activation, slope = check_activation(activation, negative_slope)
    if bias is not None:
        bias = as_float(bias, "bias", dtype=dt)
        if bias.ndim != 1 or len(bias) != n_out:  # (shape != (n_out,), without building tuples)
            raise ValueError(f"bias: expected shape ({n_out},) ({_layer(weight)}), got {bias.shape}")
    shape = (len(x), n_out)
    if out is not None:
        check_out(out, "out", shape, dt, contiguous=False)
    if preact_out is not None:
        check_out(preact_out, "preact_out", shape, dt, contiguous=False)
    if overlap:
        inputs = [("x", x), ("weight", weight), ("bias", bias)]
        check_no_overlap([("out", out)], inputs)
        check_no_overlap([("preact_out", preact_out)], inputs + [("out", out)])
    return x, weight, bias, activation, slope, shape


def check_linear_backward(grad_out, x, weight, grad_weight, grad_bias, activation, saved, negative_slope,
                          overlap=True):
    """(grad_out, x, weight, saved or None, activation, slope) for linear's backward."""
    dt = getattr(x, "dtype", None)
    if ((dt is not F32 and dt is not F64) or getattr(weight, "dtype", None) is not dt
            or getattr(grad_out, "dtype", None) is not dt):
        dt = result_dtype(grad_out, x, weight)
    weight = as_matrix(weight, "weight", dt)
    weight_shape = weight.shape
    n_out, n_in = weight_shape
    x = _check_x(x, weight, n_in, dt)
    batch = len(x)
    grad_out = as_matrix(grad_out, "grad_out", dt)
    out_shape = (batch, n_out)
    if grad_out.shape != out_shape:
        raise ValueError(f"grad_out: expected shape ({batch}, {n_out}) (x is {x.shape}, {_layer(weight)}), "
                         f"got {grad_out.shape}")
    activation, slope = check_activation(activation, negative_slope)
    if activation is not None:
        if saved is None:
            what = "pre-activation z" if activation in ("gelu", "gelu_tanh") else "forward output y"
            raise ValueError(f"saved: activation={activation!r} needs the {what}")
        if activation == "leaky_relu" and slope < 0:
            raise ValueError(f"negative_slope: linear_backward differentiates leaky_relu from its output, "
                             f"which needs negative_slope >= 0, got {slope}")
        saved = as_matrix(saved, "saved", dt)
        if saved.shape != out_shape:
            raise ValueError(f"saved: expected shape ({batch}, {n_out}) (as grad_out), got {saved.shape}")
    else:
        saved = None
    if grad_weight is not None:
        check_out(grad_weight, "grad_weight", weight_shape, dt)
    if grad_bias is not None:
        check_out(grad_bias, "grad_bias", (n_out,), dt)
    if overlap:
        inputs = [("grad_out", grad_out), ("x", x), ("weight", weight), ("saved", saved)]
        check_no_overlap([("grad_weight", grad_weight)], inputs)
        check_no_overlap([("grad_bias", grad_bias)], inputs + [("grad_weight", grad_weight)])
    return grad_out, x, weight, saved, activation, slope


# --- dropout, batch norm, layer norm -----------------------------------------------------------
# Each returns its arguments normalised; outputs (``out``) are allocated when None.

_MASK_DTYPES = (np.dtype(np.uint8), np.dtype(np.bool_))


def check_vector(a, name: str, c: int, dtype) -> np.ndarray | None:
    """An optional (c,) input vector, converted to dtype."""
    if a is None:
        return None
    a = as_float(a, name, dtype=dtype)
    if a.shape != (c,):
        raise ValueError(f"{name}: expected shape ({c},), got {a.shape}")
    return a


def check_mask(mask, name: str, shape, output: bool) -> np.ndarray:
    """Dropout's keep mask: uint8 (or bool) of x's shape; written in place when ``output``."""
    if output and not isinstance(mask, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(mask).__name__}")
    mask = np.asarray(mask)
    if mask.dtype not in _MASK_DTYPES:
        raise TypeError(f"{name}: expected a uint8 array, got dtype {mask.dtype}")
    if mask.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {mask.shape}")
    if not mask.flags.c_contiguous:
        if output:
            raise ValueError(f"{name}: expected a C-contiguous array")
        mask = np.ascontiguousarray(mask)
    if output and not mask.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    return mask


def _need_batch(n: int, shape) -> None:
    if n < 2:
        raise ValueError(f"x: Expected more than 1 value per channel when training, "
                         f"got input of shape {tuple(shape)}")


def _norm_rows_cols(x: np.ndarray):
    if x.ndim == 0:
        raise ValueError("x: layer norm needs at least a 1-D array, got a scalar")
    cols = x.shape[-1]
    if cols == 0:
        raise ValueError(f"x: layer norm over an empty last axis, shape {x.shape}")
    return int(np.prod(x.shape[:-1], dtype=np.int64)), cols


def _saved_stats(save_mean, save_invstd, of: str):
    if save_mean is None or save_invstd is None:
        raise TypeError(f"{'save_mean' if save_mean is None else 'save_invstd'}: expected the array "
                        f"saved by {of}, got None")


def check_dropout(x, p, seed, out, mask):
    p = check_p(p)
    seed = check_seed(seed)
    x = as_float(x, "x")
    out = out_or_new(out, "out", x.shape, x.dtype)
    if mask is not None:
        mask = check_mask(mask, "mask", x.shape, output=True)
    check_no_overlap([("out", out), ("mask", mask)], [("x", x)], may_alias=("x",))
    return x, p, seed, out, mask


def check_dropout_backward(grad_out, mask, p, out):
    p = check_p(p)
    grad_out = as_float(grad_out, "grad_out")
    mask = check_mask(mask, "mask", grad_out.shape, output=False)
    out = out_or_new(out, "out", grad_out.shape, grad_out.dtype)
    check_no_overlap([("out", out)], [("grad_out", grad_out), ("mask", mask)], may_alias=("grad_out",))
    return grad_out, mask, p, out


def check_batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps, out, save_mean,
                     save_invstd):
    x = as_float(x, "x", ndim=2)
    n, c = x.shape
    training = check_flag(training, "training")
    momentum = check_scalar(momentum, "momentum", low=0.0, high=1.0)
    eps = check_scalar(eps, "eps", low=0.0)
    weight = check_vector(weight, "weight", c, x.dtype)
    bias = check_vector(bias, "bias", c, x.dtype)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean: running_mean and running_var must both be given or both be None")
    running_mean = check_inplace(running_mean, "running_mean", (c,), x.dtype)
    running_var = check_inplace(running_var, "running_var", (c,), x.dtype)
    if training or running_mean is None:
        _need_batch(n, x.shape)
    out = out_or_new(out, "out", x.shape, x.dtype)
    save_mean = check_inplace(save_mean, "save_mean", (c,), x.dtype)
    save_invstd = check_inplace(save_invstd, "save_invstd", (c,), x.dtype)
    check_no_overlap([("out", out), ("save_mean", save_mean), ("save_invstd", save_invstd),
                      ("running_mean", running_mean), ("running_var", running_var)],
                     [("x", x), ("weight", weight), ("bias", bias)], may_alias=("x",))
    return x, weight, bias, running_mean, running_var, training, momentum, eps, out, save_mean, save_invstd


def check_batch_norm_backward(grad_out, x, weight, save_mean, save_invstd, grad_weight, grad_bias, training,
                              need_grad_input, out):
    grad_out = as_float(grad_out, "grad_out", ndim=2)
    n, c = grad_out.shape
    dt = grad_out.dtype
    x = as_float(x, "x", dtype=dt)
    if x.shape != grad_out.shape:
        raise ValueError(f"x: expected shape {grad_out.shape} (as grad_out), got {x.shape}")
    training = check_flag(training, "training")
    need_grad_input = check_flag(need_grad_input, "need_grad_input")
    weight = check_vector(weight, "weight", c, dt)
    _saved_stats(save_mean, save_invstd, "batch_norm")
    save_mean = check_vector(save_mean, "save_mean", c, dt)
    save_invstd = check_vector(save_invstd, "save_invstd", c, dt)
    grad_weight = check_inplace(grad_weight, "grad_weight", (c,), dt)
    grad_bias = check_inplace(grad_bias, "grad_bias", (c,), dt)
    out = out_or_new(out, "out", grad_out.shape, dt) if need_grad_input else None
    check_no_overlap([("out", out), ("grad_weight", grad_weight), ("grad_bias", grad_bias)],
                     [("grad_out", grad_out), ("x", x), ("weight", weight), ("save_mean", save_mean),
                      ("save_invstd", save_invstd)], may_alias=("grad_out", "x"))
    return grad_out, x, weight, save_mean, save_invstd, grad_weight, grad_bias, training, need_grad_input, out


def check_layer_norm(x, weight, bias, eps, out, save_mean, save_invstd):
    """... plus (rows, cols) of the (*, C) input."""
    x = as_float(x, "x")
    rows, cols = _norm_rows_cols(x)
    eps = check_scalar(eps, "eps", low=0.0)
    weight = check_vector(weight, "weight", cols, x.dtype)
    bias = check_vector(bias, "bias", cols, x.dtype)
    out = out_or_new(out, "out", x.shape, x.dtype)
    save_mean = check_inplace(save_mean, "save_mean", x.shape[:-1], x.dtype)
    save_invstd = check_inplace(save_invstd, "save_invstd", x.shape[:-1], x.dtype)
    check_no_overlap([("out", out), ("save_mean", save_mean), ("save_invstd", save_invstd)],
                     [("x", x), ("weight", weight), ("bias", bias)], may_alias=("x",))
    return x, weight, bias, eps, out, save_mean, save_invstd, (rows, cols)


def check_layer_norm_backward(grad_out, x, weight, save_mean, save_invstd, grad_weight, grad_bias,
                              need_grad_input, out):
    """... plus (rows, cols) of the (*, C) input."""
    grad_out = as_float(grad_out, "grad_out")
    rows, cols = _norm_rows_cols(grad_out)
    dt = grad_out.dtype
    x = as_float(x, "x", dtype=dt)
    if x.shape != grad_out.shape:
        raise ValueError(f"x: expected shape {grad_out.shape} (as grad_out), got {x.shape}")
    need_grad_input = check_flag(need_grad_input, "need_grad_input")
    weight = check_vector(weight, "weight", cols, dt)
    _saved_stats(save_mean, save_invstd, "layer_norm")
    stats_shape = grad_out.shape[:-1]
    save_mean = as_float(save_mean, "save_mean", dtype=dt)
    save_invstd = as_float(save_invstd, "save_invstd", dtype=dt)
    for name, a in (("save_mean", save_mean), ("save_invstd", save_invstd)):
        if a.shape != stats_shape:
            raise ValueError(f"{name}: expected shape {stats_shape}, got {a.shape}")
    grad_weight = check_inplace(grad_weight, "grad_weight", (cols,), dt)
    grad_bias = check_inplace(grad_bias, "grad_bias", (cols,), dt)
    out = out_or_new(out, "out", grad_out.shape, dt) if need_grad_input else None
    check_no_overlap([("out", out), ("grad_weight", grad_weight), ("grad_bias", grad_bias)],
                     [("grad_out", grad_out), ("x", x), ("weight", weight), ("save_mean", save_mean),
                      ("save_invstd", save_invstd)], may_alias=("grad_out", "x"))
    return grad_out, x, weight, save_mean, save_invstd, grad_weight, grad_bias, need_grad_input, out, (rows, cols)
