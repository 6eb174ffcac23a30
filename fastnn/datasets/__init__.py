"""fastnn.datasets — small data sets shipped inside the package (no download).

``load_digits()``: the 8×8 handwritten digits (1,797 images, 10 classes), the
test subset of the UCI "Optical Recognition of Handwritten Digits" data set
(CC BY 4.0; provenance in ``fastnn/datasets/README.md``). The file also fixes a
stratified 80/20 train/test split, so every user and every run sees the same
1,438 training and 359 test images.
"""
from __future__ import annotations

from importlib import resources
from typing import Tuple

import numpy as np

__all__ = ["load_digits"]

_SPLITS = ("train", "test", "all")
_cache = {}


def _digits_file():
    if "digits" not in _cache:
        ref = resources.files(__name__).joinpath("digits.npz")
        with ref.open("rb") as f, np.load(f, allow_pickle=False) as npz:
            _cache["digits"] = {k: npz[k] for k in ("images", "labels", "train_idx", "test_idx")}
            for a in _cache["digits"].values():
                a.flags.writeable = False
    return _cache["digits"]


def load_digits(split: str = "train", dtype=np.float32, normalize: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """The 8×8 digits as ``(X, y)``.

    split: ``"train"`` (1,438 samples), ``"test"`` (359) or ``"all"`` (1,797,
        in the original order). The split is stored in the package and never changes.
    dtype: dtype of X (default float32; any numeric dtype).
    normalize: scale pixel values 0..16 to [0, 1] (X / 16); otherwise X holds the raw counts.

    Returns X of shape (n, 64) — rows are the images flattened row-major — and
    y of shape (n,), int64 labels 0..9. Both are fresh, writable arrays.
    """
    if split not in _SPLITS:
        raise ValueError(f"split: expected one of {', '.join(map(repr, _SPLITS))}, got {split!r}")
    dtype = np.dtype(dtype)
    if dtype.kind not in "iuf":
        raise TypeError(f"dtype: expected a numeric dtype, got {dtype}")
    if normalize and dtype.kind != "f":
        raise ValueError(f"dtype: normalize=True scales to [0, 1] and needs a floating dtype, got {dtype}")
    d = _digits_file()
    idx = {"train": d["train_idx"], "test": d["test_idx"], "all": slice(None)}[split]
    images = d["images"][idx]
    X = images.reshape(images.shape[0], -1).astype(dtype)
    if normalize:
        X /= dtype.type(16)
    y = d["labels"][idx].astype(np.int64)
    return X, y
