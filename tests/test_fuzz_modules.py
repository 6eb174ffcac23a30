"""Fuzzed input to the user-facing API — layers, losses, optimizers, fit, save/load and the CLI's
file input: bad arguments raise ValueError/TypeError/IndexError naming the argument (or the
layer) and change nothing; valid input agrees with the reference backend; a damaged checkpoint
is a CheckpointError, never a crash or a half-loaded object."""
from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import nn, optim

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("fuzz", max_examples=2000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ERRORS = (ValueError, TypeError, IndexError)


def expect_error(fn, names, types=ERRORS):
    """fn() raises one of ``types`` whose message starts with one of ``names`` (argument names or
    a layer's description such as ``Linear(3→2)``)."""
    names = (names,) if isinstance(names, str) else tuple(names)
    with pytest.raises(types) as info:
        fn()
    msg = str(info.value)
    assert any(msg.startswith(n) for n in names), f"message does not start with any of {names}: {msg!r}"
    return info.value


def snapshot(*objs):
    """Bytes of every array a model/optimizer holds (parameters, buffers, optimizer state)."""
    out = []
    for o in objs:
        if isinstance(o, nn.Module):
            out += [(k, np.array(v, copy=True)) for k, v in o.state_dict().items()]
        else:
            sd = o.state_dict()
            for i, st_ in sorted(sd["state"].items()):
                out += [(f"{i}.{k}", np.array(v, copy=True)) for k, v in sorted(st_.items())]
            out.append(("groups", repr([{k: v for k, v in g.items()} for g in sd["param_groups"]])))
    return out


def assert_same(a, b):
    assert [k for k, _ in a] == [k for k, _ in b]
    for (k, x), (_, y) in zip(a, b):
        if isinstance(x, str):
            assert x == y, k
        else:
            assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), k


BAD_SCALARS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.none(),
                        st.text(max_size=2), st.booleans(), st.just([0.1]), st.just(1j))


def _finite_real(v):
    return (not isinstance(v, (bool, str, list, complex, type(None)))) and np.isfinite(v)


# --- layer and loss constructors ----------------------------------------------------------------
@given(n_in=BAD_SCALARS, n_out=st.sampled_from([1, 3, 0, -1, 2.0, "4", None, True]))
def test_linear_constructor_fuzz(n_in, n_out):
    ok = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1  # noqa: E731
    if ok(n_in) and ok(n_out):
        lin = nn.Linear(n_in, n_out)
        assert lin.weight.shape == (n_out, n_in)
        bound = 1 / np.sqrt(n_in)
        assert np.all(np.abs(lin.weight.data) <= bound)
    else:
        expect_error(lambda: nn.Linear(n_in, n_out), [n for n, v in (("in_features", n_in), ("out_features", n_out))
                                                      if not ok(v)])


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.complex64, bool, object])
def test_layer_dtype_argument(dtype):
    for make in (lambda: nn.Linear(3, 2, dtype=dtype), lambda: nn.BatchNorm1d(3, dtype=dtype),
                 lambda: nn.LayerNorm(3, dtype=dtype)):
        expect_error(make, "dtype", TypeError)


def test_layer_dtype_argument_unknown_name():
    expect_error(lambda: nn.Linear(3, 2, dtype="foo"), "dtype", TypeError)


@given(p=BAD_SCALARS, eps=BAD_SCALARS, momentum=BAD_SCALARS, slope=BAD_SCALARS,
       smoothing=BAD_SCALARS, reduction=st.sampled_from(["mean", "sum", "none", "avg", None, 1]))
def test_layer_and_loss_hyperparameters_fuzz(p, eps, momentum, slope, smoothing, reduction):
    in_range = lambda v, lo, hi: _finite_real(v) and lo <= v <= hi  # noqa: E731
    for make, name, ok in [
        (lambda: nn.Dropout(p), "p", in_range(p, 0, 1)),
        (lambda: nn.BatchNorm1d(4, eps=eps), "eps", in_range(eps, 0, np.inf)),
        (lambda: nn.LayerNorm(4, eps=eps), "eps", in_range(eps, 0, np.inf)),
        (lambda: nn.BatchNorm1d(4, momentum=momentum), "momentum", momentum is None or in_range(momentum, 0, 1)),
        (lambda: nn.LeakyReLU(slope), "negative_slope", _finite_real(slope)),
        (lambda: nn.CrossEntropyLoss(label_smoothing=smoothing), "label_smoothing", in_range(smoothing, 0, 1)),
        (lambda: nn.MSELoss(reduction=reduction), "reduction", reduction in ("mean", "sum")),
        (lambda: nn.CrossEntropyLoss(reduction=reduction), "reduction", reduction in ("mean", "sum")),
    ]:
        if ok:
            make()
        else:
            expect_error(make, name)


# --- layer forward/backward on hostile input --------------------------------------------------
def _layers():
    return {
        "linear": lambda: nn.Linear(6, 5),
        "relu": lambda: nn.Sequential(nn.Linear(6, 5), nn.ReLU()),
        "leaky": lambda: nn.Sequential(nn.Linear(6, 5), nn.LeakyReLU(0.1)),
        "sigmoid": lambda: nn.Sequential(nn.Linear(6, 5), nn.Sigmoid()),
        "tanh": lambda: nn.Sequential(nn.Linear(6, 5), nn.Tanh()),
        "gelu": lambda: nn.Sequential(nn.Linear(6, 5), nn.GELU()),
        "softmax": lambda: nn.Sequential(nn.Linear(6, 5), nn.Softmax()),
        "dropout": lambda: nn.Sequential(nn.Linear(6, 5), nn.Dropout(0.3)),
        "batchnorm": lambda: nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5)),
        "layernorm": lambda: nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(5)),
    }


DTYPES_IN = [np.float32, np.float64, np.float16, np.int32, np.uint8, np.bool_, np.complex64, np.object_]


@given(layer=st.sampled_from(sorted(_layers())), batch=st.sampled_from([0, 1, 2, 3, 17]),
       feats=st.sampled_from([6, 6, 6, 5, 7]), dtype=st.sampled_from(DTYPES_IN),
       how=st.sampled_from(["c", "neg", "T", "readonly", "list", "3d"]), special=st.booleans(),
       train=st.booleans(), seed=st.integers(0, 2**31))
def test_layer_fuzz_against_reference(layer, batch, feats, dtype, how, special, train, seed):
    r = np.random.default_rng(seed)
    x = r.standard_normal((batch, feats)) * 2
    if special and x.size:
        x.flat[r.integers(0, x.size, 3)] = r.choice([np.nan, np.inf, -np.inf], 3)
    with np.errstate(invalid="ignore"):
        x = x.astype(dtype) if np.dtype(dtype).kind != "b" else x > 0
    if how == "neg":
        x = x[::-1, ::-1].copy()[::-1, ::-1]
    elif how == "T":
        x = np.ascontiguousarray(x.T).T
    elif how == "readonly":
        x.flags.writeable = False
    elif how == "list" and x.dtype.kind in "fiu":
        x = x.tolist()
    elif how == "3d":
        x = x.reshape(1, batch, feats)
    fastnn.manual_seed(seed % 1000)
    model = _layers()[layer]()
    twin = copy.deepcopy(model)
    model.train(train)
    twin.train(train)
    n = 1 if how == "3d" else batch
    bad_dtype = np.dtype(dtype).kind in "bcOSU" or (how == "list" and np.dtype(dtype).kind not in "fiu")
    needs_batch = layer == "batchnorm" and train and n < 2
    if bad_dtype or feats != 6 or (how == "3d" and layer == "batchnorm") or needs_batch:
        before = snapshot(model)
        expect_error(lambda: model(x), ("Linear(6→5)", "BatchNorm1d(5)", "input", "x"))
        assert_same(before, snapshot(model))
        return
    seed_state = fastnn.random.default_generator().bit_generator.state
    out = model(x)
    g = np.random.default_rng(seed + 1).standard_normal(out.shape).astype(out.dtype)
    out.backward(g)
    fastnn.random.default_generator().bit_generator.state = seed_state  # same dropout seed
    with fastnn.use_backend("reference"), np.errstate(all="ignore"):
        out_ref = twin(x)
        out_ref.backward(g)
    tol = dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out), np.asarray(out_ref), equal_nan=True, **tol)
    for (k, p), (_, q) in zip(model.named_parameters(), twin.named_parameters()):
        np.testing.assert_allclose(p.grad, q.grad, equal_nan=True, err_msg=k, **tol)
    for (k, b), (_, c) in zip(model.named_buffers(), twin.named_buffers()):
        np.testing.assert_allclose(b, c, equal_nan=True, err_msg=k, **tol)


def test_module_output_is_read_only_and_input_untouched(rng):
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.5), nn.LayerNorm(4))
    x = rng.standard_normal((8, 4)).astype(np.float32)
    x0 = x.copy()
    y = model(x)
    with pytest.raises(ValueError):
        y[0, 0] = 1.0  # modules keep their outputs for backward: writing would corrupt the gradient
    np.testing.assert_array_equal(x, x0)


@given(kind=st.sampled_from(["ce_range", "ce_neg", "ce_float", "ce_bool", "ce_shape", "mse_shape", "bce_range",
                             "bce_target", "logits_target", "l1_dtype"]), n=st.sampled_from([1, 2, 9]))
def test_loss_module_bad_targets(kind, n, rng):
    model = nn.Linear(3, 4)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    out = model(x)
    before = snapshot(model)
    if kind.startswith("ce"):
        t = {"ce_range": np.full(n, 4), "ce_neg": np.full(n, -1), "ce_float": np.full(n, 1.5),
             "ce_bool": np.ones(n, bool), "ce_shape": np.zeros((n, 4), np.int64)}[kind]
        exc = {"ce_range": IndexError, "ce_neg": IndexError, "ce_float": TypeError, "ce_bool": TypeError,
               "ce_shape": ValueError}[kind]
        expect_error(lambda: nn.CrossEntropyLoss()(out, t), "target", exc)
    elif kind == "mse_shape":
        expect_error(lambda: nn.MSELoss()(out, np.zeros((n, 3))), "target", ValueError)
    elif kind == "bce_range":
        expect_error(lambda: nn.BCELoss()(out, np.zeros((n, 4))), "input", ValueError)  # outputs not in [0, 1]
    elif kind == "bce_target":
        expect_error(lambda: nn.BCELoss()(nn.Sigmoid()(out), np.full((n, 4), 2.0)), "target", ValueError)
    elif kind == "logits_target":
        expect_error(lambda: nn.BCEWithLogitsLoss()(out, np.full((n, 4), -0.5)), "target", ValueError)
    elif kind == "l1_dtype":
        expect_error(lambda: nn.L1Loss()(out, np.zeros((n, 4), complex)), "target", TypeError)
    assert_same(before, snapshot(model))
    assert all(np.all(p.grad == 0) for p in model.parameters())


# --- optimizers --------------------------------------------------------------------------------
OPTIMIZERS = {
    "SGD": (optim.SGD, {"lr": (0, None), "momentum": (0, None), "weight_decay": (0, None)}),
    "Adam": (optim.Adam, {"lr": (0, None), "eps": (0, None), "weight_decay": (0, None)}),
    "AdamW": (optim.AdamW, {"lr": (0, None), "eps": (0, None), "weight_decay": (0, None)}),
    "RMSprop": (optim.RMSprop, {"lr": (0, None), "alpha": (0, None), "eps": (0, None), "momentum": (0, None)}),
    "Adagrad": (optim.Adagrad, {"lr": (0, None), "lr_decay": (0, None), "eps": (0, None),
                                "initial_accumulator_value": (0, None)}),
}


@given(name=st.sampled_from(sorted(OPTIMIZERS)), hp=st.data(), betas=st.one_of(
    st.tuples(st.floats(-1, 2), st.floats(-1, 2)), st.just(0.9), st.just((0.9,)), st.just((0.9, float("nan")))))
def test_optimizer_constructor_fuzz(name, hp, betas):
    cls, ranges = OPTIMIZERS[name]
    model = nn.Linear(3, 2)
    key = hp.draw(st.sampled_from(sorted(ranges)))
    value = hp.draw(BAD_SCALARS)
    lo, hi = ranges[key]
    kwargs = {key: value}
    if key != "lr":
        kwargs["lr"] = 0.01
    ok = _finite_real(value) and value >= lo and (hi is None or value <= hi)
    if name in ("Adam", "AdamW"):
        kwargs["betas"] = betas
        betas_ok = (isinstance(betas, tuple) and len(betas) == 2
                    and all(_finite_real(b) and 0 <= b < 1 for b in betas))
    else:
        betas_ok = True
    if ok and betas_ok:
        opt = cls(model.parameters(), **kwargs)
        opt.step()
    else:
        expect_error(lambda: cls(model.parameters(), **kwargs), ([key] if not ok else []) + ([] if betas_ok else ["betas"]))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("bad", [float("nan"), -1.0, float("inf"), "0.1", None])
def test_invalid_lr_set_between_steps_changes_nothing(name, bad, rng):
    cls, _ = OPTIMIZERS[name]
    model = nn.Linear(5, 3)
    opt = cls(model.parameters(), lr=0.01)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    nn.MSELoss()(model(x), np.zeros((4, 3), np.float32)).backward()
    opt.step()
    before = snapshot(model, opt)
    opt.param_groups[0]["lr"] = bad  # as a buggy scheduler might
    expect_error(opt.step, "lr")
    opt.param_groups[0]["lr"] = 0.01
    after = snapshot(model, opt)
    assert_same(before, after)


@pytest.mark.parametrize("params,names", [([], "params"), (np.ones(3), ("params", "data")),
                                          ("abc", "params")])
def test_optimizer_params_argument(params, names):
    expect_error(lambda: optim.SGD(params, lr=0.1), names)


def _sgd_state(model):
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():
        p.grad[...] = 1.0
    opt.step()
    return opt


@pytest.mark.parametrize("corrupt", ["not_dict", "missing_state", "groups_count", "params_count",
                                     "lr_negative", "state_shape"])
def test_optimizer_load_state_dict_refuses_and_changes_nothing(corrupt):
    model = nn.Linear(3, 2)
    opt = _sgd_state(model)
    sd = opt.state_dict()
    if corrupt == "not_dict":
        sd = [sd]
    elif corrupt == "missing_state":
        del sd["state"]
    elif corrupt == "groups_count":
        sd["param_groups"] = sd["param_groups"] * 2
    elif corrupt == "params_count":
        sd["param_groups"][0]["params"] = [0]
    elif corrupt == "lr_negative":
        sd["param_groups"][0]["lr"] = -1.0
    elif corrupt == "state_shape":
        sd["state"][0]["momentum_buffer"] = np.ones(5, np.float32)
    before = snapshot(model, opt)
    expect_error(lambda: opt.load_state_dict(sd), ("state_dict", "lr"))
    assert_same(before, snapshot(model, opt))


def test_optimizer_load_state_dict_group_without_params():
    opt = _sgd_state(nn.Linear(3, 2))
    sd = opt.state_dict()
    del sd["param_groups"][0]["params"]
    expect_error(lambda: opt.load_state_dict(sd), "state_dict", ValueError)


@pytest.mark.parametrize("value", ["abc", np.ones((2, 3), complex)])
def test_optimizer_load_state_dict_checks_state_values(value):
    model = nn.Linear(3, 2)
    opt = _sgd_state(model)
    sd = opt.state_dict()
    sd["state"][0]["momentum_buffer"] = value
    before = snapshot(model, opt)
    try:
        opt.load_state_dict(sd)
    except (ValueError, TypeError) as e:
        assert str(e).startswith("state_dict")
    else:
        raise AssertionError("load_state_dict accepted a non-array momentum_buffer")
    assert_same(before, snapshot(model, opt))
    opt.step()  # the optimizer still works


# --- fit ---------------------------------------------------------------------------------------
def _fit_setup(seed=0):
    fastnn.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    r = np.random.default_rng(seed)
    X = r.standard_normal((20, 4)).astype(np.float32)
    y = r.integers(0, 3, 20)
    return model, opt, X, y


FIT_CORRUPTIONS = {
    "X_nan": (lambda X, y: (np.where(X > 1, np.nan, X), y), {}, "X", ValueError),
    "X_inf": (lambda X, y: (np.where(X > 1, -np.inf, X), y), {}, "X", ValueError),
    "X_complex": (lambda X, y: (X.astype(complex), y), {}, "X", TypeError),
    "X_object": (lambda X, y: (X.astype(object), y), {}, "X", TypeError),
    "X_bool": (lambda X, y: (X > 0, y), {}, "X", TypeError),
    "X_features": (lambda X, y: (X[:, :3], y), {}, "Linear(4→8)", ValueError),
    "X_empty": (lambda X, y: (X[:0], y[:0]), {}, "X", ValueError),
    "X_scalar": (lambda X, y: (np.float32(1), y), {}, "X", ValueError),
    "y_short": (lambda X, y: (X, y[:-1]), {}, "y", ValueError),
    "y_range": (lambda X, y: (X, np.where(y == 2, 3, y)), {}, "target", IndexError),
    "y_negative": (lambda X, y: (X, -y - 1), {}, "target", IndexError),
    "y_fraction": (lambda X, y: (X, y + 0.5), {}, "target", TypeError),
    "y_nan": (lambda X, y: (X, np.where(y == 0, np.nan, y)), {}, "y", ValueError),
    "epochs_neg": (None, {"epochs": -1}, "epochs", ValueError),
    "epochs_float": (None, {"epochs": 2.0}, "epochs", TypeError),
    "batch_zero": (None, {"batch_size": 0}, "batch_size", ValueError),
    "batch_str": (None, {"batch_size": "8"}, "batch_size", TypeError),
    "verbose": (None, {"verbose": 3}, "verbose", ValueError),
    "seed": (None, {"seed": -3}, "seed", ValueError),
    "validation": (None, {"validation_data": (np.zeros((2, 4)),)}, "validation_data", TypeError),
    "validation_nan": (None, {"validation_data": (np.full((2, 4), np.nan), np.zeros(2, int))},
                       "validation_data[0]", ValueError),
    "callbacks": (None, {"callbacks": [object()]}, "callbacks", TypeError),
    "scheduler": (None, {"scheduler": object()}, "scheduler", TypeError),
    "interval": (None, {"scheduler_interval": "step"}, "scheduler_interval", ValueError),
    "metrics": (None, {"metrics": ["f1"]}, "metrics", ValueError),
}


@pytest.mark.parametrize("case", sorted(FIT_CORRUPTIONS))
def test_fit_bad_input_changes_nothing(case):
    model, opt, X, y = _fit_setup()
    transform, kwargs, name, exc = FIT_CORRUPTIONS[case]
    if transform is not None:
        with np.errstate(invalid="ignore"):
            X, y = transform(X, y)
    before = snapshot(model, opt)
    modes = [m.training for m in model.modules()]
    expect_error(lambda: fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, **dict({"epochs": 2, "verbose": 0},
                                                                                     **kwargs)), name, exc)
    assert_same(before, snapshot(model, opt))
    assert [m.training for m in model.modules()] == modes


@given(batch=st.sampled_from([1, 3, 7, 20, None]), shuffle=st.booleans(),
       xdtype=st.sampled_from([np.float32, np.float64, np.int32, np.float16]),
       ydtype=st.sampled_from([np.int64, np.int32, np.uint8, np.float64]), layout=st.sampled_from(["c", "F", "list"]))
def test_fit_valid_input_matches_reference_backend(batch, shuffle, xdtype, ydtype, layout):
    model, opt, X, y = _fit_setup(1)
    twin, twin_opt, _, _ = _fit_setup(1)  # the same initial parameters (not deepcopy: see below)
    X = (X * 2).astype(xdtype)
    y = y.astype(ydtype)
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "list":
        X, y = X.tolist(), y.tolist()
    h1 = fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, epochs=2, batch_size=batch, shuffle=shuffle,
                    seed=5, verbose=0)
    plans_before = fastnn._core.plan_alloc_count()
    with fastnn.use_backend("reference"):
        h2 = fastnn.fit(twin, nn.CrossEntropyLoss(), twin_opt, X, y, epochs=2, batch_size=batch,
                        shuffle=shuffle, seed=5, verbose=0)
    # The reference run is NumPy only (no compiled plan was built), so this compares C with
    # NumPy: float32 sums in another order, hence a tolerance rather than equality.
    assert fastnn._core.plan_alloc_count() == plans_before
    np.testing.assert_allclose(h1.history["loss"], h2.history["loss"], rtol=1e-4)
    for (k, p), (_, q) in zip(model.named_parameters(), twin.named_parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-4, atol=1e-5, err_msg=k)


def test_deepcopy_of_a_trained_model_trains_on_its_own(rng):
    model, opt, X, y = _fit_setup(3)
    fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, epochs=1, verbose=0)   # parameters now in an arena
    twin = copy.deepcopy(model)
    for (k, p), (_, q) in zip(model.named_parameters(), twin.named_parameters()):
        assert p.data.tobytes() == q.data.tobytes(), k
    twin_opt = optim.SGD(twin.parameters(), lr=0.1)
    before = snapshot(model)
    w0 = twin[0].weight.data.copy()
    fastnn.fit(twin, nn.CrossEntropyLoss(), twin_opt, X, y, epochs=1, verbose=0)
    assert_same(before, snapshot(model))          # the original is untouched
    assert not np.array_equal(twin[0].weight.data, w0)  # and the copy did train


# --- save / load -------------------------------------------------------------------------------
def _checkpoint(tmp_path):
    model, opt, X, y = _fit_setup(2)
    fastnn.fit(model, nn.CrossEntropyLoss(), opt, X, y, epochs=1, verbose=0)
    path = tmp_path / "ckpt.fnn"
    fastnn.save({"model": model, "optimizer": opt, "epoch": 1, "note": "x"}, path)
    return model, path


@given(mode=st.sampled_from(["truncate", "flip", "append", "zero", "shuffle"]), where=st.floats(0, 1),
       value=st.integers(1, 255))
def test_damaged_checkpoint_is_a_checkpoint_error(tmp_path_factory, mode, where, value):
    tmp = tmp_path_factory.mktemp("ck")
    model, path = _checkpoint(tmp)
    data = bytearray(path.read_bytes())
    i = min(int(where * len(data)), len(data) - 1)
    if mode == "truncate":
        data = data[:i]
    elif mode == "flip":
        data[i] ^= value
    elif mode == "append":
        data += bytes([value]) * 17
    elif mode == "zero":
        data[i:i + 64] = bytes(len(data[i:i + 64]))
    elif mode == "shuffle":
        j = min(int((1 - where) * len(data)), len(data) - 1)
        data[i], data[j] = data[j], data[i]
    bad = tmp / "bad.fnn"
    bad.write_bytes(bytes(data))
    try:
        ck = fastnn.load(bad)
    except fastnn.CheckpointError as e:
        assert str(bad) in str(e)
        return
    # Loaded anyway (the damage hit bytes that carry no content, e.g. zip padding): then it is intact.
    assert_same(snapshot(ck["model"]), snapshot(model))
    assert ck["epoch"] == 1 and ck["note"] == "x"


@pytest.mark.parametrize("obj,where", [({"f": len}, "obj['f']"), ({"a": np.array([1, None], object)}, "obj['a']"),
                                       ({1, 2}, "obj"), ([{"k": object()}], "obj[0]['k']"),
                                       ({"m": nn.Linear(2, 2), "x": 1j}, "obj['x']")])
def test_save_refuses_unsupported_objects_before_writing(tmp_path, obj, where):
    path = tmp_path / "x.fnn"
    expect_error(lambda: fastnn.save(obj, path), where, TypeError)
    assert not path.exists() and not list(tmp_path.iterdir())  # no file, no temporary left behind


def test_save_refuses_reference_cycles(tmp_path):
    cyc = []
    cyc.append(cyc)
    expect_error(lambda: fastnn.save(cyc, tmp_path / "c.fnn"), "obj", (ValueError, TypeError))


@pytest.mark.parametrize("path_kind", ["missing_dir", "directory", "not_path"])
def test_save_load_path_errors(tmp_path, path_kind):
    if path_kind == "missing_dir":
        with pytest.raises(FileNotFoundError):
            fastnn.save({"a": 1}, tmp_path / "nope" / "x.fnn")
        with pytest.raises(fastnn.CheckpointError):
            fastnn.load(tmp_path / "nope" / "x.fnn")
    elif path_kind == "directory":
        with pytest.raises(fastnn.CheckpointError):
            fastnn.load(tmp_path)
    else:
        with pytest.raises(TypeError):
            fastnn.save({"a": 1}, 3.5)


# --- the CLI's file input ------------------------------------------------------------------------
HAVE_CLI = importlib.util.find_spec("fastnn.__main__") is not None


@pytest.mark.skipif(not HAVE_CLI, reason="fastnn.__main__ (the CLI) is not in this tree yet")
@pytest.mark.parametrize("content", [b"", b"\x00\xff" * 100, b"1,2,3\n4,5\n", b"nan,nan\n1,2\n", b"PK\x03\x04junk"])
def test_cli_hostile_input_files(tmp_path, content):
    """The CLI given a damaged or hostile file exits with a message and a non-zero status, never a
    traceback or a signal."""
    f = tmp_path / "input.csv"
    f.write_bytes(content)
    for args in (["train", str(f)], ["predict", str(f)], [str(f)]):
        proc = subprocess.run([sys.executable, "-m", "fastnn", *args], capture_output=True, timeout=60,
                              cwd=os.getcwd())
        assert proc.returncode > 0, proc  # negative: killed by a signal
        assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
