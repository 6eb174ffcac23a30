"""One epoch of scikit-learn's MLP training, on fastnn: a compiled plan, or an exact eager loop.

scikit-learn's gradient for a batch of n samples (weights ``sw``, ``sw_sum = Σ sw`` or n) is

    dW = (Aᵀ·δ + alpha·W) / sw_sum,   db = Σ δ / sw_sum,   δ_out = sw · (act(z) − y)

(the L2 penalty on the weights only, scaled by the batch). Two engines reproduce it:

* ``PlanEngine`` — ``fastnn.plan`` runs whole epochs in C (every solver, any alpha); used
  whenever there is no sample_weight. fastnn's mean losses differ from scikit-learn's δ by a
  constant factor c (CrossEntropy: 1; BCE over k outputs: k; MSE over k: k/2), folded into
  the optimizer (SGD: lr·c; Adam, RMSprop, Adagrad: eps/c; the L2 decay: alpha/c), which is
  exact. The plan has two parameter groups (weights with weight_decay = alpha/c, biases
  without) and scikit-learn's options: the decay divided by each batch's rows
  (``weight_decay_per_row``), the penalty in the reported loss (``l2_loss``) and, for Adam,
  eps_t = eps/sqrt(1 − β2^t) computed in C at every step (``adam_eps="sklearn"``).
* ``ExactEngine`` — the eager fastnn loop (``model(xb)``, ``out.backward(δ)``, ``opt.step()``)
  with scikit-learn's δ computed from the output, two parameter groups (weights with
  weight_decay = alpha / sw_sum set per batch — the last, smaller batch too; biases without).
  Used for sample_weight (a plan does not weight samples).

Both visit the batches scikit-learn visits (its permutation, ``gen_batches`` slicing) and
report its loss: the epoch's Σ batch_loss·batch_size / n, batch_loss including the penalty.
Optimizer state is kept between calls (partial_fit) in scikit-learn's gradient units, so
either engine can resume what the other left.
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn, optim
from .. import plan as plan_mod

L2_SOLVERS = ("sgd", "adam", "rmsprop", "adagrad")  # alpha enters the gradient, as in sklearn
SOLVERS = L2_SOLVERS + ("adamw",)                    # adamw: alpha is AdamW's decoupled decay

# Optimizer state arrays and the power of the gradient they scale with.
_STATE_POWER = {"momentum_buffer": 1, "exp_avg": 1, "grad_avg": 1,
                "exp_avg_sq": 2, "max_exp_avg_sq": 2, "square_avg": 2, "sum": 2}


def loss_kind(out_activation):
    return {"softmax": "cross_entropy", "logistic": "bce", "identity": "mse"}[out_activation]


def gradient_factor(kind, n_outputs):
    """c with scikit-learn's δ = c · (gradient of fastnn's mean loss)."""
    return {"cross_entropy": 1.0, "bce": float(n_outputs), "mse": n_outputs / 2.0}[kind]


def make_optimizer(groups, p, lr, c, decay):
    """The fastnn optimizer for solver ``p.solver`` (hyper-parameters from estimator ``p``).
    lr: the current learning rate; c: the gradient factor to fold in; decay: AdamW's decoupled
    weight decay of the first group (the other groups take none)."""
    eps = p.epsilon / c
    if p.solver == "sgd":
        return optim.SGD(groups, lr=lr * c, momentum=p.momentum,
                         nesterov=bool(p.nesterovs_momentum and p.momentum > 0))
    if p.solver == "adam":
        return optim.Adam(groups, lr=lr, betas=(p.beta_1, p.beta_2), eps=eps)
    if p.solver == "adamw":
        if isinstance(groups[0], dict):  # weights first: only they decay
            groups = [dict(g, weight_decay=decay if i == 0 else 0.0) for i, g in enumerate(groups)]
        return optim.AdamW(groups, lr=lr, betas=(p.beta_1, p.beta_2), eps=eps, weight_decay=decay)
    if p.solver == "rmsprop":  # beta_2: its squared-gradient average's decay
        return optim.RMSprop(groups, lr=lr, alpha=p.beta_2, eps=eps)
    return optim.Adagrad(groups, lr=lr, eps=eps)


class _Engine:
    """Shared: the optimizer's state in scikit-learn's units, learning-rate changes, Adam's eps."""

    c = 1.0
    steps = 0  # optimizer steps taken (Adam's t)

    def _init_adam(self, p):
        """scikit-learn's Adam adds eps to sqrt(v), fastnn's (PyTorch's) to sqrt(v / (1 - beta_2^t)):
        the same update when fastnn's eps is eps / sqrt(1 - beta_2^t), set before every step."""
        self.sk_adam = p.solver == "adam"
        self.eps, self.beta_2 = float(p.epsilon), float(p.beta_2)

    def _set_adam_eps(self):
        # the formula the plan's adam_eps="sklearn" computes in C: the same bits on both engines
        self.steps += 1
        eps = (self.eps / self.c) / math.sqrt(1.0 - self.beta_2 ** self.steps)
        for g in self.optimizer.param_groups:
            g["eps"] = eps

    def _ordered_params(self):
        """The optimizer's parameters in its state_dict order, each as (list, layer) keys: both
        engines build their optimizer with the weights group first, then the biases group."""
        n = len(self.linears)
        return [("w", i) for i in range(n)] + [("b", i) for i in range(n)]

    def export_state(self):
        """{"scalars": {...}, "arrays": {name: [per-parameter arrays, sklearn order]}}."""
        sd = self.optimizer.state_dict()
        keys = self._ordered_params()
        out = {"scalars": {}, "arrays": {}}
        n = len(self.linears)
        for index, entry in sd["state"].items():
            kind, layer = keys[index]
            slot = layer if kind == "w" else n + layer
            for name, v in entry.items():
                if isinstance(v, np.ndarray):
                    scale = self.c ** _STATE_POWER.get(name, 0)
                    out["arrays"].setdefault(name, [None] * (2 * n))[slot] = v * scale
                else:
                    out["scalars"][name] = v
        out["steps"] = self.steps
        return out

    def import_state(self, saved):
        if not saved:
            return
        self.steps = saved["steps"]
        if not saved["arrays"]:
            return
        sd = self.optimizer.state_dict()
        keys = self._ordered_params()
        n = len(self.linears)
        for index, (kind, layer) in enumerate(keys):
            slot = layer if kind == "w" else n + layer
            entry = dict(saved["scalars"])
            for name, arrays in saved["arrays"].items():
                entry[name] = arrays[slot] / self.c ** _STATE_POWER.get(name, 0)
            sd["state"][index] = entry
        self.optimizer.load_state_dict(sd)

    def set_learning_rate(self, old, new):
        """scikit-learn's SGD velocity is v = m·v − lr·g: when lr changes, fastnn's buffer
        (v = −lr·buf) is rescaled by old/new so the next steps continue v exactly."""
        lr_scale = self.c if self.solver == "sgd" else 1.0
        for g in self.optimizer.param_groups:
            g["lr"] = new * lr_scale
        if self.solver == "sgd" and new != old and new > 0:
            sd = self.optimizer.state_dict()
            touched = False
            for entry in sd["state"].values():
                if "momentum_buffer" in entry:
                    entry["momentum_buffer"] = entry["momentum_buffer"] * (old / new)
                    touched = True
            if touched:
                self.optimizer.load_state_dict(sd)


class PlanEngine(_Engine):
    """Whole epochs in C through a compiled plan (no sample weights)."""

    def __init__(self, model, linears, kind, n_outputs, p, lr, dtype):
        self.model, self.linears, self.kind, self.solver = model, linears, kind, p.solver
        self.c = gradient_factor(kind, n_outputs)
        self.loss_scale = {"cross_entropy": 1.0, "bce": float(n_outputs), "mse": 0.5}[kind]
        loss_fn = {"cross_entropy": nn.CrossEntropyLoss, "bce": nn.BCEWithLogitsLoss, "mse": nn.MSELoss}[kind]()
        alpha = float(p.alpha)
        l2 = p.solver in L2_SOLVERS and alpha > 0
        groups = [{"params": [lin.weight for lin in linears], "weight_decay": alpha / self.c if l2 else 0.0},
                  {"params": [lin.bias for lin in linears], "weight_decay": 0.0}]
        self.optimizer = make_optimizer(groups, p, lr, self.c, 0.0 if p.solver in L2_SOLVERS else alpha)
        # sklearn's penalty ½·alpha·ΣW²/n in the loss: the plan adds l2_loss·½·(alpha/c)/n·ΣW² to
        # its loss, which is scaled by loss_scale below
        self.plan = plan_mod.compile(model, loss_fn, self.optimizer, weight_decay_per_row=l2,
                                     l2_loss=self.c / self.loss_scale if l2 else 0.0,
                                     adam_eps="sklearn" if p.solver == "adam" else "pytorch")
        self.dtype = dtype
        self._init_adam(p)

    def targets(self, Y):
        if self.kind == "cross_entropy":
            return np.ascontiguousarray(np.argmax(Y, axis=1), dtype=np.int64)
        return np.ascontiguousarray(Y, dtype=self.dtype)

    def epoch(self, X, T, sw, perm, batch_size):
        """Σ batch_loss · batch_size (scikit-learn's loss) over one epoch."""
        n = X.shape[0]
        # Adam's eps_t is formed in C at every step (adam_eps="sklearn"): one call per epoch
        losses = self.plan.epoch(X, T, batch_size=batch_size, shuffle=False, perm=perm)
        self.steps += len(losses)
        sizes = np.minimum(batch_size, n - batch_size * np.arange(len(losses)))
        return float(np.dot(losses, sizes)) * self.loss_scale


class ExactEngine(_Engine):
    """The eager loop with scikit-learn's own output gradient and weights-only penalty."""

    def __init__(self, model, linears, kind, n_outputs, p, lr, dtype):
        self.model, self.linears, self.kind, self.solver = model, linears, kind, p.solver
        self.out_activation = {"cross_entropy": "softmax", "bce": "logistic", "mse": "identity"}[kind]
        self.alpha = float(p.alpha)
        self.l2 = p.solver in L2_SOLVERS
        weights = [lin.weight for lin in linears]
        biases = [lin.bias for lin in linears]
        self.optimizer = make_optimizer([{"params": weights}, {"params": biases}], p, lr, 1.0,
                                        0.0 if self.l2 else self.alpha)
        self.weight_group = self.optimizer.param_groups[0]
        self.dtype = dtype
        self._init_adam(p)

    def targets(self, Y):
        return np.ascontiguousarray(Y, dtype=self.dtype)

    def epoch(self, X, T, sw, perm, batch_size):
        from ._network import output_activation
        n = X.shape[0]
        total = 0.0
        eps = np.finfo(self.dtype).eps
        for start in range(0, n, batch_size):
            idx = slice(start, start + batch_size) if perm is None else perm[start:start + batch_size]
            xb, yb = X[idx], T[idx]
            swb = None if sw is None else sw[idx]
            sw_sum = float(len(xb)) if swb is None else float(swb.sum())
            out = self.model(xb)
            prob = output_activation(out.view(np.ndarray), self.out_activation)
            loss = self._loss(yb, prob, swb, eps)
            if self.l2 and self.alpha:
                loss += 0.5 * self.alpha * sum(float(np.dot(w.data.ravel(), w.data.ravel()))
                                               for w in self.weight_group["params"]) / sw_sum
                self.weight_group["weight_decay"] = self.alpha / sw_sum
            delta = prob - yb
            if swb is not None:
                delta *= swb[:, None]
            delta /= sw_sum
            if self.sk_adam:
                self._set_adam_eps()
            else:
                self.steps += 1
            self.optimizer.zero_grad()
            out.backward(np.ascontiguousarray(delta, dtype=self.dtype))
            self.optimizer.step()
            total += loss * len(xb)
        return total

    def _loss(self, y, prob, sw, eps):
        """scikit-learn's squared_loss / log_loss / binary_log_loss (probabilities clipped to
        [eps, 1 - eps]), in few passes: per-sample terms, then their (weighted) mean."""
        if self.kind == "mse":
            per_sample = ((y - prob) ** 2).sum(axis=1) * (0.5 / y.shape[1])
        elif self.kind == "cross_entropy":  # one-hot y: only the true class's probability counts
            per_sample = -np.log(np.clip((prob * y).sum(axis=1), eps, 1 - eps))
        else:
            per_sample = -np.log(np.clip(np.where(y > 0.5, prob, 1 - prob), eps, 1 - eps)).sum(axis=1)
        if sw is None:
            return float(per_sample.mean())
        return float(np.dot(sw, per_sample) / sw.sum())
