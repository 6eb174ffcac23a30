"""fastnn.nn — layers, activations, losses and containers, shaped like ``torch.nn``."""
from . import init, utils
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .arena import Arena, consolidate
from .container import Sequential
from .dropout import Dropout
from .flatten import Flatten, Identity
from .linear import Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss
from .module import Module
from .normalization import BatchNorm1d, LayerNorm
from .parameter import Parameter

__all__ = [
    "Module", "Parameter", "Sequential", "Linear",
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax",
    "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss",
    "Dropout", "BatchNorm1d", "LayerNorm", "Flatten", "Identity", "init", "utils",
    "Arena", "consolidate",
]
