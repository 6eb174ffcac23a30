"""The layout the architecture promises: the NumPy spec stands alone (no compiled code), every
``fastnn.ops`` function has a ``fastnn.reference`` twin with its signature, the enums come from
C, and a missing compiled core is reported clearly instead of breaking ``import fastnn``."""
from __future__ import annotations

import ast
import inspect
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastnn import _core, _enums, ops, reference

ROOT = pathlib.Path(__file__).resolve().parents[1]

# A child interpreter with no compiled code of fastnn (as in a checkout never built): fastnn._core
# cannot be imported, and fastnn._checks is the plain .py, not the extension built from it.
HIDE_CORE = textwrap.dedent("""
    import importlib.abc, importlib.util, os, sys
    class HideCompiled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "fastnn._core":
                raise ImportError("fastnn._core hidden by the test")
            if name == "fastnn._checks":
                return importlib.util.spec_from_file_location(name, os.path.join(path[0], "_checks.py"))
            return None
    sys.meta_path.insert(0, HideCompiled())
""")


def _run_without_core(body: str) -> subprocess.CompletedProcess:
    code = HIDE_CORE + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_reference_modules_import_only_numpy_and_the_checks():
    allowed_absolute = {"numpy", "math", "__future__"}
    for path in sorted((ROOT / "fastnn" / "reference").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = {a.name.split(".")[0] for a in node.names}
                assert names <= allowed_absolute, f"{path.name} imports {names}"
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    assert node.module.split(".")[0] in allowed_absolute, f"{path.name}: from {node.module}"
                elif node.level == 2:
                    assert node.module == "_checks", f"{path.name}: from ..{node.module} (only _checks)"
                else:
                    assert node.level == 1, path.name  # its own siblings


def test_checks_module_imports_only_numpy():
    tree = ast.parse((ROOT / "fastnn" / "_checks.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= {"numpy", "math"}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module in ("__future__", "numbers", "numpy"), node.module


def test_fastnn_and_its_reference_work_without_the_compiled_core():
    result = _run_without_core("""
        import numpy as np
        import fastnn
        from fastnn import reference as ref
        assert type(sys.modules["fastnn._core"]).__name__ == "MissingCore"
        assert sys.modules["fastnn._checks"].__file__.endswith("_checks.py"), sys.modules["fastnn._checks"]
        x = np.arange(6.0).reshape(2, 3)
        w = np.ones((4, 3))
        y = ref.linear(x, w, np.zeros(4), activation="relu")
        assert np.array_equal(y, x @ w.T)
        p, g = np.ones(3), np.full(3, 0.5)
        ref.sgd_step(p, g, lr=0.1)
        assert np.allclose(p, 0.95)
        try:
            ref.matmul(x, np.ones((2, 2)))
        except ValueError as e:
            assert str(e).startswith("b: inner dimensions do not match"), e
        else:
            raise AssertionError("no error")
        try:
            fastnn.ops.matmul(x, x.T)
        except ImportError as e:
            msg = str(e)
            assert "fastnn._core is not available" in msg and "needs it" in msg, msg
            assert "fastnn.reference" in msg, msg
        else:
            raise AssertionError("ops ran without the compiled core")
        try:
            fastnn.get_num_threads()
        except ImportError:
            pass
        else:
            raise AssertionError("get_num_threads ran without the compiled core")
        print("ok")
    """)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("ok")


def test_a_model_trains_on_the_reference_backend_without_the_compiled_core():
    result = _run_without_core("""
        import numpy as np
        import fastnn as fnn
        assert sys.modules["fastnn._checks"].__file__.endswith("_checks.py"), sys.modules["fastnn._checks"]
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
        y = np.array([[0], [1], [1], [0]], dtype=np.float64)
        with fnn.use_backend("reference"):
            fnn.manual_seed(0)
            model = fnn.nn.Sequential(fnn.nn.Linear(2, 4, dtype=np.float64), fnn.nn.Tanh(),
                                      fnn.nn.Linear(4, 1, dtype=np.float64))
            opt = fnn.optim.Adam(model.parameters(), lr=0.05)
            loss_fn = fnn.nn.MSELoss()
            first = None
            for _ in range(50):
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                first = float(loss) if first is None else first
            assert float(loss) < first, (first, float(loss))
        print("ok")
    """)
    if result.returncode != 0 and "fastnn._core is not available" in result.stderr:
        pytest.fail("the eager model still needs the compiled core on the reference backend:\n"
                    + result.stderr[-2000:])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_ops_function_has_a_reference_twin_with_the_same_signature():
    assert sorted(ops.__all__) == sorted(reference.__all__)
    for name in ops.__all__:
        mine, spec = getattr(ops, name), getattr(reference, name)
        assert inspect.signature(mine) == inspect.signature(spec), name


def test_enums_come_from_the_compiled_header():
    table = _core.enums()
    for enum_name, members in table.items():
        cls = getattr(_enums, enum_name)
        assert {m.name: m.value for m in cls} == members
    assert _enums.ACTIVATION_CODES[None] == _enums.Activation.NONE
    assert _enums.ACTIVATION_CODES["gelu_tanh"] == _enums.Activation.GELU_TANH
    # The plan's own tables (fastnn/_plan.pxi) read the same header.
    assert _core.PLAN_LOSSES["cross_entropy"] == _enums.PlanLoss.CE
    assert _core.PLAN_STATUS["nonfinite_param"] == _enums.PlanStatus.NONFINITE_PARAM


@pytest.mark.parametrize("backend", [ops, reference], ids=["ops", "reference"])
@pytest.mark.parametrize("call,exc,message", [
    (lambda m: m.matmul(np.ones((2, 3)), np.ones((2, 3))), ValueError, "b: inner dimensions do not match"),
    (lambda m: m.matmul(np.ones((2, 3)), np.ones((3, 2)), beta=1.0), ValueError, "out: beta=1.0 needs an out"),
    (lambda m: m.matmul(np.ones((2, 3)), np.ones((3, 2)), alpha=float("nan")), ValueError,
     "alpha: expected a finite number"),
    (lambda m: m.matmul(np.ones((2, 3)), np.ones((3, 2)), out=np.ones((2, 2), np.float32)), TypeError,
     "out: expected dtype float64"),
    (lambda m: (lambda a: m.matmul(a, np.ones((3, 3)), out=a))(np.ones((3, 3))), ValueError,
     "out: must not overlap a"),
    (lambda m: m.linear(np.ones((2, 3)), np.ones((4, 2))), ValueError, "x: expected input with 2 features"),
    (lambda m: m.linear(np.ones((2, 3)), np.ones((4, 3)), activation="swish"), ValueError, "activation: expected one of"),
    (lambda m: m.linear(np.ones((2, 3)), np.ones((4, 3)), bias=np.ones(3)), ValueError, "bias: expected shape (4,)"),
    (lambda m: m.linear_backward(np.ones((2, 4)), np.ones((2, 3)), np.ones((4, 3)), activation="tanh"),
     ValueError, "saved: activation='tanh' needs the forward output y"),
    (lambda m: (lambda x: m.linear_backward(np.ones((3, 3)), x, np.ones((3, 3)), grad_weight=x))(np.ones((3, 3))),
     ValueError, "grad_weight: must not overlap x"),
    (lambda m: m.mse_loss(np.ones(3), np.ones(4)), ValueError, "target: expected shape (3,) to match input"),
    (lambda m: m.mse_loss(np.ones(3), np.ones(3), reduction="none"), ValueError, "reduction: expected 'mean' or 'sum'"),
    (lambda m: (lambda x: m.mse_loss(x, np.ones(3), grad=x))(np.ones(3)), ValueError, "grad: must not overlap input"),
    (lambda m: m.bce_loss(np.array([0.5, 1.5]), np.ones(2)), ValueError, "input: expected probabilities in [0, 1]"),
    (lambda m: m.cross_entropy(np.ones((2, 3)), np.array([0, 3])), IndexError, "target: label 3 at index 1"),
    (lambda m: m.cross_entropy(np.ones((2, 3)), np.array([0, 1]), label_smoothing=2.0), ValueError,
     "label_smoothing: expected a value <= 1.0"),
    (lambda m: m.relu(np.array([True])), TypeError, "x: expected a numeric array"),
    (lambda m: m.gelu(np.ones(3), approximate="fast"), ValueError, "approximate: expected one of"),
    (lambda m: (lambda b: m.relu(b[1:4], out=b[0:3]))(np.ones(5)), ValueError, "out: must not overlap x"),
    (lambda m: m.sgd_step([1.0], np.ones(1), lr=0.1), TypeError, "param: expected a numpy.ndarray"),
    (lambda m: m.sgd_step(np.ones(2), np.ones(3), lr=0.1), ValueError, "grad: expected 2 elements, got 3"),
    (lambda m: m.sgd_step(np.ones(2), np.ones(2, np.float32), lr=0.1), TypeError, "grad: expected dtype float64"),
    (lambda m: (lambda p: m.sgd_step(p, p, lr=0.1))(np.ones(2)), ValueError, "grad: must not share memory with param"),
    (lambda m: m.sgd_step(np.ones(2), np.ones(2), lr=-1.0), ValueError, "lr: expected a value >= 0.0"),
    (lambda m: m.sgd_step(np.ones(2), np.ones(2), lr=0.1, nesterov=True), ValueError, "nesterov: Nesterov momentum"),
    (lambda m: m.adam_step(np.ones(2), np.ones(2), np.zeros(2), np.zeros(2), step=0, lr=0.1, beta1=0.9,
                           beta2=0.99, eps=1e-8), ValueError, "step: expected a step count >= 1"),
    (lambda m: m.adam_step(np.ones(2), np.ones(2), np.zeros(2), np.zeros(2), step=1, lr=0.1, beta1=1.0,
                           beta2=0.99, eps=1e-8), ValueError, "beta1: expected a value < 1.0"),
    (lambda m: m.rmsprop_step(np.ones(2), np.ones(2), np.zeros(2), lr=0.1, alpha=0.9, eps=1e-8, centered=True),
     ValueError, "grad_avg: required when centered=True"),
    (lambda m: m.adagrad_step(np.ones(2), np.ones(2), np.zeros(2), step=1, lr=0.1, maximize="yes"), TypeError,
     "maximize: expected a bool"),
    (lambda m: m.grad_norm(np.ones(3), norm_type=0), ValueError, "norm_type: expected a value > 0"),
    (lambda m: m.clamp_(np.ones(3), 1.0, 0.0), ValueError, "low: expected low <= high"),
    (lambda m: m.dropout(np.ones(4), 1.5, 0), ValueError, "p: expected a value <= 1.0"),
    (lambda m: m.dropout(np.ones(4), 0.5, -1), ValueError, "seed: expected an integer in [0, 2**64)"),
    (lambda m: m.dropout_backward(np.ones(4), np.ones(4, np.float32), 0.5), TypeError,
     "mask: expected a uint8 array"),
    (lambda m: m.batch_norm(np.ones((4, 3)), None, None, None, None, "yes"), TypeError,
     "training: expected a bool, got str"),
    (lambda m: m.batch_norm(np.ones((1, 3)), None, None, None, None, True), ValueError,
     "x: Expected more than 1 value per channel when training"),
    (lambda m: m.batch_norm_backward(np.ones((4, 3)), np.ones((4, 3)), None, None, np.ones(3)), TypeError,
     "save_mean: expected the array saved by batch_norm"),
    (lambda m: m.layer_norm(np.ones((4, 3)), np.ones(4), None), ValueError, "weight: expected shape (3,), got (4,)"),
    (lambda m: (lambda b: m.layer_norm(b[1:5].reshape(2, 2), None, None, out=b[0:4].reshape(2, 2)))(np.ones(6)),
     ValueError, "out: must not overlap x"),
])
def test_both_backends_raise_the_documented_error(backend, call, exc, message):
    """One validator for both backends: the same exception type, and a message that starts with
    the argument's name and says what was expected."""
    with pytest.raises(exc) as info:
        call(backend)
    assert str(info.value).startswith(message), str(info.value)


def test_fastnn_kernels_portable_reaches_every_kernel_and_plans_equal_the_eager_loop():
    """One dispatcher (src_c/cpu.h): FASTNN_KERNELS=portable makes the GEMM, the optimizer and the
    plan run their portable code, and a plan on those kernels still equals the eager loop."""
    import os
    env = dict(os.environ, FASTNN_KERNELS="portable", HYPOTHESIS_PROFILE="ci")
    probe = subprocess.run(
        [sys.executable, "-c", "import fastnn, fastnn._core as c; t = fastnn.info()['tuning']; "
         "print(c.gemm_kernel_name(), c.optim_simd_bytes(), t['kernels'], t['env']['FASTNN_KERNELS'], "
         "t['plan_kernels'])"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr
    gemm, simd, table, env_seen, plan = probe.stdout.split()
    assert gemm == "portable" and table == "portable" and env_seen == "portable" and plan == "portable"
    assert int(simd) <= 16  # the baseline vector build, not the AVX2 one
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_plan.py",
         "-k", "bitwise_equal_to_eager or losses_and_optimizers or epoch_matches_eager_loop"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout


def _pure_checks():
    """fastnn/_checks.py loaded as plain Python, beside the (possibly compiled) fastnn._checks."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("_checks_as_python", ROOT / "fastnn" / "_checks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcome(fn, *args):
    try:
        result = fn(*args)
    except Exception as e:  # noqa: BLE001 - the outcome compared is the exception itself
        return type(e), str(e)
    return "ok", repr(result)


def test_compiled_checks_behave_as_the_python_source():
    """setup.py compiles fastnn/_checks.py as it is; the extension must accept, convert and reject
    exactly what the .py does, with the same exception types and messages."""
    from fastnn import _checks as built
    pure = _pure_checks()
    f32 = np.ones((4, 3), np.float32)
    w = np.ones((5, 3), np.float32)
    p, g = np.ones(8, np.float32), np.ones(8, np.float32)
    m, v = np.zeros(8, np.float32), np.zeros(8, np.float32)
    calls = [
        ("check_matmul", f32, w, False, True, None, 1.0, 0.0, False),
        ("check_matmul", f32, f32, False, False, None, 1.0, 0.0, False),
        ("check_matmul", f32, w.T[:, ::2], False, False, None, 1.0, 0.5, False),
        ("check_matmul", f32.astype(np.int64), w, False, True, None, 2, 0.0, False),
        ("check_linear", f32, w, np.zeros(5, np.float32), "tanh", 0.01, None, None, False),
        ("check_linear", f32, w, np.zeros(4, np.float32), "tanh", 0.01, None, None, False),
        ("check_linear", f32, w, None, "swish", 0.01, None, None, False),
        ("check_linear", f32[:, :2], w, None, None, 0.01, None, None, False),
        ("check_linear", f32, w, None, "leaky_relu", float("nan"), None, None, False),
        ("check_linear_backward", np.ones((4, 5), np.float32), f32, w, np.zeros_like(w), None, "relu", None,
         0.01, False),
        ("check_linear_backward", np.ones((4, 5), np.float32), f32, w, np.zeros((5, 3)), None, None, None,
         0.01, False),
        ("check_sgd", p, g, None, 0.1, 0.0, 0.0, 0.0, False, False, False, False),
        ("check_sgd", p, g, None, 0.1, 0.9, 0.0, 0.0, False, False, False, False),
        ("check_sgd", p, g, None, -0.1, 0.0, 0.0, 0.0, False, False, False, False),
        ("check_sgd", p, g, None, 0.1, 0.0, 0.0, 0.0, 1, 0.0, False, False),
        ("check_adam", p, g, m, v, None, 3, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False, False),
        ("check_adam", p, g, m, v, None, 0, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False, False),
        ("check_adam", p, g, m, v, None, 3, 1e-3, 1.0, 0.999, 1e-8, 0.0, False, False, False, False),
        ("check_adam", p, g, m, v, None, 3, 1e-3, 0.9, 0.999, 1e-8, 0.0, True, False, False, True),
        ("check_loss_pair", f32, f32[::-1], None),
        ("check_loss_pair", f32, w, None),
        ("check_scalar", np.float32(2.5), "lr"),
        ("check_scalar", True, "lr"),
        ("check_flag", 1, "amsgrad"),
        ("check_step", 2**63),
        ("as_float", [[1, 2], [3, 4]], "x"),
        ("as_float", np.array([True]), "x"),
    ]
    for name, *args in calls:
        assert _outcome(getattr(built, name), *args) == _outcome(getattr(pure, name), *args), (name, args)
