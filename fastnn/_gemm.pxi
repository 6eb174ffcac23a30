# _gemm.pxi — the packed GEMM (src_c/gemm/gemm.h): workspace, product, kernel dispatch.

cdef extern from "gemm/gemm.h" nogil:
    ctypedef struct fnn_workspace:
        pass
    ctypedef struct fnn_gemm_epilogue:
        int act
        double param
        const void *bias
        void *preact
        int64_t rs_preact
        int64_t cs_preact
    int FNN_OK
    int FNN_ENOMEM
    int FNN_KERNELS_PORTABLE
    int FNN_KERNELS_AVX2
    int FNN_KERNELS_AVX512
    fnn_workspace *fnn_workspace_create()
    void fnn_workspace_destroy(fnn_workspace *ws)
    size_t fnn_workspace_bytes(const fnn_workspace *ws)
    int fnn_gemm_f32(int64_t m, int64_t n, int64_t k,
                     float *c, int64_t rs_c, int64_t cs_c,
                     const float *a, int64_t rs_a, int64_t cs_a,
                     const float *b, int64_t rs_b, int64_t cs_b,
                     double alpha, double beta, const fnn_gemm_epilogue *ep, fnn_workspace *ws)
    int fnn_gemm_f64(int64_t m, int64_t n, int64_t k,
                     double *c, int64_t rs_c, int64_t cs_c,
                     const double *a, int64_t rs_a, int64_t cs_a,
                     const double *b, int64_t rs_b, int64_t cs_b,
                     double alpha, double beta, const fnn_gemm_epilogue *ep, fnn_workspace *ws)
    void fnn_gemm_init()
    const char *fnn_gemm_kernel_name()
    int fnn_gemm_available_kernels()
    int fnn_gemm_set_kernels(const char *name)
    void fnn_gemm_block_sizes(int is_f64, int64_t *out)
    int fnn_gemm_selftest()
    int fnn_fma_peak_run(int64_t iters, float *sink)
    int64_t fnn_fma_peak_flops_per_iter()
    const char *fnn_gemm_schedule_name()
    int fnn_gemm_set_schedule(const char *name)
    void fnn_gemm_test_delay(int tid, int64_t us)
    int64_t fnn_gemm_test_delays()


cdef class Workspace:
    """Packing buffers reused across GEMM/dense calls (grown on demand, freed with the object).

    One workspace must not be used by two calls at once: ``fastnn.ops`` keeps one per
    Python thread.
    """
    cdef fnn_workspace *ws

    def __cinit__(self):
        self.ws = fnn_workspace_create()
        if self.ws == NULL:
            raise MemoryError("fastnn: could not allocate a GEMM workspace")

    def __dealloc__(self):
        if self.ws != NULL:
            fnn_workspace_destroy(self.ws)
            self.ws = NULL

    @property
    def nbytes(self):
        """Bytes of packing/scratch memory currently held."""
        return fnn_workspace_bytes(self.ws)


cdef inline int _status(int st) except -1:
    if st == FNN_ENOMEM:
        raise MemoryError("fastnn: out of memory growing the GEMM workspace")
    return 0


cdef inline int _matrix(cnp.ndarray a, str name, int kind, int64_t *rs, int64_t *cs) except -1:
    """Element strides of a 2-D array of the given kind (byte strides must be whole elements)."""
    _same_kind(a, name, kind)
    if cnp.PyArray_NDIM(a) != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {(<object>a).shape}")
    if not cnp.PyArray_ISALIGNED(a):
        raise ValueError(f"{name}: expected an array aligned to its items (np.array(a) makes an aligned copy)")
    cdef int64_t isz = cnp.PyArray_ITEMSIZE(a)
    cdef int64_t s0 = cnp.PyArray_STRIDE(a, 0), s1 = cnp.PyArray_STRIDE(a, 1)
    # The stride of an axis of extent 0 or 1 is never followed (NumPy lets it be anything, even
    # in a C-contiguous array): give it the C-order value instead of refusing the array.
    # An empty array follows none of its strides.
    cdef bint empty = cnp.PyArray_DIM(a, 0) == 0 or cnp.PyArray_DIM(a, 1) == 0
    if (empty or cnp.PyArray_DIM(a, 1) <= 1) and s1 % isz:
        s1 = isz
    if (empty or cnp.PyArray_DIM(a, 0) <= 1) and s0 % isz:
        s0 = isz * max(cnp.PyArray_DIM(a, 1), 1)
    if s0 % isz or s1 % isz:
        raise ValueError(f"{name}: strides {(<object>a).strides} are not multiples of the item size {isz}")
    rs[0] = s0 // isz
    cs[0] = s1 // isz
    return 0


cdef inline int _no_self_overlap(cnp.ndarray a, str name, int64_t rs, int64_t cs) except -1:
    """An output whose elements are all distinct memory (no zero or interleaved strides)."""
    cdef int64_t r = cnp.PyArray_DIM(a, 0), c = cnp.PyArray_DIM(a, 1)
    cdef int64_t ar = rs if rs >= 0 else -rs, ac = cs if cs >= 0 else -cs
    if r == 0 or c == 0:
        return 0
    if r <= 1 or c <= 1:
        if (r > 1 and ar == 0) or (c > 1 and ac == 0):
            raise ValueError(f"{name}: output elements overlap (strides {(<object>a).strides})")
        return 0
    if ar >= ac:
        if ac == 0 or ar < ac * c:
            raise ValueError(f"{name}: output elements overlap (strides {(<object>a).strides})")
    elif ar == 0 or ac < ar * r:
        raise ValueError(f"{name}: output elements overlap (strides {(<object>a).strides})")
    return 0


def gemm(Workspace ws, cnp.ndarray c, cnp.ndarray a, cnp.ndarray b, bint trans_a=False,
         bint trans_b=False, double alpha=1.0, double beta=0.0):
    """c = alpha·op(a)·op(b) + beta·c for 2-D arrays of one float dtype, any strides.

    c must be writable and must not overlap a or b (checked here)."""
    cdef int kind = _kind(c, "out")
    cdef int64_t rs_a, cs_a, rs_b, cs_b, rs_c, cs_c, t
    _matrix(a, "a", kind, &rs_a, &cs_a)
    _matrix(b, "b", kind, &rs_b, &cs_b)
    _matrix(c, "out", kind, &rs_c, &cs_c)
    _writable(c, "out")
    _no_self_overlap(c, "out", rs_c, cs_c)
    cdef int64_t m = cnp.PyArray_DIM(a, 0), k = cnp.PyArray_DIM(a, 1)
    if trans_a:
        m, k = k, m
        rs_a, cs_a = cs_a, rs_a
    cdef int64_t kb = cnp.PyArray_DIM(b, 0), n = cnp.PyArray_DIM(b, 1)
    if trans_b:
        kb, n = n, kb
        rs_b, cs_b = cs_b, rs_b
    if kb != k:
        raise ValueError(f"b: op(b) must have {k} rows to match op(a) of shape ({m}, {k}), got ({kb}, {n})")
    if cnp.PyArray_DIM(c, 0) != m or cnp.PyArray_DIM(c, 1) != n:
        raise ValueError(f"out: expected shape ({m}, {n}), got {(<object>c).shape}")
    _apart(c, "out", ("a", a, "b", b))
    cdef void *pc = cnp.PyArray_DATA(c)
    cdef const void *pa = cnp.PyArray_DATA(a)
    cdef const void *pb = cnp.PyArray_DATA(b)
    cdef int st
    with nogil:
        if kind == 0:
            st = fnn_gemm_f32(m, n, k, <float *>pc, rs_c, cs_c, <const float *>pa, rs_a, cs_a,
                              <const float *>pb, rs_b, cs_b, alpha, beta, NULL, ws.ws)
        else:
            st = fnn_gemm_f64(m, n, k, <double *>pc, rs_c, cs_c, <const double *>pa, rs_a, cs_a,
                              <const double *>pb, rs_b, cs_b, alpha, beta, NULL, ws.ws)
    _status(st)
    return c


_KERNEL_BITS = {"portable": 1, "avx2": 2, "avx512": 4}


def gemm_kernel_name():
    """The active micro-kernel set: 'avx512', 'avx2' or 'portable'."""
    return fnn_gemm_kernel_name().decode()


def gemm_available_kernels():
    """Kernel sets this CPU can run, best first."""
    cdef int mask = fnn_gemm_available_kernels()
    return [name for name in ("avx512", "avx2", "portable") if mask & _KERNEL_BITS[name]]


def set_gemm_kernels(name):
    """Switch the GEMM to one kernel set (for tests/benchmarks; not thread-safe with running products)."""
    if name not in _KERNEL_BITS:
        raise ValueError(f"name: expected one of 'avx512', 'avx2', 'portable', got {name!r}")
    cdef bytes bname = name.encode()
    cdef int st = fnn_gemm_set_kernels(bname)
    if st == -1:
        raise ValueError(f"name: this CPU cannot run the {name!r} kernels "
                         f"(available: {', '.join(gemm_available_kernels())})")
    if st != 0:
        raise ValueError(f"name: unknown kernel set {name!r}")


def gemm_schedule():
    """How products share their tiles over the threads: 'dynamic' (claimed in turn) or 'static'."""
    return fnn_gemm_schedule_name().decode()


def set_gemm_schedule(name):
    """Switch the GEMM schedule to 'dynamic' or 'static' (same results; for tests/benchmarks,
    not thread-safe with running products). FASTNN_GEMM_SCHEDULE sets it at start-up."""
    if name not in ("dynamic", "static"):
        raise ValueError(f"name: expected 'dynamic' or 'static', got {name!r}")
    cdef bytes bname = name.encode()
    if fnn_gemm_set_schedule(bname) != 0:
        raise ValueError(f"name: this build cannot run the {name!r} schedule (no OpenMP)")


def _gemm_test_delay(int thread_id, int64_t microseconds):
    """Test hook: thread ``thread_id`` of each product's team sleeps this long before every
    tile it takes (0 turns it off), to force a skewed schedule."""
    if microseconds < 0:
        raise ValueError(f"microseconds: must be >= 0, got {microseconds}")
    fnn_gemm_test_delay(thread_id, microseconds)


def _gemm_test_delays():
    """How many delays the test hook has taken since it was last set."""
    return fnn_gemm_test_delays()


def fma_peak_gflops(double seconds=0.2):
    """The machine's float32 multiply-add ceiling in GFLOP/s, measured now with fastnn's thread
    count and active kernel set: independent FMA chains on registers, no memory traffic (the
    yardstick for achieved GFLOP/s; about ``seconds`` of work, best of three runs)."""
    if not seconds > 0:
        raise ValueError(f"seconds: expected a positive duration, got {seconds!r}")
    cdef int64_t iters = 1 << 14
    cdef float sink = 0
    cdef int team = 1
    cdef double t = 0.0, best = 0.0
    while True:
        t0 = time.perf_counter()
        with nogil:
            team = fnn_fma_peak_run(iters, &sink)
        t = time.perf_counter() - t0
        if t >= seconds / 4 or iters >= (1 << 40):
            break
        iters *= 2
    for _ in range(3):
        t0 = time.perf_counter()
        with nogil:
            team = fnn_fma_peak_run(iters, &sink)
        t = time.perf_counter() - t0
        best = max(best, <double>team * iters * fnn_fma_peak_flops_per_iter() / t / 1e9)
    return best


def gemm_block_sizes():
    """Register and cache blocking of the active kernels, per dtype, and the cache sizes used."""
    cdef int64_t v[8]
    out = {"kernels": gemm_kernel_name()}
    for is_f64, label in ((0, "float32"), (1, "float64")):
        fnn_gemm_block_sizes(is_f64, v)
        out[label] = {"MR": v[0], "NR": v[1], "MC": v[2], "KC": v[3], "NC": v[4]}
    out["cache_bytes"] = {"L1d": v[5], "L2": v[6], "L3": v[7]}
    return out


def gemm_selftest():
    """Mismatches of the SIMD packing routines against the plain loop (-1: not runnable here)."""
    return fnn_gemm_selftest()


fnn_gemm_init()
