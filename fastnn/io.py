"""save/load: models, optimizer state and checkpoints in one file, without pickle.

::

    fastnn.save({"model": model, "optimizer": opt, "epoch": 3}, "ckpt.fnn")
    ckpt = fastnn.load("ckpt.fnn")
    model = ckpt["model"]                                  # rebuilt, with its parameters
    opt = fastnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.load_state_dict(ckpt["optimizer"])                 # an optimizer loads as its state_dict

What can be saved: fastnn's built-in modules (architecture, parameters,
buffers, train/eval mode, frozen parameters), optimizers (saved as their
``state_dict()``; ``load`` returns that dict and you call
``opt.load_state_dict(...)`` on an optimizer you construct over the loaded
model's parameters), and nested dicts/lists/tuples of None, bools, ints,
floats, strings, NumPy arrays and scalars, Parameters, Modules and Optimizers.
A user-defined Module class cannot be rebuilt from a file (that would mean
running code named by the file): save its ``state_dict()`` instead and load it
into a freshly constructed model.

The file is a zip archive (stored, not compressed) of

* ``header.json``: ``format`` ("fastnn-checkpoint"), ``format_version``,
  ``fastnn_version``, ``tree`` (the object, with arrays referenced by key),
  ``arrays`` (the keys, in payload order) and ``payload_sha256``: the SHA-256
  of the canonical JSON of every other header field followed by each array
  member's bytes (length-prefixed), so any change to content is detected;
* ``arrays/<key>.npy``: one array each, in NumPy's ``.npy`` format without
  pickle.

Loading never unpickles and never imports or calls anything named by the file
beyond the constructors of the built-in module classes listed in
``MODULE_CONFIG``. It checks the container, the format and version, the
checksum and every array header before building anything, and raises
:class:`CheckpointError` (a ``ValueError``) naming the path on any problem —
never returning a half-built object.

Writes are atomic: the file is written to a temporary file in the same
directory, flushed and fsynced, then moved over ``path`` with ``os.replace``,
so a crash mid-write leaves the previous file intact. The same object always
produces the same bytes (fixed timestamps in the zip).
"""
from __future__ import annotations

import hashlib
import hmac
import inspect
import io
import json
import math
import os
import tempfile
import zipfile
from collections import OrderedDict
from typing import Any, BinaryIO, Callable, Dict, List, Tuple

import numpy as np

from .nn.module import Module
from .nn.parameter import Parameter

__all__ = ["save", "load", "CheckpointError", "FORMAT", "FORMAT_VERSION", "MODULE_CONFIG"]

FORMAT = "fastnn-checkpoint"
FORMAT_VERSION = 1
_HEADER = "header.json"
_ARRAY_DIR = "arrays/"
_FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}
_ARRAY_KINDS = "biufcUS"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class CheckpointError(ValueError):
    """A file could not be loaded: missing, truncated, corrupted, or not a fastnn checkpoint."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist (both a CheckpointError and a FileNotFoundError)."""


# --- module architecture: one config function per built-in class -----------------------------
def _no_args(m) -> Dict[str, Any]:
    return {}


def _linear(m) -> Dict[str, Any]:
    return {"in_features": m.in_features, "out_features": m.out_features,
            "bias": m.bias is not None, "dtype": m.weight.dtype.name}


def _reduction(m) -> Dict[str, Any]:
    return {"reduction": m.reduction}


_MISSING = object()


def _from_signature(m) -> Dict[str, Any]:
    """Constructor arguments read back from same-named attributes (PyTorch's convention).

    Used for classes whose attribute names follow their constructor (Dropout,
    BatchNorm1d, LayerNorm, Flatten, Identity). A Parameter-or-None attribute
    records as a bool (``bias=``); ``dtype`` comes from the module's parameters
    or buffers. An argument that is not stored refuses the save rather than
    guessing.
    """
    cfg = {}
    for name, p in inspect.signature(type(m).__init__).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if name == "dtype":
            arrays = [q.data for q in m.parameters()] + [b for _, b in m.named_buffers()]
            floats = [a.dtype for a in arrays if a.dtype.name in _FLOAT_DTYPES]
            if floats:
                cfg["dtype"] = floats[0].name
            continue
        value = getattr(m, name, _MISSING)
        if value is _MISSING or inspect.ismethod(value):
            raise TypeError(f"{type(m).__name__}: constructor argument {name!r} is not stored as an attribute, "
                            f"so its architecture cannot be recorded")
        if isinstance(value, Parameter) or (value is None and isinstance(p.default, bool)):
            value = value is not None
        if isinstance(value, np.dtype):
            value = value.name
        cfg[name] = value
    return cfg


# class name in fastnn.nn -> function(module) -> constructor keyword arguments.
# Sequential's children are recorded separately. Classes not in fastnn.nn yet are skipped.
MODULE_CONFIG: Dict[str, Callable[[Module], Dict[str, Any]]] = {
    "Sequential": _no_args,
    "Linear": _linear,
    "ReLU": _no_args,
    "Sigmoid": _no_args,
    "Tanh": _no_args,
    "LeakyReLU": lambda m: {"negative_slope": m.negative_slope},
    "GELU": lambda m: {"approximate": m.approximate},
    "Softmax": lambda m: {"dim": m.dim},
    "MSELoss": _reduction,
    "L1Loss": _reduction,
    "BCELoss": _reduction,
    "BCEWithLogitsLoss": _reduction,
    "CrossEntropyLoss": lambda m: {"reduction": m.reduction, "label_smoothing": m.label_smoothing},
    "Dropout": _from_signature,
    "BatchNorm1d": _from_signature,
    "LayerNorm": _from_signature,
    "Flatten": _from_signature,
    "Identity": _from_signature,
}


def _builtin_class(name: str):
    from . import nn
    cls = getattr(nn, name, None) if name in MODULE_CONFIG else None
    return cls if isinstance(cls, type) and issubclass(cls, Module) else None


# --- encoding ----------------------------------------------------------------------------------
class _Encoder:
    def __init__(self):
        self.arrays: List[Tuple[str, bytes]] = []
        self._open = set()  # ids of the containers being encoded: a repeat is a reference cycle

    def _array(self, a: np.ndarray, where: str) -> str:
        a = np.asarray(a)
        if type(a) is not np.ndarray:
            a = a.view(np.ndarray)
        if a.dtype.hasobject or a.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"{where}: cannot save an array of dtype {a.dtype} (numbers, bools and strings only)")
        buf = io.BytesIO()
        np.lib.format.write_array(buf, a, allow_pickle=False)
        key = f"a{len(self.arrays)}"
        self.arrays.append((key, buf.getvalue()))
        return key

    def encode(self, obj, where: str):
        if isinstance(obj, np.generic):  # before float: np.float64 subclasses float
            return {"t": "scalar", "key": self._array(np.asarray(obj), where)}
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int) and not isinstance(obj, np.integer):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"t": "float", "v": repr(obj)}
        if isinstance(obj, Parameter):
            return {"t": "parameter", "key": self._array(obj.data, where), "requires_grad": obj.requires_grad}
        if isinstance(obj, np.ndarray):
            return {"t": "array", "key": self._array(obj, where)}
        if isinstance(obj, Module):
            return self._module_root(obj, where)
        if _is_optimizer(obj):
            return {"t": "optimizer", "class": type(obj).__name__,
                    "state_dict": self.encode(obj.state_dict(), f"{where}.state_dict()")}
        if isinstance(obj, (dict, list, tuple)):
            if id(obj) in self._open:
                raise ValueError(f"{where}: contains a reference to itself (cannot be saved)")
            self._open.add(id(obj))
            try:
                return self._container(obj, where)
            finally:
                self._open.discard(id(obj))
        raise TypeError(f"{where}: cannot save an object of type {type(obj).__name__} (supported: None, bool, "
                        f"int, float, str, NumPy arrays and scalars, dict, list, tuple, Parameter, fastnn "
                        f"Modules and Optimizers)")

    def _container(self, obj, where: str):
        if isinstance(obj, dict):
            items = []
            for k, v in obj.items():
                if not (k is None or isinstance(k, (bool, int, float, str, tuple, np.generic))):
                    raise TypeError(f"{where}: cannot save a dict key of type {type(k).__name__} "
                                    f"(keys must be str, int, float, bool, None or tuples of those)")
                items.append([self.encode(k, f"{where} key"), self.encode(v, f"{where}[{k!r}]")])
            return {"t": "odict" if isinstance(obj, OrderedDict) else "dict", "items": items}
        return {"t": "list" if isinstance(obj, list) else "tuple",
                "items": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]}

    def _module_node(self, m: Module, where: str):
        name = type(m).__name__
        if _builtin_class(name) is not type(m):
            cls = type(m)
            raise TypeError(
                f"{where}: cannot save the architecture of {cls.__module__}.{cls.__qualname__}: only fastnn's "
                f"built-in modules ({', '.join(k for k in MODULE_CONFIG if _builtin_class(k))}) can be rebuilt "
                f"from a file. Save the parameters instead with fastnn.save(model.state_dict(), path) and load "
                f"them into a newly constructed model with model.load_state_dict(fastnn.load(path)).")
        try:
            config = MODULE_CONFIG[name](m)
        except TypeError as e:
            raise TypeError(f"{where}: {e}") from None
        node = {"t": "module", "class": name, "config": self.encode(config, f"{where} config"),
                "training": bool(m.training)}
        if name == "Sequential":
            node["children"] = [[k, self._module_node(child, f"{where}.{k}")] for k, child in m._modules.items()]
        elif m._modules:
            raise TypeError(f"{where}: {name} has sub-modules {list(m._modules)} that its constructor does not "
                            f"create; save model.state_dict() instead")
        return node

    def _module_root(self, m: Module, where: str):
        node = self._module_node(m, where)
        node["state"] = self.encode(m.state_dict(), f"{where}.state_dict()")
        node["frozen"] = [k for k, p in m.named_parameters() if not p.requires_grad]
        return node


def _is_optimizer(obj) -> bool:
    from .optim.optimizer import Optimizer
    return isinstance(obj, Optimizer)


def _payload_digest(body: Dict[str, Any], arrays: List[Tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8"))
    for key, data in arrays:
        k = key.encode("utf-8")
        h.update(len(k).to_bytes(8, "little"))
        h.update(k)
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _zinfo(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _new_file_mode(path: str) -> int:
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def save(obj, path, all_ranks: bool = False) -> None:
    """Write ``obj`` (Module, Optimizer, state dict, or a nested checkpoint dict) to ``path`` atomically.

    Raises TypeError (naming where in ``obj``) for anything that cannot be
    saved without pickle — including user-defined Module classes — before
    touching the file system. Under ``fastnn.distributed`` with more than one
    rank only rank 0 writes (the others return at once) unless ``all_ranks``.
    """
    from .distributed import writes_checkpoints  # [mpi]
    if not all_ranks and not writes_checkpoints():  # [mpi] one checkpoint per job, written by rank 0
        return
    path = os.fspath(path)
    from . import __version__
    enc = _Encoder()
    tree = enc.encode(obj, "obj")
    body = {"format": FORMAT, "format_version": FORMAT_VERSION, "fastnn_version": __version__,
            "tree": tree, "arrays": [k for k, _ in enc.arrays]}
    header = dict(body, payload_sha256=_payload_digest(body, enc.arrays))
    members = [(_HEADER, json.dumps(header, sort_keys=True, indent=1, allow_nan=False).encode("utf-8"))]
    members += [(f"{_ARRAY_DIR}{k}.npy", data) for k, data in enc.arrays]

    def write_zip(f) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, data in members:
                zf.writestr(_zinfo(name), data)

    atomic_write(path, write_zip)


def atomic_write(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Run ``write(f)`` on a temporary file beside ``path``, then move it over ``path``.

    The file is flushed and fsynced before ``os.replace``, and the directory after it, so a
    crash mid-write leaves the previous file intact; on any error the temporary file is
    removed. A new file gets the permissions ``open`` would give it; an existing one keeps its
    own. Also used by the ONNX and safetensors writers.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# --- loading ---------------------------------------------------------------------------------------
class _Bad(Exception):
    """Internal: a validation failure, turned into CheckpointError with the path."""


def _parse_npy(data: bytes, key: str) -> np.ndarray:
    f = io.BytesIO(data)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise _Bad(f"array {key!r} has unsupported .npy version {version}")
    if dtype.hasobject or dtype.kind not in _ARRAY_KINDS:
        raise _Bad(f"array {key!r} has dtype {dtype}, which fastnn does not load")
    count = math.prod(shape)
    offset = f.tell()
    if len(data) - offset != count * dtype.itemsize:
        raise _Bad(f"array {key!r} should hold {count * dtype.itemsize} bytes for shape {shape}, "
                   f"has {len(data) - offset}")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order="F" if fortran else "C").copy()


def _read_container(path: str):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file") from None
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise _Bad("not a fastnn checkpoint: not a zip archive, or truncated") from None
    with zf:
        names = zf.namelist()
        if _HEADER not in names:
            raise _Bad(f"not a fastnn checkpoint: no {_HEADER}")
        try:
            header = json.loads(zf.read(_HEADER).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise _Bad(f"malformed header ({e})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise _Bad(f"not a fastnn checkpoint: header format is "
                       f"{header.get('format') if isinstance(header, dict) else header!r}, expected {FORMAT!r}")
        version = header.get("format_version")
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise _Bad(f"unknown format version {version!r}: this fastnn reads version {FORMAT_VERSION} "
                       f"(was the file written by a newer fastnn?)")
        digest = header.pop("payload_sha256", None)
        keys = header.get("arrays")
        if (not isinstance(digest, str) or "tree" not in header or not isinstance(keys, list)
                or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys)):
            raise _Bad("malformed header: needs 'tree', a list of distinct 'arrays' keys and 'payload_sha256'")
        expected_members = {_HEADER} | {f"{_ARRAY_DIR}{k}.npy" for k in keys}
        if set(names) != expected_members or len(names) != len(expected_members):
            raise _Bad(f"archive members {sorted(names)} do not match the header's arrays")
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise _Bad(f"member {info.filename!r} is compressed; fastnn writes stored members only")
        arrays_raw = [(k, zf.read(f"{_ARRAY_DIR}{k}.npy")) for k in keys]
    actual = _payload_digest(header, arrays_raw)
    if not hmac.compare_digest(actual, digest):
        raise _Bad(f"checksum mismatch (payload SHA-256 {actual}, header says {digest}): the file is corrupted")
    arrays = {k: _parse_npy(data, k) for k, data in arrays_raw}
    return header["tree"], arrays


class _Decoder:
    def __init__(self, arrays: Dict[str, np.ndarray]):
        self.arrays = arrays

    def _array(self, node) -> np.ndarray:
        key = node.get("key")
        if key not in self.arrays:
            raise _Bad(f"tree refers to unknown array {key!r}")
        return self.arrays[key]

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if not isinstance(node, dict) or "t" not in node:
            raise _Bad(f"malformed tree node {str(node)[:80]!r}")
        t = node["t"]
        if t == "float":
            if node.get("v") not in ("nan", "inf", "-inf"):
                raise _Bad(f"malformed float node {node!r}")
            return float(node["v"])
        if t == "array":
            return self._array(node)
        if t == "scalar":
            a = self._array(node)
            if a.ndim != 0:
                raise _Bad("a scalar node refers to an array that is not 0-d")
            return a[()]
        if t == "parameter":
            return Parameter(self._array(node), requires_grad=bool(node.get("requires_grad", True)))
        if t in ("list", "tuple"):
            items = [self.decode(v) for v in self._items(node)]
            return items if t == "list" else tuple(items)
        if t in ("dict", "odict"):
            out = OrderedDict() if t == "odict" else {}
            for pair in self._items(node):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise _Bad("malformed dict item")
                out[self.decode(pair[0])] = self.decode(pair[1])
            return out
        if t == "optimizer":
            sd = self.decode(node.get("state_dict"))
            if not isinstance(sd, dict) or "state" not in sd or "param_groups" not in sd:
                raise _Bad("an optimizer node lacks a state_dict with 'state' and 'param_groups'")
            return sd
        if t == "module":
            return self._module_root(node)
        raise _Bad(f"unknown node type {t!r}")

    @staticmethod
    def _items(node):
        items = node.get("items")
        if not isinstance(items, list):
            raise _Bad(f"malformed {node.get('t')} node: no item list")
        return items

    def _module(self, node) -> Module:
        name = node.get("class")
        cls = _builtin_class(name) if isinstance(name, str) else None
        if cls is None:
            raise _Bad(f"unknown module class {name!r} (this fastnn rebuilds: "
                       f"{', '.join(k for k in MODULE_CONFIG if _builtin_class(k))})")
        config = self.decode(node.get("config"))
        if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
            raise _Bad(f"{name}: malformed config")
        if "dtype" in config:
            if config["dtype"] not in _FLOAT_DTYPES:
                raise _Bad(f"{name}: unsupported dtype {config['dtype']!r}")
            config["dtype"] = _FLOAT_DTYPES[config["dtype"]]
        if name == "Sequential":
            children = node.get("children")
            if not isinstance(children, list):
                raise _Bad("Sequential: malformed children")
            m = cls(OrderedDict((str(k), self._module(c)) for k, c in children))
        else:
            try:
                m = cls(**config)
            except (TypeError, ValueError) as e:
                raise _Bad(f"{name}: cannot be rebuilt from its saved arguments {config} ({e})") from None
        object.__setattr__(m, "training", bool(node.get("training", True)))
        return m

    def _module_root(self, node) -> Module:
        from .random import default_generator
        # Constructors draw initial weights from fastnn's generator; loading must not disturb it.
        gen = default_generator()
        saved = gen.bit_generator.state
        try:
            m = self._module(node)
        finally:
            gen.bit_generator.state = saved
        state = self.decode(node.get("state"))
        if not isinstance(state, dict):
            raise _Bad("module state is not a dict")
        try:
            m.load_state_dict(state, strict=True)
        except (KeyError, ValueError, TypeError) as e:
            raise _Bad(f"the saved parameters do not fit the saved architecture ({e})") from None
        params = dict(m.named_parameters())
        for k in node.get("frozen", []):
            if k not in params:
                raise _Bad(f"frozen parameter {k!r} does not exist")
            params[k].requires_grad = False
        return m


def load(path):
    """Read what :func:`save` wrote. Modules come back rebuilt (same class, arguments,
    parameters, buffers and train/eval mode); optimizers come back as their ``state_dict()``
    (pass it to ``opt.load_state_dict``). Raises :class:`CheckpointError` naming ``path``
    for a missing, truncated, corrupted or unsupported file; nothing is returned then."""
    path = os.fspath(path)
    try:
        tree, arrays = _read_container(path)
        return _Decoder(arrays).decode(tree)
    except CheckpointError:
        raise
    except _Bad as e:
        raise CheckpointError(f"{path}: {e}") from None
    except MemoryError:
        raise
    except Exception as e:  # anything else a damaged archive can provoke (zlib, struct, CRC, …)
        raise CheckpointError(f"{path}: corrupted or unreadable checkpoint ({type(e).__name__}: {e})") from e
