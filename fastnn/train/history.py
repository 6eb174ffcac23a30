"""History: what ``fit`` returns, the per-epoch metrics."""
from __future__ import annotations

from typing import Any, Dict, List

__all__ = ["History"]


class History:
    """What ``fit`` returns: per-epoch metrics.

    ``history``: dict of per-epoch lists — ``loss`` (mean over the epoch's
    samples), ``accuracy`` (classification losses), ``val_loss`` and
    ``val_accuracy`` (with validation_data), ``lr`` (first parameter group's
    learning rate at the start of the epoch, i.e. the one its first step used).
    ``epoch``: the epoch numbers (1-based). ``params``: epochs, steps per epoch, …
    """

    def __init__(self):
        self.history: Dict[str, List[float]] = {}
        self.epoch: List[int] = []
        self.params: Dict[str, Any] = {}

    def _record(self, epoch: int, logs: Dict[str, float]) -> None:
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(no epochs)"
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items())
        return f"History({len(self.epoch)} epochs; last: {last})"
