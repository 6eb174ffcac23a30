# _dense.pxi — the fully connected layer (src_c/dense.h): GEMM + fused epilogue / prologue.

cdef extern from "dense.h" nogil:
    int fnn_dense_forward_f32(int64_t batch, int64_t n_in, int64_t n_out,
                              float *y, int64_t rs_y, int64_t cs_y,
                              float *z, int64_t rs_z, int64_t cs_z,
                              const float *x, int64_t rs_x, int64_t cs_x,
                              const float *w, int64_t rs_w, int64_t cs_w,
                              const float *bias, int act, double param, fnn_workspace *ws)
    int fnn_dense_forward_f64(int64_t batch, int64_t n_in, int64_t n_out,
                              double *y, int64_t rs_y, int64_t cs_y,
                              double *z, int64_t rs_z, int64_t cs_z,
                              const double *x, int64_t rs_x, int64_t cs_x,
                              const double *w, int64_t rs_w, int64_t cs_w,
                              const double *bias, int act, double param, fnn_workspace *ws)
    int fnn_dense_backward_f32(int64_t batch, int64_t n_in, int64_t n_out,
                               float *dx, float *dw, float *db,
                               const float *dy, int64_t rs_dy, int64_t cs_dy,
                               const float *x, int64_t rs_x, int64_t cs_x,
                               const float *w, int64_t rs_w, int64_t cs_w,
                               const float *saved, int64_t rs_s, int64_t cs_s,
                               int act, double param, fnn_workspace *ws)
    int fnn_dense_backward_f64(int64_t batch, int64_t n_in, int64_t n_out,
                               double *dx, double *dw, double *db,
                               const double *dy, int64_t rs_dy, int64_t cs_dy,
                               const double *x, int64_t rs_x, int64_t cs_x,
                               const double *w, int64_t rs_w, int64_t cs_w,
                               const double *saved, int64_t rs_s, int64_t cs_s,
                               int act, double param, fnn_workspace *ws)


cdef inline int _shape2(cnp.ndarray a, str name, int64_t r, int64_t c) except -1:
    if cnp.PyArray_DIM(a, 0) != r or cnp.PyArray_DIM(a, 1) != c:
        raise ValueError(f"{name}: expected shape ({r}, {c}), got {(<object>a).shape}")
    return 0


def dense_forward(Workspace ws, cnp.ndarray y, cnp.ndarray x, cnp.ndarray w, object bias,
                  object preact, int act, double param):
    """y = act(x·wᵀ + bias); preact (optional) receives x·wᵀ + bias. x, w, y, preact: any strides;
    bias: contiguous (out,). Outputs must not overlap inputs or each other (checked here)."""
    cdef int kind = _kind(x, "x")
    cdef int64_t rs_x, cs_x, rs_w, cs_w, rs_y, cs_y, rs_z = 0, cs_z = 0
    _matrix(x, "x", kind, &rs_x, &cs_x)
    _matrix(w, "weight", kind, &rs_w, &cs_w)
    _matrix(y, "out", kind, &rs_y, &cs_y)
    _writable(y, "out")
    _no_self_overlap(y, "out", rs_y, cs_y)
    cdef int64_t batch = cnp.PyArray_DIM(x, 0), n_in = cnp.PyArray_DIM(x, 1), n_out = cnp.PyArray_DIM(w, 0)
    _shape2(w, "weight", n_out, n_in)
    _shape2(y, "out", batch, n_out)
    if act < 0 or act >= FNN_ACT_COUNT:
        raise ValueError(f"act: unknown activation code {act}")
    cdef void *pz = NULL
    cdef const void *pbias = NULL
    cdef cnp.ndarray z_arr, b_arr
    if preact is not None:
        z_arr = preact
        _matrix(z_arr, "preact_out", kind, &rs_z, &cs_z)
        _writable(z_arr, "preact_out")
        _no_self_overlap(z_arr, "preact_out", rs_z, cs_z)
        _shape2(z_arr, "preact_out", batch, n_out)
        pz = cnp.PyArray_DATA(z_arr)
    if bias is not None:
        b_arr = bias
        _in_array(b_arr, "bias", kind, n_out)
        pbias = cnp.PyArray_DATA(b_arr)
    _apart(y, "out", ("x", x, "weight", w, "bias", bias))
    _apart(preact, "preact_out", ("x", x, "weight", w, "bias", bias, "out", y))
    cdef void *py = cnp.PyArray_DATA(y)
    cdef const void *px = cnp.PyArray_DATA(x)
    cdef const void *pw = cnp.PyArray_DATA(w)
    cdef int st
    with nogil:
        if kind == 0:
            st = fnn_dense_forward_f32(batch, n_in, n_out, <float *>py, rs_y, cs_y, <float *>pz, rs_z, cs_z,
                                       <const float *>px, rs_x, cs_x, <const float *>pw, rs_w, cs_w,
                                       <const float *>pbias, act, param, ws.ws)
        else:
            st = fnn_dense_forward_f64(batch, n_in, n_out, <double *>py, rs_y, cs_y, <double *>pz, rs_z, cs_z,
                                       <const double *>px, rs_x, cs_x, <const double *>pw, rs_w, cs_w,
                                       <const double *>pbias, act, param, ws.ws)
    _status(st)
    return y


def dense_backward(Workspace ws, object grad_input, object grad_weight, object grad_bias,
                   cnp.ndarray grad_out, cnp.ndarray x, cnp.ndarray w, object saved, int act, double param):
    """grad_input = dZ·w (overwritten), grad_weight += dZᵀ·x, grad_bias += Σ_rows dZ, with
    dZ = grad_out ⊙ act'(saved). grad_input/grad_weight/grad_bias: C-contiguous or None."""
    cdef int kind = _kind(grad_out, "grad_out")
    cdef int64_t rs_dy, cs_dy, rs_x, cs_x, rs_w, cs_w, rs_s = 0, cs_s = 0
    _matrix(grad_out, "grad_out", kind, &rs_dy, &cs_dy)
    _matrix(x, "x", kind, &rs_x, &cs_x)
    _matrix(w, "weight", kind, &rs_w, &cs_w)
    cdef int64_t batch = cnp.PyArray_DIM(x, 0), n_in = cnp.PyArray_DIM(x, 1), n_out = cnp.PyArray_DIM(w, 0)
    _shape2(w, "weight", n_out, n_in)
    _shape2(grad_out, "grad_out", batch, n_out)
    if act < 0 or act >= FNN_ACT_COUNT:
        raise ValueError(f"act: unknown activation code {act}")
    cdef cnp.ndarray s_arr, dx_arr, dw_arr, db_arr
    cdef const void *ps = NULL
    cdef void *pdx = NULL
    cdef void *pdw = NULL
    cdef void *pdb = NULL
    if act != FNN_ACT_NONE:
        if saved is None:
            raise ValueError("saved: required when an activation is given")
        s_arr = saved
        _matrix(s_arr, "saved", kind, &rs_s, &cs_s)
        _shape2(s_arr, "saved", batch, n_out)
        ps = cnp.PyArray_DATA(s_arr)
    if grad_input is not None:
        dx_arr = grad_input
        _out_array(dx_arr, "grad_input", kind, batch * n_in)
        pdx = cnp.PyArray_DATA(dx_arr)
    if grad_weight is not None:
        dw_arr = grad_weight
        _out_array(dw_arr, "grad_weight", kind, n_out * n_in)
        pdw = cnp.PyArray_DATA(dw_arr)
    if grad_bias is not None:
        db_arr = grad_bias
        _out_array(db_arr, "grad_bias", kind, n_out)
        pdb = cnp.PyArray_DATA(db_arr)
    cdef object s_in = saved if act != FNN_ACT_NONE else None
    _apart(grad_weight, "grad_weight", ("grad_out", grad_out, "x", x, "weight", w, "saved", s_in))
    _apart(grad_bias, "grad_bias", ("grad_out", grad_out, "x", x, "weight", w, "saved", s_in,
                                    "grad_weight", grad_weight))
    _apart(grad_input, "grad_input", ("grad_out", grad_out, "x", x, "weight", w, "saved", s_in,
                                      "grad_weight", grad_weight, "grad_bias", grad_bias))
    cdef const void *pdy = cnp.PyArray_DATA(grad_out)
    cdef const void *px = cnp.PyArray_DATA(x)
    cdef const void *pw = cnp.PyArray_DATA(w)
    cdef int st
    with nogil:
        if kind == 0:
            st = fnn_dense_backward_f32(batch, n_in, n_out, <float *>pdx, <float *>pdw, <float *>pdb,
                                        <const float *>pdy, rs_dy, cs_dy, <const float *>px, rs_x, cs_x,
                                        <const float *>pw, rs_w, cs_w, <const float *>ps, rs_s, cs_s,
                                        act, param, ws.ws)
        else:
            st = fnn_dense_backward_f64(batch, n_in, n_out, <double *>pdx, <double *>pdw, <double *>pdb,
                                        <const double *>pdy, rs_dy, cs_dy, <const double *>px, rs_x, cs_x,
                                        <const double *>pw, rs_w, cs_w, <const double *>ps, rs_s, cs_s,
                                        act, param, ws.ws)
    _status(st)
    return grad_input


def spans_disjoint(tuple outs, tuple ins):
    """True when the byte range of each array in ``outs`` meets neither another one of ``outs``
    nor any of ``ins`` (None entries are skipped; anything not an ndarray answers False).

    Conservative: interleaved strided views whose ranges meet are reported as overlapping,
    so a False sends the caller to its exact (slower) check, never to an error by itself."""
    cdef Py_ssize_t i, j, n_out = len(outs), n_in = len(ins)
    cdef size_t lo_i, hi_i, lo_j, hi_j
    cdef object a, b
    for i in range(n_out):
        a = outs[i]
        if a is None:
            continue
        if not isinstance(a, cnp.ndarray):
            return False
        if not _byte_span(a, &lo_i, &hi_i):
            continue
        for j in range(n_out + n_in):
            if j == i:
                continue
            b = outs[j] if j < n_out else ins[j - n_out]
            if b is None:
                continue
            if not isinstance(b, cnp.ndarray):
                return False
            if _byte_span(b, &lo_j, &hi_j) and lo_i < hi_j and lo_j < hi_i:
                return False
    return True
