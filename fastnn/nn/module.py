"""Module: the base class of every layer, activation, loss and container.

A subclass implements

    forward(self, x)                              -> output array
    backward(self, grad_out, need_input_grad=True) -> grad w.r.t. x (or None)

``forward`` keeps whatever ``backward`` needs (the input, the output); ``backward``
accumulates into its parameters' ``.grad`` and returns the gradient with
respect to its input (skipping that work when ``need_input_grad`` is False, as
for a network's first layer). ``module(x)`` runs ``forward`` and returns a
read-only ``fastnn.Tensor`` linked to the module, so ``loss.backward()`` can
find its way back (see ``fastnn.tensor``).

A module built from other modules (like ``Sequential``, or a user's class whose
``forward`` is a chain of sub-module calls) gets ``backward`` for free: the
default follows the chain its last forward recorded.

Attributes that are Parameters or Modules are registered on assignment, as in
PyTorch, so ``parameters()``, ``state_dict()`` and ``train()/eval()`` find them.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Iterator, List, Tuple

import numpy as np

from .. import _core, _native
from ..tensor import Tensor, _Link, backprop
from .arena import zero_grads
from .parameter import Parameter


_touch = _core.eager_touch if _native.available() else (lambda: None)


class Module:
    training: bool

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_call_count", 0)
        object.__setattr__(self, "_forward_io", None)

    # --- registration -----------------------------------------------------------
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning attributes")
        params, modules, buffers = d["_parameters"], d["_modules"], d["_buffers"]
        if (name[0] != "_" or callable(value) or isinstance(value, Parameter) or name in params
                or name in modules):
            # Structure or options (not a layer's private per-call state, such as Dropout's
            # mask): whole-model paths (Sequential) re-check their structure before their next call.
            _touch()
        for registry in (params, modules, buffers):
            if name in registry:
                del registry[name]
        if isinstance(value, Parameter):
            params[name] = value
        elif isinstance(value, Module):
            modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        _touch()
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """A non-trainable array saved in ``state_dict`` (e.g. BatchNorm's running mean)."""
        object.__setattr__(self, name, value)
        self._buffers[name] = value

    def add_module(self, name: str, module: "Module") -> None:
        if not isinstance(module, Module):
            raise TypeError(f"module: expected a fastnn Module, got {type(module).__name__}")
        setattr(self, name, module)

    # --- calling --------------------------------------------------------------
    def __call__(self, x, *args, **kwargs):
        # The bookkeeping attributes are written straight into __dict__: they are never
        # Parameters or Modules, so __setattr__'s registration has nothing to do for them.
        d = self.__dict__
        d["_call_count"] = self._call_count + 1
        out = self.forward(x, *args, **kwargs)
        # Composites keep their inner chain so the default backward can walk it.
        d["_forward_io"] = (x, out) if self._modules else None
        if not isinstance(out, np.ndarray):
            out = np.asarray(out)
        return Tensor._wrap(out, _Link((self, self._call_count, x)))

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def backward(self, grad_out, need_input_grad: bool = True):
        """Gradient w.r.t. the last forward's input; accumulates parameter gradients.

        The default serves composite modules: it follows the chain of sub-module
        calls recorded by the last forward.
        """
        if self._forward_io is None:
            raise NotImplementedError(f"{type(self).__name__} must implement backward()")
        x, out = self._forward_io
        return backprop(out, grad_out, need_input_grad=need_input_grad, stop_at=x)

    # --- traversal -------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Parameter]]:
        seen = set()
        for mod_prefix, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), p

    def parameters(self) -> List[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[Tuple[str, np.ndarray]]:
        for mod_prefix, module in self.named_modules():
            for name, b in module._buffers.items():
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), b

    # --- state ----------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of every parameter and buffer, keyed as PyTorch does (``"0.weight"``)."""
        state = OrderedDict()
        for mod_prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                state[f"{mod_prefix}.{name}" if mod_prefix else name] = p.data.copy()
            for name, b in module._buffers.items():
                state[f"{mod_prefix}.{name}" if mod_prefix else name] = np.array(b, copy=True)
        return state

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy values into the existing parameters/buffers (shapes must match).

        Everything is checked before anything is written, so a mismatching dict
        leaves the model untouched. Returns ``(missing_keys, unexpected_keys)``.
        """
        targets: Dict[str, Tuple[Module, str, bool]] = {}
        for mod_prefix, module in self.named_modules():
            for name in module._parameters:
                targets[f"{mod_prefix}.{name}" if mod_prefix else name] = (module, name, True)
            for name in module._buffers:
                targets[f"{mod_prefix}.{name}" if mod_prefix else name] = (module, name, False)
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise KeyError(f"state_dict: missing keys {missing}, unexpected keys {unexpected}")
        staged = []
        for key, (module, name, is_param) in targets.items():
            if key not in state_dict:
                continue
            current = module._parameters[name].data if is_param else module._buffers[name]
            value = state_dict[key]
            if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, maybe requiring grad
                value = value.detach().cpu().numpy()
            value = np.asarray(value)
            if value.shape != np.shape(current):
                raise ValueError(f"state_dict[{key!r}]: expected shape {np.shape(current)}, got {value.shape}")
            if value.dtype.kind not in "fiub":
                raise TypeError(f"state_dict[{key!r}]: expected a numeric array, got dtype {value.dtype}")
            staged.append((current, value))
        for current, value in staged:
            current[...] = value
        return missing, unexpected

    # --- modes and gradients ----------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        zero_grads(self.parameters())

    # --- display ------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        return "\n".join(lines) + "\n)"
