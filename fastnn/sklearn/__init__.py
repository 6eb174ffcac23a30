"""scikit-learn estimators trained by fastnn: a drop-in for ``sklearn.neural_network``.

::

    from fastnn.sklearn import MLPClassifier     # instead of sklearn.neural_network
    clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(100,), random_state=0))
    clf.fit(X_train, y_train).score(X_test, y_test)

Needs the optional ``sklearn`` extra (``pip install fastnn-cpu[sklearn]``); only this
package imports scikit-learn.
"""
try:
    import sklearn  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("fastnn.sklearn needs scikit-learn: pip install 'fastnn-cpu[sklearn]'") from e

from ._estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
