# _optim.pxi — fused optimizer updates and clipping helpers (src_c/optim.h).
#
# Every array is a contiguous buffer of n elements of one float dtype; updated
# arrays must be writable and must not overlap each other or the gradient (the
# C kernels declare them restrict). Hyper-parameter ranges are checked one
# level up, in fastnn.ops.optim; here only what memory safety depends on.

cdef extern from "optim.h" nogil:
    void fnn_sgd_step_f32(int64_t n, float *param, float *buf, const float *grad, double lr,
                          double momentum, double dampening, double weight_decay, int mode,
                          int nesterov, int maximize)
    void fnn_sgd_step_f64(int64_t n, double *param, double *buf, const double *grad, double lr,
                          double momentum, double dampening, double weight_decay, int mode,
                          int nesterov, int maximize)
    void fnn_adam_step_f32(int64_t n, float *param, float *exp_avg, float *exp_avg_sq,
                           float *max_exp_avg_sq, const float *grad, int64_t step, double lr,
                           double beta1, double beta2, double eps, double weight_decay,
                           int amsgrad, int maximize, int decoupled)
    void fnn_adam_step_f64(int64_t n, double *param, double *exp_avg, double *exp_avg_sq,
                           double *max_exp_avg_sq, const double *grad, int64_t step, double lr,
                           double beta1, double beta2, double eps, double weight_decay,
                           int amsgrad, int maximize, int decoupled)
    void fnn_rmsprop_step_f32(int64_t n, float *param, float *square_avg, float *grad_avg,
                              float *momentum_buffer, const float *grad, double lr, double alpha,
                              double eps, double weight_decay, double momentum, int centered,
                              int maximize)
    void fnn_rmsprop_step_f64(int64_t n, double *param, double *square_avg, double *grad_avg,
                              double *momentum_buffer, const double *grad, double lr, double alpha,
                              double eps, double weight_decay, double momentum, int centered,
                              int maximize)
    void fnn_adagrad_step_f32(int64_t n, float *param, float *state_sum, const float *grad,
                              int64_t step, double lr, double lr_decay, double weight_decay,
                              double eps, int maximize)
    void fnn_adagrad_step_f64(int64_t n, double *param, double *state_sum, const double *grad,
                              int64_t step, double lr, double lr_decay, double weight_decay,
                              double eps, int maximize)
    double fnn_grad_norm_f32(int64_t n, const float *x, double norm_type)
    double fnn_grad_norm_f64(int64_t n, const double *x, double norm_type)
    void fnn_scale_f32(int64_t n, float *x, double factor)
    void fnn_scale_f64(int64_t n, double *x, double factor)
    void fnn_clamp_f32(int64_t n, float *x, double low, double high)
    void fnn_clamp_f64(int64_t n, double *x, double low, double high)
    int fnn_all_finite_f32(int64_t n, const float *x)
    int fnn_all_finite_f64(int64_t n, const double *x)
    int fnn_optim_simd_bytes()
    int fnn_optim_set_simd_bytes(int nbytes)


def optim_simd_bytes():
    """Vector width (bytes) of the optimizer kernels: 32 (AVX2), 16 or 0 (scalar build)."""
    return fnn_optim_simd_bytes()


def optim_set_simd_bytes(int nbytes):
    """Force a narrower vector width for the optimizer kernels (<= 0: the best available);
    returns the width now in use. All widths give identical results (tests check this)."""
    return fnn_optim_set_simd_bytes(nbytes)


cdef inline void *_state_ptr(object a, str name, int kind, int64_t n) except? NULL:
    """Data pointer of an updated array (None → NULL)."""
    if a is None:
        return NULL
    if not isinstance(a, cnp.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    _out_array(<cnp.ndarray>a, name, kind, n)
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef int _check_disjoint(list arrays, list names) except -1:
    """Contiguous arrays overlap exactly when their byte ranges intersect."""
    cdef Py_ssize_t i, j
    cdef size_t lo_i, hi_i, lo_j, hi_j
    cdef cnp.ndarray a, b
    for i in range(len(arrays)):
        if arrays[i] is None:
            continue
        a = <cnp.ndarray>arrays[i]
        lo_i = <size_t>cnp.PyArray_DATA(a)
        hi_i = lo_i + <size_t>cnp.PyArray_NBYTES(a)
        for j in range(i + 1, len(arrays)):
            if arrays[j] is None:
                continue
            b = <cnp.ndarray>arrays[j]
            lo_j = <size_t>cnp.PyArray_DATA(b)
            hi_j = lo_j + <size_t>cnp.PyArray_NBYTES(b)
            if lo_i < hi_j and lo_j < hi_i and hi_i > lo_i and hi_j > lo_j:
                raise ValueError(f"{names[j]}: must not share memory with {names[i]}")
    return 0


cdef inline int _grad_kind(cnp.ndarray param, cnp.ndarray grad, int64_t *n) except -1:
    cdef int kind = _kind(param, "param")
    n[0] = cnp.PyArray_SIZE(param)
    _out_array(param, "param", kind, n[0])
    _in_array(grad, "grad", kind, n[0])
    return kind


def sgd_step(cnp.ndarray param, cnp.ndarray grad, momentum_buffer, double lr, double momentum,
             double dampening, double weight_decay, int mode, bint nesterov, bint maximize):
    """One SGD update in place; mode 0: no momentum, 1: first step (buffer ← g), 2: later."""
    cdef int64_t n
    cdef int kind = _grad_kind(param, grad, &n)
    if mode != 0 and momentum_buffer is None:
        raise ValueError("momentum_buffer: required when momentum != 0")
    cdef void *pb = _state_ptr(momentum_buffer, "momentum_buffer", kind, n) if mode != 0 else NULL
    _check_disjoint([param, grad, momentum_buffer if mode != 0 else None],
                    ["param", "grad", "momentum_buffer"])
    cdef void *pp = cnp.PyArray_DATA(param)
    cdef const void *pg = cnp.PyArray_DATA(grad)
    with nogil:
        if kind == 0:
            fnn_sgd_step_f32(n, <float *>pp, <float *>pb, <const float *>pg, lr, momentum,
                             dampening, weight_decay, mode, nesterov, maximize)
        else:
            fnn_sgd_step_f64(n, <double *>pp, <double *>pb, <const double *>pg, lr, momentum,
                             dampening, weight_decay, mode, nesterov, maximize)


def adam_step(cnp.ndarray param, cnp.ndarray grad, cnp.ndarray exp_avg, cnp.ndarray exp_avg_sq,
              max_exp_avg_sq, int64_t step, double lr, double beta1, double beta2, double eps,
              double weight_decay, bint amsgrad, bint maximize, bint decoupled):
    """One Adam (AdamW when decoupled) update in place at step t >= 1."""
    cdef int64_t n
    cdef int kind = _grad_kind(param, grad, &n)
    if step < 1:
        raise ValueError(f"step: expected a step count >= 1, got {step}")
    if amsgrad and max_exp_avg_sq is None:
        raise ValueError("max_exp_avg_sq: required when amsgrad=True")
    cdef void *pm = _state_ptr(exp_avg, "exp_avg", kind, n)
    cdef void *pv = _state_ptr(exp_avg_sq, "exp_avg_sq", kind, n)
    cdef void *pvm = _state_ptr(max_exp_avg_sq, "max_exp_avg_sq", kind, n) if amsgrad else NULL
    _check_disjoint([param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq if amsgrad else None],
                    ["param", "grad", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"])
    cdef void *pp = cnp.PyArray_DATA(param)
    cdef const void *pg = cnp.PyArray_DATA(grad)
    with nogil:
        if kind == 0:
            fnn_adam_step_f32(n, <float *>pp, <float *>pm, <float *>pv, <float *>pvm,
                              <const float *>pg, step, lr, beta1, beta2, eps, weight_decay,
                              amsgrad, maximize, decoupled)
        else:
            fnn_adam_step_f64(n, <double *>pp, <double *>pm, <double *>pv, <double *>pvm,
                              <const double *>pg, step, lr, beta1, beta2, eps, weight_decay,
                              amsgrad, maximize, decoupled)


def rmsprop_step(cnp.ndarray param, cnp.ndarray grad, cnp.ndarray square_avg, grad_avg,
                 momentum_buffer, double lr, double alpha, double eps, double weight_decay,
                 double momentum, bint centered, bint maximize):
    """One RMSprop update in place."""
    cdef int64_t n
    cdef int kind = _grad_kind(param, grad, &n)
    if centered and grad_avg is None:
        raise ValueError("grad_avg: required when centered=True")
    if momentum > 0 and momentum_buffer is None:
        raise ValueError("momentum_buffer: required when momentum > 0")
    cdef void *pv = _state_ptr(square_avg, "square_avg", kind, n)
    cdef void *pga = _state_ptr(grad_avg, "grad_avg", kind, n) if centered else NULL
    cdef void *pb = _state_ptr(momentum_buffer, "momentum_buffer", kind, n) if momentum > 0 else NULL
    _check_disjoint([param, grad, square_avg, grad_avg if centered else None,
                     momentum_buffer if momentum > 0 else None],
                    ["param", "grad", "square_avg", "grad_avg", "momentum_buffer"])
    cdef void *pp = cnp.PyArray_DATA(param)
    cdef const void *pg = cnp.PyArray_DATA(grad)
    with nogil:
        if kind == 0:
            fnn_rmsprop_step_f32(n, <float *>pp, <float *>pv, <float *>pga, <float *>pb,
                                 <const float *>pg, lr, alpha, eps, weight_decay, momentum,
                                 centered, maximize)
        else:
            fnn_rmsprop_step_f64(n, <double *>pp, <double *>pv, <double *>pga, <double *>pb,
                                 <const double *>pg, lr, alpha, eps, weight_decay, momentum,
                                 centered, maximize)


def adagrad_step(cnp.ndarray param, cnp.ndarray grad, cnp.ndarray state_sum, int64_t step,
                 double lr, double lr_decay, double weight_decay, double eps, bint maximize):
    """One Adagrad update in place at step t >= 1."""
    cdef int64_t n
    cdef int kind = _grad_kind(param, grad, &n)
    if step < 1:
        raise ValueError(f"step: expected a step count >= 1, got {step}")
    cdef void *ps = _state_ptr(state_sum, "state_sum", kind, n)
    _check_disjoint([param, grad, state_sum], ["param", "grad", "state_sum"])
    cdef void *pp = cnp.PyArray_DATA(param)
    cdef const void *pg = cnp.PyArray_DATA(grad)
    with nogil:
        if kind == 0:
            fnn_adagrad_step_f32(n, <float *>pp, <float *>ps, <const float *>pg, step, lr,
                                 lr_decay, weight_decay, eps, maximize)
        else:
            fnn_adagrad_step_f64(n, <double *>pp, <double *>ps, <const double *>pg, step, lr,
                                 lr_decay, weight_decay, eps, maximize)


def grad_norm(cnp.ndarray x, double norm_type):
    """‖x‖_p of a contiguous array, in double, thread-count independent."""
    cdef int kind = _kind(x, "x")
    _contig(x, "x")
    if not (norm_type > 0):
        raise ValueError(f"norm_type: expected a value > 0 or inf, got {norm_type}")
    cdef int64_t n = cnp.PyArray_SIZE(x)
    cdef const void *px = cnp.PyArray_DATA(x)
    cdef double r
    with nogil:
        if kind == 0:
            r = fnn_grad_norm_f32(n, <const float *>px, norm_type)
        else:
            r = fnn_grad_norm_f64(n, <const double *>px, norm_type)
    return r


def scale_(cnp.ndarray x, double factor):
    """x *= factor, in place."""
    cdef int kind = _kind(x, "x")
    cdef int64_t n = cnp.PyArray_SIZE(x)
    _out_array(x, "x", kind, n)
    cdef void *px = cnp.PyArray_DATA(x)
    with nogil:
        if kind == 0:
            fnn_scale_f32(n, <float *>px, factor)
        else:
            fnn_scale_f64(n, <double *>px, factor)


def clamp_(cnp.ndarray x, double low, double high):
    """x = min(max(x, low), high), in place."""
    cdef int kind = _kind(x, "x")
    cdef int64_t n = cnp.PyArray_SIZE(x)
    _out_array(x, "x", kind, n)
    cdef void *px = cnp.PyArray_DATA(x)
    with nogil:
        if kind == 0:
            fnn_clamp_f32(n, <float *>px, low, high)
        else:
            fnn_clamp_f64(n, <double *>px, low, high)


def all_finite(cnp.ndarray x):
    """True when x holds no NaN or infinity."""
    cdef int kind = _kind(x, "x")
    _contig(x, "x")
    cdef int64_t n = cnp.PyArray_SIZE(x)
    cdef const void *px = cnp.PyArray_DATA(x)
    cdef int r
    with nogil:
        if kind == 0:
            r = fnn_all_finite_f32(n, <const float *>px)
        else:
            r = fnn_all_finite_f64(n, <const double *>px)
    return bool(r)
