"""What MLPClassifier and MLPRegressor share: parameters, checks and scikit-learn's training loop.

The loop is scikit-learn's ``_fit_stochastic`` step for step — its random_state draws
(initialisation, early-stopping split, one permutation per epoch), its batches, loss,
tol / n_iter_no_change bookkeeping, learning-rate schedules, warm_start and partial_fit —
with each epoch run by fastnn (``_solver``). The fitted state is plain NumPy (``coefs_``,
``intercepts_``, the optimizer's state as arrays), so pickling, joblib and ``clone`` need
nothing special; the fastnn model and compiled plan are rebuilt at each fit call and never
stored on the estimator.
"""
from __future__ import annotations

import numbers
import warnings
from contextlib import contextmanager

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from .. import get_num_threads, set_num_threads
from .. import random as fnn_random
from . import _network, _solver

_DTYPES = {"float32": np.float32, "float64": np.float64}


@contextmanager
def fastnn_context(n_threads, seed):
    """fastnn's thread count and global generator for one fit/predict, restored afterwards
    (the estimator must not change the caller's fastnn settings or random stream)."""
    old_threads = get_num_threads()
    old_generator = fnn_random.default_generator()
    try:
        if n_threads is not None:
            set_num_threads(int(n_threads))
        if seed is not None:
            fnn_random.manual_seed(int(seed))
        yield
    finally:
        set_num_threads(old_threads)
        fnn_random._generator = old_generator  # no public setter: manual_seed makes a new one


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _check(cond, name, expected, value):
    if not cond:
        raise ValueError(f"The '{name}' parameter of {{est}} must be {expected}. Got {value!r} instead.")



def _shuffled(idx, rng):
    """``sklearn.utils.shuffle(idx, random_state=rng)``'s result and draws (it shuffles
    ``arange(n)`` with ``rng.shuffle`` and indexes), without its per-call parameter
    validation: 0.4 ms an epoch, a quarter of a digits fit."""
    order = np.arange(len(idx))
    rng.shuffle(order)
    return idx[order]

class BaseMLP(BaseEstimator):
    """Parameters as scikit-learn's BaseMultilayerPerceptron, plus fastnn's dropout, n_threads, dtype."""

    def _store_params(self, params):
        """Keep each __init__ argument as the attribute of its name, unchanged (scikit-learn's rule:
        no logic in __init__); called as ``self._store_params(locals())`` first thing in __init__."""
        for name, value in params.items():
            if name != "self":
                setattr(self, name, value)

    def _validate_hyperparameters(self):
        try:
            return self._check_hyperparameters()
        except ValueError as e:
            raise ValueError(str(e).replace("{est}", type(self).__name__)) from None

    def _check_hyperparameters(self):
        h = self.hidden_layer_sizes
        sizes = [h] if _is_int(h) else h
        try:
            sizes = list(sizes)
        except TypeError:
            sizes = None
        _check(sizes is not None and all(_is_int(s) for s in sizes), "hidden_layer_sizes",
               "an int or an array-like of ints", h)
        if any(s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        _check(self.activation in _network.HIDDEN_ACTIVATIONS, "activation",
               "a str among " + str(sorted(_network.HIDDEN_ACTIVATIONS)), self.activation)
        if self.solver == "lbfgs":
            raise ValueError("solver='lbfgs' is not available in fastnn.sklearn (fastnn trains by mini-batch "
                             "gradient descent); use 'adam', 'sgd', 'adamw', 'rmsprop' or 'adagrad', or "
                             "sklearn.neural_network for L-BFGS")
        _check(self.solver in _solver.SOLVERS, "solver", "a str among " + str(list(_solver.SOLVERS)), self.solver)
        _check(_is_real(self.alpha) and self.alpha >= 0, "alpha", "a float in the range [0, inf)", self.alpha)
        _check(self.batch_size == "auto" or (_is_int(self.batch_size) and self.batch_size >= 1), "batch_size",
               "'auto' or an int in the range [1, inf)", self.batch_size)
        _check(self.learning_rate in ("constant", "invscaling", "adaptive"), "learning_rate",
               "a str among ['constant', 'invscaling', 'adaptive']", self.learning_rate)
        _check(_is_real(self.learning_rate_init) and self.learning_rate_init > 0, "learning_rate_init",
               "a float in the range (0, inf)", self.learning_rate_init)
        _check(_is_real(self.power_t) and self.power_t >= 0, "power_t", "a float in the range [0, inf)", self.power_t)
        _check(_is_int(self.max_iter) and self.max_iter >= 1, "max_iter", "an int in the range [1, inf)",
               self.max_iter)
        for flag in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            _check(isinstance(getattr(self, flag), (bool, np.bool_)), flag, "an instance of 'bool'",
                   getattr(self, flag))
        _check(_is_real(self.tol) and self.tol >= 0, "tol", "a float in the range [0, inf)", self.tol)
        _check(_is_real(self.momentum) and 0 <= self.momentum <= 1, "momentum", "a float in the range [0, 1]",
               self.momentum)
        _check(_is_real(self.validation_fraction) and 0 <= self.validation_fraction < 1, "validation_fraction",
               "a float in the range [0, 1)", self.validation_fraction)
        for beta in ("beta_1", "beta_2"):
            v = getattr(self, beta)
            _check(_is_real(v) and 0 <= v < 1, beta, "a float in the range [0, 1)", v)
        _check(_is_real(self.epsilon) and self.epsilon > 0, "epsilon", "a float in the range (0, inf)", self.epsilon)
        n = self.n_iter_no_change
        _check((_is_int(n) and n >= 1) or (_is_real(n) and n == np.inf), "n_iter_no_change",
               "an int in the range [1, inf) or inf", n)
        _check(_is_int(self.max_fun) and self.max_fun >= 1, "max_fun", "an int in the range [1, inf)", self.max_fun)
        _check(_is_real(self.dropout) and 0 <= self.dropout < 1, "dropout", "a float in the range [0, 1)",
               self.dropout)
        _check(self.n_threads is None or (_is_int(self.n_threads) and self.n_threads >= 1), "n_threads",
               "None or an int in the range [1, inf)", self.n_threads)
        _check(self._dtype_name() in _DTYPES, "dtype", "'float32' or 'float64'", self.dtype)
        return sizes

    def _dtype_name(self):
        if self.dtype is None:  # np.dtype(None) would be float64: say it instead
            return None
        try:
            return str(np.dtype(self.dtype))
        except TypeError:
            return None

    def _train_dtype(self):
        return _DTYPES[self._dtype_name()]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified: fastnn's kernels take dense arrays
        return tags

    # --- input --------------------------------------------------------------------------
    @staticmethod
    def _dense(X):
        return X.toarray() if sparse.issparse(X) else X

    # --- fitting ------------------------------------------------------------------------
    def _fit(self, X, y, sample_weight=None, incremental=False):
        sizes = self._validate_hyperparameters()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        X = self._dense(X)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        if not first_pass and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs, but {type(self).__name__} was fitted with "
                             f"{self.n_outputs_}")
        self.n_outputs_ = Y.shape[1]
        layer_units = [X.shape[1]] + sizes + [self.n_outputs_]
        rng = check_random_state(self.random_state)
        dtype = self._train_dtype()
        if first_pass:
            self._initialize(layer_units, rng, dtype)
        elif [c.shape for c in self.coefs_] != list(zip(layer_units[:-1], layer_units[1:])):
            raise ValueError(f"hidden_layer_sizes {sizes} does not match the fitted network "
                             f"{[c.shape[1] for c in self.coefs_[:-1]]}; refit without warm_start")
        X = np.ascontiguousarray(X, dtype=dtype)
        seed = rng.randint(0, 2**31 - 1) if self.dropout > 0 else 0
        with fastnn_context(self.n_threads, seed):
            self._fit_stochastic(X, Y, sample_weight, rng, incremental, dtype)
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError("Solver produced non-finite parameter weights. The input data may contain large "
                             "values and need to be preprocessed.")
        return self

    def _initialize(self, layer_units, rng, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._out_activation()
        self.coefs_, self.intercepts_ = _network.glorot_init(rng, layer_units, self.activation, dtype)
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self._solver_state = None
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _fit_stochastic(self, X, Y, sample_weight, rng, incremental, dtype):
        # warm_start refits start a new optimizer, partial_fit continues the last one (as sklearn)
        resume = (incremental and self._solver_state is not None
                  and self._solver_state["solver"] == self.solver)
        lr = self._solver_state["learning_rate"] if resume else float(self.learning_rate_init)
        early_stopping = self.early_stopping
        X_val = y_val = sw_val = None
        if early_stopping:
            stratify = Y if (is_classifier(self) and self.n_outputs_ == 1) else None
            arrays = [X, Y] + ([sample_weight] if sample_weight is not None else [])
            parts = train_test_split(*arrays, random_state=rng, test_size=self.validation_fraction,
                                     stratify=stratify)
            X, X_val, Y, y_val = parts[:4]
            if sample_weight is not None:
                sample_weight, sw_val = parts[4], parts[5]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size "
                                 "of your dataset.")
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n))

        kind = _solver.loss_kind(self.out_activation_)
        model, linears = _network.build_model(self.coefs_, self.intercepts_, self.activation,
                                              float(self.dropout), dtype)
        # The plan does not weight samples: sample_weight takes the exact eager loop.
        # _force_exact: a test hook, to check that both engines train the same network.
        exact = sample_weight is not None or getattr(self, "_force_exact", False)
        engine_type = _solver.ExactEngine if exact else _solver.PlanEngine
        engine = engine_type(model, linears, kind, self.n_outputs_, self, lr, dtype)
        if resume:
            engine.import_state(self._solver_state["optimizer"])
        T = engine.targets(Y)
        sample_idx = np.arange(n, dtype=np.int64)
        sgd_schedule = self.solver == "sgd"
        try:
            for _ in range(self.max_iter):
                perm = None
                if self.shuffle:
                    sample_idx = _shuffled(sample_idx, rng)
                    perm = sample_idx
                accumulated = engine.epoch(X, T, sample_weight, perm, batch_size)
                self.n_iter_ += 1
                self.loss_ = accumulated / n
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                if early_stopping:
                    self.coefs_, self.intercepts_ = _network.read_back(linears)
                self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val)
                if sgd_schedule and self.learning_rate == "invscaling":  # sklearn's iteration_ends
                    new_lr = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t
                    engine.set_learning_rate(lr, new_lr)
                    lr = new_lr
                if self._no_improvement_count > self.n_iter_no_change:
                    what = "Validation score" if early_stopping else "Training loss"
                    msg = (f"{what} did not improve more than tol={self.tol:f} for "
                           f"{self.n_iter_no_change} consecutive epochs.")
                    if not (sgd_schedule and self.learning_rate == "adaptive") or lr <= 1e-6:
                        if self.verbose:
                            print(msg + (" Learning rate too small. Stopping." if sgd_schedule and
                                         self.learning_rate == "adaptive" else " Stopping."))
                        break
                    engine.set_learning_rate(lr, lr / 5.0)
                    lr /= 5.0
                    if self.verbose:
                        print(msg + " Setting learning rate to %f" % lr)
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the optimization "
                                  "hasn't converged yet." % self.max_iter, ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        self.coefs_, self.intercepts_ = _network.read_back(linears)
        self._solver_state = {"solver": self.solver, "learning_rate": lr, "optimizer": engine.export_state()}
        if early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    def _update_no_improvement_count(self, early_stopping, X_val, y_val, sw_val):
        if early_stopping:
            score = self._score(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [b.copy() for b in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # --- prediction ---------------------------------------------------------------------
    def _forward(self, X, check_input=True):
        """The output layer's activations (float64) for X."""
        if check_input:
            from sklearn.utils.validation import validate_data
            X = validate_data(self, X, accept_sparse=True, dtype=(np.float64, np.float32), reset=False)
        X = self._dense(X)
        with fastnn_context(self.n_threads, None):
            z = _network.forward(X, self.coefs_, self.intercepts_, self.activation)
        return _network.output_activation(z, self.out_activation_)

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(np.asarray(y_pred).dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def fit(self, X, y, sample_weight=None):
        """Fit the model to X and target(s) y (mini-batch training for up to ``max_iter`` epochs).

        X: array-like or sparse matrix (densified), (n_samples, n_features). y: class labels
        (classifier; a 2-D indicator matrix for multi-label) or targets (regressor; 2-D for
        several outputs). sample_weight: per-sample weights, as scikit-learn applies them.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_fitted(self):
        check_is_fitted(self, "coefs_")
