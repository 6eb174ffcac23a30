"""fastnn.optim — optimizers with PyTorch's arguments and formulas, one fused pass per step."""
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD"]
