# _plan_eager.pxi — the PyTorch-style loop on whole-model calls.
#
# EagerModel runs a Sequential of Linear layers (each optionally followed by a fused activation)
# forward in one call and backward in another, with the very kernels and arguments the
# per-module path uses (fnn_dense_forward / fnn_dense_backward, layer after layer, in the same
# order, accumulating into each parameter's .grad), so results are bit for bit those of the
# per-module path. What differs is only the Python around them: the hidden activations and
# gradients live in buffers the model owns (grown when a bigger batch comes, reused otherwise),
# and the checks of each call compare against the last call's (one light test; anything new
# goes back to fastnn.nn.Sequential, which rebuilds the EagerModel or takes the per-module path).
#
# eager_loss and eager_optimizer_step do the same for a loss module's call and for SGD's and
# Adam's step: the checks the per-module path would pass without a word, then the kernel; None /
# False sends the call to the usual path (which raises the usual errors).

from libc.math cimport isfinite as _c_isfinite
from libc.string cimport memset
import math as _math

cdef extern from "numpy/arrayobject.h":
    object PyArray_View(cnp.ndarray, void *, void *)  # NULL dtype: the array's own

# Bumped by Module.__setattr__ / __delattr__ (a layer swapped, a parameter reassigned, an
# option changed): every EagerModel then re-checks its structure before its next call.
cdef long _eager_epoch = 0


def eager_touch():
    """Record that some module's attributes changed (EagerModels re-check their structure)."""
    global _eager_epoch
    _eager_epoch += 1


def eager_epoch():
    return _eager_epoch


# Set once by fastnn.nn (eager_setup): the backend's context variable and the C backend (the
# one-call paths run only on it), the Tensor and link types, and the classes whose calls the
# one-call paths may take, by exact type (a subclass may change what a method does).
cdef object _backend_var = None
cdef object _c_backend = None
cdef object _Tensor = None
cdef object _LinkType = None
cdef object _Sequential = None
cdef dict _loss_codes = {}      # loss class -> eager_loss's code
cdef dict _optimizer_kinds = {}  # optimizer class -> 0 SGD, 1 Adam/AdamW
cdef object _loss_backward = None
cdef object _arena_zero_grad = None


def eager_register_model(backend_var, c_backend, tensor_type, link_type, sequential, arena_zero_grad):
    global _backend_var, _c_backend, _Tensor, _LinkType, _Sequential, _arena_zero_grad
    _backend_var, _c_backend, _Tensor, _LinkType = backend_var, c_backend, tensor_type, link_type
    _Sequential, _arena_zero_grad = sequential, arena_zero_grad


def eager_register_losses(dict loss_codes, loss_backward):
    """loss_codes: exact loss class -> 0 MSE, 1 L1, 2 BCE, 3 BCE with logits, 4 cross-entropy."""
    global _loss_codes, _loss_backward
    _loss_codes, _loss_backward = dict(loss_codes), loss_backward


def eager_register_optimizers(dict kinds):
    """kinds: exact optimizer class -> 0 SGD, 1 Adam/AdamW."""
    global _optimizer_kinds
    _optimizer_kinds = dict(kinds)


cdef inline bint _on_c_backend():
    return _backend_var is not None and _backend_var.get() is _c_backend


from cpython.ref cimport Py_REFCNT


def _no_eager_model():
    return None


cdef struct _ELayer:
    int64_t n_in, n_out
    int act
    double param
    int keep_z       # GELU: the derivative reads the pre-activation
    int has_bias


cdef inline bint _plain_input(object x, int typenum):
    """An aligned 2-D ndarray (or fastnn Tensor) of the model's dtype, whole-element strides."""
    if not isinstance(x, cnp.ndarray):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>x
    if cnp.PyArray_TYPE(a) != typenum or cnp.PyArray_NDIM(a) != 2 or not cnp.PyArray_ISALIGNED(a) \
            or not cnp.PyArray_ISNOTSWAPPED(a):
        return False
    cdef int64_t isz = cnp.PyArray_ITEMSIZE(a)
    return cnp.PyArray_STRIDE(a, 0) % isz == 0 and cnp.PyArray_STRIDE(a, 1) % isz == 0


cdef class EagerModel:
    """Forward and backward of a Sequential of Linear(+activation) layers in one call each.

    ``EagerModel(is_f64, layers, params, children, roles, tensor_type, link_type)``: layers is a
    list of (in, out, act code, slope, has_bias); params, per layer, (weight Parameter, bias
    Parameter or None); children the Sequential's modules (their call counts tell whether one
    was called on its own between forward and backward); roles (module, 0 Linear / 1 its fused
    activation / 2 Identity, layer index) for the state each keeps. ``forward(seq, x)`` returns the output Tensor or
    None when this call must take the per-module path; ``backward(grad_out, need_input_grad)``
    the input gradient (or None).
    """
    cdef int kind, typenum, nl
    cdef _ELayer *L
    cdef list params, data, grads, flags, children
    cdef long epoch
    cdef Workspace ws
    cdef int64_t cap, maxw, work
    cdef list ys, zs, roles
    cdef dict by_batch
    cdef cnp.ndarray g0, g1
    cdef object tensor_type, link_type
    # the last forward
    cdef object x_saved, out_saved
    cdef int64_t batch
    cdef list counts
    cdef public long call
    cdef bint busy

    def __cinit__(self, bint is_f64, list layers, list params, list children, list roles,
                  object tensor_type, object link_type):
        self.kind = 1 if is_f64 else 0
        self.typenum = cnp.NPY_FLOAT64 if is_f64 else cnp.NPY_FLOAT32
        self.nl = len(layers)
        self.L = <_ELayer *>PyMem_Malloc(max(1, self.nl) * sizeof(_ELayer))
        if self.L == NULL:
            raise MemoryError()
        cdef int l
        self.maxw = 1
        self.work = 0
        for l in range(self.nl):
            n_in, n_out, act, slope, has_bias = layers[l]
            self.L[l].n_in = n_in
            self.L[l].n_out = n_out
            self.L[l].act = act
            self.L[l].param = slope
            self.L[l].keep_z = 1 if act == 5 or act == 6 else 0
            self.L[l].has_bias = 1 if has_bias else 0
            self.maxw = max(self.maxw, n_in, n_out)
            self.work += n_in * n_out
        self.params, self.data, self.grads, self.flags = [], [], [], []
        for w, b in params:
            for p in (w, b):
                if p is None:
                    self.params.append(None)
                    self.data.append(None)
                    self.grads.append(None)
                    self.flags.append(False)
                else:
                    self.params.append(p)
                    self.data.append(p._data)
                    self.grads.append(p._grad)
                    self.flags.append(bool(p.requires_grad))
        self.children = list(children)
        self.epoch = _eager_epoch
        self.ws = Workspace()
        self.cap = 0
        self.ys, self.zs = [], []
        self.by_batch = {}
        self.roles = list(roles)
        self.tensor_type, self.link_type = tensor_type, link_type
        self.call = -1
        self.busy = False

    def __dealloc__(self):
        PyMem_Free(self.L)

    cdef bint _current(self) except -1:
        """The parameters are the ones (and in the storage, and trainable as) when built."""
        cdef Py_ssize_t i
        cdef object p
        for i in range(len(self.params)):
            p = self.params[i]
            if p is None:
                continue
            if (p._data is not self.data[i] or p._grad is not self.grads[i]
                    or (True if p.requires_grad else False) != self.flags[i]):
                return False
        return True

    def matches(self):
        """True while no module attribute changed since the last check and the parameters are
        still the ones built for: the caller re-checks the structure otherwise."""
        return self.epoch == _eager_epoch and self._current()

    # A copied or pickled model gets no EagerModel (its Sequential builds its own at its first call):
    # this one's buffers and parameter references belong to the original.
    def __copy__(self):
        return None

    def __deepcopy__(self, memo):
        return None

    def __reduce__(self):
        return (_no_eager_model, ())

    def matches_params(self):
        """The parameters are still the ones (storage, requires_grad) built for."""
        return self._current()

    def revalidate(self):
        """After the caller found the structure unchanged: accept the new epoch."""
        self.epoch = _eager_epoch

    cdef int _reserve(self, int64_t batch) except -1:
        """Buffers of exactly `batch` rows (the layers keep them as their saved activations, as
        the per-module path keeps its arrays of that shape); a few batch sizes are kept, so an
        epoch's last, smaller batch does not reallocate the others."""
        if batch == self.cap:
            return 0
        bufs = self.by_batch.get(batch)
        if bufs is None:
            dt = np.float64 if self.kind else np.float32
            ys, zs = [], []
            for l in range(self.nl):
                ys.append(np.empty((batch, self.L[l].n_out), dt) if l < self.nl - 1 else None)
                zs.append(np.empty((batch, self.L[l].n_out), dt) if self.L[l].keep_z else None)
            bufs = (ys, zs, np.empty(batch * self.maxw, dt), np.empty(batch * self.maxw, dt))
            if len(self.by_batch) >= 4:
                self.by_batch.clear()
            self.by_batch[batch] = bufs
        self.ys, self.zs, self.g0, self.g1 = bufs
        self.cap = batch
        return 0

    cdef int _record(self, object x, object out) except -1:
        """Each layer's state as its own forward leaves it (its call count, the input a Linear
        keeps, the output or pre-activation an activation keeps), so that calling a layer's
        backward by hand, or a layer on its own, behaves as on the per-module path."""
        cdef int l, role
        cdef list counts = []
        for m, role, l in self.roles:  # every child, in order
            d = m.__dict__
            c = d["_call_count"] + 1
            d["_call_count"] = c
            counts.append(c)
            if role == 0:
                d["_x"] = x if l == 0 else self.ys[l - 1]
            elif role == 1:
                d["_saved"] = (self.zs[l] if self.L[l].keep_z else out if l == self.nl - 1 else self.ys[l])
        self.counts = counts
        return 0

    cdef list _child_counts(self):
        return [m._call_count for m in self.children]

    def __call__(self, object seq, object x):
        """forward(seq, x) when the structure is unchanged, fuse is on and the C backend is in
        use; else None (the caller re-checks the structure or takes the per-module path)."""
        return self._try(seq, x)

    cdef object _try(self, object seq, object x):
        if self.epoch != _eager_epoch or not self._current() or not seq.fuse or not _on_c_backend():
            return None
        return self.forward(seq, x)

    def forward(self, object seq, object x):
        """act(...(x·W₀ᵀ + b₀)...) as the per-module path computes it, or None (take that path)."""
        if self.busy or not _plain_input(x, self.typenum):
            return None
        cdef cnp.ndarray xa = <cnp.ndarray>x
        cdef int64_t batch = cnp.PyArray_DIM(xa, 0)
        if batch < 1 or cnp.PyArray_DIM(xa, 1) != self.L[0].n_in:
            return None  # the per-module path explains
        self._reserve(batch)
        cdef int64_t isz = cnp.PyArray_ITEMSIZE(xa)
        cdef int64_t rs_x = cnp.PyArray_STRIDE(xa, 0) // isz, cs_x = cnp.PyArray_STRIDE(xa, 1) // isz
        cdef int last = self.nl - 1
        cdef cnp.npy_intp dims[2]
        dims[0] = batch
        dims[1] = self.L[last].n_out
        cdef cnp.ndarray out = cnp.PyArray_EMPTY(2, dims, self.typenum, 0)
        # pointers of every operand, gathered with the GIL held
        cdef const void *px[64]
        cdef int64_t rsx[64]
        cdef int64_t csx[64]
        cdef void *py[64]
        cdef void *pz[64]
        cdef const void *pw[64]
        cdef int64_t rsw[64]
        cdef int64_t csw[64]
        cdef const void *pb[64]
        if self.nl > 64:
            return None
        cdef int l
        cdef cnp.ndarray w, y, z
        cdef object b
        for l in range(self.nl):
            px[l] = cnp.PyArray_DATA(xa) if l == 0 else py[l - 1]
            rsx[l] = rs_x if l == 0 else self.L[l - 1].n_out
            csx[l] = cs_x if l == 0 else 1
            py[l] = cnp.PyArray_DATA(out) if l == last else cnp.PyArray_DATA(<cnp.ndarray>self.ys[l])
            z = self.zs[l]
            pz[l] = cnp.PyArray_DATA(z) if z is not None else NULL
            w = <cnp.ndarray>self.data[2 * l]
            pw[l] = cnp.PyArray_DATA(w)
            rsw[l] = cnp.PyArray_STRIDE(w, 0) // isz
            csw[l] = cnp.PyArray_STRIDE(w, 1) // isz
            b = self.data[2 * l + 1]
            pb[l] = cnp.PyArray_DATA(<cnp.ndarray>b) if b is not None else NULL
        cdef int st = FNN_OK
        cdef bint release = batch * self.work > 65536
        self.busy = True
        try:
            if release:
                with nogil:
                    st = self._run_forward(batch, px, rsx, csx, py, pz, pw, rsw, csw, pb)
            else:
                st = self._run_forward(batch, px, rsx, csx, py, pz, pw, rsw, csw, pb)
        finally:
            self.busy = False
        if st != FNN_OK:
            raise MemoryError("fastnn: out of memory in a dense layer")
        self.x_saved = x
        self.out_saved = out
        self.batch = batch
        self._record(x, out)
        d = seq.__dict__
        cdef long count = d["_call_count"] + 1
        d["_call_count"] = count
        self.call = count
        t = PyArray_View(out, NULL, <void *>self.tensor_type)
        t._link = self.link_type((seq, count, x))
        cnp.PyArray_CLEARFLAGS(<cnp.ndarray>t, cnp.NPY_ARRAY_WRITEABLE)
        return t

    cdef int _run_forward(self, int64_t batch, const void **px, int64_t *rsx, int64_t *csx, void **py,
                          void **pz, const void **pw, int64_t *rsw, int64_t *csw,
                          const void **pb) noexcept nogil:
        cdef int l, st
        cdef int64_t n_out, rz
        for l in range(self.nl):
            n_out = self.L[l].n_out
            rz = n_out if pz[l] != NULL else 0
            if self.kind == 0:
                st = fnn_dense_forward_f32(batch, self.L[l].n_in, n_out, <float *>py[l], n_out, 1,
                                           <float *>pz[l], rz, 1 if rz else 0,
                                           <const float *>px[l], rsx[l], csx[l],
                                           <const float *>pw[l], rsw[l], csw[l],
                                           <const float *>pb[l], self.L[l].act, self.L[l].param,
                                           self.ws.ws)
            else:
                st = fnn_dense_forward_f64(batch, self.L[l].n_in, n_out, <double *>py[l], n_out, 1,
                                           <double *>pz[l], rz, 1 if rz else 0,
                                           <const double *>px[l], rsx[l], csx[l],
                                           <const double *>pw[l], rsw[l], csw[l],
                                           <const double *>pb[l], self.L[l].act, self.L[l].param,
                                           self.ws.ws)
            if st != FNN_OK:
                return st
        return FNN_OK

    def backward(self, object grad_out, bint need_input_grad):
        """The per-module path's backward of the last forward: accumulates every trainable
        parameter's .grad; returns d/dx (a new array) when need_input_grad, else None."""
        return self._backward(grad_out, need_input_grad)

    cdef object _backward(self, object grad_out, bint need_input_grad):
        if self.counts != self._child_counts():
            raise RuntimeError(
                "backward: a layer of this Sequential was called on its own after the Sequential's last "
                "forward (or there was no forward); run the forward again before backward()")
        if self.busy:
            raise RuntimeError("backward: this Sequential is running in another thread")
        cdef int64_t batch = self.batch
        cdef int last = self.nl - 1
        cdef int64_t n_last = self.L[last].n_out
        g = grad_out
        if not (type(g) is np.ndarray or isinstance(g, cnp.ndarray)) or \
                cnp.PyArray_TYPE(<cnp.ndarray>g) != self.typenum:
            g = np.asarray(grad_out, dtype=np.float64 if self.kind else np.float32)
        cdef cnp.ndarray ga = <cnp.ndarray>g
        if cnp.PyArray_NDIM(ga) != 2 or cnp.PyArray_DIM(ga, 0) != batch or cnp.PyArray_DIM(ga, 1) != n_last:
            ga = <cnp.ndarray>ga.reshape(batch, n_last)
        if not cnp.PyArray_ISALIGNED(ga) or not cnp.PyArray_ISNOTSWAPPED(ga):
            ga = <cnp.ndarray>np.array(ga, order="C")
        cdef int64_t isz = cnp.PyArray_ITEMSIZE(ga)
        if cnp.PyArray_STRIDE(ga, 0) % isz or cnp.PyArray_STRIDE(ga, 1) % isz:
            ga = <cnp.ndarray>np.array(ga, order="C")
        cdef cnp.ndarray xa = <cnp.ndarray>self.x_saved
        cdef cnp.ndarray gx = None
        cdef cnp.npy_intp dims[2]
        if need_input_grad:
            dims[0] = batch
            dims[1] = self.L[0].n_in
            gx = cnp.PyArray_EMPTY(2, dims, self.typenum, 0)
        # operands, gathered with the GIL held
        cdef const void *pg[64]
        cdef int64_t rsg[64]
        cdef int64_t csg[64]
        cdef void *pdx[64]
        cdef void *pdw[64]
        cdef void *pdb[64]
        cdef const void *px[64]
        cdef int64_t rsx[64]
        cdef int64_t csx[64]
        cdef const void *pw[64]
        cdef int64_t rsw[64]
        cdef int64_t csw[64]
        cdef const void *ps[64]
        cdef int l
        cdef cnp.ndarray w
        cdef void *gbuf
        for l in range(last, -1, -1):
            if l == last:
                pg[l] = cnp.PyArray_DATA(ga)
                rsg[l] = cnp.PyArray_STRIDE(ga, 0) // isz
                csg[l] = cnp.PyArray_STRIDE(ga, 1) // isz
            else:
                pg[l] = pdx[l + 1]
                rsg[l] = self.L[l + 1].n_in
                csg[l] = 1
            if l > 0:
                gbuf = cnp.PyArray_DATA(self.g0 if (last - l) % 2 == 0 else self.g1)
                pdx[l] = gbuf
            else:
                pdx[l] = cnp.PyArray_DATA(gx) if gx is not None else NULL
            pdw[l] = cnp.PyArray_DATA(<cnp.ndarray>self.grads[2 * l]) if self.flags[2 * l] else NULL
            pdb[l] = cnp.PyArray_DATA(<cnp.ndarray>self.grads[2 * l + 1]) if self.flags[2 * l + 1] else NULL
            if l == 0:
                px[l] = cnp.PyArray_DATA(xa)
                rsx[l] = cnp.PyArray_STRIDE(xa, 0) // isz
                csx[l] = cnp.PyArray_STRIDE(xa, 1) // isz
            else:
                px[l] = cnp.PyArray_DATA(<cnp.ndarray>self.ys[l - 1])
                rsx[l] = self.L[l - 1].n_out
                csx[l] = 1
            w = <cnp.ndarray>self.data[2 * l]
            pw[l] = cnp.PyArray_DATA(w)
            rsw[l] = cnp.PyArray_STRIDE(w, 0) // isz
            csw[l] = cnp.PyArray_STRIDE(w, 1) // isz
            if self.L[l].act == 0:
                ps[l] = NULL
            elif self.L[l].keep_z:
                ps[l] = cnp.PyArray_DATA(<cnp.ndarray>self.zs[l])
            elif l == last:
                ps[l] = cnp.PyArray_DATA(<cnp.ndarray>self.out_saved)
            else:
                ps[l] = cnp.PyArray_DATA(<cnp.ndarray>self.ys[l])
        cdef int st = FNN_OK
        self.busy = True
        try:
            if batch * self.work > 65536:
                with nogil:
                    st = self._run_backward(batch, pg, rsg, csg, pdx, pdw, pdb, px, rsx, csx, pw, rsw, csw, ps)
            else:
                st = self._run_backward(batch, pg, rsg, csg, pdx, pdw, pdb, px, rsx, csx, pw, rsw, csw, ps)
        finally:
            self.busy = False
        if st != FNN_OK:
            raise MemoryError("fastnn: out of memory in a dense layer's backward")
        return gx

    cdef int _run_backward(self, int64_t batch, const void **pg, int64_t *rsg, int64_t *csg, void **pdx,
                           void **pdw, void **pdb, const void **px, int64_t *rsx, int64_t *csx,
                           const void **pw, int64_t *rsw, int64_t *csw, const void **ps) noexcept nogil:
        cdef int l, st
        cdef int64_t n_out, rs_s, cs_s
        for l in range(self.nl - 1, -1, -1):
            n_out = self.L[l].n_out
            rs_s = n_out if ps[l] != NULL else 0
            cs_s = 1 if ps[l] != NULL else 0
            if self.kind == 0:
                st = fnn_dense_backward_f32(batch, self.L[l].n_in, n_out, <float *>pdx[l], <float *>pdw[l],
                                            <float *>pdb[l], <const float *>pg[l], rsg[l], csg[l],
                                            <const float *>px[l], rsx[l], csx[l],
                                            <const float *>pw[l], rsw[l], csw[l],
                                            <const float *>ps[l], rs_s, cs_s,
                                            self.L[l].act, self.L[l].param, self.ws.ws)
            else:
                st = fnn_dense_backward_f64(batch, self.L[l].n_in, n_out, <double *>pdx[l], <double *>pdw[l],
                                            <double *>pdb[l], <const double *>pg[l], rsg[l], csg[l],
                                            <const double *>px[l], rsx[l], csx[l],
                                            <const double *>pw[l], rsw[l], csw[l],
                                            <const double *>ps[l], rs_s, cs_s,
                                            self.L[l].act, self.L[l].param, self.ws.ws)
            if st != FNN_OK:
                return st
        return FNN_OK


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


cdef inline bint _apart(void *a, void *b, int64_t bytes):
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


def eager_optimizer_step(object opt):
    """``opt.step()`` for one group of one arena with plain hyper-parameters: the update
    ``_update`` would run (the same kernel, the same state handling), or False when the usual
    path must run (it checks and explains): another class, a patched method, the reference
    backend, several groups or arenas, anything unusual in the options or state."""
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
    cdef list arenas = (<list>opt._arenas)[0]
    if len(arenas) != 1:
        return False
    arena = arenas[0]
    if arena.stale:
        return False
    group = groups[0]
    if type(group) is not dict:
        return False
    cdef dict g = <dict>group
    cdef dict state = <dict>((<list>(<list>opt._states)[0])[0])
    data, grad = arena.data, arena.grad
    if type(data) is not np.ndarray:
        return False
    cdef int typenum = cnp.PyArray_TYPE(<cnp.ndarray>data)
    if typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64:
        return False
    cdef int64_t n = cnp.PyArray_SIZE(<cnp.ndarray>data)
    cdef int64_t nbytes = n * cnp.PyArray_ITEMSIZE(<cnp.ndarray>data)
    cdef void *pp = _flat(data, typenum, n)
    cdef void *pgr = _flat(grad, typenum, n)
    if pp == NULL or pgr == NULL or not _apart(pp, pgr, nbytes):
        return False
    cdef bint f64 = typenum == cnp.NPY_FLOAT64
    cdef double lr, momentum, dampening, wd, eps, beta1, beta2
    cdef int mode, nesterov, maximize, amsgrad, decoupled
    cdef void *s0 = NULL
    cdef void *s1 = NULL
    cdef void *s2 = NULL
    cdef int64_t step
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
        mode = 0
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:  # PyTorch: the first step copies the gradient into the buffer
                buf = state["momentum_buffer"] = arena.zeros_like()
                mode = 1
            else:
                mode = 2
            s0 = _flat(buf, typenum, n)
            if s0 == NULL or not _apart(s0, pp, nbytes) or not _apart(s0, pgr, nbytes):
                if mode == 1:
                    del state["momentum_buffer"]
                return False
        if n >= 16384:
            with nogil:
                _sgd(f64, n, pp, s0, pgr, lr, momentum, dampening, wd, mode, nesterov, maximize)
        else:  # releasing the GIL costs more than a tiny update
            _sgd(f64, n, pp, s0, pgr, lr, momentum, dampening, wd, mode, nesterov, maximize)
        return True
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
    t_o = state.get("step", 0.0)
    if type(t_o) is not float and type(t_o) is not int:
        return False
    cdef double t = <double>t_o + 1.0
    if not (1.0 <= t < 9.2e18):
        return False
    created = "exp_avg" not in state
    if created:
        state["exp_avg"] = arena.zeros_like()
        state["exp_avg_sq"] = arena.zeros_like()
    amsgrad = 1 if ams_o is True else 0
    if amsgrad and "max_exp_avg_sq" not in state:
        state["max_exp_avg_sq"] = arena.zeros_like()
    s0 = _flat(state["exp_avg"], typenum, n)
    s1 = _flat(state["exp_avg_sq"], typenum, n)
    s2 = _flat(state["max_exp_avg_sq"], typenum, n) if amsgrad else NULL
    if (s0 == NULL or s1 == NULL or (amsgrad and s2 == NULL) or not _apart(s0, s1, nbytes)
            or not _apart(s0, pp, nbytes) or not _apart(s1, pp, nbytes) or not _apart(s0, pgr, nbytes)
            or not _apart(s1, pgr, nbytes) or not _apart(s2, pp, nbytes) or not _apart(s2, pgr, nbytes)
            or not _apart(s2, s0, nbytes) or not _apart(s2, s1, nbytes)):
        return False  # the usual path checks (and explains); the buffers it would make exist now
    lr, eps, wd, beta1, beta2 = lr_o, eps_o, wd_o, b1_o, b2_o
    step = <int64_t>t
    maximize = 1 if max_o is True else 0
    decoupled = 1 if dec_o is True else 0
    if n >= 16384:
        with nogil:
            _adam(f64, n, pp, s0, s1, s2, pgr, step, lr, beta1, beta2, eps, wd, amsgrad, maximize, decoupled)
    else:
        _adam(f64, n, pp, s0, s1, s2, pgr, step, lr, beta1, beta2, eps, wd, amsgrad, maximize, decoupled)
    state["step"] = t
    return True


def eager_zero_grad(object opt):
    """``opt.zero_grad()`` for one group of one current arena (one memset); False otherwise."""
    groups = opt.param_groups
    if type(groups) is not list or len(<list>groups) != 1 or "zero_grad" in opt.__dict__:
        return False
    cdef list arenas = (<list>opt._arenas)[0]
    if len(arenas) != 1:
        return False
    arena = arenas[0]
    if arena.stale or type(arena).zero_grad is not _arena_zero_grad:
        return False
    grad = arena.grad
    if type(grad) is not np.ndarray or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>grad) \
            or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>grad):
        return False
    memset(cnp.PyArray_DATA(<cnp.ndarray>grad), 0, <size_t>cnp.PyArray_NBYTES(<cnp.ndarray>grad))
    return True


# --- backpropagation ------------------------------------------------------------------------

cdef str _describe(object module):
    describe = getattr(module, "describe", None)
    return describe() if callable(describe) else type(module).__name__


def backprop(tensor, grad=None, bint need_input_grad=False, stop_at=None):
    """Walk the chain ending at ``tensor``; return d/d(first input) if asked.

    ``stop_at`` ends the walk at the link whose input is that object (a
    composite module's own input). Raises RuntimeError when the tensor is not
    the output of a fastnn module, or when a module on the chain was called
    again since producing it. (fastnn.tensor.backprop; compiled because every
    loss.backward() runs it.) A Sequential whose last forward took the
    whole-model path, and a loss's backward with the default gradient, are
    called without their Python method (the same code, one call fewer).
    """
    link = getattr(tensor, "_link", None)
    if link is None:
        raise RuntimeError(
            "backward: this array was not produced by a fastnn module (or was derived from one by a "
            "NumPy operation), so there is nothing to backpropagate through")
    cdef bint scalar = (cnp.PyArray_NDIM(<cnp.ndarray>tensor) if isinstance(tensor, cnp.ndarray)
                        else np.ndim(tensor)) == 0
    if grad is None:
        if not scalar:
            raise RuntimeError(f"backward: grad is required for a non-scalar output of shape {np.shape(tensor)}")
        grad = 1.0
    elif not scalar:
        grad = np.asarray(grad)
        if grad.shape != np.shape(tensor):
            raise ValueError(f"grad: expected shape {np.shape(tensor)}, got {grad.shape}")
    cdef bint at_stop, need
    while link is not None:
        module = link[0]
        d = getattr(module, "__dict__", None)
        count = d.get("_call_count") if type(d) is dict else None
        if count is None:
            count = module._call_count
        if count != link[1]:
            raise RuntimeError(
                f"backward: {_describe(module)} was called again after producing this output, and keeps only "
                f"its latest call's activations. Call backward() before calling the module again.")
        inp = link[2]
        at_stop = stop_at is not None and inp is stop_at
        upstream = None if at_stop else getattr(inp, "_link", None)
        need = need_input_grad or upstream is not None
        grad = _backward_of(module, grad, need)
        if at_stop:
            return grad
        link = upstream
    if stop_at is not None:
        raise RuntimeError(
            "backward: the forward pass did not reach its input through fastnn modules only; a module "
            "whose forward uses other operations must implement backward() itself")
    return grad if need_input_grad else None


cdef object _backward_of(object module, object grad, bint need):
    cdef type cls = type(module)
    d = module.__dict__
    if "backward" not in d:
        if cls is _Sequential:
            em = d.get("_eager")
            if em is not None and (<EagerModel>em).call == d["_call_count"]:
                return (<EagerModel>em)._backward(grad, need)
        elif need and type(grad) is float and <double>grad == 1.0 and cls in _loss_codes \
                and cls.backward is _loss_backward:
            g = d.get("_grad")
            if g is not None:
                return g  # _Loss.backward with grad_out 1.0
    return module.backward(grad, need_input_grad=need)


# --- the methods users call, compiled (one Python frame fewer per call) ------------------------

cdef object _module_call = None


def eager_register_module_call(module_call):
    global _module_call
    _module_call = module_call


def sequential_call(self, x, *args, **kwargs):
    """Sequential.__call__: the whole-model forward when it applies, else ``_call_per_module``."""
    em = self.__dict__.get("_eager")
    if em is not None and not args and not kwargs:
        out = (<EagerModel>em)._try(self, x)
        if out is not None:
            return out
    return self._call_per_module(x, *args, **kwargs)


def loss_call(self, input, *args, **kwargs):
    """_Loss.__call__: the loss kernel in one call (eager_loss) when it applies, else Module.__call__."""
    if len(args) == 1 and not kwargs:
        out = eager_loss(self, input, args[0])
        if out is not None:
            return out
    return _module_call(self, input, *args, **kwargs)


def tensor_backward(self, grad=None):
    """Backpropagate from this tensor; fills ``.grad`` of every parameter on the chain.

    ``grad`` is d(objective)/d(this tensor); it defaults to 1 for a scalar
    (a loss) and is required otherwise, as in PyTorch.
    """
    backprop(self, grad, False, None)


def optimizer_step(self, closure=None):
    """One update of every parameter; returns ``closure()``'s loss if a closure is given.

    SGD and Adam/AdamW with one group, one arena and plain hyper-parameters (the usual case)
    update in one compiled call (eager_optimizer_step: the checks ``_check_group`` and
    ``_update`` would pass without a word, then the same kernel); anything else runs ``_step``."""
    if closure is None and eager_optimizer_step(self):
        return None
    return self._step(closure)


def optimizer_zero_grad(self, set_to_none=True):
    """Zero every gradient (one memset per arena). ``set_to_none`` is accepted for
    PyTorch compatibility; gradients always exist in fastnn, so both zero them."""
    if not eager_zero_grad(self):
        self._zero_grad(set_to_none)
