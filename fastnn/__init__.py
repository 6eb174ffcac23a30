"""fastnn — fast, verified neural-network training on multicore CPUs.

C kernels (OpenMP, SIMD) behind a PyTorch-style API, every kernel checked
against a plain NumPy reference (``fastnn.reference``).
"""
import os as _os

# OpenMP threads that spin-wait between parallel regions make every other thread
# pool on the machine (NumPy's OpenBLAS, another process) crawl, and crawl
# themselves when a core is taken: on 2 busy cores a 128×784×256 product ran
# 20× slower spinning than sleeping. So fastnn's OpenMP team sleeps when idle
# unless the user chose otherwise. libgomp reads this once, when the extension
# loads it; the variable is removed again so child processes don't inherit it.
_wait_policy_set = "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ
if _wait_policy_set:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
try:
    from ._core import get_num_threads, set_num_threads  # noqa: F401,E402
finally:
    if _wait_policy_set:
        del _os.environ["OMP_WAIT_POLICY"]
from . import ops, reference  # noqa: F401
from .backend import get_backend, set_backend, use_backend  # noqa: F401
from .errors import DivergenceError, GradcheckError  # noqa: F401
from .random import manual_seed  # noqa: F401
from .tensor import Tensor  # noqa: F401
from .gradcheck import gradcheck  # noqa: F401
from .info import info, show_info  # noqa: F401
from . import nn, optim  # noqa: F401
from . import data, datasets, plan  # noqa: F401
from .io import CheckpointError, load, save  # noqa: F401
# Neither imports its optional package (onnx, safetensors) until a function of it runs.
from . import onnx  # noqa: F401,E402
from .io_safetensors import SafetensorsError, load_safetensors, save_safetensors  # noqa: F401,E402
from .train import Callback, EarlyStopping, History, ProgressBar, evaluate, fit  # noqa: F401

__version__ = "0.1.0"
