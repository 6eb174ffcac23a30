# _plan.pxi — wrappers for src_c/plan (whole-step training plans).
