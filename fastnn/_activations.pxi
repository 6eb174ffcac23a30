# _activations.pxi — elementwise activations and softmax (src_c/activations.h).

cdef extern from "activations.h" nogil:
    void fnn_act_forward_f32(int64_t n, float *y, const float *x, int act, double param)
    void fnn_act_forward_f64(int64_t n, double *y, const double *x, int act, double param)
    void fnn_act_backward_f32(int64_t n, float *dx, const float *dy, const float *x,
                              const float *y, int act, double param)
    void fnn_act_backward_f64(int64_t n, double *dx, const double *dy, const double *x,
                              const double *y, int act, double param)
    void fnn_softmax_forward_f32(int64_t rows, int64_t cols, float *y, const float *x)
    void fnn_softmax_forward_f64(int64_t rows, int64_t cols, double *y, const double *x)
    void fnn_softmax_backward_f32(int64_t rows, int64_t cols, float *dx, const float *dy,
                                  const float *y)
    void fnn_softmax_backward_f64(int64_t rows, int64_t cols, double *dx, const double *dy,
                                  const double *y)

# Sigmoid and tanh differentiate from the saved output, the others from the input.
cdef inline bint _act_reads_output(int act):
    return act == FNN_ACT_SIGMOID or act == FNN_ACT_TANH


def act_forward(cnp.ndarray out, cnp.ndarray x, int act, double param):
    """out[...] = act(x); both contiguous, same dtype and size; may alias."""
    cdef int kind = _kind(x, "x")
    cdef int64_t n = cnp.PyArray_SIZE(x)
    _contig(x, "x")
    _out_array(out, "out", kind, n)
    cdef void *py = cnp.PyArray_DATA(out)
    cdef const void *px = cnp.PyArray_DATA(x)
    with nogil:
        if kind == 0:
            fnn_act_forward_f32(n, <float *>py, <const float *>px, act, param)
        else:
            fnn_act_forward_f64(n, <double *>py, <const double *>px, act, param)


def act_backward(cnp.ndarray out, cnp.ndarray grad_out, cnp.ndarray saved, int act, double param):
    """out = grad_out · act'(…); `saved` is the forward output for sigmoid/tanh,
    the forward input otherwise."""
    cdef int kind = _kind(grad_out, "grad_out")
    cdef int64_t n = cnp.PyArray_SIZE(grad_out)
    _contig(grad_out, "grad_out")
    _in_array(saved, "saved", kind, n)
    _out_array(out, "out", kind, n)
    cdef void *pdx = cnp.PyArray_DATA(out)
    cdef const void *pdy = cnp.PyArray_DATA(grad_out)
    cdef const void *ps = cnp.PyArray_DATA(saved)
    cdef const void *px = NULL if _act_reads_output(act) else ps
    cdef const void *pyv = ps if _act_reads_output(act) else NULL
    with nogil:
        if kind == 0:
            fnn_act_backward_f32(n, <float *>pdx, <const float *>pdy, <const float *>px,
                                 <const float *>pyv, act, param)
        else:
            fnn_act_backward_f64(n, <double *>pdx, <const double *>pdy, <const double *>px,
                                 <const double *>pyv, act, param)


def softmax_forward(cnp.ndarray out, cnp.ndarray x, int64_t rows, int64_t cols):
    """Row-wise softmax of a contiguous (rows, cols) block."""
    cdef int kind = _kind(x, "x")
    if rows < 0 or cols < 1:
        raise ValueError(f"softmax needs at least one column, got shape ({rows}, {cols})")
    _in_array(x, "x", kind, rows * cols)
    _out_array(out, "out", kind, rows * cols)
    cdef void *py = cnp.PyArray_DATA(out)
    cdef const void *px = cnp.PyArray_DATA(x)
    with nogil:
        if kind == 0:
            fnn_softmax_forward_f32(rows, cols, <float *>py, <const float *>px)
        else:
            fnn_softmax_forward_f64(rows, cols, <double *>py, <const double *>px)


def softmax_backward(cnp.ndarray out, cnp.ndarray grad_out, cnp.ndarray y, int64_t rows, int64_t cols):
    """dx = y ⊙ (dy − Σ dy·y) per row."""
    cdef int kind = _kind(grad_out, "grad_out")
    if rows < 0 or cols < 1:
        raise ValueError(f"softmax needs at least one column, got shape ({rows}, {cols})")
    _in_array(grad_out, "grad_out", kind, rows * cols)
    _in_array(y, "y", kind, rows * cols)
    _out_array(out, "out", kind, rows * cols)
    cdef void *pdx = cnp.PyArray_DATA(out)
    cdef const void *pdy = cnp.PyArray_DATA(grad_out)
    cdef const void *pyv = cnp.PyArray_DATA(y)
    with nogil:
        if kind == 0:
            fnn_softmax_backward_f32(rows, cols, <float *>pdx, <const float *>pdy, <const float *>pyv)
        else:
            fnn_softmax_backward_f64(rows, cols, <double *>pdx, <const double *>pdy, <const double *>pyv)


cdef extern from "vmath.h" nogil:
    void fnn_vm_func_f32(int fn, int64_t n, float *y, const float *x)
    void fnn_vm_func_f64(int fn, int64_t n, double *y, const double *x)
    const char *fnn_vm_kernel_name()

_VMATH_FUNCS = {"exp": 0, "sigmoid": 1, "tanh": 2, "erf": 3}


def vmath_eval(str fn, cnp.ndarray out, cnp.ndarray x):
    """out[...] = fn(x) with vmath's vectorised exp/sigmoid/tanh/erf (for tests
    against libm); contiguous, same dtype and size; may alias."""
    if fn not in _VMATH_FUNCS:
        raise ValueError(f"fn must be one of {sorted(_VMATH_FUNCS)}, got {fn!r}")
    cdef int code = _VMATH_FUNCS[fn]
    cdef int kind = _kind(x, "x")
    cdef int64_t n = cnp.PyArray_SIZE(x)
    _contig(x, "x")
    _out_array(out, "out", kind, n)
    cdef void *py = cnp.PyArray_DATA(out)
    cdef const void *px = cnp.PyArray_DATA(x)
    with nogil:
        if kind == 0:
            fnn_vm_func_f32(code, n, <float *>py, <const float *>px)
        else:
            fnn_vm_func_f64(code, n, <double *>py, <const double *>px)


def vmath_kernel_name():
    """Which vmath implementation runs: 'avx2' or 'portable' (follows the GEMM's kernel set)."""
    return fnn_vm_kernel_name().decode()


cdef extern from "vmath.h" nogil:
    void fnn_vm_libm_act_f32(int64_t n, float *y, const float *x, int act)
    void fnn_vm_libm_act_f64(int64_t n, double *y, const double *x, int act)
    void fnn_vm_libm_act_backward_f32(int64_t n, float *dx, const float *dy, const float *x, int act)
    void fnn_vm_libm_act_backward_f64(int64_t n, double *dx, const double *dy, const double *x, int act)
    void fnn_vm_one_lane_act_f32(int64_t n, float *y, const float *x, int act)
    void fnn_vm_one_lane_act_f64(int64_t n, double *y, const double *x, int act)


def act_baseline(str path, cnp.ndarray out, cnp.ndarray x, int act, object grad_out=None):
    """Benchmark baselines for the transcendental activations (single thread):
    path 'libm' — the libm formulas one element at a time (fastnn before vmath;
    with grad_out: the GELU backward out = grad_out·act'(x)); 'one_lane' — a loop
    over vmath's one-element call (the GEMM epilogue's path)."""
    if path not in ("libm", "one_lane"):
        raise ValueError(f"path must be 'libm' or 'one_lane', got {path!r}")
    cdef int kind = _kind(x, "x")
    cdef int64_t n = cnp.PyArray_SIZE(x)
    _contig(x, "x")
    _out_array(out, "out", kind, n)
    cdef cnp.ndarray dy
    cdef const void *pdy = NULL
    if grad_out is not None:
        if path != "libm":
            raise ValueError("grad_out: only the 'libm' path has a backward")
        dy = grad_out
        _in_array(dy, "grad_out", kind, n)
        pdy = cnp.PyArray_DATA(dy)
    cdef void *py = cnp.PyArray_DATA(out)
    cdef const void *px = cnp.PyArray_DATA(x)
    cdef bint libm = path == "libm"
    with nogil:
        if pdy != NULL:
            if kind == 0:
                fnn_vm_libm_act_backward_f32(n, <float *>py, <const float *>pdy, <const float *>px, act)
            else:
                fnn_vm_libm_act_backward_f64(n, <double *>py, <const double *>pdy, <const double *>px, act)
        elif libm:
            if kind == 0:
                fnn_vm_libm_act_f32(n, <float *>py, <const float *>px, act)
            else:
                fnn_vm_libm_act_f64(n, <double *>py, <const double *>px, act)
        else:
            if kind == 0:
                fnn_vm_one_lane_act_f32(n, <float *>py, <const float *>px, act)
            else:
                fnn_vm_one_lane_act_f64(n, <double *>py, <const double *>px, act)
