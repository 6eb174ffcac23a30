# _losses.pxi — fused loss value + gradient (src_c/losses.h).
#
# Each wrapper returns (status, bad, loss): status 0 ok, 1 an input element out
# of range, 2 a target element (or label) out of range, bad its flat index (row
# for cross-entropy). fastnn.ops turns a bad status into a friendly error.

cdef extern from "losses.h" nogil:
    int fnn_mse_loss_fused_f32(int64_t n, double *loss, int64_t *bad, float *grad,
                               const float *x, const float *y, int reduction)
    int fnn_mse_loss_fused_f64(int64_t n, double *loss, int64_t *bad, double *grad,
                               const double *x, const double *y, int reduction)
    int fnn_l1_loss_fused_f32(int64_t n, double *loss, int64_t *bad, float *grad,
                              const float *x, const float *y, int reduction)
    int fnn_l1_loss_fused_f64(int64_t n, double *loss, int64_t *bad, double *grad,
                              const double *x, const double *y, int reduction)
    int fnn_bce_loss_fused_f32(int64_t n, double *loss, int64_t *bad, float *grad,
                               const float *x, const float *y, int reduction)
    int fnn_bce_loss_fused_f64(int64_t n, double *loss, int64_t *bad, double *grad,
                               const double *x, const double *y, int reduction)
    int fnn_bce_logits_loss_fused_f32(int64_t n, double *loss, int64_t *bad, float *grad,
                                      const float *x, const float *y, int reduction)
    int fnn_bce_logits_loss_fused_f64(int64_t n, double *loss, int64_t *bad, double *grad,
                                      const double *x, const double *y, int reduction)
    int fnn_cross_entropy_fused_f32(int64_t rows, int64_t cols, double *loss, int64_t *bad,
                                    float *grad, const float *x, const int64_t *labels,
                                    int reduction, double label_smoothing)
    int fnn_cross_entropy_fused_f64(int64_t rows, int64_t cols, double *loss, int64_t *bad,
                                    double *grad, const double *x, const int64_t *labels,
                                    int reduction, double label_smoothing)

ctypedef int (*_loss_f32_t)(int64_t, double *, int64_t *, float *, const float *,
                            const float *, int) noexcept nogil
ctypedef int (*_loss_f64_t)(int64_t, double *, int64_t *, double *, const double *,
                            const double *, int) noexcept nogil


cdef inline int _reduction_code(int reduction) except -1:
    if reduction != FNN_REDUCE_MEAN and reduction != FNN_REDUCE_SUM:
        raise ValueError(f"reduction: expected code 0 ('mean') or 1 ('sum'), got {reduction}")
    return reduction


cdef tuple _elementwise_loss(_loss_f32_t f32, _loss_f64_t f64, cnp.ndarray x, cnp.ndarray y,
                             object grad, int reduction):
    cdef int kind = _kind(x, "input")
    cdef int64_t n = cnp.PyArray_SIZE(x)
    _reduction_code(reduction)
    if n < 1:
        raise ValueError("input: empty batch")
    _contig(x, "input")
    _in_array(y, "target", kind, n)
    cdef void *pg = NULL
    if grad is not None:
        _out_array(<cnp.ndarray?>grad, "grad", kind, n)
        _apart(grad, "grad", ("input", x, "target", y))
        pg = cnp.PyArray_DATA(<cnp.ndarray>grad)
    cdef const void *px = cnp.PyArray_DATA(x)
    cdef const void *py = cnp.PyArray_DATA(y)
    cdef double loss = 0.0
    cdef int64_t bad = -1
    cdef int status
    with nogil:
        if kind == 0:
            status = f32(n, &loss, &bad, <float *>pg, <const float *>px, <const float *>py, reduction)
        else:
            status = f64(n, &loss, &bad, <double *>pg, <const double *>px, <const double *>py, reduction)
    return status, bad, loss


def mse_loss_fused(cnp.ndarray x, cnp.ndarray y, grad, int reduction):
    """mean/sum of (x−y)²; grad (None or x's size, dtype, contiguous) filled in the same pass."""
    return _elementwise_loss(fnn_mse_loss_fused_f32, fnn_mse_loss_fused_f64, x, y, grad, reduction)


def l1_loss_fused(cnp.ndarray x, cnp.ndarray y, grad, int reduction):
    """mean/sum of |x−y|."""
    return _elementwise_loss(fnn_l1_loss_fused_f32, fnn_l1_loss_fused_f64, x, y, grad, reduction)


def bce_loss_fused(cnp.ndarray x, cnp.ndarray y, grad, int reduction):
    """Binary cross-entropy on probabilities (logs clamped at −100)."""
    return _elementwise_loss(fnn_bce_loss_fused_f32, fnn_bce_loss_fused_f64, x, y, grad, reduction)


def bce_logits_loss_fused(cnp.ndarray x, cnp.ndarray y, grad, int reduction):
    """Binary cross-entropy on logits (stable softplus form)."""
    return _elementwise_loss(fnn_bce_logits_loss_fused_f32, fnn_bce_logits_loss_fused_f64,
                             x, y, grad, reduction)


def cross_entropy_fused(cnp.ndarray x, cnp.ndarray labels, grad, int reduction,
                        double label_smoothing):
    """Softmax cross-entropy of logits x (rows, cols) with int64 labels (rows,)."""
    cdef int kind = _kind(x, "input")
    _reduction_code(reduction)
    if cnp.PyArray_NDIM(x) != 2:
        raise ValueError(f"input: expected a 2-D array (N, C), got shape {(<object>x).shape}")
    cdef int64_t rows = x.shape[0]
    cdef int64_t cols = x.shape[1]
    if rows < 1:
        raise ValueError("input: empty batch")
    if cols < 1:
        raise ValueError(f"input: expected at least one class, got shape {(<object>x).shape}")
    if not (0.0 <= label_smoothing <= 1.0):
        raise ValueError(f"label_smoothing: expected a value in [0, 1], got {label_smoothing}")
    _contig(x, "input")
    if cnp.PyArray_TYPE(labels) != cnp.NPY_INT64:
        raise TypeError(f"target: expected int64 labels, got dtype {labels.dtype}")
    _contig(labels, "target")
    _same_size(labels, "target", rows)
    cdef void *pg = NULL
    if grad is not None:
        _out_array(<cnp.ndarray?>grad, "grad", kind, rows * cols)
        _apart(grad, "grad", ("input", x, "target", labels))
        pg = cnp.PyArray_DATA(<cnp.ndarray>grad)
    cdef const void *px = cnp.PyArray_DATA(x)
    cdef const int64_t *pl = <const int64_t *>cnp.PyArray_DATA(labels)
    cdef double loss = 0.0
    cdef int64_t bad = -1
    cdef int status
    with nogil:
        if kind == 0:
            status = fnn_cross_entropy_fused_f32(rows, cols, &loss, &bad, <float *>pg,
                                                 <const float *>px, pl, reduction, label_smoothing)
        else:
            status = fnn_cross_entropy_fused_f64(rows, cols, &loss, &bad, <double *>pg,
                                                 <const double *>px, pl, reduction, label_smoothing)
    return status, bad, loss
