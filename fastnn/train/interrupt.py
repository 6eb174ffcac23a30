"""Ctrl-C during ``fit``: acted on between steps, never inside one."""
from __future__ import annotations

import signal
import threading

try:  # the handlers as they are: signal.getsignal/signal wrap each in an enum (≈ 10 µs a call)
    import _signal as _handlers
except ImportError:  # pragma: no cover - other Pythons
    _handlers = signal

__all__ = ["DeferredInterrupt"]


class DeferredInterrupt:
    """Ctrl-C during fit is acted on between steps, never inside one.

    In the main thread (with Python's default SIGINT handler) a first SIGINT
    only sets a flag that the loop checks before and after each step; a second
    one raises at once. Elsewhere signals cannot be caught and a
    KeyboardInterrupt propagates wherever it lands.
    """

    def __init__(self):
        self.pending = False
        self._previous = None

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and _handlers.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = _handlers.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.pending:
            raise KeyboardInterrupt("fit: interrupted twice; stopped immediately (possibly inside a step)")
        self.pending = True

    def check(self, where: str) -> None:
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt(f"fit: interrupted {where}; the model holds the parameters of the last "
                                    f"completed step, exc.history the completed epochs")

    def __exit__(self, *exc):
        if self._previous is not None:
            _handlers.signal(signal.SIGINT, self._previous)
        return False
