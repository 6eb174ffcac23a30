"""safetensors files with PyTorch's key names: weights that PyTorch, Hugging Face tools and fastnn share.

::

    fastnn.save_safetensors(model, "model.safetensors")          # or a state_dict
    state = fastnn.load_safetensors("model.safetensors")         # {"0.weight": array, ...}
    fastnn.load_safetensors("model.safetensors", model=model)    # into a model of the same architecture

    # PyTorch, same architecture:
    torch_model.load_state_dict(safetensors.torch.load_file("model.safetensors"))

The keys are ``state_dict()``'s, which are PyTorch's (``"0.weight"``, ``"2.bias"``,
BatchNorm1d's ``running_mean``/``running_var``/``num_batches_tracked``), and the values keep
their dtype and bits (float32, float64, the int64 batch counter). The file's metadata holds
``"format": "pt"`` (what Hugging Face loaders look for) and ``"fastnn_sha256"``: a SHA-256 of
every key, dtype, shape and value, checked on loading, so a changed byte is reported rather
than loaded. Files written elsewhere have no such digest and load as safetensors checks them.

Saving validates everything first and writes atomically (``fastnn.io.atomic_write``, as
``fastnn.save`` does). Loading raises :class:`SafetensorsError` (a
``fastnn.CheckpointError``, so a ``ValueError``) naming the path for a missing, truncated,
corrupted or unreadable file and, with ``model=``, for keys or shapes that do not fit the
model — checked before any parameter is written, so the model is either fully loaded or
untouched. As with ``load_state_dict``, values of another numeric dtype are converted to the
model's.

The ``safetensors`` package (``pip install fastnn-cpu[safetensors]``) is imported only when
these functions run.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from collections import OrderedDict
from typing import Dict, Mapping, Optional

import numpy as np

from .io import CheckpointError, atomic_write
from .nn.module import Module
from .nn.parameter import Parameter

__all__ = ["save_safetensors", "load_safetensors", "SafetensorsError", "DIGEST_KEY"]

DIGEST_KEY = "fastnn_sha256"
_ARRAY_KINDS = "biuf"  # what safetensors stores: bools, integers, floats


class SafetensorsError(CheckpointError):
    """A safetensors file could not be loaded (missing, damaged, or not fitting the model)."""


class SafetensorsNotFoundError(SafetensorsError, FileNotFoundError):
    """The file does not exist (both a SafetensorsError and a FileNotFoundError)."""


def _safetensors():
    try:
        import safetensors
        import safetensors.numpy
    except ImportError:
        raise ImportError("safetensors files need the safetensors package: pip install safetensors "
                          "(or pip install fastnn-cpu[safetensors])") from None
    return safetensors


def _as_array(value, key: str) -> np.ndarray:
    if isinstance(value, Parameter):
        value = value.data
    elif hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, maybe requiring grad
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in _ARRAY_KINDS:
        raise TypeError(f"state_dict[{key!r}]: safetensors stores numeric arrays, got dtype {array.dtype}")
    return np.asarray(array, order="C")  # not ascontiguousarray: it makes 0-d arrays 1-d


def _digest(tensors: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over each key, dtype, shape and C-order bytes, in key order (layout-independent)."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        a = tensors[key]
        for part in (key.encode("utf-8"), a.dtype.str.encode("ascii"), repr(a.shape).encode("ascii")):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
        data = a.tobytes(order="C")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def save_safetensors(model_or_state_dict, path, metadata: Optional[Mapping[str, str]] = None) -> None:
    """Write a Module's ``state_dict()`` (or a dict of arrays, Parameters or torch tensors with
    string keys) to ``path`` in the safetensors format, atomically.

    ``metadata``: extra string-to-string entries for the file's header. Raises TypeError (naming
    the key) for a value that is not a numeric array, before touching the file system.
    """
    if isinstance(model_or_state_dict, Module):
        state = model_or_state_dict.state_dict()
    elif isinstance(model_or_state_dict, Mapping):
        state = model_or_state_dict
    else:
        raise TypeError(f"model_or_state_dict: expected a fastnn Module or a dict of arrays, "
                        f"got {type(model_or_state_dict).__name__}")
    tensors: Dict[str, np.ndarray] = OrderedDict()
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"state_dict: keys must be strings, got {key!r}")
        tensors[key] = _as_array(value, key)
    header = {"format": "pt"}
    if metadata is not None:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"metadata: keys and values must be strings, got {k!r}: {v!r}")
            if k == DIGEST_KEY:
                raise ValueError(f"metadata: {DIGEST_KEY!r} is written by fastnn")
        header.update(metadata)
    header[DIGEST_KEY] = _digest(tensors)
    data = _safetensors().numpy.save(dict(tensors), metadata=header)
    atomic_write(os.fspath(path), lambda f: f.write(data))


def _read(path: str) -> "OrderedDict[str, np.ndarray]":
    st = _safetensors()
    if not os.path.exists(path):
        raise SafetensorsNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise SafetensorsError(f"{path}: is a directory, not a safetensors file")
    try:
        with st.safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            tensors = OrderedDict((k, np.array(f.get_tensor(k), copy=True)) for k in f.keys())
    except MemoryError:
        raise
    except Exception as e:  # safetensors' own error (truncated, bad header, ...), or a dtype numpy lacks
        raise SafetensorsError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    expected = metadata.get(DIGEST_KEY)
    if expected is not None:
        actual = _digest(tensors)
        if not hmac.compare_digest(actual, str(expected)):
            raise SafetensorsError(f"{path}: checksum mismatch (SHA-256 of the tensors {actual}, the file "
                                   f"says {expected}): the file is corrupted")
    return tensors


def load_safetensors(path, model: Optional[Module] = None, strict: bool = True):
    """Read a safetensors file: its tensors as an ordered ``{key: array}`` dict or, with
    ``model=``, loaded into that model (``load_state_dict(..., strict=strict)``), which is
    returned. Raises :class:`SafetensorsError` naming ``path`` (see the module's docs)."""
    path = os.fspath(path)
    if model is not None and not isinstance(model, Module):
        raise TypeError(f"model: expected a fastnn Module, got {type(model).__name__}")
    tensors = _read(path)
    if model is None:
        return tensors
    try:
        model.load_state_dict(tensors, strict=strict)
    except (KeyError, ValueError, TypeError) as e:
        reason = e.args[0] if isinstance(e, KeyError) and e.args else e
        raise SafetensorsError(f"{path}: does not fit the model ({reason})") from None
    return model
