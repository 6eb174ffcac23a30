"""fastnn.onnx: export a trained model as an ONNX graph for onnxruntime and other runtimes.

::

    import fastnn.onnx
    fastnn.onnx.export(model, "model.onnx")                  # input (batch, in_features)

    import onnxruntime as ort
    sess = ort.InferenceSession("model.onnx")
    y = sess.run(None, {"input": x.astype(np.float32)})[0]  # == model.eval()(x)

What is exported: ``Sequential`` (nested too), ``Linear``, ``ReLU``, ``LeakyReLU``,
``Sigmoid``, ``Tanh``, ``GELU`` (exact and ``approximate="tanh"``), ``Softmax``,
``LayerNorm``, ``BatchNorm1d``, ``Dropout`` and ``Identity`` (the identity), ``Flatten``; a
model may also be one of these on its own. The graph is always the **eval-mode** computation
(Dropout passes through, BatchNorm1d normalises with its running statistics, or with the
batch's own when ``track_running_stats=False``, as fastnn's eval mode does), whatever mode the
model is in; the model is not changed. Any other module (a loss, a user-defined ``Module``
subclass, even a subclass of a built-in layer, whose ``forward`` may differ) raises
:class:`UnsupportedLayerError` naming it, and nothing is written.

The graph has one input ``"input"`` and one output ``"output"``; the dimensions given as None
in ``input_shape`` (by default the batch dimension) are dynamic. Initializers carry the
``state_dict`` names (``"0.weight"``, ``"2.running_mean"``).

Opset: :data:`DEFAULT_OPSET` (17: the first with ``LayerNormalization``; run by every
onnxruntime since 1.13) unless ``opset=`` asks for another between :data:`MIN_OPSET` and the
newest the installed ``onnx`` knows. Below opset 20, which added the ``Gelu`` operator, GELU is
written as its formula (``Erf``, or ``Tanh`` for the tanh approximation). The IR version is the
oldest that carries the opset, so older runtimes read the file.

float64: ONNX's float attributes are 32-bit, so a float64 graph writes LeakyReLU's slope and
the norms' ``eps`` as float64 constants with the operation spelled out in primitive operators
(same formulas as fastnn's), rather than as ``LeakyRelu``/``BatchNormalization``/
``LayerNormalization`` attributes rounded to float32. onnxruntime (up to 1.32 at least) has
no float64 ``Erf`` kernel, so a float64 graph with exact GELU is valid ONNX that onnxruntime
refuses to load: export it as float32 (``dtype=np.float32``) or use ``approximate="tanh"``
for onnxruntime.

The ``onnx`` package (``pip install fastnn-cpu[onnx]``) is needed by :func:`export` and
:func:`to_onnx` only; importing this module does not import it.
"""
from __future__ import annotations

import math
import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .nn import (GELU, BatchNorm1d, Dropout, Flatten, Identity, LayerNorm, LeakyReLU, Linear, ReLU,
                 Sequential, Sigmoid, Softmax, Tanh)
from .nn.module import Module

__all__ = ["export", "to_onnx", "UnsupportedLayerError", "DEFAULT_OPSET", "MIN_OPSET", "INPUT_NAME",
           "OUTPUT_NAME"]

DEFAULT_OPSET = 17
MIN_OPSET = 17          # LayerNormalization (17); Softmax's per-axis meaning dates from 13
_GELU_OPSET = 20        # the first opset with a Gelu operator
INPUT_NAME = "input"
OUTPUT_NAME = "output"

Shape = List[Optional[int]]


class UnsupportedLayerError(TypeError):
    """The model holds a module that has no ONNX form (named in the message)."""


def _import_onnx():
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError:
        raise ImportError("fastnn.onnx needs the onnx package: pip install onnx "
                          "(or pip install fastnn-cpu[onnx])") from None
    return onnx


# --- the graph under construction ------------------------------------------------------------
class _Graph:
    """Nodes and initializers, with unique tensor names derived from the layer paths."""

    def __init__(self, onnx, dtype: np.dtype, opset: int):
        self.onnx, self.dtype, self.opset = onnx, dtype, opset
        self.nodes: list = []
        self.initializers: list = []
        self._used = {INPUT_NAME, OUTPUT_NAME}

    def _unique(self, name: str) -> str:
        candidate, i = name, 1
        while candidate in self._used:
            candidate = f"{name}_{i}"
            i += 1
        self._used.add(candidate)
        return candidate

    def constant(self, name: str, value, dtype=None) -> str:
        """An initializer holding ``value`` in the graph's dtype (or ``dtype``)."""
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype, order="C")
        name = self._unique(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name=name))
        return name

    def scalar(self, where: str, what: str, value) -> str:
        return self.constant(f"{where or 'model'}/{what}", np.asarray(value, dtype=np.float64))

    def op(self, op_type: str, inputs: Sequence[str], where: str, **attrs) -> str:
        out = self._unique(f"{where or 'model'}/{op_type}")
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def reduce_mean(self, x: str, axis: int, where: str) -> str:
        if self.opset >= 18:  # axes became an input in opset 18
            axes = self.constant(f"{where or 'model'}/axes", [axis], dtype=np.int64)
            return self.op("ReduceMean", [x, axes], where, keepdims=1)
        return self.op("ReduceMean", [x], where, axes=[axis], keepdims=1)


# --- one converter per layer: (graph, module, input name, input shape, where) -> (name, shape) -
def _label(where: str) -> str:
    """How an error names a layer: by its state_dict prefix ("layer '1.0'"), or the whole model."""
    return f"layer {where!r}" if where else "the model"


def _describe(m: Module) -> str:
    describe = getattr(m, "describe", None)
    return describe() if callable(describe) else f"{type(m).__name__}({m.extra_repr()})"


def _need_width(m: Module, shape: Shape, width: int, where: str, axis: int = -1) -> None:
    if shape[axis] is not None and shape[axis] != width:
        dim = "the last dimension" if axis == -1 else f"dimension {axis}"
        raise ValueError(f"{_label(where)} ({_describe(m)}): expects size {width} in {dim}, got input shape "
                         f"{_show(shape)}")


def _param(g: _Graph, m: Module, attr: str, where: str) -> Optional[str]:
    p = getattr(m, attr, None)
    if p is None:
        return None
    return g.constant(f"{where}.{attr}" if where else attr, p.data)


def _buffer(g: _Graph, m: Module, attr: str, where: str) -> str:
    return g.constant(f"{where}.{attr}" if where else attr, getattr(m, attr))


def _linear(g: _Graph, m: Linear, x: str, shape: Shape, where: str):
    _need_width(m, shape, m.in_features, where)
    w, b = _param(g, m, "weight", where), _param(g, m, "bias", where)
    if len(shape) == 2:
        y = g.op("Gemm", [x, w] + ([b] if b else []), where, transB=1)
    else:  # Gemm is 2-D only: (*, in) · Wᵀ as a broadcasting MatMul
        wt = g.op("Transpose", [w], where, perm=[1, 0])
        y = g.op("MatMul", [x, wt], where)
        if b:
            y = g.op("Add", [y, b], where)
    return y, shape[:-1] + [m.out_features]


def _unary(op_type: str):
    def convert(g: _Graph, m: Module, x: str, shape: Shape, where: str):
        return g.op(op_type, [x], where), shape
    return convert


def _leaky_relu(g: _Graph, m: LeakyReLU, x: str, shape: Shape, where: str):
    if g.dtype == np.float32:
        return g.op("LeakyRelu", [x], where, alpha=float(m.negative_slope)), shape
    # float64: the slope as a float64 constant (the alpha attribute is 32-bit); x > 0 ? x : slope·x
    zero, slope = g.scalar(where, "zero", 0.0), g.scalar(where, "negative_slope", m.negative_slope)
    positive = g.op("Greater", [x, zero], where)
    return g.op("Where", [positive, x, g.op("Mul", [x, slope], where)], where), shape


def _gelu(g: _Graph, m: GELU, x: str, shape: Shape, where: str):
    if g.opset >= _GELU_OPSET:
        return g.op("Gelu", [x], where, approximate=m.approximate), shape
    if m.approximate == "tanh":
        # 0.5·x·(1 + tanh u) with u = √(2/π)·(x + 0.044715·x³), written as fastnn computes it:
        # x·sigmoid(2u), the same value without 1 + tanh u cancelling for x << 0.
        cube = g.op("Mul", [g.op("Mul", [x, x], where), x], where)
        inner = g.op("Add", [x, g.op("Mul", [cube, g.scalar(where, "coeff", 0.044715)], where)], where)
        two_u = g.op("Mul", [inner, g.scalar(where, "two_sqrt_2_over_pi", 2 * math.sqrt(2.0 / math.pi))], where)
        return g.op("Mul", [x, g.op("Sigmoid", [two_u], where)], where), shape
    # 0.5·x·(1 + erf(x/√2))
    half, one = g.scalar(where, "half", 0.5), g.scalar(where, "one", 1.0)
    s = g.op("Erf", [g.op("Div", [x, g.scalar(where, "sqrt2", math.sqrt(2.0))], where)], where)
    return g.op("Mul", [g.op("Mul", [x, half], where), g.op("Add", [s, one], where)], where), shape


def _softmax(g: _Graph, m: Softmax, x: str, shape: Shape, where: str):
    if m.dim not in (-1, len(shape) - 1):
        raise ValueError(f"{_label(where)} ({_describe(m)}): softmax over the last axis only, got dim={m.dim} "
                         f"for input shape {_show(shape)}")
    return g.op("Softmax", [x], where, axis=-1), shape


def _normalize(g: _Graph, m: Module, x: str, axis: int, where: str, mean: Optional[str] = None,
               var: Optional[str] = None) -> str:
    """(x − mean)/√(var + eps)·weight + bias in primitive operators, eps and all constants in the
    graph's dtype; mean and biased variance over ``axis`` unless given (running statistics)."""
    if mean is None:
        mean = g.reduce_mean(x, axis, where)
        centred = g.op("Sub", [x, mean], where)
        var = g.reduce_mean(g.op("Mul", [centred, centred], where), axis, where)
    else:
        centred = g.op("Sub", [x, mean], where)
    std = g.op("Sqrt", [g.op("Add", [var, g.scalar(where, "eps", m.eps)], where)], where)
    y = g.op("Div", [centred, std], where)
    w, b = _param(g, m, "weight", where), _param(g, m, "bias", where)
    if w:
        y = g.op("Mul", [y, w], where)
    if b:
        y = g.op("Add", [y, b], where)
    return y


def _batch_norm(g: _Graph, m: BatchNorm1d, x: str, shape: Shape, where: str):
    if len(shape) != 2:
        raise ValueError(f"{_label(where)} ({_describe(m)}): expects a 2-D input (N, {m.num_features}), "
                         f"got input shape {_show(shape)}")
    _need_width(m, shape, m.num_features, where, axis=1)
    if not m.track_running_stats:  # eval mode normalises with the batch's own statistics
        return _normalize(g, m, x, 0, where), shape
    if g.dtype == np.float64:
        mean, var = _buffer(g, m, "running_mean", where), _buffer(g, m, "running_var", where)
        return _normalize(g, m, x, 0, where, mean=mean, var=var), shape
    c = m.num_features
    scale = _param(g, m, "weight", where) or g.constant(f"{where or 'model'}/ones", np.ones(c))
    bias = _param(g, m, "bias", where) or g.constant(f"{where or 'model'}/zeros", np.zeros(c))
    inputs = [x, scale, bias, _buffer(g, m, "running_mean", where), _buffer(g, m, "running_var", where)]
    return g.op("BatchNormalization", inputs, where, epsilon=float(m.eps)), shape


def _layer_norm(g: _Graph, m: LayerNorm, x: str, shape: Shape, where: str):
    _need_width(m, shape, m.normalized_shape[0], where)
    if g.dtype == np.float64:
        return _normalize(g, m, x, -1, where), shape
    scale = _param(g, m, "weight", where) or g.constant(f"{where or 'model'}/ones", np.ones(m.normalized_shape[0]))
    bias = _param(g, m, "bias", where)
    inputs = [x, scale] + ([bias] if bias else [])
    return g.op("LayerNormalization", inputs, where, axis=-1, epsilon=float(m.eps)), shape


def _flatten(g: _Graph, m: Flatten, x: str, shape: Shape, where: str):
    try:
        s, e = m._axes(len(shape))
    except (IndexError, ValueError) as err:
        raise ValueError(f"{_label(where)} ({_describe(m)}): {err}") from None
    merged = shape[s:e + 1]
    merged_size = None if None in merged else int(np.prod(merged, dtype=np.int64))
    out_shape = shape[:s] + [merged_size] + shape[e + 1:]
    # Reshape's target: 0 copies the input's dimension at the same index (the leading ones),
    # -1 is inferred (allowed once), the rest must be known.
    target = [0] * s + [-1 if merged_size is None else merged_size]
    for d in shape[e + 1:]:
        target.append(-1 if d is None else d)
    if target.count(-1) > 1:
        raise ValueError(f"{_label(where)} ({_describe(m)}): cannot flatten input shape {_show(shape)}: more "
                         f"than one unknown dimension outside the leading ones; give them in input_shape")
    return g.op("Reshape", [x, g.constant(f"{where or 'model'}/shape", target, dtype=np.int64)], where), out_shape


def _identity(g: _Graph, m: Module, x: str, shape: Shape, where: str):
    return g.op("Identity", [x], where), shape


def _sequential(g: _Graph, m: Sequential, x: str, shape: Shape, where: str):
    for name, child in m._modules.items():
        x, shape = _convert(g, child, x, shape, f"{where}.{name}" if where else name)
    return x, shape


_CONVERTERS: Dict[type, Callable] = {
    Sequential: _sequential,
    Linear: _linear,
    ReLU: _unary("Relu"),
    LeakyReLU: _leaky_relu,
    Sigmoid: _unary("Sigmoid"),
    Tanh: _unary("Tanh"),
    GELU: _gelu,
    Softmax: _softmax,
    BatchNorm1d: _batch_norm,
    LayerNorm: _layer_norm,
    Flatten: _flatten,
    Dropout: _identity,
    Identity: _identity,
}


def _convert(g: _Graph, m: Module, x: str, shape: Shape, where: str):
    convert = _CONVERTERS.get(type(m))  # exact types: a subclass may compute something else
    if convert is None:
        cls = type(m)
        raise UnsupportedLayerError(
            f"{_label(where)} ({cls.__module__}.{cls.__qualname__}) has no ONNX export: fastnn.onnx exports "
            f"{', '.join(c.__name__ for c in _CONVERTERS)} (built-in classes, not subclasses)")
    return convert(g, m, x, shape, where)


# --- arguments ----------------------------------------------------------------------------------
def _show(shape: Shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _walk(m: Module):
    """The modules in the order they run (a Sequential's children, depth first)."""
    if type(m) is Sequential:
        for child in m._modules.values():
            yield from _walk(child)
    else:
        yield m


def _infer_input_shape(model: Module) -> Shape:
    for m in _walk(model):
        if type(m) is Linear:
            return [None, m.in_features]
        if type(m) is LayerNorm:
            return [None, m.normalized_shape[0]]
        if type(m) is BatchNorm1d:
            return [None, m.num_features]
        if type(m) is Flatten or type(m) not in _CONVERTERS:
            break  # the input's rank is not known before this layer
    raise ValueError("input_shape: cannot be inferred from the model (no Linear, LayerNorm or BatchNorm1d "
                     "before the first layer that changes or hides the shape): pass it, e.g. "
                     "input_shape=(None, 1, 28, 28)")


def _check_input_shape(input_shape) -> Shape:
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"input_shape: expected a tuple of dimensions (None for a dynamic one), "
                        f"got {type(input_shape).__name__}")
    shape: Shape = []
    for d in input_shape:
        if d is None:
            shape.append(None)
        elif isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1:
            shape.append(int(d))
        else:
            raise ValueError(f"input_shape: dimensions must be positive integers or None, got {tuple(input_shape)}")
    if not shape:
        raise ValueError("input_shape: expected at least one dimension, got ()")
    return shape


def _model_dtype(model: Module, dtype) -> np.dtype:
    if dtype is not None:
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from None
        if dt not in (np.float32, np.float64):
            raise ValueError(f"dtype: expected float32 or float64, got {dt}")
        return dt
    found = {p.data.dtype for p in model.parameters()}
    found |= {b.dtype for _, b in model.named_buffers() if b.dtype.kind == "f"}
    found |= {m.dtype for m in model.modules() if isinstance(getattr(m, "dtype", None), np.dtype)}  # the norms
    if len(found) > 1:
        raise ValueError(f"dtype: the model mixes {', '.join(sorted(d.name for d in found))} parameters; "
                         f"pass dtype=np.float32 or np.float64 for the exported graph")
    return found.pop() if found else np.dtype(np.float32)


def _check_opset(onnx, opset) -> int:
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset: expected an integer from {MIN_OPSET} to {newest} (the newest this onnx "
                         f"{onnx.__version__} knows), got {opset!r}")
    return int(opset)


# --- entry points -------------------------------------------------------------------------------
def to_onnx(model: Module, input_shape=None, opset: Optional[int] = None, dtype=None):
    """The model as an ``onnx.ModelProto`` (checked with ``onnx.checker``); see :func:`export`."""
    if not isinstance(model, Module):
        raise TypeError(f"model: expected a fastnn Module, got {type(model).__name__}")
    onnx = _import_onnx()
    helper = onnx.helper
    opset = _check_opset(onnx, opset)
    dt = _model_dtype(model, dtype)
    shape = _infer_input_shape(model) if input_shape is None else _check_input_shape(input_shape)

    g = _Graph(onnx, dt, opset)
    out, out_shape = _convert(g, model, INPUT_NAME, list(shape), "")
    if out == INPUT_NAME:  # an empty Sequential: the graph still needs a node
        out = g.op("Identity", [out], "model")
    for node in g.nodes:  # the last node's output becomes the graph's output
        node.output[:] = [OUTPUT_NAME if o == out else o for o in node.output]

    elem = helper.np_dtype_to_tensor_dtype(dt)

    def dims(s: Shape, prefix: str):
        return ["batch" if i == 0 and d is None else (f"{prefix}_dim{i}" if d is None else d)
                for i, d in enumerate(s)]

    graph = helper.make_graph(
        g.nodes, "fastnn_model",
        [helper.make_tensor_value_info(INPUT_NAME, elem, dims(shape, INPUT_NAME))],
        [helper.make_tensor_value_info(OUTPUT_NAME, elem, dims(out_shape, OUTPUT_NAME))],
        g.initializers)
    from . import __version__
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="fastnn", producer_version=__version__,
                              doc_string=repr(model))
    proto.ir_version = helper.find_min_ir_version_for(opsets)  # the oldest IR that carries this opset
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model: Module, path, input_shape=None, opset: Optional[int] = None, dtype=None):
    """Write ``model`` (eval-mode computation) to ``path`` as ONNX; returns the ``onnx.ModelProto``.

    ``input_shape``: the input's dimensions, None for a dynamic one; default
    ``(None, in_features)`` read from the first Linear/LayerNorm/BatchNorm1d (pass it when a
    Flatten comes first, e.g. ``(None, 1, 28, 28)``). ``opset``: default :data:`DEFAULT_OPSET`.
    ``dtype``: float32 or float64 for the graph's input, output and weights (cast if needed);
    default the model's own.

    Raises :class:`UnsupportedLayerError` (a TypeError) for a module with no ONNX form,
    ValueError for an ``input_shape`` the layers do not accept, a bad ``opset`` or a model
    mixing dtypes without ``dtype=``, and ImportError when ``onnx`` is not installed — all
    before the file is touched. The file is written atomically, as ``fastnn.save`` does.
    """
    from .io import atomic_write
    proto = to_onnx(model, input_shape=input_shape, opset=opset, dtype=dtype)
    data = proto.SerializeToString()
    atomic_write(os.fspath(path), lambda f: f.write(data))
    return proto
