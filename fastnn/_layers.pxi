# _layers.pxi — wrappers for src_c/layers (filled in by its owner).
