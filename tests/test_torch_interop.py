"""PyTorch round trips: load_state_dict takes torch's state_dict() (tensors or arrays), and safetensors files move weights both ways with the same outputs (skipped without torch)."""
from __future__ import annotations

import numpy as np
import pytest

from fastnn import load_safetensors, nn, save_safetensors

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def fastnn_model(dt):
    return nn.Sequential(
        nn.Linear(5, 8, dtype=dt), nn.BatchNorm1d(8, dtype=dt), nn.ReLU(), nn.Dropout(0.2),
        nn.Sequential(nn.Linear(8, 8, dtype=dt), nn.LayerNorm(8, dtype=dt), nn.GELU(approximate="tanh")),
        nn.Linear(8, 6, bias=False, dtype=dt), nn.LeakyReLU(0.05), nn.Linear(6, 4, dtype=dt), nn.GELU(),
        nn.Linear(4, 3, dtype=dt), nn.Softmax(dim=-1))


def torch_model(dt):
    t = torch.nn
    model = t.Sequential(
        t.Linear(5, 8), t.BatchNorm1d(8), t.ReLU(), t.Dropout(0.2),
        t.Sequential(t.Linear(8, 8), t.LayerNorm(8), t.GELU(approximate="tanh")),
        t.Linear(8, 6, bias=False), t.LeakyReLU(0.05), t.Linear(6, 4), t.GELU(),
        t.Linear(4, 3), t.Softmax(dim=-1))
    return model.to(TORCH_DTYPE[dt])


def trained_torch(dt):
    torch.manual_seed(0)
    model = torch_model(dt)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-1.2, 1.2)
        model.train()
        for _ in range(3):  # BatchNorm's running statistics and batch counter move
            model(torch.randn(16, 5, dtype=TORCH_DTYPE[dt]) * 2 + 0.5)
    return model.eval()


def torch_out(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dt(request):
    return request.param


def _x(dt, n=37):
    return (np.random.default_rng(n).standard_normal((n, 5)) * 2).astype(dt)


def test_key_names_match_pytorch(dt):
    assert list(fastnn_model(dt).state_dict()) == list(torch_model(dt).state_dict())


@pytest.mark.parametrize("as_arrays", [False, True], ids=["tensors", "arrays"])
def test_load_state_dict_takes_torch_state_dict(dt, as_arrays):
    tm = trained_torch(dt)
    state = tm.state_dict()
    if as_arrays:
        state = {k: v.numpy() for k, v in state.items()}
    fm = fastnn_model(dt)
    fm.load_state_dict(state)
    fm.eval()
    assert int(fm.state_dict()["1.num_batches_tracked"]) == 3
    for n in (1, 37):
        x = _x(dt, n)
        np.testing.assert_allclose(np.asarray(fm(x)), torch_out(tm, x), **TOL[dt])


def test_fastnn_to_torch_through_safetensors(dt, tmp_path):
    fm = fastnn_model(dt)
    fm.load_state_dict(trained_torch(dt).state_dict())  # trained values: running statistics away from 0/1
    fm.eval()
    path = tmp_path / "model.safetensors"
    save_safetensors(fm, path)
    tm = torch_model(dt)
    tm.load_state_dict(safetensors_torch.load_file(str(path)), strict=True)
    tm.eval()
    for k, v in tm.state_dict().items():
        assert v.numpy().tobytes() == fm.state_dict()[k].tobytes(), k
    assert tm.state_dict()["1.num_batches_tracked"].dtype == torch.int64
    for n in (1, 37):
        x = _x(dt, n)
        np.testing.assert_allclose(torch_out(tm, x), np.asarray(fm(x)), **TOL[dt])


def test_torch_to_fastnn_through_safetensors(dt, tmp_path):
    tm = trained_torch(dt)
    path = tmp_path / "torch.safetensors"
    safetensors_torch.save_file(tm.state_dict(), str(path))
    fm = load_safetensors(path, model=fastnn_model(dt)).eval()
    for n in (1, 37):
        x = _x(dt, n)
        np.testing.assert_allclose(np.asarray(fm(x)), torch_out(tm, x), **TOL[dt])


def test_torch_state_dict_for_another_architecture_is_refused_untouched():
    fm = fastnn_model(np.float32)
    before = fm.state_dict()
    bad = torch.nn.Sequential(torch.nn.Linear(5, 9)).state_dict()
    with pytest.raises(KeyError, match="missing keys"):
        fm.load_state_dict(bad)
    wrong_shape = dict(torch_model(np.float32).state_dict())
    wrong_shape["9.weight"] = torch.zeros(3, 5)
    with pytest.raises(ValueError, match=r"state_dict\['9.weight'\]: expected shape \(3, 4\)"):
        fm.load_state_dict(wrong_shape)
    for k, v in fm.state_dict().items():
        assert np.array_equal(v, before[k]), k


def test_save_safetensors_takes_a_torch_state_dict_requiring_grad(tmp_path):
    tm = trained_torch(np.float32)
    path = tmp_path / "m.safetensors"
    save_safetensors(dict(tm.state_dict(keep_vars=True)), path)  # Parameters that require grad
    fm = load_safetensors(path, model=fastnn_model(np.float32)).eval()
    x = _x(np.float32)
    np.testing.assert_allclose(np.asarray(fm(x)), torch_out(tm, x), **TOL[np.float32])


def test_load_state_dict_takes_torch_parameters_requiring_grad():
    tm = trained_torch(np.float32)
    fm = fastnn_model(np.float32)
    fm.load_state_dict(tm.state_dict(keep_vars=True))  # nn.Parameter values, requires_grad=True
    x = _x(np.float32)
    np.testing.assert_allclose(np.asarray(fm.eval()(x)), torch_out(tm, x), **TOL[np.float32])
