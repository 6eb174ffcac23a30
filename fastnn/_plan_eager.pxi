# _plan_eager.pxi — the PyTorch-style loop on whole-model calls.
#
# EagerModel runs a Sequential of Linear layers (each optionally followed by a fused activation)
# forward in one call and backward in another, with the very kernels and arguments the
# per-module path uses (fnn_dense_forward / fnn_dense_backward, layer after layer, in the same
# order, accumulating into each parameter's .grad), so results are bit for bit those of the
# per-module path. What differs is only the Python around them: the hidden activations and
# gradients live in buffers the model owns (made once per batch size, reused after), and the
# checks of each call compare against the last call's (one light test; anything new goes back to
# fastnn.nn.Sequential, which rebuilds the EagerModel or takes the per-module path).
#
# _plan_eager_steps.pxi does the same for a loss module's call and for SGD's and Adam's step,
# _plan_eager_calls.pxi for backprop and the methods users call. Module.__setattr__ bumps
# _eager_epoch (below) whenever structure or options change.

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

    def matches(self, seq=None):
        """True while no module attribute changed since the last check, the parameters are still
        the ones built for and (given ``seq``) so are its modules: the caller re-checks the
        structure otherwise."""
        return self.epoch == _eager_epoch and self._current() and (seq is None or self._same_children(seq))

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
        if (self.epoch != _eager_epoch or not self._current() or not self._same_children(seq) or not seq.fuse
                or not _on_c_backend()):
            return None
        return self.forward(seq, x)

    cdef bint _same_children(self, object seq) except -1:
        """The Sequential still holds the modules built for, in order (a module put straight into
        its ``_modules`` dict bumps no epoch)."""
        mods = seq.__dict__["_modules"]
        if len(mods) != len(self.children):
            return False
        cdef Py_ssize_t i = 0
        for m in mods.values():
            if m is not self.children[i]:
                return False
            i += 1
        return True

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
