# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, embedsignature=True
"""fastnn._core — the compiled backend: thin Cython wrappers over the C kernels.

Every wrapper checks the invariants that memory safety depends on (dtype,
contiguity, sizes, writability) and raises before C touches memory, then calls
the kernel with the GIL released. Friendly coercion (array-likes, dtype
promotion, allocation of outputs) happens one level up, in ``fastnn.ops``;
these functions are the private seam between the two and take exact ndarrays.

Each area lives in its own include file so it can be read on its own.
"""
cimport numpy as cnp
from libc.stdint cimport int64_t

import os
import time

cnp.import_array()

include "_enums.pxi"
include "_checks.pxi"
include "_threads.pxi"
include "_tuning.pxi"
include "_activations.pxi"
include "_gemm.pxi"
include "_fma_peak.pxi"
include "_dense.pxi"
include "_losses.pxi"
include "_optim.pxi"
include "_layers.pxi"
include "_plan.pxi"
include "_orders.pxi"
include "_plan_eager.pxi"
include "_plan_eager_steps.pxi"
include "_plan_eager_calls.pxi"
