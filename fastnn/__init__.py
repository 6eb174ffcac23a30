"""fastnn — fast, verified neural-network training on multicore CPUs.

C kernels (OpenMP, SIMD) behind a PyTorch-style API, every kernel checked
against a plain NumPy reference (``fastnn.reference``).
"""
from ._core import get_num_threads, set_num_threads  # noqa: F401
from . import ops, reference  # noqa: F401
from .backend import get_backend, set_backend, use_backend  # noqa: F401
from .errors import DivergenceError, GradcheckError  # noqa: F401
from .random import manual_seed  # noqa: F401
from .tensor import Tensor  # noqa: F401
from .gradcheck import gradcheck  # noqa: F401
from . import nn, optim  # noqa: F401
from . import data, datasets  # noqa: F401
from .io import CheckpointError, load, save  # noqa: F401
from .train import Callback, EarlyStopping, History, ProgressBar, evaluate, fit  # noqa: F401

__version__ = "0.1.0"
