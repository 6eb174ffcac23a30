"""save_safetensors/load_safetensors: bit-for-bit round trips with PyTorch's key names (float32, float64, BatchNorm buffers); damaged or mismatching files raise SafetensorsError and leave the model untouched; writes are atomic."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import fastnn
from fastnn import SafetensorsError, load_safetensors, nn, save_safetensors
from fastnn.io import atomic_write

safetensors = pytest.importorskip("safetensors")
import safetensors.numpy  # noqa: E402


def make_model(seed=0):
    fastnn.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.1),
                          nn.Linear(8, 6, dtype=np.float64), nn.LayerNorm(6, dtype=np.float64), nn.GELU(),
                          nn.Linear(6, 3, bias=False, dtype=np.float64))
    return model


def train_a_little(model):
    rng = np.random.default_rng(0)
    model.train()
    for _ in range(3):
        model(rng.standard_normal((16, 5)).astype(np.float32))  # moves BatchNorm's running statistics
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.data.shape)
    return model


def assert_same_state(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), k


def test_round_trip_bit_for_bit(tmp_path):
    model = train_a_little(make_model())
    state = model.state_dict()
    assert {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
            "1.num_batches_tracked", "4.weight", "4.bias", "5.weight", "5.bias", "7.weight"} == set(state)
    assert int(state["1.num_batches_tracked"]) == 3 and not np.all(state["1.running_var"] == 1)
    path = tmp_path / "model.safetensors"
    save_safetensors(model, path)
    loaded = load_safetensors(path)
    assert_same_state(loaded, state)
    assert loaded["4.weight"].dtype == np.float64 and loaded["1.num_batches_tracked"].dtype == np.int64
    assert loaded["1.num_batches_tracked"].shape == ()


def test_load_into_a_fresh_model_gives_the_same_outputs(tmp_path):
    model = train_a_little(make_model(0)).eval()
    path = tmp_path / "model.safetensors"
    save_safetensors(model, path)
    other = make_model(1).eval()
    assert load_safetensors(path, model=other) is other
    assert_same_state(other.state_dict(), model.state_dict())
    x = np.random.default_rng(1).standard_normal((7, 5)).astype(np.float32)
    assert np.asarray(other(x)).tobytes() == np.asarray(model(x)).tobytes()


def test_state_dict_with_parameters_and_user_metadata(tmp_path):
    lin = nn.Linear(3, 2)
    path = tmp_path / "w.safetensors"
    save_safetensors({"weight": lin.weight, "bias": lin.bias.data, "step": np.int64(4)}, path,
                     metadata={"note": "hello"})
    loaded = load_safetensors(path)
    assert np.array_equal(loaded["weight"], lin.weight.data) and int(loaded["step"]) == 4
    with safetensors.safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    assert meta["note"] == "hello" and meta["format"] == "pt" and len(meta["fastnn_sha256"]) == 64


def test_a_plain_safetensors_file_without_digest_loads(tmp_path):
    path = tmp_path / "plain.safetensors"
    w = np.arange(6, dtype=np.float64).reshape(2, 3)
    safetensors.numpy.save_file({"weight": w, "bias": np.ones(2)}, str(path))
    lin = load_safetensors(path, model=nn.Linear(3, 2, dtype=np.float64))
    assert np.array_equal(lin.weight.data, w) and np.array_equal(lin.bias.data, np.ones(2))


# --- damaged and mismatching files --------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    model = train_a_little(make_model())
    path = tmp_path / "model.safetensors"
    save_safetensors(model, path)
    return path, model


def _damage(path, how):
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) - 10]
    elif how == "header_cut":
        data = data[:20]
    elif how == "payload_byte":
        data[-3] ^= 0x40  # the last tensor's bytes
    elif how == "garbage":
        data = bytearray(b"\x00" * 4 + os.urandom(200))
    elif how == "empty":
        data = bytearray()
    elif how == "huge_header_length":
        data[:8] = (10 ** 12).to_bytes(8, "little")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how, match", [
    ("truncated", "not a readable safetensors file"),
    ("header_cut", "not a readable safetensors file"),
    ("payload_byte", "checksum mismatch"),
    ("garbage", "not a readable safetensors file"),
    ("empty", "not a readable safetensors file"),
    ("huge_header_length", "not a readable safetensors file"),
])
def test_damaged_file_raises_and_leaves_the_model_untouched(saved, how, match):
    path, _ = saved
    _damage(path, how)
    target = make_model(5)
    before = target.state_dict()
    with pytest.raises(SafetensorsError, match=match) as info:
        load_safetensors(path, model=target)
    assert str(path) in str(info.value)
    assert_same_state(target.state_dict(), before)
    with pytest.raises(SafetensorsError):
        load_safetensors(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(SafetensorsError, match="no such file") as info:
        load_safetensors(tmp_path / "nope.safetensors")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, fastnn.CheckpointError)
    with pytest.raises(SafetensorsError, match="is a directory"):
        load_safetensors(tmp_path)


def _other_architectures():
    yield "wrong_shape", nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.1),
                                       nn.Linear(8, 6, dtype=np.float64), nn.LayerNorm(6, dtype=np.float64),
                                       nn.GELU(), nn.Linear(6, 4, bias=False, dtype=np.float64)), "expected shape"
    yield "missing_key", nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.1),
                                       nn.Linear(8, 6, dtype=np.float64), nn.LayerNorm(6, dtype=np.float64),
                                       nn.GELU(), nn.Linear(6, 3, bias=True, dtype=np.float64)), "missing keys"
    yield "unexpected_key", nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8, track_running_stats=False),
                                          nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 6, dtype=np.float64),
                                          nn.LayerNorm(6, dtype=np.float64), nn.GELU(),
                                          nn.Linear(6, 3, bias=False, dtype=np.float64)), "unexpected keys"


@pytest.mark.parametrize("name, target, match", list(_other_architectures()),
                         ids=[name for name, _, _ in _other_architectures()])
def test_mismatching_model_raises_before_writing_anything(saved, name, target, match):
    path, _ = saved
    before = target.state_dict()
    with pytest.raises(SafetensorsError, match=f"does not fit the model.*{match}"):
        load_safetensors(path, model=target)
    assert_same_state(target.state_dict(), before)


def test_strict_false_loads_the_matching_keys(saved):
    path, model = saved
    target = nn.Sequential(nn.Linear(5, 8))
    load_safetensors(path, model=target, strict=False)
    assert np.array_equal(target[0].weight.data, model[0].weight.data)


# --- saving -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("obj, exc, match", [
    ({"a": np.array(["x"])}, TypeError, r"state_dict\['a'\]: safetensors stores numeric arrays"),
    ({"a": np.array([object()])}, TypeError, r"state_dict\['a'\]"),
    ({1: np.zeros(2)}, TypeError, "keys must be strings"),
    ([np.zeros(2)], TypeError, "model_or_state_dict: expected a fastnn Module or a dict"),
])
def test_unsavable_values_raise_before_touching_the_file(obj, exc, match, tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"previous")
    with pytest.raises(exc, match=match):
        save_safetensors(obj, path)
    assert path.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [path]


def test_metadata_must_be_strings_and_not_the_digest(tmp_path):
    with pytest.raises(TypeError, match="metadata"):
        save_safetensors({"a": np.zeros(1)}, tmp_path / "m", metadata={"n": 1})
    with pytest.raises(ValueError, match="fastnn_sha256"):
        save_safetensors({"a": np.zeros(1)}, tmp_path / "m", metadata={"fastnn_sha256": "x"})


def test_save_replaces_an_existing_file_and_keeps_its_mode(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)
    save_safetensors({"a": np.arange(3.0)}, path)
    assert np.array_equal(load_safetensors(path)["a"], np.arange(3.0))
    assert (os.stat(path).st_mode & 0o777) == 0o600
    assert list(tmp_path.iterdir()) == [path]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old contents")

    def half_then_fail(f):
        f.write(b"new, partial")
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        atomic_write(str(path), half_then_fail)
    assert path.read_bytes() == b"old contents"
    assert list(tmp_path.iterdir()) == [path]


def test_missing_safetensors_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"fastnn-cpu\[safetensors\]"):
        save_safetensors({"a": np.zeros(1)}, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
