# _optim.pxi — wrappers for src_c/optim (filled in by its owner).
