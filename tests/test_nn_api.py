"""The PyTorch-style API: modules, parameters, state_dict, train/eval, the backward chain
(Sequential, chained calls, custom composites), dtype handling and clear errors."""
from collections import OrderedDict

import numpy as np
import pytest

import fastnn as fnn
from fastnn import nn


def _mlp(dtype=np.float32):
    return nn.Sequential(nn.Linear(2, 4, dtype=dtype), nn.Tanh(), nn.Linear(4, 1, dtype=dtype), nn.Sigmoid())


def test_linear_init_is_pytorch_uniform_and_seeded():
    fnn.manual_seed(3)
    a = nn.Linear(50, 20)
    fnn.manual_seed(3)
    b = nn.Linear(50, 20)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    bound = 1 / np.sqrt(50)
    assert a.weight.shape == (20, 50) and a.bias.shape == (20,)
    assert a.weight.dtype == np.float32
    assert np.abs(a.weight.data).max() <= bound and np.abs(a.bias.data).max() <= bound
    # Uniform on ±bound: the sample std is close to bound/sqrt(3).
    assert abs(a.weight.data.std() - bound / np.sqrt(3)) < 0.1 * bound
    assert nn.Linear(3, 2, bias=False).bias is None


def test_parameters_and_state_dict_use_pytorch_names():
    model = _mlp()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert list(model.state_dict()) == names
    assert len(model.parameters()) == 4
    sd = model.state_dict()
    sd["0.weight"][...] = 0  # a copy: the model is untouched
    assert np.any(model[0].weight.data != 0)


def test_load_state_dict_round_trip_and_errors():
    fnn.manual_seed(0)
    a, b = _mlp(), _mlp()
    x = np.random.default_rng(0).random((5, 2))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(np.asarray(a(x)), np.asarray(b(x)))
    bad = a.state_dict()
    bad["0.weight"] = np.zeros((3, 3))
    before = b.state_dict()
    with pytest.raises(ValueError, match=r"state_dict\['0.weight'\]: expected shape \(4, 2\)"):
        b.load_state_dict(bad)
    for k, v in b.state_dict().items():  # nothing was half-written
        np.testing.assert_array_equal(v, before[k])
    missing = a.state_dict()
    del missing["2.bias"]
    with pytest.raises(KeyError, match="missing keys"):
        b.load_state_dict(missing)
    assert b.load_state_dict(missing, strict=False) == (["2.bias"], [])


def test_train_eval_and_repr():
    model = _mlp()
    assert model.training and model[0].training
    model.eval()
    assert not model.training and not model[3].training
    model.train()
    assert model[1].training
    text = repr(model)
    assert "(0): Linear(in_features=2, out_features=4, bias=True)" in text and "(3): Sigmoid()" in text


def test_outputs_are_read_only_tensors_usable_as_arrays():
    model = _mlp()
    out = model(np.ones((3, 2)))
    assert isinstance(out, fnn.Tensor) and isinstance(out, np.ndarray)
    assert out.shape == (3, 1) and out.dtype == np.float32
    with pytest.raises(ValueError, match="read-only"):
        out[0, 0] = 1.0
    assert np.asarray(out).shape == (3, 1)
    plain = out.numpy()
    plain[0, 0] = 5.0  # a writable copy
    assert out.producer is model


def test_integer_and_float64_inputs_are_converted_to_the_model_dtype():
    model = _mlp()
    assert model(np.array([[1, 0]])).dtype == np.float32
    assert model(np.array([[1.0, 0.0]])).dtype == np.float32
    m64 = _mlp(np.float64)
    assert m64(np.array([[1, 0]], np.float32)).dtype == np.float64


def test_backward_matches_manual_chain_rule():
    """loss.backward() through Sequential equals chaining each layer's backward by hand."""
    fnn.manual_seed(1)
    model = _mlp(np.float64)
    x = np.random.default_rng(1).random((6, 2))
    y = np.random.default_rng(2).random((6, 1))
    loss = nn.MSELoss()(model(x), y)
    loss.backward()
    auto = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())
    out = model(x)
    g = 2 * (np.asarray(out) - y) / y.size
    for layer in reversed(list(model)):
        g = layer.backward(g)
    for a, p in zip(auto, model.parameters()):
        np.testing.assert_allclose(a, p.grad, rtol=1e-12)


def test_gradients_accumulate_until_zeroed():
    model = _mlp(np.float64)
    x, y = np.ones((2, 2)), np.zeros((2, 1))
    nn.MSELoss()(model(x), y).backward()
    once = model[0].weight.grad.copy()
    nn.MSELoss()(model(x), y).backward()
    np.testing.assert_allclose(model[0].weight.grad, 2 * once)


def test_chained_calls_and_custom_composites_backpropagate():
    fnn.manual_seed(2)
    rng = np.random.default_rng(0)
    x, t = rng.random((4, 3)), rng.random((4, 3))
    enc, dec = nn.Linear(3, 2, dtype=np.float64), nn.Linear(2, 3, dtype=np.float64)
    assert fnn.gradcheck(lambda v: nn.MSELoss()(dec(nn.Tanh()(enc(v))), t), x)

    class AutoEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(3, 2, dtype=np.float64)
            self.act = nn.GELU()
            self.dec = nn.Linear(2, 3, dtype=np.float64)

        def forward(self, v):
            return self.dec(self.act(self.enc(v)))

    ae = AutoEncoder()
    assert [n for n, _ in ae.named_parameters()] == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    assert fnn.gradcheck(lambda v: nn.MSELoss()(ae(v), t), x)
    loss = nn.MSELoss()(ae(x), t)
    loss.backward()
    assert np.abs(ae.enc.weight.grad).sum() > 0


@pytest.mark.parametrize("act", [nn.ReLU(), nn.LeakyReLU(0.1), nn.Sigmoid(), nn.Tanh(), nn.GELU(),
                                 nn.GELU("tanh"), nn.Softmax()])
def test_every_activation_in_a_network_passes_gradcheck(act):
    fnn.manual_seed(4)
    rng = np.random.default_rng(4)
    model = nn.Sequential(nn.Linear(3, 5, dtype=np.float64), act, nn.Linear(5, 2, dtype=np.float64))
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((7, 2))
    assert fnn.gradcheck(lambda v: nn.MSELoss()(model(v), y), x)


@pytest.mark.parametrize("loss_fn, target", [
    (nn.MSELoss(), "real"), (nn.MSELoss(reduction="sum"), "real"), (nn.L1Loss(), "real"),
    (nn.BCEWithLogitsLoss(), "prob"), (nn.CrossEntropyLoss(), "label"),
    (nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum"), "label"),
])
def test_every_loss_through_a_network_passes_gradcheck(loss_fn, target):
    fnn.manual_seed(5)
    rng = np.random.default_rng(5)
    model = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.Tanh(), nn.Linear(4, 3, dtype=np.float64))
    x = rng.standard_normal((6, 3))
    y = {"real": rng.standard_normal((6, 3)), "prob": rng.random((6, 3)), "label": rng.integers(0, 3, 6)}[target]
    assert fnn.gradcheck(lambda v: loss_fn(model(v), y), x)


def test_bce_after_sigmoid_passes_gradcheck():
    fnn.manual_seed(6)
    rng = np.random.default_rng(6)
    model = nn.Sequential(nn.Linear(2, 3, dtype=np.float64), nn.Sigmoid())
    x, y = rng.standard_normal((5, 2)), rng.random((5, 3))
    assert fnn.gradcheck(lambda v: nn.BCELoss()(model(v), y), x)


def test_gradcheck_catches_a_wrong_gradient():
    class Wrong(nn.Tanh):
        def _backward(self, B, g, y):
            return 1.01 * B.tanh_backward(g, y)

    x = np.random.default_rng(0).standard_normal((3, 2))
    with pytest.raises(fnn.GradcheckError, match="disagrees with finite differences"):
        fnn.gradcheck(lambda v: Wrong()(v), x)


@pytest.mark.parametrize("fuse", [True, False])
def test_first_layer_skips_its_input_gradient(monkeypatch, fuse):
    model = _mlp(np.float64)
    model.fuse = fuse
    calls = []
    name = "_backward_fused" if fuse else "backward"
    original = getattr(model[0], name)

    def spy(*args, need_input_grad=True):
        calls.append(need_input_grad)
        return original(*args, need_input_grad=need_input_grad)

    monkeypatch.setattr(model[0], name, spy)
    nn.MSELoss()(model(np.ones((2, 2))), np.zeros((2, 1))).backward()
    assert calls == [False]


def test_backward_errors_are_clear():
    model = _mlp()
    x, y = np.ones((2, 2)), np.zeros((2, 1))
    out = model(x)
    loss = nn.MSELoss()(out, y)
    model(x)  # a second forward overwrites the saved activations
    with pytest.raises(RuntimeError, match="called again"):
        loss.backward()
    with pytest.raises(RuntimeError, match="nothing to backpropagate"):
        nn.MSELoss()(np.asarray(out) * 2, y).backward()
    with pytest.raises(RuntimeError, match="grad is required"):
        model(x).backward()
    seq = _mlp()
    out = seq(x)
    seq[0](x)
    with pytest.raises(RuntimeError, match="called on its own"):
        nn.MSELoss()(out, y).backward()


def test_bad_inputs_raise_before_any_kernel_runs():
    layer = nn.Linear(784, 256)
    with pytest.raises(ValueError, match=r"Linear\(784→256\) expected input with 784 features, got array of shape \(32, 100\)"):
        layer(np.zeros((32, 100)))
    with pytest.raises(TypeError, match="numeric"):
        layer(np.array([["a"] * 784]))
    with pytest.raises(ValueError, match="in_features: expected a positive integer"):
        nn.Linear(0, 3)
    with pytest.raises(TypeError, match="dtype"):
        nn.Linear(2, 3, dtype=np.int32)
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(AttributeError, match="must call super"):
        class Broken(nn.Module):
            def __init__(self):
                self.x = 1
        Broken()


def test_sequential_container_behaviour():
    a, b = nn.Linear(2, 3), nn.ReLU()
    seq = nn.Sequential(OrderedDict([("fc", a), ("act", b)]))
    assert seq[0] is a and len(seq) == 2 and list(seq) == [a, b]
    assert [n for n, _ in seq.named_parameters()] == ["fc.weight", "fc.bias"]
    seq.append(nn.Linear(3, 1))
    assert len(seq[1:]) == 2
    assert seq(np.ones((4, 2))).shape == (4, 1)


def test_multi_dimensional_inputs_to_linear():
    layer = nn.Linear(3, 2, dtype=np.float64)
    x = np.random.default_rng(0).random((4, 5, 3))
    y = layer(x)
    assert y.shape == (4, 5, 2)
    np.testing.assert_allclose(y, x @ layer.weight.data.T + layer.bias.data, rtol=1e-12)
    assert layer(np.ones(3)).shape == (2,)


@pytest.mark.parametrize("act", [nn.ReLU, lambda: nn.LeakyReLU(0.2), nn.Sigmoid, nn.Tanh, nn.GELU,
                                 lambda: nn.GELU("tanh"), lambda: nn.LeakyReLU(-0.5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_linear_activation_equals_unfused(act, dtype):
    """Sequential fuses Linear+activation into one GEMM pass; forward, backward and the
    activation modules' own state are the same as running the modules one by one."""
    rng = np.random.default_rng(7)
    fnn.manual_seed(7)
    fused = nn.Sequential(nn.Linear(13, 17, dtype=dtype), act(), nn.Linear(17, 5, dtype=dtype))
    plain = nn.Sequential(nn.Linear(13, 17, dtype=dtype), act(), nn.Linear(17, 5, dtype=dtype))
    plain.load_state_dict(fused.state_dict())
    plain.fuse = False
    x, y = rng.standard_normal((9, 13)), rng.standard_normal((9, 5))
    outs = []
    for model in (fused, plain):
        out = model(x)
        nn.MSELoss()(out, y).backward()
        outs.append((np.asarray(out), [p.grad.copy() for p in model.parameters()]))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(outs[0][0], outs[1][0], **tol)
    for a, b in zip(outs[0][1], outs[1][1]):
        np.testing.assert_allclose(a, b, **tol)
    # The activation module can still run its own backward from the fused forward's state.
    g = rng.standard_normal((9, 17)).astype(dtype)
    np.testing.assert_allclose(fused[1].backward(g), plain[1].backward(g), **tol)
