"""Compiled training plans: no Python in the training loop.

::

    plan = fastnn.plan.compile(model, nn.CrossEntropyLoss(), opt)
    loss = plan.step(xb, yb)                 # forward, loss, backward, update: one C call
    losses = plan.epoch(X, y, batch_size=32, shuffle=True, seed=0)   # a whole epoch in C

A plan covers a ``Sequential`` of ``Linear`` layers, ``LayerNorm`` (last axis),
``BatchNorm1d`` and ``Dropout``, each Linear or norm optionally followed by ReLU,
LeakyReLU (slope >= 0), Sigmoid, Tanh or (after a Linear) GELU, trained with MSELoss, L1Loss,
BCELoss, BCEWithLogitsLoss or CrossEntropyLoss by SGD (momentum, dampening,
Nesterov, weight decay, maximize), Adam/AdamW (amsgrad), RMSprop (alpha, eps,
weight decay, momentum, centered, maximize) or Adagrad (lr_decay, weight decay,
initial_accumulator_value, eps, maximize), with any number of parameter groups (each
updated by its own flat pass with its own hyper-parameters, as ``opt.step()`` does). ``compile``
raises :class:`PlanUnsupported` (saying why) for anything else; :func:`explain`
returns that reason without raising.

The plan holds no copy of the model: it points into the parameter arena and
the optimizer's flat state buffers, so after ``plan.step`` the model,
``opt.state_dict()`` and a PyTorch-style loop see the same state and can be
interleaved. One step is ``opt.zero_grad(); loss_fn(model(xb), yb).backward();
opt.step()``: the same kernels in the same order (bit for bit) for layers whose
products take the GEMM's packed path; small layers (≤ 262144 multiply-adds per
product) run as direct register-blocked loops inside the plan, which agree to
float rounding. Each path is bitwise identical for any thread count. With
``fused=True`` the SGD and Adam weight update is applied inside the weight-gradient
product (``dW`` never reaches memory, so ``param.grad`` of the weights is not written);
results agree with the unfused path (bit for bit in our tests). RMSprop and Adagrad
take the unfused update under ``fused=True`` (each layer's segment is updated by the
optimizer's kernel right after its ``dW`` product, and ``param.grad`` is written), so
their results are those of ``fused=False``.

Dropout draws its seeds from fastnn's generator exactly as the eager forward does;
BatchNorm1d and Dropout must be in training mode (checked at every call).

Buffers are sized once per batch size: a step allocates nothing after the first.

For ``fastnn.fit`` the plan also counts accuracy after each forward pass (``set_metric``:
argmax for class labels, a threshold for BCE), evaluates data forward-only (``evaluate``,
dense and layer-norm layers; no allocation), and runs many epochs per call
(``run_epochs`` over a ``_core.EpochRun``: per-epoch orders, loss sums, counts and validation
filled in C). fit caches its plan on the optimizer (fastnn/train/plan_cache.py).
Under ``use_backend("reference")`` :func:`compile` refuses: a plan runs C, and the
reference backend promises NumPy only.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

import numpy as np

from . import _core, _enums
from .nn.arena import only_padding_nonfinite
from .nn.activation import GELU, LeakyReLU, ReLU, Sigmoid, Tanh
from .nn.container import Sequential
from .nn.linear import Linear
from .nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss
from .nn.dropout import Dropout
from .nn.flatten import Flatten, Identity
from .nn.normalization import BatchNorm1d, LayerNorm
from .plan_layers import DenseSpec, DropoutSpec, NormSpec

__all__ = ["Plan", "PlanUnsupported", "compile", "explain"]

_ACT_TYPES = (ReLU, LeakyReLU, Sigmoid, Tanh, GELU)
_LOSSES = {MSELoss: "mse", L1Loss: "l1", BCELoss: "bce", BCEWithLogitsLoss: "bce_logits",
           CrossEntropyLoss: "cross_entropy"}


class PlanUnsupported(ValueError):
    """The model, loss or optimizer is outside what a compiled plan covers (the message says what)."""


def _optimizer_kind(optimizer) -> int:
    from .optim.adagrad import Adagrad
    from .optim.adam import Adam, AdamW
    from .optim.rmsprop import RMSprop
    from .optim.sgd import SGD
    # Exact types: a subclass may change the update, which the plan would bypass.
    kinds = {SGD: "sgd", Adam: "adam", AdamW: "adam", RMSprop: "rmsprop", Adagrad: "adagrad"}
    kind = kinds.get(type(optimizer))
    if kind is None:
        raise PlanUnsupported(f"optimizer: plans support SGD, Adam, AdamW, RMSprop and Adagrad, "
                              f"got {type(optimizer).__name__}")
    return _core.PLAN_OPTIMIZERS[kind]


def _describe(model, loss_fn, optimizer):
    """(layer specs (fastnn.plan_layers), loss code, reduction, label smoothing, opt kind, arenas (one
    per parameter group), watched modules, flatten_input) or PlanUnsupported."""
    if type(model) is not Sequential:
        raise PlanUnsupported(f"model: plans support nn.Sequential, got {type(model).__name__}")
    # Identity, and Flatten(1, -1) — (batch, d1, d2, ...) to (batch, d1·d2·...), the identity on
    # the 2-D arrays between layers — leave nothing to compute; before the first layer the plan
    # flattens the input instead. pos[i]: children[i]'s index in the model, for messages.
    children, pos = [], []
    flatten_input = False
    for k, m in enumerate(model):
        if type(m) is Flatten:
            if (m.start_dim, m.end_dim) != (1, -1):
                raise PlanUnsupported(f"model[{k}]: plans support Flatten(start_dim=1, end_dim=-1) only, got "
                                      f"Flatten({m.extra_repr()})")
            flatten_input = flatten_input or not children
        elif type(m) is not Identity:
            children.append(m)
            pos.append(k)
    watched = []  # modules whose mode and options the plan checks at every call
    layers = []
    linears = []
    i = 0
    while i < len(children):
        m = children[i]
        if type(m) is Dropout:
            if m.p != 0.0:  # p == 0 is the identity (and draws no seed)
                layers.append((m, _enums.Activation.NONE, 0.0))
                linears.append(m)
            watched.append(m)
            i += 1
            continue
        if (type(m) is LayerNorm and len(m.normalized_shape) == 1) or type(m) is BatchNorm1d:
            act, param = _enums.Activation.NONE, 0.0
            if i + 1 < len(children) and type(children[i + 1]) in _ACT_TYPES and type(children[i + 1]) is not GELU:
                name = children[i + 1].fused_name()
                if name is not None:  # applied after the norm, differentiated from its output
                    act, param = _enums.ACTIVATION_CODES[name], float(getattr(children[i + 1], "negative_slope", 0.0))
                    i += 1
            layers.append((m, act, param))
            linears.append(m)
            i += 1
            continue
        if type(m) is not Linear:
            raise PlanUnsupported(f"model[{pos[i]}]: plans support Linear layers each optionally followed by one of "
                                  f"ReLU, LeakyReLU, Sigmoid, Tanh, GELU; LayerNorm over the last axis, "
                                  f"BatchNorm1d, Dropout, Flatten() and Identity; got {type(m).__name__} here")
        act, param = _enums.Activation.NONE, 0.0
        if i + 1 < len(children) and type(children[i + 1]) not in (Linear, LayerNorm, BatchNorm1d, Dropout):
            a = children[i + 1]
            name = a.fused_name() if type(a) in _ACT_TYPES else None
            if name is None:
                raise PlanUnsupported(f"model[{pos[i + 1]}]: {type(a).__name__} is not supported in a plan "
                                      f"(supported after a Linear: ReLU, LeakyReLU with slope >= 0, Sigmoid, "
                                      f"Tanh, GELU)")
            act, param = _enums.ACTIVATION_CODES[name], float(getattr(a, "negative_slope", 0.0))
            i += 1
        layers.append((m, act, param))
        linears.append(m)
        i += 1
    if not layers:
        raise PlanUnsupported("model: an empty Sequential has nothing to train")
    dims = []
    for k, m in enumerate(linears):
        if type(m) is Linear:
            dims.append((m.in_features, m.out_features))
        elif type(m) is BatchNorm1d:
            dims.append((m.num_features,) * 2)
        elif type(m) is LayerNorm:
            dims.append((m.normalized_shape[0],) * 2)
        else:  # Dropout keeps the width of its neighbours
            width = next((d[1] for d in reversed(dims)), None)
            if width is None:
                nxt = next((x for x in linears[k + 1:] if type(x) is not Dropout), None)
                width = None if nxt is None else (nxt.in_features if type(nxt) is Linear else
                                                  nxt.num_features if type(nxt) is BatchNorm1d else
                                                  nxt.normalized_shape[0])
            dims.append((width, width))
    if not any(type(m) is Linear for m in linears):
        raise PlanUnsupported("model: a plan needs at least one Linear layer")
    for k in range(1, len(linears)):
        if dims[k][0] != dims[k - 1][1]:
            raise PlanUnsupported(f"model: layer {k} expects {dims[k][0]} features, "
                                  f"the previous one gives {dims[k - 1][1]}")
    lt = type(loss_fn)
    if lt not in _LOSSES:
        raise PlanUnsupported(f"loss_fn: plans support MSELoss, L1Loss, BCELoss, BCEWithLogitsLoss and "
                              f"CrossEntropyLoss, got {lt.__name__}")
    reduction = _enums.REDUCTION_CODES[loss_fn.reduction]
    smoothing = float(getattr(loss_fn, "label_smoothing", 0.0))
    kind = _optimizer_kind(optimizer)
    # Something patched onto an instance (a wrapped step, a hooked forward) must run: the plan would bypass it.
    patched = [f"optimizer.{a}" for a in ("step", "zero_grad", "_update") if a in vars(optimizer)]
    patched += [f"{type(m).__name__}.{a}" for m in [model, loss_fn] + list(model)
                for a in ("forward", "backward", "__call__") if a in vars(m)]
    if patched:
        raise PlanUnsupported(f"{patched[0]} is overridden on the instance; a plan would bypass it")
    params = [p for m in linears for p in (getattr(m, "weight", None), getattr(m, "bias", None)) if p is not None]
    if any(not p.requires_grad for p in params):
        raise PlanUnsupported("model: a parameter has requires_grad=False (frozen layers are not supported in plans)")
    # Parameter groups: each holds some of the model's parameters in its own arena, updated
    # with its own hyper-parameters (one optimizer pass per group, as opt.step() does).
    in_groups = [p for g in optimizer.param_groups for p in g["params"]]
    if {id(p) for p in in_groups} != {id(p) for p in params} or len(in_groups) != len(params):
        raise PlanUnsupported("optimizer: its parameters must be exactly the model's parameters")
    arenas, where = [], {}
    for gi in range(len(optimizer.param_groups)):
        group_arenas = optimizer.group_arenas(gi)
        if len(group_arenas) != 1 or (arenas and group_arenas[0].dtype != arenas[0].dtype):
            raise PlanUnsupported("model: parameters of mixed dtypes are not supported in plans")
        arenas.append(group_arenas[0])
        where.update({id(p): (gi, o) for p, o in zip(group_arenas[0].params, group_arenas[0].offsets)})
    desc = []
    for (m, act, param), (n_in, n_out) in zip(layers, dims):
        if type(m) is Dropout:
            desc.append(DropoutSpec(n_in=n_in, n_out=n_out, p=float(m.p)))
            continue
        w, b = getattr(m, "weight", None), getattr(m, "bias", None)
        (wg, wo), (bg, bo) = where.get(id(w), (0, -1)), where.get(id(b), (0, -1))
        if type(m) is Linear:
            desc.append(DenseSpec(n_in=n_in, n_out=n_out, w_off=wo, b_off=bo, w_group=wg, b_group=bg,
                                  act=act, act_param=param))
            continue
        bn = type(m) is BatchNorm1d
        stats = bn and m.track_running_stats
        desc.append(NormSpec(kind=_enums.PlanLayer.BATCH_NORM if bn else _enums.PlanLayer.LAYER_NORM,
                             n_in=n_in, n_out=n_out, w_off=wo, b_off=bo, w_group=wg, b_group=bg,
                             act=act, act_param=param, eps=float(m.eps),
                             momentum=-1.0 if not bn or m.momentum is None else float(m.momentum),
                             running_mean=m.running_mean if stats else None,
                             running_var=m.running_var if stats else None,
                             num_batches_tracked=m.num_batches_tracked if stats else None,
                             module=m if bn else None))
    watched += [m for m in linears if type(m) is BatchNorm1d]
    return desc, _LOSSES[lt], reduction, smoothing, kind, arenas, watched, flatten_input


def _refuse_reference_backend() -> None:
    """Plans are C: under ``use_backend("reference")`` the model must run on NumPy only."""
    from . import backend
    if backend.get_backend() == "reference":
        raise PlanUnsupported("backend: plans run the compiled kernels, but use_backend('reference') is in "
                              "effect (the model must run on NumPy only); train eagerly or leave the block")


def explain(model, loss_fn, optimizer, **fit_kwargs) -> Optional[str]:
    """None when ``compile(model, loss_fn, optimizer)`` would succeed, else the reason it would not.

    With fit's keyword arguments (``callbacks``, ``scheduler``, ``scheduler_interval``,
    ``validation_data``), a compilable combination returns instead the line ``fit(...,
    verbose=2)`` prints: which path fit would take (one step, one epoch or many epochs per C
    call) and why.
    """
    try:
        _refuse_reference_backend()
        _describe(model, loss_fn, optimizer)
    except PlanUnsupported as e:
        return str(e)
    if not fit_kwargs:
        return None
    unknown = set(fit_kwargs) - {"callbacks", "scheduler", "scheduler_interval", "validation_data"}
    if unknown:
        raise TypeError(f"explain: unexpected keyword argument(s) {sorted(unknown)}")
    from .train.loop import describe_path
    return describe_path(model, loss_fn, optimizer, **fit_kwargs)


class Plan(_core.PlanCore):
    """A compiled training step for (model, loss_fn, optimizer); build it with :func:`compile`.

    ``step(xb, yb)`` — one training step in one C call; returns the loss (a float).
    xb: (batch, in_features) C-contiguous array of the model's dtype — or (batch, d1, d2, ...)
    when the model starts with ``Flatten()``; yb: (batch, out) targets of that dtype, or
    (batch,) int64 labels for CrossEntropyLoss. ``Identity`` and ``Flatten()`` between layers
    (the identity on their 2-D arrays) are skipped.

    ``epoch(X, y, batch_size, shuffle, seed, callback, every)`` — one epoch of
    mini-batches looped in C; returns the per-batch losses.

    The optimizer's state (momentum buffers, moments, RMSprop's ``square_avg``/``grad_avg``,
    Adagrad's ``sum``, the ``step`` count) stays in the optimizer's own buffers, updated by
    the optimizer's own kernels: ``opt.state_dict()`` after plan steps equals the one after as
    many eager steps. ``fused=True`` fuses the SGD and Adam weight updates into the ``dW``
    product; RMSprop and Adagrad then take the unfused update path (same results as
    ``fused=False``; ``param.grad`` of the weights is written).
    """

    def __new__(cls, model, loss_fn, optimizer, *, batch_size: Optional[int] = None, fused: bool = False,
                **sklearn_options):
        _refuse_reference_backend()
        desc, loss, reduction, smoothing, kind, arenas, watched, flat = _describe(model, loss_fn, optimizer)
        self = super().__new__(cls, arenas[0].dtype == np.float64, desc, _core.PLAN_LOSSES[loss], reduction,
                               smoothing)
        self.flatten_input = flat
        self._bind(optimizer, arenas, kind)
        self._watch([(m, float(m.p)) if type(m) is Dropout else (m, None) for m in watched])
        return self

    def __init__(self, model, loss_fn, optimizer, *, batch_size: Optional[int] = None, fused: bool = False,
                 weight_decay_per_row: bool = False, adam_eps: str = "pytorch", l2_loss: float = 0.0):
        for group in optimizer.param_groups:
            optimizer._check_group(group)
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.dtype = np.dtype(np.float64 if self.kind else np.float32)
        self.fused = bool(fused)
        if adam_eps not in ("pytorch", "sklearn"):
            raise ValueError(f"adam_eps: expected 'pytorch' or 'sklearn', got {adam_eps!r}")
        l2_loss = float(l2_loss)
        if not np.isfinite(l2_loss):
            raise ValueError(f"l2_loss: expected a finite number, got {l2_loss!r}")
        self.wd_per_row = bool(weight_decay_per_row)
        self.eps_sklearn = adam_eps == "sklearn"
        self.l2_loss = l2_loss
        if batch_size is not None:
            self.reserve(int(batch_size))

    @property
    def check_finite(self) -> bool:
        """Stop before the update on a non-finite loss or gradient (``last_status`` says which;
        used by ``fit`` for its DivergenceError). Forces the unfused update path."""
        return bool(self.flags & _core.PLAN_CHECK_FINITE)

    @check_finite.setter
    def check_finite(self, value: bool) -> None:
        self.flags = (self.flags | _core.PLAN_CHECK_FINITE) if value else (self.flags & ~_core.PLAN_CHECK_FINITE)

    @property
    def fused(self) -> bool:
        """Apply the weight update inside the dW product (param.grad of weights is then not written)."""
        return bool(self.flags & _core.PLAN_FUSED)

    @fused.setter
    def fused(self, value: bool) -> None:
        self.flags = (self.flags | _core.PLAN_FUSED) if value else (self.flags & ~_core.PLAN_FUSED)

    def __repr__(self) -> str:
        return (f"Plan({len(list(self.model))} modules, {type(self.loss_fn).__name__}, "
                f"{type(self.optimizer).__name__}, {self.dtype}, fused={self.fused}, capacity={self.capacity})")

    def _arrays(self, X, y):
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if X.ndim > 2 and self.flatten_input:
            X = X.reshape(len(X), -1)
        if X.ndim != 2:
            raise ValueError(f"X: expected shape (samples, {self.n_in}), got {X.shape}")
        if self.ce:
            y = np.asarray(y)
            if y.dtype.kind not in "iu":
                raise TypeError(f"y: expected integer class labels, got dtype {y.dtype}")
            y = np.ascontiguousarray(y, dtype=np.int64)
        else:
            y = np.ascontiguousarray(y, dtype=self.dtype)
        return X, y

    def epoch(self, X, y, batch_size: int = 32, shuffle: bool = True, seed: Optional[int] = None,
              callback: Optional[Callable] = None, every: int = 0, perm=None,
              stop: Optional[Callable] = None) -> np.ndarray:
        """One epoch over (X, y) in mini-batches of ``batch_size`` (the last one holds the rest).

        shuffle: visit the samples in the order of ``numpy.random.default_rng(seed).permutation(n)``
        (or of ``perm`` when given). The batches run in C with the GIL released, in chunks of
        a few milliseconds; between chunks Ctrl-C is honoured (KeyboardInterrupt, with
        ``exc.batches_done``: the model holds the last completed step) and, every ``every``
        batches, ``callback(batches_done, total_batches, losses[:batches_done])`` is called.
        ``stop()`` (optional) is asked between chunks; True ends the epoch there.
        Returns the per-batch losses (float64) of the batches run. Stops with
        ``exc.batches_done`` set on a failing batch (bad labels: IndexError; BCE input out of
        range: ValueError); with ``check_finite``, stops at a diverging batch (``last_status``).
        ``last_losses`` keeps the whole array (the failing batch's loss included).
        """
        X, y = self._arrays(X, y)
        n = X.shape[0]
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
        bs = min(int(batch_size), n)
        nb = -(-n // bs)
        if perm is None and shuffle and nb > 1:
            perm = np.random.default_rng(seed).permutation(n)
        if perm is not None:
            perm = np.ascontiguousarray(perm, dtype=np.int64)
            if perm.shape != (n,) or (n and (perm.min() < 0 or perm.max() >= n)):
                raise ValueError(f"perm: expected a permutation of range({n})")
        for group in self.optimizer.param_groups:
            self.optimizer._check_group(group)
        losses = np.zeros(nb, dtype=np.float64)
        self.last_losses = losses
        every = int(every) if callback is not None and every else 0
        done = 0
        chunk = 1
        try:
            while done < nb:
                end = min(nb, done + chunk)
                if every:
                    end = min(end, (done // every + 1) * every)
                t0 = time.perf_counter()
                seeds = self._draw_seeds(end - done)
                status, ran = self.run(X, y, perm, bs, done, end, losses[done:], seeds)
                done += ran
                if status == _enums.PlanStatus.NONFINITE_PARAM and only_padding_nonfinite(self.optimizer):
                    self.last_status = status = _enums.PlanStatus.OK  # the update was applied; only padding held 0/0
                if status != _enums.PlanStatus.OK:
                    return losses[:done]
                if time.perf_counter() - t0 < 0.002:  # chunks of ~2 ms: Ctrl-C stays responsive
                    chunk *= 2
                if every and (done % every == 0 or done == nb):
                    callback(done, nb, losses[:done])
                if stop is not None and done < nb and stop():
                    return losses[:done]
        except BaseException as e:
            e.batches_done = done
            raise
        return losses


def compile(model, loss_fn, optimizer, *, batch_size: Optional[int] = None, fused: bool = False,
            weight_decay_per_row: bool = False, adam_eps: str = "pytorch", l2_loss: float = 0.0) -> Plan:
    """A :class:`Plan` for training ``model`` with ``loss_fn`` and ``optimizer``.

    Raises :class:`PlanUnsupported` (a ValueError saying why) when the combination is not
    covered, or under ``use_backend("reference")`` (a plan runs C, the reference backend
    promises NumPy only); use :func:`explain` to ask without raising. ``batch_size`` sizes the buffers now
    (otherwise the first step does). ``fused=True`` applies SGD and Adam weight updates inside
    the dW product (param.grad of the weights is then not written); RMSprop and Adagrad take
    the unfused update path.

    Options for scikit-learn's conventions (fastnn.sklearn uses them; all off by default):

    * ``weight_decay_per_row=True`` — each step decays by ``weight_decay / rows`` of its batch
      (scikit-learn adds ``alpha·W / n_batch`` to the gradient, the short last batch too).
      Eager equivalent: set each group's ``weight_decay`` to that before ``opt.step()``.
    * ``adam_eps="sklearn"`` — Adam/AdamW add eps to ``sqrt(v)`` rather than to
      ``sqrt(v / (1 − β2^t))``: at step t the plan uses ``eps / sqrt(1 − β2^t)`` (in double)
      for each group's eps. Eager equivalent: set ``group["eps"] = eps / math.sqrt(1 - beta2**t)``
      before step t. So Adam runs whole epochs in C.
    * ``l2_loss=s`` — each step's reported loss gains ``s · ½ · decay · Σθ²`` for every group
      (θ before the update, decay as applied by this step): with s = 1, the L2-penalised
      objective whose gradient coupled weight decay adds.
    """
    return Plan(model, loss_fn, optimizer, batch_size=batch_size, fused=fused,
                weight_decay_per_row=weight_decay_per_row, adam_eps=adam_eps, l2_loss=l2_loss)
