"""load_digits() returns the shipped UCI 8×8 digits with the right shapes, dtypes and ranges, and a fixed, disjoint, stratified train/test split."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from fastnn.datasets import load_digits


def test_shapes_dtypes_and_ranges():
    for split, n in (("train", 1438), ("test", 359), ("all", 1797)):
        X, y = load_digits(split)
        assert X.shape == (n, 64) and X.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int64
        assert X.min() == 0.0 and X.max() == 1.0
        assert set(np.unique(y)) == set(range(10))
    X, _ = load_digits("all", dtype=np.float64, normalize=False)
    assert X.dtype == np.float64 and np.array_equal(X, np.round(X)) and X.max() == 16.0
    Xn, _ = load_digits("all", dtype=np.float64)
    np.testing.assert_array_equal(Xn * 16, X)


def test_content_matches_the_uci_source():
    # First row of sklearn's digits.csv.gz (= optdigits.tes): a zero; and the class counts of the
    # 1,797-image test set as published with the UCI data set.
    X, y = load_digits("all", dtype=np.int64, normalize=False)
    assert X[0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0,
                             0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0,
                             0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]
    assert y[0] == 0
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_split_is_fixed_disjoint_and_stratified():
    Xa, ya = load_digits("all", normalize=False)
    Xtr, ytr = load_digits("train", normalize=False)
    Xte, yte = load_digits("test", normalize=False)
    rows = {r.tobytes(): None for r in Xa}
    assert len(Xtr) + len(Xte) == len(Xa)
    # same multiset of (image, label) pairs as the whole set
    pairs = lambda X, y: sorted(r.tobytes() + bytes([int(c)]) for r, c in zip(X, y))  # noqa: E731
    assert pairs(np.concatenate([Xtr, Xte]), np.concatenate([ytr, yte])) == pairs(Xa, ya)
    assert len(rows) > 1700  # nearly all images distinct, so the check above is meaningful
    counts_all, counts_test = np.bincount(ya), np.bincount(yte)
    assert np.all(np.abs(counts_test - 0.2 * counts_all) <= 0.5 + 1e-9)
    # the stored split never changes: a digest of the test images in order
    digest = hashlib.sha256(Xte.astype(np.uint8).tobytes() + yte.astype(np.uint8).tobytes()).hexdigest()
    assert digest == EXPECTED_TEST_DIGEST
    # and repeated calls agree
    assert np.array_equal(load_digits("test")[0], load_digits("test")[0])


def test_returned_arrays_are_fresh():
    X, y = load_digits("test")
    X[:] = -1
    y[:] = -1
    X2, y2 = load_digits("test")
    assert X2.min() == 0.0 and y2.min() == 0


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(split="valid"), ValueError, "^split"),
    (dict(dtype=np.int32), ValueError, "^dtype: normalize=True"),
    (dict(dtype=str), TypeError, "^dtype"),
])
def test_bad_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        load_digits(**kwargs)


# Recorded when digits.npz was created (see fastnn/datasets/README.md); a change means the split changed.
EXPECTED_TEST_DIGEST = "3fa3470773e10bad8da59e287d385809f331e6e0bc1b29769e7de96c9be44f1b"
