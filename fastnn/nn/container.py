"""Sequential: modules applied one after another."""
from __future__ import annotations

from collections import OrderedDict

from .activation import _Elementwise
from .linear import Linear
from .module import Module


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
