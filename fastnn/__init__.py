"""fastnn — fast, verified neural-network training on multicore CPUs.

C kernels (OpenMP, SIMD) behind a PyTorch-style API, every kernel checked
against a plain NumPy reference (``fastnn.reference``).
"""
from . import _native

_core = _native.load()  # the compiled core, or a stand-in that explains its absence on first use
if _native.available():
    from ._core import get_num_threads, set_num_threads  # noqa: F401,E402
else:
    def get_num_threads():
        """Threads each parallel kernel uses (needs the compiled core)."""
        return _core.get_num_threads()

    def set_num_threads(n):
        """Set the thread count for all fastnn kernels (needs the compiled core)."""
        _core.set_num_threads(n)


from . import ops, reference  # noqa: F401
from .backend import get_backend, set_backend, use_backend  # noqa: F401
from .errors import DivergenceError, GradcheckError  # noqa: F401
from .random import manual_seed  # noqa: F401
from .tensor import Tensor  # noqa: F401
from .gradcheck import gradcheck  # noqa: F401
from .info import info, show_info  # noqa: F401
from . import nn, optim  # noqa: F401
from . import data, datasets  # noqa: F401
if _native.available():  # plans are compiled code through and through (import fastnn.plan says why not)
    from . import plan  # noqa: F401
from .io import CheckpointError, load, save  # noqa: F401
# Neither imports its optional package (onnx, safetensors) until a function of it runs.
from . import onnx  # noqa: F401,E402
from .io_safetensors import SafetensorsError, load_safetensors, save_safetensors  # noqa: F401,E402
from .train import Callback, EarlyStopping, History, ProgressBar, evaluate, fit  # noqa: F401

__version__ = "0.1.0"
