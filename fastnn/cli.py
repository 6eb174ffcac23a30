"""``python -m fastnn`` / ``fastnn``: train an MLP, benchmark the kernels, describe the installation.

::

    fastnn train                          # 64-128-10 MLP on the bundled digits
    fastnn train --data mydata.csv --hidden 256 128 --optimizer adam --epochs 30 --save model.fnn
    fastnn bench --quick --json results.json
    fastnn info

Errors in what the user passed (a missing or malformed data file, a bad option) print one
line ``fastnn <command>: error: …`` on stderr and exit with status 2; no traceback.
"""
from __future__ import annotations

import argparse
import csv
import inspect
import math
import os
import sys
import time
import zipfile
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

if TYPE_CHECKING:
    from .nn import Sequential

__all__ = ["main", "build_parser", "load_data", "split", "build_model", "UsageError"]

ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "gelu": "GELU", "leaky_relu": "LeakyReLU"}
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad"}
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3, "adagrad": 1e-2}
# Names accepted in an .npz file, first match wins.
NPZ_FEATURE_KEYS = ("X", "x", "features", "data")
NPZ_LABEL_KEYS = ("y", "labels", "label", "target", "targets")
MIN_ROWS = 4


class UsageError(Exception):
    """Something the user passed is wrong: reported as one line, exit status 2."""


# --- data -------------------------------------------------------------------------------------
def _check_features(X: np.ndarray, where: str) -> np.ndarray:
    if X.dtype.kind not in "biuf":
        raise UsageError(f"{where}: features must be numeric, got dtype {X.dtype}")
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    elif X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    elif X.ndim == 0:
        raise UsageError(f"{where}: features must be an array of rows, got a scalar")
    X = X.astype(np.float32)
    bad = ~np.isfinite(X)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise UsageError(f"{where}: features contain NaN or infinity (first in row {row})")
    return X


def _check_labels(y: np.ndarray, where: str) -> np.ndarray:
    if y.ndim != 1:
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1:
        raise UsageError(f"{where}: labels must be one value per row, got an array of shape {y.shape}")
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            row = int(np.flatnonzero(~np.isfinite(y))[0])
            raise UsageError(f"{where}: labels contain NaN or infinity (first in row {row})")
        frac = y != np.round(y)
        if frac.any():
            row = int(np.flatnonzero(frac)[0])
            raise UsageError(f"{where}: labels must be integer class indices, got {float(y[row])!r} in row {row}")
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iu":
        raise UsageError(f"{where}: labels must be integer class indices, got dtype {y.dtype}")
    return y.astype(np.int64)


def _load_npz(path: str) -> Tuple[np.ndarray, np.ndarray]:
    if not zipfile.is_zipfile(path):  # np.load would try it as a pickle
        raise UsageError(f"{path}: not a readable .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            fx = next((k for k in NPZ_FEATURE_KEYS if k in keys), None)
            fy = next((k for k in NPZ_LABEL_KEYS if k in keys), None)
            if fx is None or fy is None:
                missing = "features ('X')" if fx is None else "labels ('y')"
                raise UsageError(f"{path}: no {missing} array; expected arrays named X and y "
                                 f"(found: {', '.join(keys) or 'none'})")
            X, y = npz[fx], npz[fy]
    except UsageError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise UsageError(f"{path}: not a readable .npz file ({e})") from None
    except ValueError as e:  # object arrays (pickle refused), corrupt members
        why = "an array holds Python objects; save numeric arrays" if "allow_pickle" in str(e) else str(e)
        raise UsageError(f"{path}: malformed .npz file ({why})") from None
    return X, y


def _parse_float(text: str, row: int, col: str, path: str) -> float:
    try:
        return float(text)
    except ValueError:
        shown = text if len(text) <= 20 else text[:17] + "..."
        raise UsageError(f"{path}: row {row}, column {col}: {shown!r} is not a number") from None


def _load_csv(path: str, label_column: Optional[str]) -> Tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text CSV file (could not decode as UTF-8)") from None
    except csv.Error as e:
        raise UsageError(f"{path}: malformed CSV ({e})") from None
    if not rows:
        raise UsageError(f"{path}: the file is empty")

    def numeric(cell: str) -> bool:
        try:
            float(cell)
            return True
        except ValueError:
            return False

    header: Optional[List[str]] = None
    first_line = 1
    if not all(numeric(c.strip()) for c in rows[0]):
        header = [c.strip() for c in rows[0]]
        rows = rows[1:]
        first_line = 2
        if not rows:
            raise UsageError(f"{path}: the file has a header but no data rows")
    width = len(header) if header is not None else len(rows[0])
    if width < 2:
        raise UsageError(f"{path}: expected at least 2 columns (features and a label), got {width}")
    for i, r in enumerate(rows):
        if len(r) != width:
            raise UsageError(f"{path}: row {i + first_line} has {len(r)} fields, expected {width}")

    # which column holds the label
    if label_column is None:
        lab = width - 1
    else:
        try:
            lab = int(label_column)
        except ValueError:
            if header is None or label_column not in header:
                have = f"columns: {', '.join(header)}" if header else "the file has no header row"
                raise UsageError(f"--label-column: no column named {label_column!r} ({have})") from None
            lab = header.index(label_column)
        else:
            if not -width <= lab < width:
                raise UsageError(f"--label-column: index {lab} out of range for {width} columns")
            lab %= width

    def colname(j: int) -> str:
        return repr(header[j]) if header is not None else str(j)

    data = np.empty((len(rows), width), dtype=np.float64)
    for i, r in enumerate(rows):
        for j, cell in enumerate(r):
            data[i, j] = _parse_float(cell.strip(), i + first_line, colname(j), path)
    y = data[:, lab]
    X = np.delete(data, lab, axis=1)
    return X, y


def load_data(path: str, label_column: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Features (float32, (n, d)) and integer labels (int64, (n,)) from a .npz or .csv file.

    .npz: arrays ``X`` (n, d) and ``y`` (n,) (also accepted: ``x``/``features``/``data`` and
    ``labels``/``label``/``target``). .csv: one row per sample, the label in the last column
    (or ``label_column``: an index or, with a header row, a name); a first row that is not
    all numbers is a header. Raises :class:`UsageError` naming the problem.
    """
    if not os.path.exists(path):
        raise UsageError(f"--data: no such file: {path}")
    if os.path.isdir(path):
        raise UsageError(f"--data: {path} is a directory, expected a .npz or .csv file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        if label_column is not None:
            raise UsageError("--label-column: only applies to CSV files (an .npz names its labels 'y')")
        X, y = _load_npz(path)
    elif ext in (".csv", ".txt"):
        X, y = _load_csv(path, label_column)
    else:
        raise UsageError(f"--data: expected a .npz or .csv file, got {path!r}")
    X = _check_features(np.asarray(X), path)
    y = _check_labels(np.asarray(y), path)
    if len(X) != len(y):
        raise UsageError(f"{path}: {len(X)} feature rows but {len(y)} labels")
    if len(X) < MIN_ROWS:
        raise UsageError(f"{path}: too few rows to train and test: {len(X)} (need at least {MIN_ROWS})")
    if X.shape[1] == 0:
        raise UsageError(f"{path}: no feature columns")
    if len(np.unique(y)) < 2:
        raise UsageError(f"{path}: all labels are {y[0]}: a classifier needs at least 2 classes")
    return X, y


def _encode_labels(y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Labels as 0..K-1 (CrossEntropyLoss's class indices) and the original value of each class."""
    classes, codes = np.unique(y, return_inverse=True)
    return codes.astype(np.int64), classes


def split(X: np.ndarray, y: np.ndarray, test_fraction: float, seed: int
          ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffled train/test split (seeded); ``test_fraction`` 0 returns an empty test set."""
    n = len(X)
    n_test = int(round(n * test_fraction))
    if test_fraction > 0:
        n_test = max(1, n_test)
    if n - n_test < 2:
        raise UsageError(f"--test-fraction: {test_fraction:g} of {n} rows leaves {n - n_test} for training "
                         f"(need at least 2)")
    perm = np.random.default_rng(seed).permutation(n)
    te, tr = perm[:n_test], perm[n_test:]
    return X[tr], y[tr], X[te], y[te]


# --- train ------------------------------------------------------------------------------------
def _optimizer_class(name: str) -> type:
    from . import optim
    cls = getattr(optim, OPTIMIZERS[name], None)
    if cls is None:
        have = [k for k, v in OPTIMIZERS.items() if hasattr(optim, v)]
        raise UsageError(f"--optimizer: {name!r} is not available in this fastnn version "
                         f"(available: {', '.join(have)})")
    return cls


def build_model(n_in: int, hidden: Sequence[int], n_out: int, activation: str) -> "Sequential":
    """Sequential MLP: Linear → activation for each hidden size, then a Linear head (logits)."""
    from . import nn
    layers = []
    prev = n_in
    for h in hidden:
        layers += [nn.Linear(prev, h), getattr(nn, ACTIVATIONS[activation])()]
        prev = h
    layers.append(nn.Linear(prev, n_out))
    return nn.Sequential(*layers)


def cmd_train(args: argparse.Namespace) -> int:
    import fastnn
    from . import nn
    from .errors import DivergenceError
    from .train import evaluate, fit

    from . import distributed
    distributed.init()  # [mpi] joins the job under mpiexec (one rank per process); a no-op otherwise
    main = distributed.is_main()  # [mpi] only rank 0 prints
    out = (lambda *a, **k: None) if args.quiet or not main else print
    if args.epochs < 0:
        raise UsageError(f"--epochs: expected a non-negative integer, got {args.epochs}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size: expected a positive integer, got {args.batch_size}")
    if any(h < 1 for h in args.hidden):
        raise UsageError(f"--hidden: layer sizes must be positive, got {' '.join(map(str, args.hidden))}")
    if not 0 <= args.test_fraction < 1:
        raise UsageError(f"--test-fraction: expected a number in [0, 1), got {args.test_fraction:g}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise UsageError(f"--lr: expected a positive number, got {args.lr:g}")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads: expected a thread count >= 1, got {args.threads}")
        fastnn.set_num_threads(args.threads)
    if args.export_onnx:  # fail before training, not after it
        try:
            import onnx  # noqa: F401
        except ImportError:
            raise UsageError("--export-onnx: needs the onnx package, which is not installed "
                             "(pip install onnx, or fastnn-cpu[onnx])") from None
    opt_name = args.optimizer
    if opt_name is None:  # Adam when this fastnn has it, else SGD with momentum
        from . import optim
        opt_name = "adam" if hasattr(optim, "Adam") else "sgd"
    cls = _optimizer_class(opt_name)
    opt_kwargs: Dict[str, Any] = {"lr": args.lr if args.lr is not None else DEFAULT_LR[opt_name]}
    accepts_momentum = "momentum" in inspect.signature(cls.__init__).parameters
    if args.momentum is not None:
        if not accepts_momentum:
            raise UsageError(f"--momentum: {cls.__name__} has no momentum (use it with sgd or rmsprop)")
        opt_kwargs["momentum"] = args.momentum
    elif opt_name == "sgd":
        opt_kwargs["momentum"] = 0.9

    # data
    if args.data is None:
        if args.label_column is not None:
            raise UsageError("--label-column: only applies with --data")
        from .datasets import load_digits
        X_tr, y_tr = load_digits("train")
        X_te, y_te = load_digits("test")
        source = "digits (bundled; fixed split)"
        classes = np.arange(10)
    else:
        X, y_raw = load_data(args.data, args.label_column)
        y, classes = _encode_labels(y_raw)
        X_tr, y_tr, X_te, y_te = split(X, y, args.test_fraction, args.seed)
        source = args.data
    n_classes = len(classes)

    fastnn.manual_seed(args.seed)
    model = build_model(X_tr.shape[1], args.hidden, n_classes, args.activation)
    opt = cls(model.parameters(), **opt_kwargs)
    loss_fn = nn.CrossEntropyLoss()
    sizes = "-".join(str(s) for s in [X_tr.shape[1], *args.hidden, n_classes])
    hp = ", ".join(f"{k}={v:g}" for k, v in opt_kwargs.items())
    out(f"data: {source}: {len(X_tr)} training / {len(X_te)} test rows, {X_tr.shape[1]} features, "
        f"{n_classes} classes")
    if args.data is not None and not np.array_equal(classes, np.arange(n_classes)):
        shown = ", ".join(f"{c}->{i}" for i, c in enumerate(classes[:10])) + (", ..." if n_classes > 10 else "")
        out(f"labels mapped to class indices: {shown}")
    out(f"model: MLP {sizes} ({args.activation}), {cls.__name__}({hp}), batch {args.batch_size}, "
        f"{args.epochs} epochs, {fastnn.get_num_threads()} thread(s)"
        + (f" per rank x {distributed.world_size()} MPI ranks" if distributed.world_size() > 1 else "")  # [mpi]
        + f", seed {args.seed}")

    validation = (X_te, y_te) if len(X_te) else None
    start = time.perf_counter()
    try:
        fit(model, loss_fn, opt, X_tr, y_tr, epochs=args.epochs, batch_size=args.batch_size,
            validation_data=validation, seed=args.seed, verbose=0 if args.quiet else 1)
    except DivergenceError as e:
        if main:  # [mpi] every rank stops at the same step; one report
            print(f"fastnn train: training diverged: {e}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    if validation is not None:
        res = evaluate(model, loss_fn, X_te, y_te)
        what = f"test accuracy {100 * res['accuracy']:.2f}% ({len(X_te)} rows, loss {res['loss']:.4f})"
    else:
        res = evaluate(model, loss_fn, X_tr, y_tr)
        what = f"training accuracy {100 * res['accuracy']:.2f}% (no test split)"
    if main:  # [mpi]
        print(f"{what}; wall time {elapsed:.2f} s for {args.epochs} epoch(s)")
    if args.save:
        try:
            fastnn.save(model, args.save)
        except OSError as e:
            raise UsageError(f"--save: cannot write {args.save} ({e.strerror or e})") from None
        out(f"saved model to {args.save} (fastnn.load to use it; outputs are logits over classes "
            f"{', '.join(map(str, classes[:10]))}{', ...' if n_classes > 10 else ''})")
    if args.export_onnx:
        from .onnx import export
        try:
            export(model, args.export_onnx, input_shape=(None, X_tr.shape[1]))
        except OSError as e:
            raise UsageError(f"--export-onnx: cannot write {args.export_onnx} ({e.strerror or e})") from None
        out(f"exported ONNX model to {args.export_onnx} (input 'input': (batch, {X_tr.shape[1]}) float32; "
            f"output 'output': logits over the classes)")
    return 0


# --- info -------------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from .info import format_info, info
    d = info()
    if args.json:
        import json
        print(json.dumps(d, indent=2, default=str))
    else:
        print(format_info(d))
    return 0


# --- bench ------------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import report
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot: needs matplotlib, which is not installed "
                             "(pip install matplotlib, or fastnn-cpu[plot])") from None
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads: expected a thread count >= 1, got {args.threads}")
    return report.run(quick=args.quick, threads=args.threads, json_path=args.json, plot_path=args.plot,
                      torch=not args.no_torch, steps=not args.no_steps, sections=args.only)


# --- parser -----------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors: one line plus the usage, exit 2
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    p = _Parser(prog="fastnn", description="fastnn: fast, verified neural-network training on multicore CPUs.")
    p.add_argument("--version", action="version", version=f"fastnn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="{train,bench,info}", parser_class=_Parser)

    t = sub.add_parser("train", help="train an MLP classifier (bundled digits by default)",
                       description="Train an MLP classifier with CrossEntropyLoss. Without --data: the bundled "
                                   "8x8 digits (1,438 training / 359 test images).")
    t.add_argument("--data", metavar="FILE", help="a .npz (arrays X and y) or .csv (label in the last column) file")
    t.add_argument("--label-column", metavar="COL", help="CSV label column: index (negative counts from the end) "
                                                         "or header name (default: last)")
    t.add_argument("--test-fraction", type=float, default=0.2, metavar="F",
                   help="fraction of --data rows held out for testing (default 0.2; split with --seed)")
    t.add_argument("--hidden", type=int, nargs="+", default=[128], metavar="N", help="hidden layer sizes (default 128)")
    t.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    t.add_argument("--optimizer", choices=list(OPTIMIZERS), default=None,
                   help="default: adam (sgd with momentum 0.9 where Adam is unavailable)")
    t.add_argument("--lr", type=float, default=None, help="learning rate (default: 0.05 sgd, 1e-3 adam/adamw/rmsprop, "
                                                          "1e-2 adagrad)")
    t.add_argument("--momentum", type=float, default=None, help="sgd/rmsprop momentum (sgd default 0.9)")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--threads", type=int, default=None, help="fastnn threads (per rank under mpiexec; default: all "
                                                             "cores / OMP_NUM_THREADS)")
    t.add_argument("--seed", type=int, default=0, help="seed for weights, shuffling and the split (default 0)")
    t.add_argument("--save", metavar="PATH", help="save the trained model with fastnn.save")
    t.add_argument("--export-onnx", metavar="PATH", help="also write the trained model as ONNX "
                                                          "(fastnn.onnx.export; needs the onnx package)")
    t.add_argument("--quiet", "-q", action="store_true", help="print only the final result")
    t.set_defaults(func=cmd_train)

    b = sub.add_parser("bench", help="time fastnn against NumPy (and PyTorch when installed)",
                       description="Kernel and training-step timings against NumPy and PyTorch, as ratios "
                                   "measured in this process (median of several blocks after warm-up).")
    b.add_argument("--quick", action="store_true", help="small sizes and few repeats (seconds; for CI)")
    b.add_argument("--threads", type=int, default=None, help="threads for fastnn, PyTorch and (if threadpoolctl "
                                                             "is installed) NumPy's BLAS")
    b.add_argument("--json", metavar="PATH", help="write the raw results as JSON")
    b.add_argument("--plot", metavar="PATH", help="write a PNG bar chart of the speed-ups (needs matplotlib)")
    b.add_argument("--no-torch", action="store_true", help="skip PyTorch even when installed")
    b.add_argument("--no-steps", action="store_true", help="skip the training-step section")
    b.add_argument("--only", nargs="+", choices=["matmul", "linear", "optim", "contended", "steps", "loop"], default=None,
                   help="run only these sections")
    b.set_defaults(func=cmd_bench)

    i = sub.add_parser("info", help="versions, build, OpenMP runtime, threads and kernels",
                       description="Describe this fastnn installation (also fastnn.show_info()).")
    i.add_argument("--json", action="store_true", help="print the fastnn.info() dict as JSON")
    i.set_defaults(func=cmd_info)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m fastnn`` and the ``fastnn`` script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"fastnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fastnn {args.command}: interrupted", file=sys.stderr)
        return 130
