"""fastnn.optim — optimizers with PyTorch's arguments and formulas, one fused pass per step,
and PyTorch's learning-rate schedulers (``fastnn.optim.lr_scheduler``)."""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
