"""``python -m fastnn``: train (digits, CSV, NPZ, --save), bad data files (exit 2, one line), bench, info."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import optim
from fastnn.cli import main

PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))


def run_cli(*args, timeout=120):
    """The CLI in a fresh interpreter, importing the same fastnn as this test session."""
    env = dict(os.environ, PYTHONPATH=PKG_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "fastnn", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=os.path.dirname(PKG_PARENT) or None)


def blobs(n_per_class=20, n_classes=3, n_features=4, seed=0):
    """Well-separated Gaussian clusters: any working classifier reaches ~100%."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_classes, n_features)) * 4
    X = np.concatenate([c + 0.3 * rng.standard_normal((n_per_class, n_features)) for c in centers])
    y = np.repeat(np.arange(n_classes), n_per_class)
    perm = rng.permutation(len(y))
    return X[perm].astype(np.float32), y[perm]


def write_csv(path, X, y, header=None):
    with open(path, "w") as f:
        if header:
            f.write(",".join(header) + "\n")
        for row, label in zip(X, y):
            f.write(",".join(f"{v:.6g}" for v in row) + f",{label}\n")


def accuracy_of_saved(path, X, y):
    model = fastnn.load(path)
    out = np.asarray(model(X.astype(np.float32)))
    assert out.shape == (len(X), len(np.unique(y)))
    return float(np.mean(np.argmax(out, axis=1) == y))


# --- train ------------------------------------------------------------------------------------
def test_train_digits_in_process(capsys):
    assert main(["train", "--epochs", "1", "--quiet", "--seed", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # --quiet: only the result line
    assert out[0].startswith("test accuracy ")
    acc = float(out[0].split()[2].rstrip("%"))
    assert acc > 50.0  # 10 classes: chance is 10%; one epoch of any working optimizer gets far above
    assert "wall time" in out[0]


def test_train_digits_prints_progress(capsys):
    assert main(["train", "--epochs", "2", "--hidden", "32", "16", "--activation", "tanh",
                 "--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.5", "--batch-size", "64",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "MLP 64-32-16-10 (tanh)" in out
    assert "SGD(lr=0.1, momentum=0.5)" in out
    assert "1 thread(s)" in out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "loss" in out and "accuracy" in out and "val_accuracy" in out
    assert "test accuracy" in out


def test_train_csv_save_load_predict(tmp_path, capsys):
    X, y = blobs()
    data = tmp_path / "blobs.csv"
    write_csv(data, X, y, header=["a", "b", "c", "d", "label"])
    model_path = tmp_path / "model.fnn"
    assert main(["train", "--data", str(data), "--epochs", "30", "--batch-size", "8", "--hidden", "16",
                 "--optimizer", "sgd", "--lr", "0.05", "--save", str(model_path), "--quiet"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert model_path.exists()
    assert accuracy_of_saved(model_path, X, y) >= 0.9


def test_train_csv_label_column_by_name_and_index(tmp_path):
    X, y = blobs()
    path = tmp_path / "first.csv"
    with open(path, "w") as f:
        f.write("cls,a,b,c,d\n")
        for row, label in zip(X, y):
            f.write(f"{label}," + ",".join(f"{v:.6g}" for v in row) + "\n")
    for col in ("cls", "0", "-5"):
        model_path = tmp_path / f"m{col}.fnn"
        assert main(["train", "--data", str(path), "--label-column", col, "--epochs", "30", "--batch-size", "8",
                     "--optimizer", "sgd", "--save", str(model_path), "--quiet"]) == 0
        assert accuracy_of_saved(model_path, X, y) >= 0.9


def test_train_npz_with_label_mapping(tmp_path, capsys):
    X, y = blobs(seed=3)
    labels = np.array([5, 7, 9])[y]  # not 0..K-1: the CLI maps them and says so
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=labels)
    model_path = tmp_path / "m.fnn"
    assert main(["train", "--data", str(path), "--epochs", "30", "--batch-size", "8", "--optimizer", "sgd",
                 "--save", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "labels mapped to class indices: 5->0, 7->1, 9->2" in out
    assert "48 training / 12 test rows" in out  # 60 rows, --test-fraction 0.2
    assert accuracy_of_saved(model_path, X, y) >= 0.9


def test_train_npz_alternative_names(tmp_path):
    X, y = blobs()
    path = tmp_path / "alt.npz"
    np.savez(path, x=X, labels=y)
    assert main(["train", "--data", str(path), "--epochs", "1", "--quiet"]) == 0


def test_train_subprocess_digits():
    res = run_cli("train", "--epochs", "1", "--hidden", "32", "--quiet")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("test accuracy")


# --- bad input: exit 2, one line naming the problem -------------------------------------------
def _bad_files(tmp_path):
    X, y = blobs()
    cases = {}

    def csv_text(name, text):
        p = tmp_path / name
        p.write_text(text)
        return p

    cases["missing file"] = (tmp_path / "nope.csv", "no such file")
    cases["wrong extension"] = (csv_text("data.json", "{}"), "expected a .npz or .csv file")
    cases["directory"] = (tmp_path, "is a directory")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive")
    cases["garbage npz"] = (garbage, "not a readable .npz file")
    no_y = tmp_path / "no_y.npz"
    np.savez(no_y, X=X)
    cases["npz without labels"] = (no_y, "no labels ('y') array")
    obj = tmp_path / "obj.npz"
    np.savez(obj, X=np.array([[1, "a"]], dtype=object), y=np.array([0]))
    cases["npz object array"] = (obj, "malformed .npz file")
    mismatch = tmp_path / "mismatch.npz"
    np.savez(mismatch, X=X, y=y[:-3])
    cases["mismatched lengths"] = (mismatch, "60 feature rows but 57 labels")
    strings = tmp_path / "strings.npz"
    np.savez(strings, X=X, y=np.array(["cat"] * len(X)))
    cases["string labels"] = (strings, "labels must be integer class indices, got dtype <U3")

    rows = [",".join(f"{v:.3g}" for v in r) + f",{lab}" for r, lab in zip(X, y)]
    cases["empty csv"] = (csv_text("empty.csv", "\n\n"), "the file is empty")
    cases["header only"] = (csv_text("header.csv", "a,b,label\n"), "has a header but no data rows")
    cases["non-numeric value"] = (csv_text("text.csv", "\n".join(rows[:5] + ["1,2,abc,4,0"] + rows[5:])),
                                  "row 6, column 2: 'abc' is not a number")
    cases["ragged row"] = (csv_text("ragged.csv", "\n".join(rows[:3] + ["1,2"] + rows[3:])),
                           "row 4 has 2 fields, expected 5")
    cases["NaN feature"] = (csv_text("nanx.csv", "\n".join(rows[:7] + ["1,nan,3,4,0"] + rows[7:])),
                            "features contain NaN or infinity (first in row 7)")
    cases["NaN label"] = (csv_text("nany.csv", "\n".join(rows[:2] + ["1,2,3,4,nan"] + rows[2:])),
                          "labels contain NaN or infinity (first in row 2)")
    cases["fractional label"] = (csv_text("frac.csv", "\n".join(rows[:4] + ["1,2,3,4,0.5"] + rows[4:])),
                                 "labels must be integer class indices, got 0.5 in row 4")
    cases["single class"] = (csv_text("one.csv", "\n".join(f"{i},{i + 1},1" for i in range(10))),
                             "all labels are 1: a classifier needs at least 2 classes")
    cases["too few rows"] = (csv_text("few.csv", "1,2,0\n3,4,1\n5,6,0\n"), "too few rows to train and test: 3")
    cases["one column"] = (csv_text("col.csv", "1\n2\n3\n4\n5\n"), "expected at least 2 columns")
    return cases


def test_bad_data_files_exit_2_with_one_line(tmp_path, capsys):
    for name, (path, message) in _bad_files(tmp_path).items():
        assert main(["train", "--data", str(path), "--epochs", "1", "--quiet"]) == 2, name
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert captured.out == "", name
        assert "\n" not in err, (name, err)
        assert err.startswith("fastnn train: error: "), (name, err)
        assert message in err, (name, err)
        assert "Traceback" not in err


def test_bad_data_file_subprocess_no_traceback(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("1,2,0\n3,x,1\n5,6,0\n7,8,1\n")
    res = run_cli("train", "--data", str(path))
    assert res.returncode == 2
    assert res.stderr.strip() == f"fastnn train: error: {path}: row 2, column 1: 'x' is not a number"
    assert res.stdout == ""


@pytest.mark.parametrize("args, message", [
    (["--label-column", "nope"], "--label-column: no column named 'nope'"),
    (["--label-column", "7"], "--label-column: index 7 out of range for 5 columns"),
    (["--test-fraction", "1.5"], "--test-fraction: expected a number in [0, 1)"),
    (["--epochs", "-1"], "--epochs: expected a non-negative integer"),
    (["--batch-size", "0"], "--batch-size: expected a positive integer"),
    (["--hidden", "0"], "--hidden: layer sizes must be positive"),
    (["--lr", "-1"], "--lr: expected a positive number"),
    (["--threads", "0"], "--threads: expected a thread count >= 1"),
])
def test_bad_options_exit_2(tmp_path, capsys, args, message):
    X, y = blobs()
    path = tmp_path / "ok.csv"
    write_csv(path, X, y, header=["a", "b", "c", "d", "label"])
    assert main(["train", "--data", str(path), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert message in err, err


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--optimizer", "lbfgs"])
    assert e.value.code == 2
    assert "invalid choice: 'lbfgs'" in capsys.readouterr().err


def test_unavailable_optimizer(monkeypatch, capsys):
    monkeypatch.delattr(optim, "Adam", raising=False)
    assert main(["train", "--optimizer", "adam", "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--optimizer: 'adam' is not available in this fastnn version (available: sgd" in err


def test_default_optimizer_without_adam_is_sgd(monkeypatch, capsys):
    monkeypatch.delattr(optim, "Adam", raising=False)
    assert main(["train", "--epochs", "1", "--hidden", "8"]) == 0
    assert "SGD(lr=0.05, momentum=0.9)" in capsys.readouterr().out


@pytest.mark.skipif(not hasattr(optim, "Adam"), reason="fastnn.optim.Adam not merged yet")
def test_momentum_rejected_for_adam(capsys):
    assert main(["train", "--optimizer", "adam", "--momentum", "0.9", "--epochs", "1", "--quiet"]) == 2
    assert "--momentum: Adam has no momentum" in capsys.readouterr().err


def test_save_to_unwritable_path(tmp_path, capsys):
    target = tmp_path / "no_such_dir" / "m.fnn"
    assert main(["train", "--epochs", "1", "--hidden", "8", "--quiet", "--save", str(target)]) == 2
    assert "--save: cannot write" in capsys.readouterr().err


# --- info -------------------------------------------------------------------------------------
def test_info_output_fields(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"fastnn {fastnn.__version__}")
    for field in ("Python", "CPU", "compiler", "OpenMP", "threads", "kernels", "blocking", "dtypes"):
        assert f"\n{field} " in out, field
    assert f"NumPy {np.__version__}" in out
    assert f"threads      {fastnn.get_num_threads()}" in out
    assert f"kernels      {fastnn._core.gemm_kernel_name()}" in out
    assert ("OpenMP       on" in out) == fastnn._core.has_openmp()


def test_info_json_subprocess():
    res = run_cli("info", "--json")
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["version"] == fastnn.__version__
    assert d["kernels"]["active"] in d["kernels"]["available"]
    assert d["openmp"]["enabled"] == fastnn._core.has_openmp()


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "train" in capsys.readouterr().out


# --- bench ------------------------------------------------------------------------------------
def test_bench_quick_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--no-torch", "--only", "matmul", "optim", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| case | fastnn | numpy |" in out
    assert "peak memory" in out
    d = json.loads(path.read_text())
    assert set(d) >= {"machine", "settings", "peers", "results", "steps", "peak_memory_mib", "elapsed_s"}
    assert d["machine"]["kernels"] == fastnn._core.gemm_kernel_name()
    assert d["settings"]["quick"] is True
    sections = {r["section"] for r in d["results"]}
    assert sections == {"matmul", "optim"}
    for r in d["results"]:
        assert r["match"] is True, r["case"]  # fastnn's result agrees with NumPy's
        assert r["times_s"]["fastnn"] > 0 and r["times_s"]["numpy"] > 0
        assert r["speedup_vs_numpy"] == pytest.approx(r["times_s"]["numpy"] / r["times_s"]["fastnn"])
        assert "torch" not in r["times_s"]


def test_bench_steps_section_runs_the_step_benchmarks(capsys):
    import fastnn.bench.steps  # noqa: F401  (part of this version: its section must run, not skip)
    assert main(["bench", "--quick", "--no-torch", "--only", "steps"]) == 0
    out = capsys.readouterr().out
    assert "## Training steps" in out
    assert "training-step comparisons skipped" not in out
    assert "tiny_xor" in out and "fastnn-eager" in out


def test_bench_steps_section_says_when_the_module_is_missing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastnn.bench.steps", None)  # import raises ModuleNotFoundError
    assert main(["bench", "--quick", "--no-torch", "--only", "steps"]) == 0
    out = capsys.readouterr().out
    assert "## Training steps" in out
    assert "training-step comparisons skipped" in out


def test_bench_plot_without_matplotlib_is_a_usage_error(tmp_path, monkeypatch, capsys):
    path = tmp_path / "ratios.png"
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["bench", "--quick", "--no-torch", "--only", "optim", "--plot", str(path)]) == 2
    err = capsys.readouterr().err
    assert "--plot: needs matplotlib" in err
    assert not path.exists()


def test_bench_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "ratios.png"
    assert main(["bench", "--quick", "--no-torch", "--only", "optim", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_shares_the_gemm_issue_shapes():
    """`fastnn bench` (full) times every product and the fused layer that benchmarks/bench_gemm.py does."""
    from fastnn.bench import kernels
    full = kernels._matmul_cases(quick=False)
    assert all(s in full for s in kernels.GEMM_SHAPES)
    assert kernels.FUSED_LINEAR in kernels.LINEAR_SHAPES
    assert {s[0] for s in kernels.GEMM_SHAPES} - {s[0] for s in kernels.GEMM_QUICK} == {"square 2048"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_bench_operands_and_calls_agree(dtype, ta, tb):
    from fastnn.bench import kernels
    a, b, c = kernels.matmul_operands(7, 5, 3, ta, tb, dtype)
    assert a.shape == ((3, 7) if ta else (7, 3)) and b.shape == ((5, 3) if tb else (3, 5)) and c.dtype == dtype
    c_n = np.empty_like(c)
    kernels.fastnn_matmul(a, b, c, ta, tb)()
    kernels.numpy_matmul(a, b, c_n, ta, tb)()
    np.testing.assert_allclose(c, c_n, rtol=1e-5, atol=1e-5)
    x, w, bias, y = kernels.linear_operands(5, 7, 3, dtype)
    y_n = np.empty_like(y)
    kernels.fastnn_linear(x, w, bias, y)()
    kernels.numpy_linear(x, w, bias, y_n)()
    np.testing.assert_allclose(y, y_n, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, np.maximum(x @ w.T + bias, 0), rtol=1e-5, atol=1e-5)


def test_bench_time_blocks_counts_blocks_and_uses_the_clock():
    from fastnn.bench.kernels import time_blocks
    ticks = iter(range(1000))
    per_call, reps = time_blocks(lambda: None, 1e-3, blocks=3, clock=lambda: float(next(ticks)))
    assert len(per_call) == 3 and reps >= 1
    assert per_call == [1.0 / reps] * 3  # each block spans one tick of the given clock
    per_call, _ = time_blocks(lambda: None, 1e-4, budget_s=0.0)
    assert len(per_call) == 1  # a spent budget still gives one block
