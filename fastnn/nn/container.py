"""Sequential: modules applied one after another."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import _core, _native, backend, ops
from ..tensor import Tensor, _Link
from .activation import _Elementwise
from .arena import Arena
from .flatten import Identity
from .linear import Linear
from .module import Module

_ACT_CODES = {"relu": 1, "leaky_relu": 2, "sigmoid": 3, "tanh": 4, "gelu": 5, "gelu_tanh": 6}
# Methods the whole-model path would bypass: overridden on an instance, they send the model
# to the per-module path.
_HOOKABLE = ("forward", "backward", "__call__", "_forward_fused", "_backward_fused", "_record_fused",
             "fused_name", "_input2d", "_grads")


def _whole_model(seq):
    """An EagerModel running ``seq``'s forward and backward in one call each, exactly as its
    per-module path does (see fastnn/_plan_eager.pxi), and its key (the objects it depends on);
    or (None, reason)."""
    if type(seq).forward is not Sequential.forward or type(seq).backward is not Sequential.backward:
        return None, "a subclass of Sequential overrides forward or backward"
    hooked = [a for a in ("forward", "backward", "__call__") if a in vars(seq)]
    if hooked:
        return None, f"Sequential.{hooked[0]} is overridden on the instance"
    children = list(seq._modules.values())
    layers, params, key, roles = [], [], [bool(seq.fuse)], []
    dtype = None
    i, n = 0, len(children)
    while i < n:
        m = children[i]
        key.append(m)
        hooked = [a for a in _HOOKABLE if a in vars(m)]
        if hooked:
            return None, f"{type(m).__name__}.{hooked[0]} is overridden on the instance"
        if type(m) is Identity:
            roles.append((m, 2, len(layers)))
            i += 1
            continue
        if type(m) is not Linear:
            return None, (f"{type(m).__name__} at position {i}: the whole-model path runs Linear layers, each "
                          f"optionally followed by a fused activation, and Identity")
        act = children[i + 1] if i + 1 < n else None
        name = act.fused_name() if isinstance(act, _Elementwise) else None
        if name is not None:
            hooked = [a for a in _HOOKABLE if a in vars(act)]
            if hooked:
                return None, f"{type(act).__name__}.{hooked[0]} is overridden on the instance"
            if name not in _ACT_CODES:
                return None, f"{type(act).__name__}.fused_name() returned {name!r}"
            code, slope = _ACT_CODES[name], float(getattr(act, "negative_slope", 0.0))
            key += [act, name, slope]
            roles += [(m, 0, len(layers)), (act, 1, len(layers))]
            i += 2
        else:
            code, slope = 0, 0.01
            roles.append((m, 0, len(layers)))
            i += 1
        w, b = m.weight, m.bias
        for p in (w, b):
            if p is None:
                continue
            data, grad = p._data, p._grad
            if (type(data) is not np.ndarray or type(grad) is not np.ndarray or data.ndim != (2 if p is w else 1)
                    or not grad.flags.c_contiguous or not grad.flags.aligned or not grad.flags.writeable
                    or not data.flags.aligned or grad.dtype != data.dtype or grad.shape != data.shape
                    or np.may_share_memory(data, grad)):
                return None, f"{m.describe()}: a parameter's storage is not plain arrays"
            if dtype is None:
                dtype = data.dtype
            elif data.dtype != dtype:
                return None, "parameters of mixed dtypes"
            if p is b and not data.flags.c_contiguous:
                return None, f"{m.describe()}: its bias is not contiguous"
        if w.shape != (m.out_features, m.in_features) or (b is not None and b.shape != (m.out_features,)):
            return None, f"{m.describe()}: a parameter's shape does not match the layer"
        if layers and layers[-1][1] != m.in_features:
            return None, f"{m.describe()} does not take the previous layer's {layers[-1][1]} features"
        layers.append((m.in_features, m.out_features, code, slope, b is not None))
        params.append((w, b))
        key += [w, b, w.requires_grad, None if b is None else b.requires_grad]
    if not layers:
        return None, "no Linear layer"
    if len(layers) > 64:
        return None, "more than 64 layers"
    em = _core.EagerModel(dtype == np.float64, layers, params, children, roles, Tensor, _Link)
    return em, key


class Sequential(Module):
    """``Sequential(m0, m1, …)`` or ``Sequential(OrderedDict(name=module, …))``.

    Parameters are named by position (``"0.weight"``, ``"2.bias"``) as in PyTorch.
    Backward runs the children's backward in reverse; the first child skips its
    input gradient when nobody upstream needs it.

    A ``Linear`` followed by ReLU, LeakyReLU (slope >= 0), Sigmoid, Tanh or GELU
    runs as one fused kernel: forward applies bias and activation in the GEMM's
    epilogue (the pre-activation is never written, except for GELU which needs
    it), backward applies the activation's derivative as the GEMM's prologue.
    The results equal the unfused ones; set ``fuse = False`` to run every module
    on its own.
    """

    fuse = True

    # --- the whole-model path ---------------------------------------------------
    # For a chain of Linear layers (each optionally followed by a fused activation) and
    # Identity, on the C backend, model(x) runs the whole forward in one call and backward the
    # whole backward in another (fastnn/_plan_eager.pxi): the same kernels with the same
    # arguments in the same order as the per-module path below, so the results are the same
    # bit for bit. Anything else (another layer, an input to convert, a hook on an instance,
    # fuse=False, the reference backend) takes the per-module path.

    # model(x): the whole-model forward when it applies (compiled: _core.sequential_call), else
    # _call_per_module.
    if _native.available():
        __call__ = _core.sequential_call

    def _call_per_module(self, x, *args, **kwargs):
        """The call when the whole-model path did not take it: after a structure change, build
        (or keep) the EagerModel and try it; else Module.__call__ (the per-module path)."""
        if not args and not kwargs:
            d = self.__dict__
            em = d.get("_eager")
            # (a copy of a model has no EagerModel, and no reason why not: it builds its own)
            stale = (not em.matches(self) if em is not None else
                     d.get("_eager_epoch") != _core.eager_epoch() or d.get("_eager_reason") is None)
            if stale:
                em = self._eager_refresh()
                if em is not None:
                    out = em(self, x)
                    if out is not None:
                        return out
        return Module.__call__(self, x, *args, **kwargs)

    def _eager_refresh(self):
        """The EagerModel for the current structure (kept when nothing it depends on changed),
        or None with the reason in ``whole_model_path``."""
        d = self.__dict__
        em, key = d.get("_eager"), d.get("_eager_key")
        epoch = _core.eager_epoch()
        new, new_key = _whole_model(self)
        if new is None:
            d["_eager"], d["_eager_key"], d["_eager_reason"] = None, None, new_key
        elif em is not None and key is not None and len(key) == len(new_key) and all(
                a is b or (type(a) in (bool, float, str) and a == b) for a, b in zip(key, new_key)) \
                and em.matches_params():
            em.revalidate()
        else:
            d["_eager"], d["_eager_key"], d["_eager_reason"] = new, new_key, None
            em = new
        d["_eager_epoch"] = epoch
        return d["_eager"]

    @property
    def whole_model_path(self) -> str:
        """Which path ``model(x)`` takes and why: the whole-model path (one C call for the forward,
        one for the backward) or the per-module one."""
        d = self.__dict__
        if d.get("_eager_epoch") != _core.eager_epoch() or (d.get("_eager") is not None
                                                           and not d["_eager"].matches(self)):
            self._eager_refresh()
        if d.get("_eager") is None:
            return f"per-module: {d.get('_eager_reason')}"
        if not self.fuse:
            return "per-module: fuse is False"
        if backend._current.get() is not ops:
            return "per-module: the reference backend is in use"
        return "whole-model: forward and backward in one C call each (inputs: 2-D arrays of the model's dtype)"

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(str(name), m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        children = list(self._modules.values())
        fused = []
        i = 0
        n = len(children)
        fuse = self.fuse
        while i < n:
            module = children[i]
            if fuse and type(module) is Linear and i + 1 < n:  # _fusable, inlined: this runs every step
                act = children[i + 1]
                name = act.fused_name() if isinstance(act, _Elementwise) else None
                if name is not None:
                    x = module._forward_fused(x, act, name, getattr(act, "negative_slope", 0.0))
                    fused.append(i)
                    i += 2
                    continue
            x = module(x)
            i += 1
        # Backward relies on each child's state from this call: remember which call it was.
        d = self.__dict__  # plain state: no Parameter/Module registration needed
        d["_child_calls"] = [m._call_count for m in children]
        d["_fused_at"] = fused
        return x

    def backward(self, grad_out, need_input_grad: bool = True):
        em = self.__dict__.get("_eager")
        if em is not None and em.call == self._call_count:  # the last forward was the whole-model one
            return em.backward(grad_out, need_input_grad)
        children = list(self._modules.values())
        calls = getattr(self, "_child_calls", None)
        if calls is None or calls != [m._call_count for m in children]:
            raise RuntimeError(
                "backward: a layer of this Sequential was called on its own after the Sequential's last "
                "forward (or there was no forward); run the forward again before backward()")
        fused = self._fused_at
        i = len(children) - 1
        while i >= 0:
            if i - 1 in fused:
                lin, act = children[i - 1], children[i]
                name, slope = act.fused_name(), getattr(act, "negative_slope", 0.0)
                grad_out = lin._backward_fused(grad_out, name, slope, act._saved,
                                               need_input_grad=need_input_grad or i - 1 > 0)
                i -= 2
            else:
                grad_out = children[i].backward(grad_out, need_input_grad=need_input_grad or i > 0)
                i -= 1
        return grad_out

    def __getitem__(self, idx):
        children = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(*children[idx])
        return children[idx]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self._modules)), module)
        return self


if _native.available():
    _core.eager_register_model(backend._current, ops, Tensor, _Link, Sequential, Arena.zero_grad)
