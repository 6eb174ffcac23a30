"""Loads the compiled core, ``fastnn._core``, once, or puts a stand-in in its place.

Without the extension (a source checkout that was never built, a failed build) ``import
fastnn`` and all of ``fastnn.reference`` still work; the first use of a compiled path raises
an ``ImportError`` that says what is missing and how to get it, instead of ``import fastnn``
failing for everyone.
"""
from __future__ import annotations

import os
import sys
import types


class MissingCore(types.ModuleType):
    """Stands in for ``fastnn._core`` when it cannot be imported: any attribute raises."""

    def __init__(self, error: BaseException):
        super().__init__("fastnn._core", "stand-in for the missing compiled core")
        self._error = error

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(
            f"fastnn: the compiled core fastnn._core is not available ({self._error}); {name!r} needs it. "
            "Build it (python setup.py build_ext --inplace) or reinstall fastnn; fastnn.reference "
            "and use_backend('reference') run without it.") from self._error


def load():
    """The compiled core, or a MissingCore (also registered as ``fastnn._core``)."""
    # OpenMP threads that spin-wait between parallel regions make every other thread pool on
    # the machine (NumPy's OpenBLAS, another process) crawl, and crawl themselves when a core
    # is taken: on 2 busy cores a 128×784×256 product ran 20× slower spinning than sleeping.
    # So fastnn's OpenMP team sleeps when idle unless the user chose otherwise. libgomp reads
    # this once, when the extension loads it; the variable is removed again so child
    # processes don't inherit it.
    wait_policy_set = "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ
    if wait_policy_set:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        from . import _core
    except ImportError as e:
        _core = MissingCore(e)
        sys.modules["fastnn._core"] = _core
        sys.modules["fastnn"]._core = _core
    finally:
        if wait_policy_set:
            del os.environ["OMP_WAIT_POLICY"]
    return _core


def available() -> bool:
    """True when the compiled core loaded."""
    return not isinstance(sys.modules.get("fastnn._core"), MissingCore)
