# _gemm.pxi — wrappers for src_c/gemm (filled in by its owner).
