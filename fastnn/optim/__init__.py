"""fastnn.optim — optimizers with PyTorch's arguments and formulas, one fused pass per step,
and PyTorch's learning-rate schedulers (``fastnn.optim.lr_scheduler``)."""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD
from .. import _core, _native

# Steps that may take the one-call path (Optimizer.step), by exact type: a subclass may change the update.
if _native.available():
    _core.eager_register_optimizers({SGD: 0, Adam: 1, AdamW: 1})

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
