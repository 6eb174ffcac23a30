"""fastnn.train: ``fit`` and what it is made of.

loop.py       fit(): checks, then the one training loop over a stepper
steppers.py   the eager (PyTorch-style) stepper and the compiled-plan stepper (C runs)
plan_cache.py compiled plans cached on the optimizer, rebuilt when anything they depend on changes
divergence.py the one path from a non-finite loss/gradient/update to DivergenceError
callbacks.py  Callback, EarlyStopping        progress.py  ProgressBar
history.py    History                        interrupt.py Ctrl-C between steps
evaluate.py   evaluate()                     metrics.py   accuracy (Python and the plan's C metric)
inputs.py     input checks and conversion
"""
from .callbacks import Callback, EarlyStopping
from .evaluate import evaluate
from .history import History
from .loop import fit
from .progress import ProgressBar

__all__ = ["fit", "evaluate", "History", "Callback", "EarlyStopping", "ProgressBar"]
