"""fastnn.reference — every kernel in plain NumPy: the spec.

Each function has the signature and semantics of its ``fastnn.ops``
counterpart and is written for clarity, not speed: tests compare every C kernel
against it, and a model can run on it (``fastnn.use_backend("reference")``).
"""

from .activations import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from . import activations, layers, linalg, losses, optim

__all__ = activations.__all__ + layers.__all__ + linalg.__all__ + losses.__all__ + optim.__all__
