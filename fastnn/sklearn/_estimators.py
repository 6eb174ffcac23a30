"""MLPClassifier and MLPRegressor: scikit-learn's estimators, trained by fastnn."""
from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d, validate_data

from ._base import BaseMLP

_COMMON_DOC = """
    Parameters are scikit-learn's (``sklearn.neural_network.MLP*``) with the same names, defaults
    and meanings, plus:

    solver : {'adam', 'sgd', 'adamw', 'rmsprop', 'adagrad'}, default='adam'
        'lbfgs' is not available. 'adamw': Adam with ``alpha`` as AdamW's decoupled weight decay
        (weights only, ``W -= lr·alpha·W`` per step); 'rmsprop' (squared-gradient decay
        ``beta_2``) and 'adagrad' take ``alpha`` as the others do (L2 penalty).
    activation : {'relu', 'tanh', 'logistic', 'identity', 'gelu', 'leaky_relu'}, default='relu'
        'leaky_relu' has slope 0.01.
    dropout : float in [0, 1), default=0.0
        Dropout after each hidden layer while training (inverted dropout; none at prediction).
    n_threads : int or None, default=None
        fastnn threads for fit and predict (None: fastnn's current setting); restored afterwards.
        Results are bitwise identical for any thread count.
    dtype : {'float32', 'float64'}, default='float32'
        Precision of training (and of ``coefs_``); prediction runs in float64.
    max_fun : int, default=15000
        Accepted for compatibility; only L-BFGS uses it, so it has no effect.

    Training follows scikit-learn's loop: same initialisation, batches and permutations for a
    given ``random_state``, its loss (``loss_curve_`` includes the L2 term), tol /
    n_iter_no_change, early stopping, learning-rate schedules (sgd), warm_start and
    partial_fit, Adam's update (epsilon added to sqrt(v), not to the bias-corrected sqrt(v̂)).
    With ``alpha == 0`` and no sample_weight whole epochs run in C (fastnn.plan); otherwise an
    exact eager fastnn loop applies the penalty to the weights only, as scikit-learn does.
"""


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = ("Multi-layer perceptron classifier (softmax for several classes, logistic for two "
               "or for multi-label targets), trained by fastnn.\n" + _COMMON_DOC)

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dropout=0.0, n_threads=None, dtype="float32"):
        self._store_params(locals())

    def _out_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=True, multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
            if len(self.classes_) < 2 and not incremental:
                raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in the data, but "
                                 f"the data contains only one class: {self.classes_[0]!r}")
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(f"warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(bool)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), continuing the last fit's network and optimizer state.

        classes: all the labels, required on the first call (as scikit-learn's).
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Class labels (a 2-D indicator matrix for multi-label targets)."""
        self._check_fitted()
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    def predict_proba(self, X):
        """Class probabilities, (n_samples, n_classes) in the order of ``classes_``."""
        self._check_fitted()
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """log(predict_proba(X))."""
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = ("Multi-layer perceptron regressor (squared error, identity output; several outputs "
               "for 2-D y), trained by fastnn.\n\n    loss : {'squared_error'}, default='squared_error'\n"
               "        'poisson' is not available.\n" + _COMMON_DOC)

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001,
                 power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, dropout=0.0, n_threads=None, dtype="float32"):
        self._store_params(locals())

    def _check_hyperparameters(self):
        if self.loss == "poisson":
            raise ValueError("loss='poisson' is not available in fastnn.sklearn; use 'squared_error' "
                             "(or sklearn.neural_network.MLPRegressor)")
        if self.loss != "squared_error":
            raise ValueError(f"The 'loss' parameter of {{est}} must be a str among {{'squared_error'}}. "
                             f"Got {self.loss!r} instead.")
        return super()._check_hyperparameters()

    def _out_activation(self):
        return "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=True, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing the last fit's network and optimizer state."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted targets, (n_samples,) or (n_samples, n_outputs)."""
        self._check_fitted()
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input)
        return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)
