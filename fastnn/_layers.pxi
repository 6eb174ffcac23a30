# _layers.pxi — dropout, batch norm and layer norm (src_c/layers.h).

from libc.stdint cimport uint8_t, uint64_t

cdef extern from "layers.h" nogil:
    void fnn_dropout_forward_f32(int64_t n, float *y, uint8_t *mask, const float *x,
                                 double p, uint64_t seed)
    void fnn_dropout_forward_f64(int64_t n, double *y, uint8_t *mask, const double *x,
                                 double p, uint64_t seed)
    void fnn_dropout_backward_f32(int64_t n, float *dx, const float *dy, const uint8_t *mask,
                                  double p)
    void fnn_dropout_backward_f64(int64_t n, double *dx, const double *dy, const uint8_t *mask,
                                  double p)
    void fnn_batch_norm_forward_f32(int64_t n, int64_t c, float *y, float *save_mean,
                                    float *save_invstd, float *running_mean, float *running_var,
                                    const float *x, const float *weight, const float *bias,
                                    int training, double momentum, double eps)
    void fnn_batch_norm_forward_f64(int64_t n, int64_t c, double *y, double *save_mean,
                                    double *save_invstd, double *running_mean, double *running_var,
                                    const double *x, const double *weight, const double *bias,
                                    int training, double momentum, double eps)
    void fnn_batch_norm_backward_f32(int64_t n, int64_t c, float *dx, float *grad_weight,
                                     float *grad_bias, const float *dy, const float *x,
                                     const float *weight, const float *save_mean,
                                     const float *save_invstd, int training)
    void fnn_batch_norm_backward_f64(int64_t n, int64_t c, double *dx, double *grad_weight,
                                     double *grad_bias, const double *dy, const double *x,
                                     const double *weight, const double *save_mean,
                                     const double *save_invstd, int training)
    void fnn_layer_norm_forward_f32(int64_t rows, int64_t cols, float *y, float *save_mean,
                                    float *save_invstd, const float *x, const float *weight,
                                    const float *bias, double eps)
    void fnn_layer_norm_forward_f64(int64_t rows, int64_t cols, double *y, double *save_mean,
                                    double *save_invstd, const double *x, const double *weight,
                                    const double *bias, double eps)
    void fnn_layer_norm_backward_f32(int64_t rows, int64_t cols, float *dx, float *grad_weight,
                                     float *grad_bias, const float *dy, const float *x,
                                     const float *weight, const float *save_mean,
                                     const float *save_invstd)
    void fnn_layer_norm_backward_f64(int64_t rows, int64_t cols, double *dx, double *grad_weight,
                                     double *grad_bias, const double *dy, const double *x,
                                     const double *weight, const double *save_mean,
                                     const double *save_invstd)


cdef inline void *_opt_data(cnp.ndarray a, str name, int kind, int64_t n, bint output) except? NULL:
    """Data pointer of an optional array (NULL for None) after the in/out checks."""
    if a is None:
        return NULL
    if output:
        _out_array(a, name, kind, n)
    else:
        _in_array(a, name, kind, n)
    return cnp.PyArray_DATA(a)


cdef inline int _mask_array(cnp.ndarray a, str name, int64_t n, bint output) except -1:
    """A dropout mask: uint8 (or bool, same layout), contiguous, n elements."""
    cdef int t = cnp.PyArray_TYPE(a)
    if t != cnp.NPY_UINT8 and t != cnp.NPY_BOOL:
        raise TypeError(f"{name}: expected a uint8 array, got dtype {a.dtype}")
    _contig(a, name)
    if output:
        _writable(a, name)
    _same_size(a, name, n)
    return 0


cdef inline int _sizes(int64_t rows, int64_t cols) except -1:
    if rows < 0 or cols < 0:
        raise ValueError(f"shape: expected non-negative sizes, got ({rows}, {cols})")
    return 0


def dropout_forward(cnp.ndarray out, cnp.ndarray mask, cnp.ndarray x, double p, uint64_t seed):
    """out = x·[u(seed, i) >= p]/(1−p); mask (uint8, optional) receives the keep flags."""
    cdef int kind = _kind(x, "x")
    cdef int64_t n = cnp.PyArray_SIZE(x)
    _contig(x, "x")
    _out_array(out, "out", kind, n)
    cdef uint8_t *pm = NULL
    if mask is not None:
        _mask_array(mask, "mask", n, True)
        pm = <uint8_t *>cnp.PyArray_DATA(mask)
    cdef void *py = cnp.PyArray_DATA(out)
    cdef const void *px = cnp.PyArray_DATA(x)
    with nogil:
        if kind == 0:
            fnn_dropout_forward_f32(n, <float *>py, pm, <const float *>px, p, seed)
        else:
            fnn_dropout_forward_f64(n, <double *>py, pm, <const double *>px, p, seed)


def dropout_backward(cnp.ndarray out, cnp.ndarray grad_out, cnp.ndarray mask, double p):
    """out = grad_out·mask/(1−p)."""
    cdef int kind = _kind(grad_out, "grad_out")
    cdef int64_t n = cnp.PyArray_SIZE(grad_out)
    _contig(grad_out, "grad_out")
    _mask_array(mask, "mask", n, False)
    _out_array(out, "out", kind, n)
    cdef void *pdx = cnp.PyArray_DATA(out)
    cdef const void *pdy = cnp.PyArray_DATA(grad_out)
    cdef const uint8_t *pm = <const uint8_t *>cnp.PyArray_DATA(mask)
    with nogil:
        if kind == 0:
            fnn_dropout_backward_f32(n, <float *>pdx, <const float *>pdy, pm, p)
        else:
            fnn_dropout_backward_f64(n, <double *>pdx, <const double *>pdy, pm, p)


def batch_norm_forward(cnp.ndarray out, cnp.ndarray save_mean, cnp.ndarray save_invstd,
                       cnp.ndarray running_mean, cnp.ndarray running_var, cnp.ndarray x,
                       cnp.ndarray weight, cnp.ndarray bias, int64_t n, int64_t c,
                       bint training, double momentum, double eps):
    """Batch norm of a contiguous (n, c) block; optional arrays may be None."""
    cdef int kind = _kind(x, "x")
    _sizes(n, c)
    _in_array(x, "x", kind, n * c)
    _out_array(out, "out", kind, n * c)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean: running_mean and running_var must both be given or both be None")
    cdef void *psm = _opt_data(save_mean, "save_mean", kind, c, True)
    cdef void *psi = _opt_data(save_invstd, "save_invstd", kind, c, True)
    cdef void *prm = _opt_data(running_mean, "running_mean", kind, c, True)
    cdef void *prv = _opt_data(running_var, "running_var", kind, c, True)
    cdef const void *pw = _opt_data(weight, "weight", kind, c, False)
    cdef const void *pb = _opt_data(bias, "bias", kind, c, False)
    cdef void *py = cnp.PyArray_DATA(out)
    cdef const void *px = cnp.PyArray_DATA(x)
    cdef int tr = training
    with nogil:
        if kind == 0:
            fnn_batch_norm_forward_f32(n, c, <float *>py, <float *>psm, <float *>psi, <float *>prm,
                                       <float *>prv, <const float *>px, <const float *>pw,
                                       <const float *>pb, tr, momentum, eps)
        else:
            fnn_batch_norm_forward_f64(n, c, <double *>py, <double *>psm, <double *>psi, <double *>prm,
                                       <double *>prv, <const double *>px, <const double *>pw,
                                       <const double *>pb, tr, momentum, eps)


def batch_norm_backward(cnp.ndarray grad_input, cnp.ndarray grad_weight, cnp.ndarray grad_bias,
                        cnp.ndarray grad_out, cnp.ndarray x, cnp.ndarray weight,
                        cnp.ndarray save_mean, cnp.ndarray save_invstd, int64_t n, int64_t c,
                        bint training):
    """Gradients of batch norm; grad_input/grad_weight/grad_bias may be None (not wanted)."""
    cdef int kind = _kind(grad_out, "grad_out")
    _sizes(n, c)
    _in_array(grad_out, "grad_out", kind, n * c)
    _in_array(x, "x", kind, n * c)
    _in_array(save_mean, "save_mean", kind, c)
    _in_array(save_invstd, "save_invstd", kind, c)
    cdef const void *pw = _opt_data(weight, "weight", kind, c, False)
    cdef void *pdx = _opt_data(grad_input, "grad_input", kind, n * c, True)
    cdef void *pgw = _opt_data(grad_weight, "grad_weight", kind, c, True)
    cdef void *pgb = _opt_data(grad_bias, "grad_bias", kind, c, True)
    cdef const void *pdy = cnp.PyArray_DATA(grad_out)
    cdef const void *px = cnp.PyArray_DATA(x)
    cdef const void *psm = cnp.PyArray_DATA(save_mean)
    cdef const void *psi = cnp.PyArray_DATA(save_invstd)
    cdef int tr = training
    with nogil:
        if kind == 0:
            fnn_batch_norm_backward_f32(n, c, <float *>pdx, <float *>pgw, <float *>pgb,
                                        <const float *>pdy, <const float *>px, <const float *>pw,
                                        <const float *>psm, <const float *>psi, tr)
        else:
            fnn_batch_norm_backward_f64(n, c, <double *>pdx, <double *>pgw, <double *>pgb,
                                        <const double *>pdy, <const double *>px, <const double *>pw,
                                        <const double *>psm, <const double *>psi, tr)


def layer_norm_forward(cnp.ndarray out, cnp.ndarray save_mean, cnp.ndarray save_invstd,
                       cnp.ndarray x, cnp.ndarray weight, cnp.ndarray bias,
                       int64_t rows, int64_t cols, double eps):
    """Layer norm over each row of a contiguous (rows, cols) block."""
    cdef int kind = _kind(x, "x")
    _sizes(rows, cols)
    if cols < 1 and rows > 0:
        raise ValueError(f"x: layer norm over an empty last axis, shape ({rows}, {cols})")
    _in_array(x, "x", kind, rows * cols)
    _out_array(out, "out", kind, rows * cols)
    cdef void *psm = _opt_data(save_mean, "save_mean", kind, rows, True)
    cdef void *psi = _opt_data(save_invstd, "save_invstd", kind, rows, True)
    cdef const void *pw = _opt_data(weight, "weight", kind, cols, False)
    cdef const void *pb = _opt_data(bias, "bias", kind, cols, False)
    cdef void *py = cnp.PyArray_DATA(out)
    cdef const void *px = cnp.PyArray_DATA(x)
    with nogil:
        if kind == 0:
            fnn_layer_norm_forward_f32(rows, cols, <float *>py, <float *>psm, <float *>psi,
                                       <const float *>px, <const float *>pw, <const float *>pb, eps)
        else:
            fnn_layer_norm_forward_f64(rows, cols, <double *>py, <double *>psm, <double *>psi,
                                       <const double *>px, <const double *>pw, <const double *>pb, eps)


def layer_norm_backward(cnp.ndarray grad_input, cnp.ndarray grad_weight, cnp.ndarray grad_bias,
                        cnp.ndarray grad_out, cnp.ndarray x, cnp.ndarray weight,
                        cnp.ndarray save_mean, cnp.ndarray save_invstd, int64_t rows, int64_t cols):
    """Gradients of layer norm; grad_input/grad_weight/grad_bias may be None (not wanted)."""
    cdef int kind = _kind(grad_out, "grad_out")
    _sizes(rows, cols)
    _in_array(grad_out, "grad_out", kind, rows * cols)
    _in_array(x, "x", kind, rows * cols)
    _in_array(save_mean, "save_mean", kind, rows)
    _in_array(save_invstd, "save_invstd", kind, rows)
    cdef const void *pw = _opt_data(weight, "weight", kind, cols, False)
    cdef void *pdx = _opt_data(grad_input, "grad_input", kind, rows * cols, True)
    cdef void *pgw = _opt_data(grad_weight, "grad_weight", kind, cols, True)
    cdef void *pgb = _opt_data(grad_bias, "grad_bias", kind, cols, True)
    cdef const void *pdy = cnp.PyArray_DATA(grad_out)
    cdef const void *px = cnp.PyArray_DATA(x)
    cdef const void *psm = cnp.PyArray_DATA(save_mean)
    cdef const void *psi = cnp.PyArray_DATA(save_invstd)
    with nogil:
        if kind == 0:
            fnn_layer_norm_backward_f32(rows, cols, <float *>pdx, <float *>pgw, <float *>pgb,
                                        <const float *>pdy, <const float *>px, <const float *>pw,
                                        <const float *>psm, <const float *>psi)
        else:
            fnn_layer_norm_backward_f64(rows, cols, <double *>pdx, <double *>pgw, <double *>pgb,
                                        <const double *>pdy, <const double *>px, <const double *>pw,
                                        <const double *>psm, <const double *>psi)
