"""The argument checks moved to ``fastnn._checks`` (one module for ops, reference, nn and
optim); this name stays for the modules that still import it from here."""
from .._checks import (FLOAT_DTYPES, as_float, check_choice, check_logits, check_out,  # noqa: F401
                       check_scalar, out_or_new, result_dtype)
