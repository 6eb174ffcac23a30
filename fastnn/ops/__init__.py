"""fastnn.ops — every kernel as a plain function over NumPy arrays, running in C.

``fastnn.ops.X`` and ``fastnn.reference.X`` have the same signature and
semantics; the reference is the spec the tests hold these to. Arguments are
validated here (clear ``TypeError``/``ValueError`` naming the argument) before
any C code runs; the kernels themselves release the GIL.
"""
from .activations import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from . import activations, layers, linalg, losses, optim

__all__ = activations.__all__ + layers.__all__ + linalg.__all__ + losses.__all__ + optim.__all__
