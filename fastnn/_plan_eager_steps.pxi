# _plan_eager_steps.pxi — the PyTorch-style loop's loss calls and optimizer steps in one compiled
# call each (see _plan_eager.pxi): the checks the per-module path would pass without a word, then
# the same kernel; None / False sends the call to the usual path, which checks and explains.

from cpython.ref cimport Py_REFCNT
import weakref as _weakref


# --- losses -------------------------------------------------------------------------------

cdef double _F32_MAX = 3.4028234663852886e38


cdef inline bint _loss_operand(object a, int typenum):
    if not isinstance(a, cnp.ndarray):
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    return (cnp.PyArray_TYPE(arr) == typenum and cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISALIGNED(arr)
            and cnp.PyArray_ISNOTSWAPPED(arr) and cnp.PyArray_SIZE(arr) > 0)


cdef int _loss_kernel(int code, bint f64, int64_t n, int64_t rows, int64_t cols, double *loss, int64_t *bad,
                      void *pg, const void *px, const void *py, int reduction, double smoothing) noexcept nogil:
    """The loss kernel of ops' loss functions for this code and type."""
    if code == 4:
        if f64:
            return fnn_cross_entropy_fused_f64(rows, cols, loss, bad, <double *>pg, <const double *>px,
                                                 <const int64_t *>py, reduction, smoothing)
        else:
            return fnn_cross_entropy_fused_f32(rows, cols, loss, bad, <float *>pg, <const float *>px,
                                                 <const int64_t *>py, reduction, smoothing)
    elif f64:
        if code == 0:
            return fnn_mse_loss_fused_f64(n, loss, bad, <double *>pg, <const double *>px, <const double *>py, reduction)
        elif code == 1:
            return fnn_l1_loss_fused_f64(n, loss, bad, <double *>pg, <const double *>px, <const double *>py, reduction)
        elif code == 2:
            return fnn_bce_loss_fused_f64(n, loss, bad, <double *>pg, <const double *>px, <const double *>py, reduction)
        else:
            return fnn_bce_logits_loss_fused_f64(n, loss, bad, <double *>pg, <const double *>px, <const double *>py, reduction)
    else:
        if code == 0:
            return fnn_mse_loss_fused_f32(n, loss, bad, <float *>pg, <const float *>px, <const float *>py, reduction)
        elif code == 1:
            return fnn_l1_loss_fused_f32(n, loss, bad, <float *>pg, <const float *>px, <const float *>py, reduction)
        elif code == 2:
            return fnn_bce_loss_fused_f32(n, loss, bad, <float *>pg, <const float *>px, <const float *>py, reduction)
        else:
            return fnn_bce_logits_loss_fused_f32(n, loss, bad, <float *>pg, <const float *>px, <const float *>py, reduction)


def eager_loss(object module, object input, object target):
    """``module(input, target)`` as the per-module path computes it (the loss kernel, the
    gradient kept on the module when input came from a fastnn module), or None for anything
    that path must see (another loss class, an option out of range, conversions, bad values, a
    float32 overflow, the reference backend)."""
    entry = _loss_codes.get(type(module))
    if entry is None or not _on_c_backend() or not isinstance(input, cnp.ndarray):
        return None
    cdef int code = entry
    d = module.__dict__
    if "forward" in d or "__call__" in d:
        return None
    red_o = d.get("reduction")
    cdef int reduction
    if red_o == "mean":
        reduction = 0
    elif red_o == "sum":
        reduction = 1
    else:
        return None
    cdef double smoothing = 0.0
    if code == 4:
        ls = d.get("label_smoothing")
        if type(ls) is not float or not (0.0 <= <double>ls <= 1.0):
            return None
        smoothing = ls
    cdef cnp.ndarray x = <cnp.ndarray>input
    cdef int typenum = cnp.PyArray_TYPE(x)
    if typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64:
        return None
    if not _loss_operand(x, typenum):
        return None
    cdef cnp.ndarray y
    cdef int64_t n = cnp.PyArray_SIZE(x), rows = 0, cols = 0
    if code == 4:
        if cnp.PyArray_NDIM(x) != 2 or not _loss_operand(target, cnp.NPY_INT64):
            return None
        y = <cnp.ndarray>target
        rows = cnp.PyArray_DIM(x, 0)
        cols = cnp.PyArray_DIM(x, 1)
        if cnp.PyArray_NDIM(y) != 1 or cnp.PyArray_DIM(y, 0) != rows:
            return None
    else:
        if not _loss_operand(target, typenum):
            return None
        y = <cnp.ndarray>target
        if not cnp.PyArray_SAMESHAPE(x, y):
            return None
    link = getattr(input, "_link", None)
    cdef cnp.ndarray grad = None
    cdef void *pg = NULL
    if link is not None:
        # The last call's gradient array when nothing but this module refers to it any more (its
        # backward is done): the same values a new one would get, without the allocation.
        old = d.get("_grad")
        if (old is not None and Py_REFCNT(old) == 2 and type(old) is np.ndarray
                and cnp.PyArray_TYPE(<cnp.ndarray>old) == typenum
                and cnp.PyArray_SAMESHAPE(<cnp.ndarray>old, x)):
            grad = <cnp.ndarray>old
        else:
            grad = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), typenum, 0)
        old = None
        pg = cnp.PyArray_DATA(grad)
    cdef const void *px = cnp.PyArray_DATA(x)
    cdef const void *py = cnp.PyArray_DATA(y)
    cdef double loss = 0.0
    cdef int64_t bad = -1
    cdef int status
    cdef bint f64 = typenum == cnp.NPY_FLOAT64
    if n >= 4096:
        with nogil:
            status = _loss_kernel(code, f64, n, rows, cols, &loss, &bad, pg, px, py, reduction, smoothing)
    else:  # releasing the GIL costs more than a tiny loss
        status = _loss_kernel(code, f64, n, rows, cols, &loss, &bad, pg, px, py, reduction, smoothing)
    if status != 0:
        return None  # the per-module path raises its error
    # ops' losses return float(loss); the module then makes np.array(value, dtype)
    if not f64 and not (-_F32_MAX <= loss <= _F32_MAX):
        return None  # overflow to inf: the per-module path's errstate handling
    cdef cnp.ndarray v = cnp.PyArray_EMPTY(0, NULL, typenum, 0)
    if f64:
        (<double *>cnp.PyArray_DATA(v))[0] = loss
    else:
        (<float *>cnp.PyArray_DATA(v))[0] = <float>loss
    d["_grad"] = grad
    cdef long count = d["_call_count"] + 1
    d["_call_count"] = count
    d["_forward_io"] = None
    t = PyArray_View(v, NULL, <void *>_Tensor)
    t._link = _LinkType((module, count, input))
    cnp.PyArray_CLEARFLAGS(<cnp.ndarray>t, cnp.NPY_ARRAY_WRITEABLE)
    return t


# --- optimizer steps ------------------------------------------------------------------------

cdef inline bint _real_ok(object v):
    """A finite Python float >= 0 (ops.optim._reals_ok's test)."""
    if type(v) is not float:
        return False
    cdef double d = <double>v
    return 0.0 <= d < _math.inf


cdef inline bint _is_bool(object v):
    return v is True or v is False


cdef inline void *_flat(object a, int typenum, int64_t n):
    """Data of a writable contiguous flat buffer of n elements of the type, else NULL."""
    if type(a) is not np.ndarray:
        return NULL
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if (cnp.PyArray_TYPE(arr) != typenum or cnp.PyArray_SIZE(arr) != n or not cnp.PyArray_IS_C_CONTIGUOUS(arr)
            or not cnp.PyArray_ISALIGNED(arr) or not cnp.PyArray_ISWRITEABLE(arr)):
        return NULL
    return cnp.PyArray_DATA(arr)


cdef inline bint _eager_apart(void *a, void *b, int64_t bytes):
    return a == NULL or b == NULL or <char *>a + bytes <= <char *>b or <char *>b + bytes <= <char *>a


cdef inline void _sgd(bint f64, int64_t n, void *pp, void *s0, const void *pgr, double lr, double momentum,
                      double dampening, double wd, int mode, int nesterov, int maximize) noexcept nogil:
    if f64:
        fnn_sgd_step_f64(n, <double *>pp, <double *>s0, <const double *>pgr, lr, momentum, dampening, wd, mode,
                         nesterov, maximize)
    else:
        fnn_sgd_step_f32(n, <float *>pp, <float *>s0, <const float *>pgr, lr, momentum, dampening, wd, mode,
                         nesterov, maximize)


cdef inline void _adam(bint f64, int64_t n, void *pp, void *s0, void *s1, void *s2, const void *pgr,
                       int64_t step, double lr, double beta1, double beta2, double eps, double wd, int amsgrad,
                       int maximize, int decoupled) noexcept nogil:
    if f64:
        fnn_adam_step_f64(n, <double *>pp, <double *>s0, <double *>s1, <double *>s2, <const double *>pgr,
                          step, lr, beta1, beta2, eps, wd, amsgrad, maximize, decoupled)
    else:
        fnn_adam_step_f32(n, <float *>pp, <float *>s0, <float *>s1, <float *>s2, <const float *>pgr,
                          step, lr, beta1, beta2, eps, wd, amsgrad, maximize, decoupled)


cdef class _EagerFlat:
    """What the one-call step keeps of an optimizer's flat_state(0) (one group, one arena): its
    pointers, valid while the optimizer's flat_version is and the arena is not stale."""
    cdef object ref               # weak reference to the optimizer
    cdef object arena, fs         # fs keeps the arrays alive
    cdef int64_t version          # flat_version when asked (-1: the arena only, for zero_grad)
    cdef int typenum, have, sgd_mode
    cdef int64_t n, nbytes
    cdef void *pp
    cdef void *pgr
    cdef void *slot[3]
    cdef double *step


# id(optimizer) -> _EagerFlat; an entry leaves when its optimizer dies (the weak reference's
# callback runs before the id can be reused).
cdef dict _eager_flat = {}


cdef _EagerFlat _eager_entry(object opt):
    """opt's entry, made (arena not yet known) when missing."""
    key = id(opt)
    e = _eager_flat.get(key)
    if e is not None:
        return <_EagerFlat>e
    cdef _EagerFlat ne = _EagerFlat.__new__(_EagerFlat)
    ne.ref = _weakref.ref(opt, lambda r, k=key: _eager_flat.pop(k, None))
    ne.version = -1
    _eager_flat[key] = ne
    return ne


cdef bint _eager_refresh(_EagerFlat e, object opt, int typenum, int need) except -1:
    """Ask opt for its flat state (it makes what the options use); False when the one-call step
    cannot take it (the usual path then runs, and checks and explains)."""
    arenas = opt.group_arenas(0)
    if len(arenas) != 1:
        return False
    arena = arenas[0]
    data, grad = arena.data, arena.grad
    if type(data) is not np.ndarray or cnp.PyArray_TYPE(<cnp.ndarray>data) != typenum:
        return False
    cdef int64_t n = cnp.PyArray_SIZE(<cnp.ndarray>data)
    cdef int64_t nbytes = n * cnp.PyArray_ITEMSIZE(<cnp.ndarray>data)
    cdef void *pp = _flat(data, typenum, n)
    cdef void *pgr = _flat(grad, typenum, n)
    if pp == NULL or pgr == NULL or not _eager_apart(pp, pgr, nbytes):
        return False
    fs = opt.flat_state(0)
    if fs.arena is not arena:
        return False
    cdef tuple bufs = tuple(fs.buffers)
    cdef Py_ssize_t k, j
    cdef int have = 0
    cdef void *slot[3]
    for k in range(3):
        slot[k] = NULL
        if k < len(bufs) and bufs[k] is not None:
            slot[k] = _flat(bufs[k], typenum, n)
            if slot[k] == NULL or not _eager_apart(slot[k], pp, nbytes) or not _eager_apart(slot[k], pgr, nbytes):
                return False
            for j in range(k):
                if not _eager_apart(slot[k], slot[j], nbytes):
                    return False
            have |= 1 << k
    if need & ~have:
        return False
    cdef double *step = NULL
    st = fs.step
    if st is not None:
        if (type(st) is not np.ndarray or cnp.PyArray_TYPE(<cnp.ndarray>st) != cnp.NPY_FLOAT64
                or cnp.PyArray_NDIM(<cnp.ndarray>st) != 0 or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>st)):
            return False
        step = <double *>cnp.PyArray_DATA(<cnp.ndarray>st)
    e.arena, e.fs = arena, fs
    e.typenum, e.have, e.n, e.nbytes, e.pp, e.pgr, e.step = typenum, have, n, nbytes, pp, pgr, step
    for k in range(3):
        e.slot[k] = slot[k]
    e.sgd_mode = 1 if fs.first else 2  # PyTorch: the first step copies the gradient into the buffer
    e.version = opt.flat_version
    return True


def eager_optimizer_step(object opt):
    """``opt.step()`` for one group of one arena with plain hyper-parameters: the update
    ``_update`` would run (the same kernel, the state from ``opt.flat_state(0)``), or False when
    the usual path must run (it checks and explains): another class, a patched method, the
    reference backend, several groups or arenas, anything unusual in the options or state."""
    k = _optimizer_kinds.get(type(opt))
    if k is None or not _on_c_backend():
        return False
    cdef int kind = k
    od = opt.__dict__
    if "_update" in od or "_check_group" in od or "step" in od:
        return False
    cdef list groups = opt.param_groups
    if type(groups) is not list or len(groups) != 1:
        return False
    group = groups[0]
    if type(group) is not dict:
        return False
    cdef dict g = <dict>group
    cdef _EagerFlat e = _eager_entry(opt)
    cdef int typenum = e.typenum
    if e.version < 0:  # not asked yet: the arena's type
        arenas = opt.group_arenas(0)
        if len(arenas) != 1 or type(arenas[0].data) is not np.ndarray:
            return False
        typenum = cnp.PyArray_TYPE(<cnp.ndarray>arenas[0].data)
    if typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64:
        return False
    cdef bint f64 = typenum == cnp.NPY_FLOAT64
    cdef double lr, momentum, dampening, wd, eps, beta1, beta2
    cdef int mode, nesterov, maximize, amsgrad, decoupled, need
    cdef int64_t step, n
    cdef void *pp
    cdef void *pgr
    if kind == 0:
        lr_o, mom_o, damp_o, wd_o = g["lr"], g["momentum"], g["dampening"], g["weight_decay"]
        nest_o, max_o = g["nesterov"], g["maximize"]
        if not (_real_ok(lr_o) and _real_ok(mom_o) and _real_ok(wd_o) and type(damp_o) is float
                and _c_isfinite(<double>damp_o) and _is_bool(nest_o) and _is_bool(max_o)):
            return False
        lr, momentum, dampening, wd = lr_o, mom_o, damp_o, wd_o
        nesterov = 1 if nest_o is True else 0
        maximize = 1 if max_o is True else 0
        if nesterov and (momentum <= 0 or dampening != 0):
            return False
        need = 1 if momentum != 0 else 0
    else:
        # Adam / AdamW: Adam._plain_group's test, then Adam._update
        betas = g["betas"]
        if not (type(betas) is tuple or type(betas) is list) or len(betas) != 2:
            return False
        b1_o, b2_o = betas[0], betas[1]
        lr_o, eps_o, wd_o = g["lr"], g["eps"], g["weight_decay"]
        ams_o, max_o, dec_o = g["amsgrad"], g["maximize"], g["decoupled_weight_decay"]
        if not (_real_ok(lr_o) and _real_ok(eps_o) and _real_ok(wd_o) and type(b1_o) is float
                and type(b2_o) is float and 0.0 <= <double>b1_o < 1.0 and 0.0 <= <double>b2_o < 1.0
                and _is_bool(ams_o) and _is_bool(max_o) and _is_bool(dec_o)):
            return False
        amsgrad = 1 if ams_o is True else 0
        need = 3 | (4 if amsgrad else 0)
    if (e.version != <int64_t>opt.flat_version or (need & ~e.have) or e.arena.stale) \
            and not _eager_refresh(e, opt, typenum, need):
        return False
    n, pp, pgr = e.n, e.pp, e.pgr
    if kind == 0:
        mode = e.sgd_mode if need else 0
        if n >= 16384:
            with nogil:
                _sgd(f64, n, pp, e.slot[0] if need else NULL, pgr, lr, momentum, dampening, wd, mode,
                     nesterov, maximize)
        else:  # releasing the GIL costs more than a tiny update
            _sgd(f64, n, pp, e.slot[0] if need else NULL, pgr, lr, momentum, dampening, wd, mode, nesterov, maximize)
        if need:
            e.sgd_mode = 2
        return True
    if e.step == NULL:
        return False
    cdef double t = e.step[0] + 1.0
    if not (1.0 <= t < 9.2e18):
        return False
    lr, eps, wd, beta1, beta2 = lr_o, eps_o, wd_o, b1_o, b2_o
    step = <int64_t>t
    maximize = 1 if max_o is True else 0
    decoupled = 1 if dec_o is True else 0
    cdef void *s0 = e.slot[0]
    cdef void *s1 = e.slot[1]
    cdef void *s2 = e.slot[2] if amsgrad else NULL
    if n >= 16384:
        with nogil:
            _adam(f64, n, pp, s0, s1, s2, pgr, step, lr, beta1, beta2, eps, wd, amsgrad, maximize, decoupled)
    else:
        _adam(f64, n, pp, s0, s1, s2, pgr, step, lr, beta1, beta2, eps, wd, amsgrad, maximize, decoupled)
    e.step[0] = t
    return True


def eager_zero_grad(object opt):
    """``opt.zero_grad()`` for one group of one current arena (one memset); False otherwise."""
    groups = opt.param_groups
    if type(groups) is not list or len(<list>groups) != 1 or "zero_grad" in opt.__dict__:
        return False
    cdef _EagerFlat e = _eager_entry(opt)
    arena = e.arena
    if arena is None or arena.stale:
        arenas = opt.group_arenas(0, rebuild=False)
        if len(arenas) != 1:
            return False
        arena = arenas[0]
        if arena.stale:
            return False
        if e.arena is not arena:
            e.arena, e.version = arena, -1  # the step's pointers are asked for again
    if type(arena).zero_grad is not _arena_zero_grad:
        return False
    grad = arena.grad
    if type(grad) is not np.ndarray or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>grad) \
            or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>grad):
        return False
    memset(cnp.PyArray_DATA(<cnp.ndarray>grad), 0, <size_t>cnp.PyArray_NBYTES(<cnp.ndarray>grad))
    return True
