# _plan.pxi — wrappers for src_c/plan (whole-step training plans).
#
# PlanCore holds the C plan and points it at the model's parameter arena and
# the optimizer's flat state buffers at every call (they are never copied), so
# the model, opt.state_dict() and a PyTorch-style loop see the same state. The
# state comes from Optimizer.flat_state(g), asked again only when the
# optimizer's flat_version changes or the options need a buffer not yet made;
# hyper-parameters are read from param_groups at every call.
# step() is the hot path of small networks: one C call between cheap checks.
# fastnn.plan builds on it (layer extraction, epochs, Ctrl-C, progress).

from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.string cimport memcpy, memset
from libc.stdint cimport uint64_t
import numpy as np

cdef extern from "plan.h" nogil:
    ctypedef struct fnn_plan:
        pass
    ctypedef struct fnn_plan_dense:
        int64_t w_off, b_off
        int w_group, b_group
        int act
        double act_param
    ctypedef struct fnn_plan_norm:
        int64_t w_off, b_off
        int w_group, b_group
        int act
        double act_param
        double eps
        double momentum
        void *running_mean
        void *running_var
        int64_t *nbt
    ctypedef struct fnn_plan_dropout:
        double p
    ctypedef union fnn_plan_layer_u:  # the anonymous union of fnn_plan_layer (a name for Cython only)
        fnn_plan_dense dense
        fnn_plan_norm norm
        fnn_plan_dropout dropout
    ctypedef struct fnn_plan_layer:
        int kind
        int64_t n_in "in"
        int64_t n_out "out"
        fnn_plan_layer_u u
    ctypedef struct fnn_plan_opt:
        int kind
        double lr, weight_decay
        int maximize
        double momentum, dampening
        int nesterov
        int sgd_mode
        double beta1, beta2, eps
        int amsgrad, decoupled
        int64_t step
        double alpha
        int centered
        double lr_decay
        int wd_per_row, eps_sklearn
        double l2_loss
    ctypedef struct fnn_plan_arena:
        int64_t n
        void *params
        void *grads
        void *state0
        void *state1
        void *state2
    int FNN_PLAN_MSE, FNN_PLAN_L1, FNN_PLAN_BCE, FNN_PLAN_BCE_LOGITS, FNN_PLAN_CE
    int FNN_PLAN_SGD, FNN_PLAN_ADAM, FNN_PLAN_RMSPROP, FNN_PLAN_ADAGRAD
    int FNN_PLAN_CHECK_FINITE, FNN_PLAN_FUSED
    int FNN_PLAN_BAD_INPUT, FNN_PLAN_BAD_TARGET, FNN_PLAN_NONFINITE_LOSS
    int FNN_PLAN_NONFINITE_GRAD, FNN_PLAN_NONFINITE_PARAM
    ctypedef int (*fnn_plan_grad_hook)(void *ctx, int64_t n, void *grads, int64_t batch) noexcept  # [grad hook]
    void fnn_plan_set_grad_hook(fnn_plan *p, fnn_plan_grad_hook fn, void *ctx)  # [grad hook]
    fnn_plan *fnn_plan_create(int is_f64, int64_t nlayers, const fnn_plan_layer *layers, int loss,
                              int reduction, double label_smoothing)
    void fnn_plan_destroy(fnn_plan *p)
    void fnn_plan_set_seeds(fnn_plan *p, const uint64_t *seeds)
    int fnn_plan_reserve(fnn_plan *p, int64_t batch)
    int64_t fnn_plan_capacity(const fnn_plan *p)
    size_t fnn_plan_bytes(const fnn_plan *p)
    int64_t fnn_plan_alloc_count()
    int64_t fnn_plan_split_steps()
    const void *fnn_plan_output(const fnn_plan *p)
    int fnn_plan_step(fnn_plan *p, int64_t batch, const void *x, const void *y,
                      const fnn_plan_arena *a, const fnn_plan_opt *o, int flags,
                      double *loss, int64_t *bad)
    int fnn_plan_run(fnn_plan *p, int64_t n, int64_t bs, const void *X, const void *Y,
                     const int64_t *perm, int64_t b0, int64_t b1, const fnn_plan_arena *a,
                     const fnn_plan_opt *o, int flags, double *losses, int64_t *done, int64_t *bad)
    int FNN_PLAN_METRIC_NONE, FNN_PLAN_METRIC_ARGMAX, FNN_PLAN_METRIC_THRESHOLD
    ctypedef struct fnn_plan_epochs:
        int64_t n, bs, steps
        const void *X
        const void *Y
        const int64_t *perms
        int64_t nval, vbs
        const void *Xv
        const void *Yv
        double *loss_sum
        int64_t *correct
        int64_t *counted
        double *val_loss_sum
        int64_t *val_correct
        int64_t *val_counted
        double last_loss
    void fnn_plan_set_metric(fnn_plan *p, int metric, double threshold)
    void fnn_plan_last_count(const fnn_plan *p, int64_t *correct, int64_t *counted)
    int fnn_plan_evaluate(fnn_plan *p, int64_t n, int64_t bs, const void *X, const void *Y,
                          const fnn_plan_arena *a, double *loss_sum, int64_t *correct,
                          int64_t *counted, int64_t *bad)
    int fnn_plan_team_threads(const fnn_plan *p, int64_t batch, const fnn_plan_arena *a, int64_t steps, int flags)
    int fnn_plan_splits(const fnn_plan *p, int64_t batch, const fnn_plan_arena *a)
    int fnn_plan_run_epochs(fnn_plan *p, fnn_plan_epochs *r, int64_t s0, int64_t s1,
                            const fnn_plan_arena *a, const fnn_plan_opt *o, int flags,
                            int64_t *done, int64_t *bad)

PLAN_LOSSES = {"mse": FNN_PLAN_MSE, "l1": FNN_PLAN_L1, "bce": FNN_PLAN_BCE,
               "bce_logits": FNN_PLAN_BCE_LOGITS, "cross_entropy": FNN_PLAN_CE}
PLAN_OPTIMIZERS = {"sgd": FNN_PLAN_SGD, "adam": FNN_PLAN_ADAM, "rmsprop": FNN_PLAN_RMSPROP,
                   "adagrad": FNN_PLAN_ADAGRAD}
PLAN_CHECK_FINITE = FNN_PLAN_CHECK_FINITE
PLAN_METRICS = {"none": FNN_PLAN_METRIC_NONE, "argmax": FNN_PLAN_METRIC_ARGMAX,
                "threshold": FNN_PLAN_METRIC_THRESHOLD}
PLAN_FUSED = FNN_PLAN_FUSED
PLAN_STATUS = {"bad_input": FNN_PLAN_BAD_INPUT, "bad_target": FNN_PLAN_BAD_TARGET,
               "nonfinite_loss": FNN_PLAN_NONFINITE_LOSS, "nonfinite_grad": FNN_PLAN_NONFINITE_GRAD,
               "nonfinite_param": FNN_PLAN_NONFINITE_PARAM, "hook_failed": FNN_PLAN_HOOK_FAILED}


cdef int _plan_grad_hook(void *ctx, int64_t n, void *grads, int64_t batch) noexcept with gil:  # [grad hook]
    """The C plan's gradient hook: calls the Python hook set by PlanCore.set_grad_hook (an
    allreduce for fastnn.distributed); an exception is kept and re-raised after the C call."""
    core = <PlanCore>ctx
    try:
        core._hook_fn(batch)
    except BaseException as e:
        core._hook_error = e
        return 1
    return 0


def plan_alloc_count():
    """Heap allocations made by every plan so far (buffers and GEMM workspace growth)."""
    return fnn_plan_alloc_count()


def plan_split_steps():
    """Steps every plan has run split by hidden units on a persistent team (small networks)."""
    return fnn_plan_split_steps()


cdef struct _PlanFlat:
    # What a plan keeps of Optimizer.flat_state(g), valid while the optimizer's flat_version is.
    int64_t version       # flat_version when asked (-1: never)
    void *arena           # the arena it was asked for
    void *slot[3]         # state0..2 (NULL: not made)
    int have              # bit k: slot k made
    double *step          # the optimizer's step count, or NULL (SGD)
    int sgd_mode          # 1: the next update initialises the momentum buffer, 2: it was written


cdef class PlanCore:
    """The compiled part of a plan. Built by ``fastnn.plan.Plan``; see there."""
    cdef fnn_plan *p
    cdef fnn_plan_arena *ars        # per parameter group: arena and state pointers
    cdef fnn_plan_opt *ops          # per parameter group: hyper-parameters of the next step
    cdef double *t_next             # per group (Adam, RMSprop, Adagrad): the step count after this step
    cdef readonly int ngroups
    cdef public bint wd_per_row     # weight decay / rows of each batch (scikit-learn's alpha)
    cdef public bint eps_sklearn    # Adam: eps_t = eps / sqrt(1 - beta2^t) (scikit-learn's Adam)
    cdef public double l2_loss      # the loss gains l2_loss * 0.5 * decay * sum(theta^2) per group
    cdef readonly int kind          # 0 float32, 1 float64
    cdef readonly int ce            # labels are int64 class indices
    cdef readonly int64_t n_in, n_out
    cdef public int flags
    cdef public int last_status
    cdef public int64_t last_bad
    cdef int opt_kind
    cdef object _bound, _optimizer  # the arena of each group when compiled; the optimizer
    cdef _PlanFlat *fl              # per group: the optimizer's flat state as last handed out
    cdef list _flat                 # per group: that FlatState (keeps its arrays alive)
    cdef list _bn                   # (module, running_mean, running_var, num_batches_tracked) per BatchNorm1d
    cdef list _watched              # (module, compiled p or None): checked at every call
    cdef readonly int64_t ndrop     # dropout layers (one seed each per step)
    cdef public bint flatten_input  # the model starts with Flatten(): (batch, d1, ...) inputs are flattened
    cdef cnp.ndarray _seeds         # this step's seeds
    cdef object _hook_fn, _hook_error  # [grad hook] the Python gradient hook and its pending exception

    def __cinit__(self, int is_f64, list layers, int loss, int reduction, double label_smoothing):
        """layers: fastnn.plan_layers specs (DenseSpec, NormSpec, DropoutSpec), in order."""
        cdef Py_ssize_t nl = len(layers), i
        if nl < 1:
            raise ValueError("layers: a plan needs at least one dense layer")
        cdef fnn_plan_layer *ls = <fnn_plan_layer *>PyMem_Malloc(nl * sizeof(fnn_plan_layer))
        if ls == NULL:
            raise MemoryError()
        cdef int kind
        try:
            memset(ls, 0, nl * sizeof(fnn_plan_layer))
            for i in range(nl):
                spec = layers[i]
                kind = spec.kind
                ls[i].kind = kind
                ls[i].n_in = spec.n_in
                ls[i].n_out = spec.n_out
                if kind == FNN_PLAN_DENSE:
                    ls[i].u.dense.w_off = spec.w_off
                    ls[i].u.dense.b_off = spec.b_off
                    ls[i].u.dense.w_group = spec.w_group
                    ls[i].u.dense.b_group = spec.b_group
                    ls[i].u.dense.act = spec.act
                    ls[i].u.dense.act_param = spec.act_param
                elif kind == FNN_PLAN_LAYER_NORM or kind == FNN_PLAN_BATCH_NORM:
                    ls[i].u.norm.w_off = spec.w_off
                    ls[i].u.norm.b_off = spec.b_off
                    ls[i].u.norm.w_group = spec.w_group
                    ls[i].u.norm.b_group = spec.b_group
                    ls[i].u.norm.act = spec.act
                    ls[i].u.norm.act_param = spec.act_param
                    ls[i].u.norm.eps = spec.eps
                    ls[i].u.norm.momentum = spec.momentum
                    rm, rv, nbt = spec.running_mean, spec.running_var, spec.num_batches_tracked
                    ls[i].u.norm.running_mean = NULL if rm is None else cnp.PyArray_DATA(<cnp.ndarray>rm)
                    ls[i].u.norm.running_var = NULL if rv is None else cnp.PyArray_DATA(<cnp.ndarray>rv)
                    ls[i].u.norm.nbt = NULL if nbt is None else <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>nbt)
                elif kind == FNN_PLAN_DROPOUT:
                    ls[i].u.dropout.p = spec.p
                else:
                    raise ValueError(f"layers[{i}]: unknown layer kind {kind}")
            self.p = fnn_plan_create(is_f64, nl, ls, loss, reduction, label_smoothing)
        finally:
            PyMem_Free(ls)
        if self.p == NULL:
            raise MemoryError("fastnn: could not allocate a training plan")
        self._bn = [(l.module, l.running_mean, l.running_var, l.num_batches_tracked)
                    for l in layers if l.kind == FNN_PLAN_BATCH_NORM]
        self._watched = []
        self.ndrop = sum(1 for l in layers if l.kind == FNN_PLAN_DROPOUT)
        self._seeds = np.zeros(max(self.ndrop, 1), dtype=np.uint64)
        self.kind = 1 if is_f64 else 0
        self.ce = loss == FNN_PLAN_CE
        self.n_in = layers[0].n_in
        self.n_out = layers[nl - 1].n_out
        self.flags = 0
        self.last_status = 0
        self.last_bad = -1

    def __dealloc__(self):
        if self.p != NULL:
            fnn_plan_destroy(self.p)
        PyMem_Free(self.ars)
        PyMem_Free(self.ops)
        PyMem_Free(self.t_next)
        PyMem_Free(self.fl)

    def _bind(self, optimizer, list arenas, int opt_kind):
        """Point the plan at the optimizer: arenas[g] is parameter group g's (only) arena."""
        cdef int g, ng = len(arenas)
        if ng < 1 or ng != len(optimizer.param_groups):
            raise ValueError("arenas: expected one arena per parameter group")
        self._optimizer = optimizer
        self._bound = arenas
        self.opt_kind = opt_kind
        PyMem_Free(self.ars)
        PyMem_Free(self.ops)
        PyMem_Free(self.t_next)
        PyMem_Free(self.fl)
        self.ars = <fnn_plan_arena *>PyMem_Malloc(ng * sizeof(fnn_plan_arena))
        self.ops = <fnn_plan_opt *>PyMem_Malloc(ng * sizeof(fnn_plan_opt))
        self.t_next = <double *>PyMem_Malloc(ng * sizeof(double))
        self.fl = <_PlanFlat *>PyMem_Malloc(ng * sizeof(_PlanFlat))
        if self.ars == NULL or self.ops == NULL or self.t_next == NULL or self.fl == NULL:
            raise MemoryError()
        memset(self.ops, 0, ng * sizeof(fnn_plan_opt))
        memset(self.fl, 0, ng * sizeof(_PlanFlat))
        for g in range(ng):
            self.fl[g].version = -1
        self._flat = [None] * ng
        self.ngroups = ng
        cdef cnp.ndarray data, grad
        for g in range(ng):
            arena = arenas[g]
            # An Arena's flat buffers are fixed for its lifetime; a rebuilt arena marks the old one stale.
            data = <cnp.ndarray>arena.data
            grad = <cnp.ndarray>arena.grad
            if (cnp.PyArray_TYPE(data) != (cnp.NPY_FLOAT64 if self.kind else cnp.NPY_FLOAT32)
                    or cnp.PyArray_TYPE(grad) != cnp.PyArray_TYPE(data)
                    or cnp.PyArray_SIZE(grad) != cnp.PyArray_SIZE(data)
                    or not cnp.PyArray_IS_C_CONTIGUOUS(data) or not cnp.PyArray_IS_C_CONTIGUOUS(grad)):
                raise ValueError("arena: expected contiguous data and grad buffers of the plan's dtype")
            self.ars[g].n = cnp.PyArray_SIZE(data)
            self.ars[g].params = cnp.PyArray_DATA(data)
            self.ars[g].grads = cnp.PyArray_DATA(grad)

    def set_grad_hook(self, fn):  # [grad hook]
        """Call ``fn(batch)`` in every step between backward and the update (``fn`` may rewrite the
        gradient arena in place: fastnn.distributed's allreduce); None removes it. An exception in
        ``fn`` stops the step before the update and is raised by step()/run()."""
        self._hook_fn = fn
        self._hook_error = None
        fnn_plan_set_grad_hook(self.p, <fnn_plan_grad_hook>NULL if fn is None else _plan_grad_hook, <void *>self)

    def _watch(self, list modules):
        self._watched = modules

    def _draw_seeds(self, int64_t steps):
        """Dropout seeds for `steps` steps, drawn from fastnn's generator as the eager forward draws them."""
        if self.ndrop == 0:
            return None
        from fastnn.random import draw_seed
        return np.array([draw_seed() for _ in range(steps * self.ndrop)], dtype=np.uint64)

    def reserve(self, int64_t batch):
        """Size the buffers for batches of up to ``batch`` rows (allocates only when growing)."""
        if batch < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch}")
        if fnn_plan_reserve(self.p, batch) != 0:
            raise MemoryError(f"fastnn: could not allocate plan buffers for batch {batch}")

    @property
    def capacity(self):
        return fnn_plan_capacity(self.p)

    @property
    def nbytes(self):
        return fnn_plan_bytes(self.p)

    def output(self, int64_t batch):
        """A copy of the network's output (batch, out) from the last step."""
        cdef cnp.ndarray out = np.empty((batch, self.n_out), dtype=np.float64 if self.kind else np.float32)
        if batch < 1 or batch > fnn_plan_capacity(self.p):
            raise ValueError(f"batch: expected 1..{fnn_plan_capacity(self.p)}, got {batch}")
        memcpy(cnp.PyArray_DATA(out), fnn_plan_output(self.p), <size_t>cnp.PyArray_NBYTES(out))
        return out

    # --- the optimizer's side, read at every call ------------------------------------
    cdef int _prepare(self) except -1:
        """Arena and state pointers and hyper-parameters of every group for the next step."""
        if self._watched:
            self._check_bn()
        cdef int g
        for g in range(self.ngroups):
            self._prepare_group(g)
        return 0

    cdef int _prepare_group(self, int g) except -1:
        """Group g's hyper-parameters (its dict read at every call) and state pointers (the
        optimizer's flat_state(), asked again only when it changed)."""
        arena = (<list>self._bound)[g]
        if arena.stale:
            raise RuntimeError("plan: the optimizer's parameters were moved to another arena since the plan "
                               "was compiled; compile a new plan")
        cdef dict group = <dict>(<list>self._optimizer.param_groups)[g]
        cdef fnn_plan_opt *o = &self.ops[g]
        cdef fnn_plan_arena *ar = &self.ars[g]
        cdef _PlanFlat *f = &self.fl[g]
        cdef int need
        o.wd_per_row = self.wd_per_row
        o.eps_sklearn = self.eps_sklearn
        o.l2_loss = self.l2_loss
        o.lr = group["lr"]
        o.weight_decay = group["weight_decay"]
        o.maximize = 1 if group["maximize"] else 0
        if self.opt_kind == FNN_PLAN_SGD:
            o.kind = FNN_PLAN_SGD
            o.momentum = group["momentum"]
            o.sgd_mode = 0
            ar.state0 = NULL
            ar.state1 = NULL
            ar.state2 = NULL
            if o.momentum == 0.0:  # no state to look up (tiny steps are this short)
                return 0
            o.dampening = group["dampening"]  # dampening and nesterov only matter with momentum
            o.nesterov = 1 if group["nesterov"] else 0
            need = 1
        elif self.opt_kind == FNN_PLAN_RMSPROP:
            o.kind = FNN_PLAN_RMSPROP
            o.alpha = group["alpha"]
            o.eps = group["eps"]
            o.momentum = group["momentum"]
            o.centered = 1 if group["centered"] else 0
            need = 1 | (2 if o.centered else 0) | (4 if o.momentum > 0 else 0)
        elif self.opt_kind == FNN_PLAN_ADAGRAD:
            o.kind = FNN_PLAN_ADAGRAD
            o.lr_decay = group["lr_decay"]
            o.eps = group["eps"]
            need = 1
        else:
            o.kind = FNN_PLAN_ADAM
            o.momentum = 0.0
            betas = group["betas"]
            o.beta1 = betas[0]
            o.beta2 = betas[1]
            o.eps = group["eps"]
            o.amsgrad = 1 if group["amsgrad"] else 0
            o.decoupled = 1 if group["decoupled_weight_decay"] else 0
            need = 3 | (4 if o.amsgrad else 0)
        # The slots the kernel touches under these options (plan.h's fnn_plan_arena)
        if f.version != <int64_t>self._optimizer.flat_version or (need & ~f.have) or f.arena != <void *>arena:
            self._refresh(g, arena)
            if need & ~f.have:
                raise RuntimeError(f"plan: {type(self._optimizer).__name__}.flat_state({g}) left a state "
                                   f"buffer these hyper-parameters use unmade")
        ar.state0 = f.slot[0] if need & 1 else NULL
        ar.state1 = f.slot[1] if need & 2 else NULL
        ar.state2 = f.slot[2] if need & 4 else NULL
        if self.opt_kind == FNN_PLAN_SGD:
            o.sgd_mode = f.sgd_mode
            return 0
        if f.step == NULL:
            raise RuntimeError(f"plan: {type(self._optimizer).__name__}.flat_state({g}) gave no step count")
        self.t_next[g] = f.step[0] + 1.0
        o.step = <int64_t>self.t_next[g]
        return 0

    cdef int _refresh(self, int g, object arena) except -1:
        """Ask the optimizer for group g's flat state (it makes what the group's options use)."""
        fs = self._optimizer.flat_state(g)
        if fs.arena is not arena:
            raise RuntimeError("plan: the optimizer's parameters were moved to another arena since the plan "
                               "was compiled; compile a new plan")
        cdef _PlanFlat *f = &self.fl[g]
        cdef tuple bufs = tuple(fs.buffers)
        cdef Py_ssize_t k
        names = self._optimizer.state_slots
        f.have = 0
        for k in range(3):
            f.slot[k] = NULL
            if k < len(bufs) and bufs[k] is not None:
                f.slot[k] = self._state_ptr(bufs[k], names[k], self.ars[g].n)
                f.have |= 1 << k
        step = fs.step
        f.step = NULL
        if step is not None:
            if (not isinstance(step, cnp.ndarray) or cnp.PyArray_TYPE(<cnp.ndarray>step) != cnp.NPY_FLOAT64
                    or cnp.PyArray_NDIM(<cnp.ndarray>step) != 0 or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>step)):
                raise TypeError("optimizer state 'step': expected a writable float64 0-d array")
            f.step = <double *>cnp.PyArray_DATA(<cnp.ndarray>step)
        f.sgd_mode = 1 if fs.first else 2  # PyTorch: the first step copies the gradient into the buffer
        f.arena = <void *>arena
        (<list>self._flat)[g] = fs  # keeps the arrays alive
        f.version = self._optimizer.flat_version
        return 0

    cdef int _check_bn(self) except -1:
        """The plan points at each BatchNorm1d's running-statistics arrays and trains in training mode."""
        for m, p in self._watched:
            if not m.training:
                raise RuntimeError(f"plan: {type(m).__name__} is in eval mode; a plan trains in training mode "
                                   f"(call model.train())")
            if p is not None and m.p != p:
                raise RuntimeError(f"plan: Dropout's p changed from {p} to {m.p} since the plan was compiled; "
                                   f"compile a new plan")
        for m, rm, rv, nbt in self._bn:
            if not m.training:
                raise RuntimeError(f"plan: {m.describe()} is in eval mode; a plan trains in training mode "
                                   f"(call model.train())")
            if m.running_mean is not rm or m.running_var is not rv or m.num_batches_tracked is not nbt:
                raise RuntimeError(f"plan: {m.describe()}'s running statistics were replaced since the plan was "
                                   f"compiled; compile a new plan")
        return 0

    cdef void *_state_ptr(self, object buf, str name, int64_t n) except NULL:
        if not isinstance(buf, cnp.ndarray):
            raise TypeError(f"optimizer state {name!r}: expected a flat array, got {type(buf).__name__}")
        cdef cnp.ndarray a = <cnp.ndarray>buf
        if (cnp.PyArray_TYPE(a) != (cnp.NPY_FLOAT64 if self.kind else cnp.NPY_FLOAT32)
                or cnp.PyArray_SIZE(a) != n or not cnp.PyArray_IS_C_CONTIGUOUS(a)
                or not cnp.PyArray_ISWRITEABLE(a)):
            raise ValueError(f"optimizer state {name!r}: expected a writable contiguous array of the "
                             f"arena's dtype and size {n}")
        return cnp.PyArray_DATA(a)

    cdef void _commit(self, int64_t steps):
        """After `steps` applied updates: the optimizer's step count (one store into its
        counter), and SGD's next updates find the momentum buffer written."""
        cdef int g
        if steps <= 0:
            return
        for g in range(self.ngroups):
            if self.fl[g].step != NULL:
                self.fl[g].step[0] = self.t_next[g] + <double>(steps - 1)
            self.fl[g].sgd_mode = 2

    cdef int _check_batch(self, cnp.ndarray x, cnp.ndarray y, str xn, str yn) except -1:
        cdef int want = cnp.NPY_FLOAT64 if self.kind else cnp.NPY_FLOAT32
        if cnp.PyArray_TYPE(x) != want:
            raise TypeError(f"{xn}: expected a {'float64' if self.kind else 'float32'} array (the model's "
                            f"dtype), got {x.dtype}")
        if cnp.PyArray_NDIM(x) != 2 or cnp.PyArray_DIM(x, 1) != self.n_in or cnp.PyArray_DIM(x, 0) < 1:
            raise ValueError(f"{xn}: expected shape (batch, {self.n_in}), got {(<object>x).shape}")
        if not cnp.PyArray_IS_C_CONTIGUOUS(x):
            raise ValueError(f"{xn}: expected a C-contiguous array")
        cdef int64_t n = cnp.PyArray_DIM(x, 0)
        if self.ce:
            if cnp.PyArray_TYPE(y) != cnp.NPY_INT64:
                raise TypeError(f"{yn}: expected int64 class labels, got dtype {y.dtype}")
            if cnp.PyArray_NDIM(y) != 1 or cnp.PyArray_DIM(y, 0) != n:
                raise ValueError(f"{yn}: expected shape ({n},) to match {xn}, got {(<object>y).shape}")
        else:
            if cnp.PyArray_TYPE(y) != want:
                raise TypeError(f"{yn}: expected a {'float64' if self.kind else 'float32'} array, got {y.dtype}")
            if cnp.PyArray_NDIM(y) != 2 or cnp.PyArray_DIM(y, 0) != n or cnp.PyArray_DIM(y, 1) != self.n_out:
                raise ValueError(f"{yn}: expected shape ({n}, {self.n_out}) to match the output, "
                                 f"got {(<object>y).shape}")
        if not cnp.PyArray_IS_C_CONTIGUOUS(y):
            raise ValueError(f"{yn}: expected a C-contiguous array")
        return 0

    cdef int _raise_status(self, int st, str yn) except -1:
        if st == FNN_PLAN_HOOK_FAILED:  # [grad hook]
            e, self._hook_error = self._hook_error, None
            raise e if e is not None else RuntimeError("plan: the gradient hook failed")
        if st == -1:
            raise MemoryError("fastnn: out of memory in a training plan")
        if st == FNN_PLAN_BAD_INPUT:
            raise ValueError(f"input: the network's output is outside the loss's domain "
                             f"(BCELoss needs probabilities in [0, 1]) at flat index {self.last_bad}")
        if st == FNN_PLAN_BAD_TARGET:
            if self.ce:
                raise IndexError(f"{yn}: class label out of range [0, {self.n_out}) at index {self.last_bad}")
            raise ValueError(f"{yn}: target out of range (expected values in [0, 1]) at flat index {self.last_bad}")
        return 0

    def step(self, cnp.ndarray xb not None, cnp.ndarray yb not None):
        """One training step (forward, loss, backward, update) in one C call; returns the loss.

        xb: (batch, in) array of the model's dtype, C-contiguous; yb: (batch, out) targets of
        that dtype, or (batch,) int64 labels for cross-entropy.
        """
        if self.flatten_input and cnp.PyArray_NDIM(xb) > 2:
            if not cnp.PyArray_IS_C_CONTIGUOUS(xb):
                raise ValueError("xb: expected a C-contiguous array")
            xb = xb.reshape(cnp.PyArray_DIM(xb, 0), -1)
        self._check_batch(xb, yb, "xb", "yb")
        cdef int64_t batch = cnp.PyArray_DIM(xb, 0)
        if self._bn and batch < 2:
            raise ValueError(f"xb: BatchNorm1d expects more than 1 value per channel when training, got a batch "
                             f"of {batch}")
        if batch > fnn_plan_capacity(self.p):
            self.reserve(batch)
        self._prepare()
        cdef double loss = 0.0
        cdef int64_t bad = -1
        cdef int st
        cdef Py_ssize_t k
        if self.ndrop:
            from fastnn.random import draw_seed
            for k in range(self.ndrop):
                self._seeds[k] = draw_seed()
            fnn_plan_set_seeds(self.p, <const uint64_t *>cnp.PyArray_DATA(self._seeds))
        cdef const void *px = cnp.PyArray_DATA(xb)
        cdef const void *py = cnp.PyArray_DATA(yb)
        if batch * self.n_in < 4096:  # releasing the GIL costs more than a tiny step
            st = fnn_plan_step(self.p, batch, px, py, self.ars, self.ops, self.flags, &loss, &bad)
        else:
            with nogil:
                st = fnn_plan_step(self.p, batch, px, py, self.ars, self.ops, self.flags, &loss, &bad)
        self.last_status = st
        self.last_bad = bad
        if st == 0 or st == FNN_PLAN_NONFINITE_PARAM:
            self._commit(1)
        elif st < 0 or st == FNN_PLAN_BAD_INPUT or st == FNN_PLAN_BAD_TARGET or st == FNN_PLAN_HOOK_FAILED:  # [grad hook]
            self._raise_status(st, "yb")
        return <double><float>loss if self.kind == 0 else loss

    def run(self, cnp.ndarray X not None, cnp.ndarray Y not None, object perm, int64_t bs,
            int64_t b0, int64_t b1, cnp.ndarray losses not None, object seeds=None):
        """Batches b0..b1-1 of an epoch (see fnn_plan_run); returns (status, batches done)."""
        self._check_batch(X, Y, "X", "y")
        cdef int64_t n = cnp.PyArray_DIM(X, 0)
        cdef int64_t nb = (n + bs - 1) // bs if bs > 0 else 0
        if bs < 1 or b0 < 0 or b1 > nb or b0 > b1:
            raise ValueError(f"batches: expected 0 <= b0 <= b1 <= {nb} and a positive batch size")
        if cnp.PyArray_TYPE(losses) != cnp.NPY_FLOAT64 or cnp.PyArray_SIZE(losses) < b1 - b0 \
                or not cnp.PyArray_IS_C_CONTIGUOUS(losses) or not cnp.PyArray_ISWRITEABLE(losses):
            raise ValueError(f"losses: expected a writable float64 array of at least {b1 - b0} elements")
        cdef const int64_t *pp = NULL
        cdef cnp.ndarray pa
        if perm is not None:
            pa = <cnp.ndarray>perm
            if cnp.PyArray_TYPE(pa) != cnp.NPY_INT64 or cnp.PyArray_SIZE(pa) != n \
                    or not cnp.PyArray_IS_C_CONTIGUOUS(pa):
                raise ValueError(f"perm: expected a contiguous int64 permutation of {n} indices")
            pp = <const int64_t *>cnp.PyArray_DATA(pa)
        if self._bn and (bs < 2 or n - (nb - 1) * bs < 2):
            raise ValueError(f"batch_size: BatchNorm1d expects more than 1 value per channel when training; "
                             f"batches of {bs} over {n} samples leave one of size {n - (nb - 1) * bs if bs > 1 else 1}")
        cdef cnp.ndarray sa
        if self.ndrop:
            if seeds is None:
                raise ValueError("seeds: this plan has dropout layers; pass one seed per dropout layer and batch")
            sa = <cnp.ndarray>seeds
            if cnp.PyArray_TYPE(sa) != cnp.NPY_UINT64 or cnp.PyArray_SIZE(sa) != (b1 - b0) * self.ndrop \
                    or not cnp.PyArray_IS_C_CONTIGUOUS(sa):
                raise ValueError(f"seeds: expected {(b1 - b0) * self.ndrop} contiguous uint64 seeds")
            fnn_plan_set_seeds(self.p, <const uint64_t *>cnp.PyArray_DATA(sa))
        if bs > fnn_plan_capacity(self.p):
            self.reserve(bs)
        self._prepare()
        cdef int64_t done = 0, bad = -1
        cdef int st
        cdef const void *pX = cnp.PyArray_DATA(X)
        cdef const void *pY = cnp.PyArray_DATA(Y)
        cdef double *pl = <double *>cnp.PyArray_DATA(losses)
        with nogil:
            st = fnn_plan_run(self.p, n, bs, pX, pY, pp, b0, b1, self.ars, self.ops, self.flags,
                              pl, &done, &bad)
        self.last_status = st
        self.last_bad = bad
        self._commit(done)
        if st < 0 or st == FNN_PLAN_BAD_INPUT or st == FNN_PLAN_BAD_TARGET or st == FNN_PLAN_HOOK_FAILED:  # [grad hook]
            self._raise_status(st, "y")
        return st, done

    # --- fit's side: metrics, evaluation, runs of epochs -------------------------------
    def set_metric(self, int metric, double threshold=0.0):
        """Count accuracy after every forward pass (PLAN_METRICS; see plan.h)."""
        if metric == FNN_PLAN_METRIC_ARGMAX and not self.ce:
            raise ValueError("metric: argmax accuracy needs class labels (CrossEntropyLoss)")
        if metric not in (FNN_PLAN_METRIC_NONE, FNN_PLAN_METRIC_ARGMAX, FNN_PLAN_METRIC_THRESHOLD):
            raise ValueError(f"metric: expected one of PLAN_METRICS, got {metric}")
        fnn_plan_set_metric(self.p, metric, threshold)

    @property
    def last_count(self):
        """(correct, counted) of the last step's forward pass under the plan's metric."""
        cdef int64_t c = 0, n = 0
        fnn_plan_last_count(self.p, &c, &n)
        return c, n

    def evaluate(self, cnp.ndarray X not None, cnp.ndarray Y not None, int64_t bs):
        """Forward and loss only over (X, Y) in batches of bs: (loss sum, correct, counted)."""
        self._check_batch(X, Y, "X", "y")
        if bs < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {bs}")
        if bs > fnn_plan_capacity(self.p):
            self.reserve(bs)
        self._prepare()
        cdef double total = 0.0
        cdef int64_t c = 0, k = 0, bad = -1, n = cnp.PyArray_DIM(X, 0)
        cdef const void *pX = cnp.PyArray_DATA(X)
        cdef const void *pY = cnp.PyArray_DATA(Y)
        cdef int st
        with nogil:
            st = fnn_plan_evaluate(self.p, n, bs, pX, pY, self.ars, &total, &c, &k, &bad)
        self.last_bad = bad
        if st != 0:
            self._raise_status(st, "y")
            raise RuntimeError(f"plan: evaluation failed with status {st}")
        return total, c, k

    def team_threads(self, int64_t batch_size, int64_t steps=1):
        """Threads one call of `steps` steps at this batch size runs on: its persistent team's size
        (one parallel region for the call, src_c/team.h), or 1 when the steps are too small to share
        and each kernel forks on its own (fastnn._core.plan_team_mode says how this is decided)."""
        if batch_size < 1 or steps < 1:
            raise ValueError(f"batch_size, steps: expected >= 1, got {batch_size}, {steps}")
        self._prepare()
        return fnn_plan_team_threads(self.p, batch_size, self.ars, steps, self.flags)

    def splits_by_units(self, int64_t batch_size):
        """Whether a step at this batch size, on a team, splits by hidden units (each thread
        owns a block of every hidden layer's units; small networks, src_c/plan_split.inc)
        rather than product by product."""
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
        self._prepare()
        return bool(fnn_plan_splits(self.p, batch_size, self.ars))

    def run_epochs(self, EpochRun run not None, int64_t s0, int64_t s1, object seeds=None):
        """Steps s0..s1-1 of `run` (see fnn_plan_run_epochs); returns (status, steps done)."""
        if run.plan is not self:
            raise ValueError("run: made for another plan")
        if s0 < 0 or s1 > run.total or s0 > s1:
            raise ValueError(f"steps: expected 0 <= s0 <= s1 <= {run.total}")
        cdef cnp.ndarray sa
        if self.ndrop:
            if seeds is None:
                raise ValueError("seeds: this plan has dropout layers; pass one seed per dropout layer and step")
            sa = <cnp.ndarray>seeds
            if cnp.PyArray_TYPE(sa) != cnp.NPY_UINT64 or cnp.PyArray_SIZE(sa) != (s1 - s0) * self.ndrop \
                    or not cnp.PyArray_IS_C_CONTIGUOUS(sa):
                raise ValueError(f"seeds: expected {(s1 - s0) * self.ndrop} contiguous uint64 seeds")
            fnn_plan_set_seeds(self.p, <const uint64_t *>cnp.PyArray_DATA(sa))
        cdef int64_t need = run.r.bs if run.r.bs > run.r.vbs else run.r.vbs
        if need > fnn_plan_capacity(self.p):
            self.reserve(need)
        self._prepare()
        cdef int64_t done = 0, bad = -1
        cdef int st
        if (s1 - s0) * run.r.bs * self.n_in < 4096:  # releasing the GIL costs more than a tiny step
            st = fnn_plan_run_epochs(self.p, &run.r, s0, s1, self.ars, self.ops, self.flags, &done, &bad)
        else:
            with nogil:
                st = fnn_plan_run_epochs(self.p, &run.r, s0, s1, self.ars, self.ops, self.flags, &done, &bad)
        self.last_status = st
        self.last_bad = bad
        self._commit(done)
        if st < 0 or st == FNN_PLAN_BAD_INPUT or st == FNN_PLAN_BAD_TARGET or st == FNN_PLAN_HOOK_FAILED:  # [grad hook]
            self._raise_status(st, "y")
        return st, done


cdef class EpochRun:
    """The arrays of one fnn_plan_run_epochs run: data, per-epoch orders and per-epoch results.

    X, Y: the training data as the plan takes it; perms: (epochs, n) int64 orders or None
    ([mpi] or (epochs, m) rows of X per epoch: a rank's share under fastnn.distributed, the
    epoch then being those m rows);
    Xv, Yv: validation data or None; metric: count accuracy. Results (zeroed here):
    loss_sum, correct, counted, val_loss_sum, val_correct, val_counted (float64 / int64, one
    entry per epoch of the run).
    """
    cdef fnn_plan_epochs r
    cdef readonly PlanCore plan
    cdef readonly int64_t epochs, total
    cdef readonly object X, Y, perms, Xv, Yv
    cdef readonly object loss_sum, correct, counted, val_loss_sum, val_correct, val_counted

    def __cinit__(self, PlanCore plan not None, cnp.ndarray X not None, cnp.ndarray Y not None, int64_t bs,
                  int64_t epochs, object perms=None, object Xv=None, object Yv=None, int64_t vbs=0,
                  bint metric=False):
        plan._check_batch(X, Y, "X", "y")
        cdef int64_t n = cnp.PyArray_DIM(X, 0), rows = n
        if perms is not None and cnp.PyArray_NDIM(<cnp.ndarray>perms) == 2:  # [mpi] an epoch of m rows of X
            n = cnp.PyArray_DIM(<cnp.ndarray>perms, 1)
        if bs < 1 or epochs < 0:
            raise ValueError("batch_size, epochs: expected a positive batch size and epochs >= 0")
        if bs > n:
            bs = n
        self.plan = plan
        self.X, self.Y = X, Y
        self.epochs = epochs
        self.r.n = n
        self.r.bs = bs
        self.r.steps = (n + bs - 1) // bs
        self.total = self.r.steps * epochs
        self.r.X = cnp.PyArray_DATA(X)
        self.r.Y = cnp.PyArray_DATA(Y)
        self.r.perms = NULL
        cdef cnp.ndarray pa
        if perms is not None:
            pa = <cnp.ndarray>perms
            if cnp.PyArray_TYPE(pa) != cnp.NPY_INT64 or cnp.PyArray_NDIM(pa) != 2 \
                    or cnp.PyArray_DIM(pa, 0) != epochs or cnp.PyArray_DIM(pa, 1) != n \
                    or not cnp.PyArray_IS_C_CONTIGUOUS(pa):
                raise ValueError(f"perms: expected a contiguous int64 array of shape ({epochs}, {n})")
            if n and (pa.min() < 0 or pa.max() >= rows):  # [mpi] rows of X
                raise ValueError(f"perms: expected row indices in range({rows})")
            self.perms = pa
            self.r.perms = <const int64_t *>cnp.PyArray_DATA(pa)
        if plan._bn and (bs < 2 or n - (self.r.steps - 1) * bs < 2):
            raise ValueError(f"batch_size: BatchNorm1d expects more than 1 value per channel when training; "
                             f"batches of {bs} over {n} samples leave one of size {n - (self.r.steps - 1) * bs}")
        self.r.nval = 0
        self.r.vbs = 0
        self.r.Xv = NULL
        self.r.Yv = NULL
        if Xv is not None:
            if plan._bn or plan.ndrop:
                raise ValueError("validation: batch norm and dropout run differently in eval mode; "
                                 "evaluate such models outside the plan")
            plan._check_batch(<cnp.ndarray>Xv, <cnp.ndarray>Yv, "X_val", "y_val")
            if vbs < 1:
                raise ValueError(f"vbs: expected a positive validation batch size, got {vbs}")
            self.Xv, self.Yv = Xv, Yv
            self.r.nval = cnp.PyArray_DIM(<cnp.ndarray>Xv, 0)
            self.r.vbs = min(vbs, self.r.nval)
            self.r.Xv = cnp.PyArray_DATA(<cnp.ndarray>Xv)
            self.r.Yv = cnp.PyArray_DATA(<cnp.ndarray>Yv)
        cdef Py_ssize_t e = max(epochs, 1)
        self.loss_sum = np.zeros(e, dtype=np.float64)
        self.val_loss_sum = np.zeros(e, dtype=np.float64)
        self.correct = np.zeros(e, dtype=np.int64)
        self.counted = np.zeros(e, dtype=np.int64)
        self.val_correct = np.zeros(e, dtype=np.int64)
        self.val_counted = np.zeros(e, dtype=np.int64)
        self.r.loss_sum = <double *>cnp.PyArray_DATA(<cnp.ndarray>self.loss_sum)
        self.r.val_loss_sum = <double *>cnp.PyArray_DATA(<cnp.ndarray>self.val_loss_sum)
        self.r.correct = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>self.correct) if metric else NULL
        self.r.counted = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>self.counted) if metric else NULL
        self.r.val_correct = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>self.val_correct) if metric else NULL
        self.r.val_counted = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>self.val_counted) if metric else NULL
        self.r.last_loss = 0.0

    @property
    def steps(self):
        return self.r.steps

    @property
    def batch_size(self):
        return self.r.bs

    @property
    def last_loss(self):
        """The loss of the last step run (the failing one after an error)."""
        return self.r.last_loss
