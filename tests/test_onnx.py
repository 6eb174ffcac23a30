"""fastnn.onnx.export: every layer kind in float32 and float64 runs in onnxruntime with fastnn's eval outputs, batch dimension dynamic; refusals and bad arguments raise the documented errors."""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import fastnn
from fastnn import nn
from fastnn.onnx import DEFAULT_OPSET, UnsupportedLayerError, export, to_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
BATCHES = (1, 37)


def _float64_ops():
    """Erf and Gelu at the input's precision (onnx's reference evaluator rounds erf through float32)."""
    from onnx.reference.op_run import OpRun

    def erf(x):
        return np.vectorize(math.erf, otypes=[x.dtype])(x)

    class Erf(OpRun):
        op_domain = ""

        def _run(self, x):
            return (erf(x),)

    class Gelu(OpRun):
        op_domain = ""

        def _run(self, x, approximate="none"):
            if approximate == "tanh":
                return (0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),)
            return (0.5 * x * (1 + erf(x / math.sqrt(2))),)
    return [Erf, Gelu]


def runner(path, proto):
    """A function x -> the graph's output: onnxruntime, except for a float64 graph with Erf,
    (or Gelu, which onnxruntime runs through Erf) that onnxruntime has no float64 kernel for:
    onnx's reference evaluator runs that one."""
    is_f64 = proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    if is_f64 and any(n.op_type in ("Erf", "Gelu") for n in proto.graph.node):
        from onnx.reference import ReferenceEvaluator
        ev = ReferenceEvaluator(proto, new_ops=_float64_ops())
        return lambda x: ev.run(None, {"input": x})[0]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"]
    return lambda x: sess.run(None, {"input": x})[0]


def trained(model, x_shape, dtype, steps=3):
    """Run a few training-mode forwards so BatchNorm's running statistics move off 0 and 1,
    and give every parameter non-default values (norm weights are ones, biases zeros)."""
    rng = np.random.default_rng(7)
    for p in model.parameters():
        p.data[...] = rng.uniform(0.5, 1.5, p.data.shape) * rng.choice([-1, 1], p.data.shape)
    model.train()
    for _ in range(steps):
        model(rng.standard_normal((16,) + tuple(x_shape)).astype(dtype) * 2 + 0.5)
    return model


# name -> (factory(dtype) -> model, per-sample input shape, input_shape for export or None)
def _mlp(dt, *middle, width=6):
    return nn.Sequential(nn.Linear(5, width, dtype=dt), *middle, nn.Linear(width, 3, dtype=dt))


CASES = {
    "linear": (lambda dt: nn.Linear(5, 3, dtype=dt), (5,), None),
    "linear_no_bias": (lambda dt: nn.Sequential(nn.Linear(5, 4, bias=False, dtype=dt)), (5,), None),
    "linear_3d_input": (lambda dt: nn.Sequential(nn.Linear(5, 4, dtype=dt), nn.Tanh(),
                                                 nn.Linear(4, 2, bias=False, dtype=dt)), (3, 5), (None, 3, 5)),
    "relu": (lambda dt: _mlp(dt, nn.ReLU()), (5,), None),
    "leaky_relu": (lambda dt: _mlp(dt, nn.LeakyReLU(0.1)), (5,), None),
    "leaky_relu_negative_slope": (lambda dt: _mlp(dt, nn.LeakyReLU(-0.3)), (5,), None),
    "sigmoid": (lambda dt: _mlp(dt, nn.Sigmoid()), (5,), None),
    "tanh": (lambda dt: _mlp(dt, nn.Tanh()), (5,), None),
    "gelu": (lambda dt: _mlp(dt, nn.GELU()), (5,), None),
    "gelu_tanh": (lambda dt: _mlp(dt, nn.GELU(approximate="tanh")), (5,), None),
    "softmax": (lambda dt: nn.Sequential(nn.Linear(5, 4, dtype=dt), nn.Softmax(dim=-1)), (5,), None),
    "softmax_dim1": (lambda dt: nn.Sequential(nn.Linear(5, 4, dtype=dt), nn.Softmax(dim=1)), (5,), None),
    "layer_norm": (lambda dt: _mlp(dt, nn.LayerNorm(6, eps=1e-3, dtype=dt)), (5,), None),
    "layer_norm_no_bias": (lambda dt: _mlp(dt, nn.LayerNorm(6, bias=False, dtype=dt)), (5,), None),
    "layer_norm_no_affine": (lambda dt: nn.Sequential(nn.LayerNorm(5, elementwise_affine=False, dtype=dt)),
                             (5,), None),
    "batch_norm": (lambda dt: _mlp(dt, nn.BatchNorm1d(6, dtype=dt), nn.ReLU()), (5,), None),
    "batch_norm_first": (lambda dt: nn.Sequential(nn.BatchNorm1d(5, momentum=None, dtype=dt),
                                                  nn.Linear(5, 2, dtype=dt)), (5,), None),
    "batch_norm_no_affine": (lambda dt: _mlp(dt, nn.BatchNorm1d(6, affine=False, dtype=dt)), (5,), None),
    "batch_norm_batch_stats": (lambda dt: _mlp(dt, nn.BatchNorm1d(6, track_running_stats=False, dtype=dt)),
                               (5,), None),
    "dropout": (lambda dt: _mlp(dt, nn.Dropout(0.5), nn.ReLU()), (5,), None),
    "identity": (lambda dt: _mlp(dt, nn.Identity()), (5,), None),
    "flatten": (lambda dt: nn.Sequential(nn.Flatten(), nn.Linear(24, 3, dtype=dt)), (2, 3, 4), (None, 2, 3, 4)),
    "flatten_middle_dims": (lambda dt: nn.Sequential(nn.Flatten(1, 2), nn.Linear(4, 3, dtype=dt)), (2, 3, 4),
                            (None, 2, 3, 4)),
    "flatten_inner_dims": (lambda dt: nn.Sequential(nn.Flatten(2), nn.Linear(12, 3, dtype=dt)), (2, 3, 4),
                           (None, 2, 3, 4)),
    "nested_sequential": (lambda dt: nn.Sequential(
        nn.Sequential(nn.Linear(5, 6, dtype=dt), nn.Sequential(nn.LayerNorm(6, dtype=dt), nn.GELU())),
        nn.Sequential(nn.BatchNorm1d(6, dtype=dt), nn.Dropout(0.2), nn.Linear(6, 3, dtype=dt)),
        nn.Softmax()), (5,), None),
    "everything": (lambda dt: nn.Sequential(
        nn.Flatten(), nn.Linear(6, 8, dtype=dt), nn.BatchNorm1d(8, dtype=dt), nn.LeakyReLU(0.2),
        nn.Dropout(0.1), nn.Linear(8, 8, dtype=dt), nn.LayerNorm(8, dtype=dt), nn.GELU(approximate="tanh"),
        nn.Identity(), nn.Linear(8, 7, dtype=dt), nn.Sigmoid(), nn.Linear(7, 7, dtype=dt), nn.Tanh(),
        nn.Linear(7, 4, dtype=dt), nn.GELU(), nn.Linear(4, 3, dtype=dt), nn.ReLU(), nn.Softmax()),
        (2, 3), (None, 2, 3)),
}


def _inputs(sample_shape, dtype, batch):
    rng = np.random.default_rng(batch)
    return (rng.standard_normal((batch,) + tuple(sample_shape)) * 2 + 0.3).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(CASES))
def test_export_matches_eval_forward(case, dtype, tmp_path):
    factory, sample_shape, input_shape = CASES[case]
    fastnn.manual_seed(3)
    model = trained(factory(dtype), sample_shape, dtype)
    path = tmp_path / f"{case}.onnx"
    proto = export(model, path, input_shape=input_shape)  # from training mode: the graph is eval's
    assert model.training
    run = runner(path, onnx.load(str(path)))
    assert proto == onnx.load(str(path))
    model.eval()
    for batch in BATCHES:
        if case == "batch_norm_batch_stats" and batch == 1:
            continue  # fastnn (like PyTorch) refuses batch statistics of one row
        x = _inputs(sample_shape, dtype, batch)
        expected = np.asarray(model(x))
        got = run(x)
        assert got.dtype == dtype and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("opset", [DEFAULT_OPSET, 18, 20, 21])
def test_other_opsets(opset, dtype, tmp_path):
    # 18: ReduceMean's axes become an input; 20: the Gelu operator replaces its formula.
    factory, sample_shape, input_shape = CASES["everything"]
    fastnn.manual_seed(4)
    model = trained(factory(dtype), sample_shape, dtype).eval()
    proto = export(model, tmp_path / "m.onnx", input_shape=input_shape, opset=opset)
    assert proto.opset_import[0].version == opset
    ops = {n.op_type for n in proto.graph.node}
    assert ("Gelu" in ops) == (opset >= 20)
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(list(proto.opset_import))
    run = runner(tmp_path / "m.onnx", proto)
    for batch in BATCHES:
        x = _inputs(sample_shape, dtype, batch)
        np.testing.assert_allclose(run(x), np.asarray(model(x)), **TOL[dtype])


def test_graph_interface_and_initializer_names():
    fastnn.manual_seed(0)
    model = trained(nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)), (5,), np.float32)
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "input" and out.name == "output"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", 5]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 2]
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue  # not used by the eval computation
        assert np.array_equal(inits[key], value), key
    assert proto.opset_import[0].version == DEFAULT_OPSET and proto.producer_name == "fastnn"


def test_dtype_argument_casts_the_weights(tmp_path):
    fastnn.manual_seed(1)
    m32 = trained(_mlp(np.float32, nn.LayerNorm(6), nn.GELU()), (5,), np.float32).eval()
    m64 = _mlp(np.float64, nn.LayerNorm(6, dtype=np.float64), nn.GELU())
    m64.load_state_dict(m32.state_dict())
    m64.eval()
    proto = export(m32, tmp_path / "m.onnx", dtype=np.float64)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    run = runner(tmp_path / "m.onnx", proto)
    x = _inputs((5,), np.float64, 37)
    np.testing.assert_allclose(run(x), np.asarray(m64(x)), **TOL[np.float64])


def test_mixed_dtypes_need_the_dtype_argument(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2, dtype=np.float64))
    with pytest.raises(ValueError, match="mixes float32, float64.*dtype="):
        export(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    export(model, tmp_path / "m.onnx", dtype=np.float32)
    x = _inputs((3,), np.float32, 37)
    got = runner(tmp_path / "m.onnx", onnx.load(str(tmp_path / "m.onnx")))(x)
    np.testing.assert_allclose(got, np.asarray(model(x)), rtol=1e-5, atol=1e-5)


def test_parameterless_model_defaults_to_float32():
    proto = to_onnx(nn.Sequential(nn.ReLU(), nn.Softmax()), input_shape=(None, 4))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_empty_sequential_is_the_identity(tmp_path):
    export(nn.Sequential(), tmp_path / "m.onnx", input_shape=(None, 3))
    x = _inputs((3,), np.float32, 5)
    np.testing.assert_array_equal(runner(tmp_path / "m.onnx", onnx.load(str(tmp_path / "m.onnx")))(x), x)


# --- refusals ---------------------------------------------------------------------------------
class Scale(nn.Module):
    def forward(self, x):
        return x * 2


class MyLinear(nn.Linear):
    def forward(self, x):
        return super().forward(x) + 1


@pytest.mark.parametrize("model, where, cls", [
    (nn.Sequential(nn.Linear(3, 4), Scale()), "layer '1'", "Scale"),
    (nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.ReLU(), MyLinear(4, 2))), "layer '1.1'", "MyLinear"),
    (nn.Sequential(nn.Linear(3, 1), nn.MSELoss()), "layer '1'", "MSELoss"),
    (Scale(), "the model", "Scale"),
])
def test_unsupported_layer_is_named_and_nothing_written(model, where, cls, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")
    with pytest.raises(UnsupportedLayerError, match=rf"{where} \(.*{cls}\) has no ONNX export: .*Linear"):
        export(model, path, input_shape=(None, 3))
    assert path.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    assert issubclass(UnsupportedLayerError, TypeError)


@pytest.mark.parametrize("model, input_shape, match", [
    (nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)), None,
     r"layer '1' \(Linear.*expects size 5 in the last dimension, got"),
    (nn.Sequential(nn.Linear(3, 4)), (None, 7),
     r"layer '0' .*expects size 3 in the last dimension, got input shape \(None, 7\)"),
    (nn.Sequential(nn.BatchNorm1d(3)), (None, 4), r"layer '0' \(BatchNorm1d\(3\)\): expects size 3 in dimension 1"),
    (nn.Sequential(nn.BatchNorm1d(3)), (None, 2, 3), r"layer '0' \(BatchNorm1d\(3\)\): expects a 2-D input"),
    (nn.Sequential(nn.LayerNorm(3)), (None, 4), r"layer '0' \(LayerNorm.*expects size 3 in the last"),
    (nn.Sequential(nn.Softmax(dim=0)), (None, 4), r"softmax over the last axis only, got dim=0"),
    (nn.Sequential(nn.Flatten(2)), (None, 4), r"layer '0' \(Flatten.*out of range"),
    (nn.Sequential(nn.Flatten(1, 2), nn.Identity()), (None, None, None, None), r"more than one unknown dimension"),
    (nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), None, r"input_shape: cannot be inferred"),
    (nn.Sequential(nn.ReLU()), None, r"input_shape: cannot be inferred"),
    (nn.Linear(3, 2), (None, 0), r"input_shape: dimensions must be positive"),
    (nn.Linear(3, 2), (), r"input_shape: expected at least one dimension"),
])
def test_shape_errors_name_the_layer(model, input_shape, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        export(model, tmp_path / "m.onnx", input_shape=input_shape)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(opset=16), ValueError, r"opset: expected an integer from 17"),
    (dict(opset=10_000), ValueError, r"opset: expected an integer from 17"),
    (dict(opset=17.0), ValueError, r"opset"),
    (dict(dtype=np.int32), ValueError, r"dtype: expected float32 or float64"),
    (dict(dtype="banana"), TypeError, r"dtype: expected float32 or float64"),
    (dict(input_shape="5"), TypeError, r"input_shape: expected a tuple"),
])
def test_bad_arguments(kwargs, exc, match, tmp_path):
    with pytest.raises(exc, match=match):
        export(nn.Linear(3, 2), tmp_path / "m.onnx", **kwargs)


def test_not_a_module():
    with pytest.raises(TypeError, match="model: expected a fastnn Module"):
        to_onnx(lambda x: x)


def test_missing_onnx_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install onnx .*fastnn-cpu\[onnx\]"):
        export(nn.Linear(3, 2), tmp_path / "m.onnx")


def test_importing_fastnn_does_not_import_onnx():
    import subprocess
    code = "import sys, fastnn, fastnn.onnx; print('onnx' in sys.modules, 'safetensors' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(fastnn.__file__).parents[1]))
    assert out.stdout.split() == ["False", "False"]


# --- the command line -------------------------------------------------------------------------
def test_cli_export_onnx_runs_in_onnxruntime(tmp_path, capsys):
    from fastnn.cli import main
    from fastnn.datasets import load_digits
    onnx_path, fnn_path = tmp_path / "digits.onnx", tmp_path / "digits.fnn"
    assert main(["train", "--epochs", "1", "--hidden", "16", "--seed", "2", "--save", str(fnn_path),
                 "--export-onnx", str(onnx_path)]) == 0
    assert f"exported ONNX model to {onnx_path}" in capsys.readouterr().out
    X, y = load_digits("test")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": X.astype(np.float32)})[0]
    model = fastnn.load(fnn_path).eval()
    np.testing.assert_allclose(got, np.asarray(model(X)), rtol=1e-5, atol=1e-5)
    assert np.mean(np.argmax(got, axis=1) == y) > 0.3  # trained, not random (chance is 10%)


def test_cli_export_onnx_without_onnx_fails_before_training(monkeypatch, tmp_path, capsys):
    from fastnn.cli import main
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["train", "--epochs", "1", "--export-onnx", str(tmp_path / "m.onnx")]) == 2
    captured = capsys.readouterr()
    assert "--export-onnx: needs the onnx package" in captured.err
    assert "accuracy" not in captured.out
    assert not (tmp_path / "m.onnx").exists()


def test_cli_export_onnx_unwritable_path(tmp_path, capsys):
    from fastnn.cli import main
    bad = tmp_path / "no_such_dir" / "m.onnx"
    assert main(["train", "--epochs", "1", "--hidden", "4", "--quiet", "--export-onnx", str(bad)]) == 2
    assert "--export-onnx: cannot write" in capsys.readouterr().err
