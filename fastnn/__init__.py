"""fastnn — fast, verified neural-network training on multicore CPUs."""
from ._core import get_num_threads, set_num_threads  # noqa: F401
from . import ops, reference  # noqa: F401

__version__ = "0.1.0"
