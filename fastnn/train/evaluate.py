"""evaluate(): loss and accuracy of a model on data, in eval mode, without gradients."""
from __future__ import annotations

from typing import Dict, Optional

from ..data import resolve_batch_size
from ..nn.module import Module
from .inputs import per_sample_weight, prepare, set_modes
from .metrics import accuracy_counter

__all__ = ["evaluate", "evaluate_eager", "val_batch_size"]


def val_batch_size(batch_size: int) -> int:
    """The batch size fit evaluates validation data with."""
    return max(batch_size, 256)


def evaluate(model: Module, loss_fn, X, y, batch_size: Optional[int] = None, metrics="auto") -> Dict[str, float]:
    """Loss (mean over samples) and, for classification losses, accuracy of ``model`` on (X, y).

    Runs in eval mode and restores each module's previous mode. No gradients are computed.
    """
    X, y = prepare(X, y, loss_fn, model)
    return evaluate_eager(model, loss_fn, X, y, resolve_batch_size(batch_size, len(X)),
                          accuracy_counter(loss_fn, metrics))


def evaluate_eager(model, loss_fn, X, y, batch_size, counter) -> Dict[str, float]:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        total = correct = counted = 0.0
        for start in range(0, len(X), batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            out = model(xb)
            out = out.detach() if hasattr(out, "detach") else out  # no chain: the loss skips its gradient
            total += float(loss_fn(out, yb)) * per_sample_weight(loss_fn, len(xb))
            if counter is not None:
                c = counter(out, yb)
                if c is not None:
                    correct += c[0]
                    counted += c[1]
        result = {"loss": total / len(X)}
        if counter is not None and counted:
            result["accuracy"] = correct / counted
        return result
    finally:
        set_modes(modes)
