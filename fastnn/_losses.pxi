# _losses.pxi — wrappers for src_c/losses (filled in by its owner).
