"""Sequential: modules applied one after another."""
from __future__ import annotations

from collections import OrderedDict

from .module import Module


class Sequential(Module):
    """``Sequential(m0, m1, …)`` or ``Sequential(OrderedDict(name=module, …))``.

    Parameters are named by position (``"0.weight"``, ``"2.bias"``) as in PyTorch.
    Backward runs the children's backward in reverse; the first child skips its
    input gradient when nobody upstream needs it.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(str(name), m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        # Backward relies on each child's state from this call: remember which call it was.
        object.__setattr__(self, "_child_calls", [m._call_count for m in self._modules.values()])
        return x

    def backward(self, grad_out, need_input_grad: bool = True):
        children = list(self._modules.values())
        calls = getattr(self, "_child_calls", None)
        if calls is None or calls != [m._call_count for m in children]:
            raise RuntimeError(
                "backward: a layer of this Sequential was called on its own after the Sequential's last "
                "forward (or there was no forward); run the forward again before backward()")
        for i in range(len(children) - 1, -1, -1):
            grad_out = children[i].backward(grad_out, need_input_grad=need_input_grad or i > 0)
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
