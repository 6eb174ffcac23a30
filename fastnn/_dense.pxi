# _dense.pxi — wrappers for src_c/dense (filled in by its owner).
