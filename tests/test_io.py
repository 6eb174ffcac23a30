"""save/load round-trips models, optimizer state and checkpoints exactly, writes atomically, refuses what it cannot rebuild, and rejects every damaged file with CheckpointError."""
from __future__ import annotations

import io
import json
import os
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import fastnn as fnn
from fastnn import nn, optim
from fastnn.io import CheckpointError, _payload_digest, load, save




def make_model(dtype=np.float32):
    fnn.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7, dtype=dtype), nn.ReLU(), nn.Linear(7, 6, bias=False, dtype=dtype),
                         nn.LeakyReLU(0.2), nn.Linear(6, 6, dtype=dtype), nn.GELU("tanh"), nn.Linear(6, 4, dtype=dtype),
                         nn.Tanh(), nn.Linear(4, 4, dtype=dtype), nn.Sigmoid(), nn.Linear(4, 3, dtype=dtype),
                         nn.Softmax(dim=-1))


def same_state(a, b):
    return list(a) == list(b) and all(np.asarray(a[k]).dtype == np.asarray(b[k]).dtype
                                      and np.array_equal(a[k], b[k]) for k in a)


def train_steps(model, opt, batches):
    loss_fn = nn.MSELoss()
    for x, t in batches:
        opt.zero_grad()
        loss_fn(model(x), t).backward()
        opt.step()


def batches(n, seed, d_in=5, d_out=3):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((8, d_in)).astype(np.float32), rng.standard_normal((8, d_out)).astype(np.float32))
            for _ in range(n)]


# --- round trips -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_model_round_trip_predicts_identically(tmp_path, dtype):
    model = make_model(dtype)
    path = tmp_path / "model.fnn"
    save(model, path)
    loaded = load(path)
    assert type(loaded) is nn.Sequential and repr(loaded) == repr(model)
    assert same_state(loaded.state_dict(), model.state_dict())
    x = np.random.default_rng(1).standard_normal((9, 5)).astype(dtype)
    assert np.array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert all(p.dtype == dtype for p in loaded.parameters())
    # the loaded model's parameters are its own, not shared with the original
    loaded[0].weight.data = np.zeros((7, 5))
    assert np.any(model[0].weight.data != 0)


def test_modes_frozen_parameters_and_losses_round_trip(tmp_path):
    model = nn.Sequential(OrderedDict(enc=nn.Linear(3, 2), act=nn.Tanh()))
    model.eval()
    model.enc.bias.requires_grad = False
    losses = [nn.MSELoss(), nn.L1Loss(reduction="sum"), nn.BCELoss(), nn.BCEWithLogitsLoss(),
              nn.CrossEntropyLoss(label_smoothing=0.1)]
    save({"model": model, "losses": losses}, tmp_path / "m.fnn")
    back = load(tmp_path / "m.fnn")
    m = back["model"]
    assert list(m._modules) == ["enc", "act"] and m.training is False and m.enc.training is False
    assert m.enc.bias.requires_grad is False and m.enc.weight.requires_grad is True
    assert [repr(x) for x in back["losses"]] == [repr(x) for x in losses]


def test_state_dict_and_nested_values_round_trip(tmp_path):
    model = make_model()
    obj = {"state": model.state_dict(), "epoch": 3, "lr": 0.125, "name": "run-α", "flags": [True, None],
           "nan": float("nan"), "inf": -float("inf"), "np_scalar": np.float32(2.5), "np_int": np.int64(7),
           "tuple": (1, (2.0, "x")), 5: "int key", (1, 2): "tuple key",
           "arrays": [np.arange(6, dtype=np.int16).reshape(2, 3), np.asfortranarray(np.ones((2, 3))),
                      np.array([True, False]), np.array(3.5), np.array(["ab", "c"])]}
    save(obj, tmp_path / "c.fnn")
    back = load(tmp_path / "c.fnn")
    assert isinstance(back["state"], OrderedDict) and same_state(back["state"], obj["state"])
    assert back["epoch"] == 3 and back["lr"] == 0.125 and back["name"] == "run-α" and back["flags"] == [True, None]
    assert np.isnan(back["nan"]) and back["inf"] == -np.inf
    assert type(back["np_scalar"]) is np.float32 and back["np_scalar"] == 2.5 and type(back["np_int"]) is np.int64
    assert back["tuple"] == (1, (2.0, "x")) and back[5] == "int key" and back[(1, 2)] == "tuple key"
    for a, b in zip(back["arrays"], obj["arrays"]):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    # a state dict loads into a freshly built model
    fresh = make_model()
    fresh.load_state_dict(load(tmp_path / "c.fnn")["state"])
    assert same_state(fresh.state_dict(), model.state_dict())


def test_optimizer_saves_as_its_state_dict(tmp_path):
    model = make_model()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)
    train_steps(model, opt, batches(2, seed=0))
    save(opt, tmp_path / "opt.fnn")
    sd = load(tmp_path / "opt.fnn")
    ref = opt.state_dict()
    assert sd["param_groups"] == ref["param_groups"]
    assert sd["state"].keys() == ref["state"].keys()
    for k in ref["state"]:
        assert np.array_equal(sd["state"][k]["momentum_buffer"], ref["state"][k]["momentum_buffer"])
    opt2 = optim.SGD(make_model().parameters(), lr=1.0)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.05 and opt2.param_groups[0]["nesterov"] is True


def test_checkpoint_resumes_training_bit_for_bit(tmp_path):
    model = make_model()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train_steps(model, opt, batches(3, seed=0))
    save({"model": model, "optimizer": opt, "epoch": 3}, tmp_path / "ckpt.fnn")
    later = batches(4, seed=1)
    train_steps(model, opt, later)                      # continue without interruption

    ckpt = load(tmp_path / "ckpt.fnn")                  # … versus resume from the file
    resumed = ckpt["model"]
    opt2 = optim.SGD(resumed.parameters(), lr=1.0)      # hyper-parameters come from the checkpoint
    opt2.load_state_dict(ckpt["optimizer"])
    train_steps(resumed, opt2, later)
    assert ckpt["epoch"] == 3
    for k, v in model.state_dict().items():
        assert v.tobytes() == resumed.state_dict()[k].tobytes(), k
    # without the optimizer state (momentum) the trajectory differs: the comparison has teeth
    ckpt = load(tmp_path / "ckpt.fnn")
    opt3 = optim.SGD(ckpt["model"].parameters(), lr=0.05, momentum=0.9)
    train_steps(ckpt["model"], opt3, later)
    assert not same_state(ckpt["model"].state_dict(), model.state_dict())


def test_same_object_same_bytes_and_load_leaves_global_rng_alone(tmp_path):
    model = make_model()
    save(model, tmp_path / "a.fnn")
    save(model, tmp_path / "b.fnn")
    assert (tmp_path / "a.fnn").read_bytes() == (tmp_path / "b.fnn").read_bytes()
    fnn.manual_seed(123)
    expected = fnn.random.default_generator().random(3)
    fnn.manual_seed(123)
    load(tmp_path / "a.fnn")  # builds Linear layers, whose constructors draw from the generator
    assert np.array_equal(fnn.random.default_generator().random(3), expected)


class BatchNorm1d(nn.Module):
    """Stands in for a BatchNorm1d that other developers are writing: PyTorch-style attributes."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32):
        super().__init__()
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        self.weight = nn.Parameter(np.ones(num_features, dtype)) if affine else None
        self.bias = nn.Parameter(np.zeros(num_features, dtype)) if affine else None
        self.register_buffer("running_mean", np.zeros(num_features, dtype))

    def forward(self, x):
        return np.asarray(x)


class Dropout(nn.Module):
    def __init__(self, p=0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        return np.asarray(x)


class Flatten(nn.Module):
    def __init__(self, start_dim=1, end_dim=-1):  # end_dim deliberately not stored
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x):
        return np.asarray(x)


def test_layers_recorded_from_their_constructor_signature(tmp_path, monkeypatch):
    # Dropout, BatchNorm1d, LayerNorm, Flatten, Identity are saved through their constructor
    # arguments once they exist in fastnn.nn; here stand-in classes take their names.
    monkeypatch.setattr(nn, "BatchNorm1d", BatchNorm1d, raising=False)
    monkeypatch.setattr(nn, "Dropout", Dropout, raising=False)
    monkeypatch.setattr(nn, "Flatten", Flatten, raising=False)
    bn = BatchNorm1d(4, eps=1e-3, momentum=0.2, dtype=np.float64)
    bn.running_mean[:] = [1, 2, 3, 4]
    model = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), bn, Dropout(p=0.25))
    save(model, tmp_path / "m.fnn")
    back = load(tmp_path / "m.fnn")
    assert type(back[1]) is BatchNorm1d and type(back[2]) is Dropout
    assert (back[1].num_features, back[1].eps, back[1].momentum, back[1].affine) == (4, 1e-3, 0.2, True)
    assert back[1].weight.dtype == np.float64 and np.array_equal(back[1].running_mean, [1, 2, 3, 4])
    assert back[2].p == 0.25
    no_affine = BatchNorm1d(2, affine=False)
    save(no_affine, tmp_path / "n.fnn")
    assert load(tmp_path / "n.fnn").affine is False
    with pytest.raises(TypeError, match="'end_dim' is not stored"):
        save(Flatten(), tmp_path / "f.fnn")


# --- what cannot be saved ----------------------------------------------------------------------------
class MyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(x)


class MyLinear(nn.Linear):
    pass


@pytest.mark.parametrize("obj, where", [
    (MyNet(), "obj"),
    (nn.Sequential(nn.Linear(2, 2), MyLinear(2, 2)), "obj.1"),
    ({"run": [1, {"model": MyNet()}]}, "obj['run'][1]['model']"),
])
def test_user_defined_modules_are_refused_with_advice(tmp_path, obj, where):
    with pytest.raises(TypeError, match=r"save\(model.state_dict\(\), path\)") as info:
        save(obj, tmp_path / "x.fnn")
    assert str(info.value).startswith(where + ":")
    assert not os.listdir(tmp_path)
    save(MyNet().state_dict(), tmp_path / "x.fnn")  # the advice works


@pytest.mark.parametrize("obj", [{1, 2}, {"a": object()}, {"f": lambda: 0}, np.array([object()]), {frozenset(): 1}])
def test_unsupported_values_raise_type_error(tmp_path, obj):
    with pytest.raises(TypeError, match="^obj"):
        save(obj, tmp_path / "x.fnn")
    assert not os.listdir(tmp_path)


# --- atomic writes ----------------------------------------------------------------------------------------
def test_failed_write_leaves_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "model.fnn"
    save(make_model(), path)
    old = path.read_bytes()
    calls = []
    real = zipfile.ZipFile.writestr

    def failing(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:  # header and one array written, then the "disk" fails
            raise OSError("simulated failure mid-write")
        return real(self, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    m2 = make_model()
    m2[0].weight.data = np.zeros((7, 5))
    with pytest.raises(OSError, match="simulated"):
        save(m2, path)
    assert len(calls) == 3
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["model.fnn"]
    monkeypatch.undo()
    assert same_state(load(path).state_dict(), make_model().state_dict())


def test_save_replaces_and_keeps_permissions(tmp_path):
    path = tmp_path / "m.fnn"
    save({"v": 1}, path)
    os.chmod(path, 0o640)
    save({"v": 2}, str(path))
    assert load(path) == {"v": 2} and (os.stat(path).st_mode & 0o777) == 0o640
    assert os.listdir(tmp_path) == ["m.fnn"]


# --- damaged files ------------------------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "ckpt.fnn"
    fnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train_steps(model, opt, batches(1, seed=0, d_in=3, d_out=2))
    save({"model": model, "optimizer": opt, "epoch": 1}, path)
    return path


def _rewrite(path, edit_header=None, edit_array=None, fix_checksum=False):
    """Write a new, well-formed zip whose contents are edited (optionally with a matching checksum)."""
    with zipfile.ZipFile(path) as zf:
        header = json.loads(zf.read("header.json"))
        arrays = [(k, zf.read(f"arrays/{k}.npy")) for k in header["arrays"]]
    if edit_header:
        edit_header(header)
    if edit_array:
        arrays = edit_array(arrays)
    if fix_checksum:
        body = {k: v for k, v in header.items() if k != "payload_sha256"}
        header["payload_sha256"] = _payload_digest(body, arrays)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("header.json", json.dumps(header))
        for k, data in arrays:
            zf.writestr(f"arrays/{k}.npy", data)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="nope.fnn: no such file") as info:
        load(tmp_path / "nope.fnn")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_file(saved, fraction):
    data = saved.read_bytes()
    saved.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match=f"^{saved}: "):
        load(saved)


def test_flipped_byte_in_array_data_and_header(saved):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    for name in ("header.json", "arrays/a0.npy"):
        info = infos[name]
        # local header: 30 bytes + name + extra; the member data follows
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        corrupted = bytearray(data)
        corrupted[start + info.file_size - 3] ^= 0x01
        saved.write_bytes(bytes(corrupted))
        with pytest.raises(CheckpointError):
            load(saved)


def test_every_single_byte_flip_is_detected_or_harmless(saved):
    # Flipping any one byte either raises CheckpointError or leaves content that loads identically
    # (bytes the zip format does not use for content, e.g. timestamps). Nothing else may happen.
    data = saved.read_bytes()
    reference = load(saved)
    ref_state = reference["model"].state_dict()
    harmless = 0
    with open(saved, "r+b", buffering=0) as f:
        for i in range(len(data)):
            f.seek(i)
            f.write(bytes([data[i] ^ 0x10]))
            try:
                back = load(saved)
            except CheckpointError:
                continue
            finally:
                f.seek(i)
                f.write(data[i:i + 1])
            harmless += 1
            assert same_state(back["model"].state_dict(), ref_state) and back["epoch"] == 1
            assert repr(back["model"]) == repr(reference["model"])
    assert saved.read_bytes() == data
    assert harmless < len(data) // 10


def test_content_edited_inside_a_valid_zip_fails_the_checksum(saved):
    def bump(arrays):
        k, d = arrays[0]
        d = bytearray(d)
        d[-1] ^= 0x40
        return [(k, bytes(d))] + arrays[1:]
    _rewrite(saved, edit_array=bump)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load(saved)


def test_tree_edit_fails_the_checksum(saved):
    _rewrite(saved, edit_header=lambda h: h["tree"]["items"][2].__setitem__(1, 99))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load(saved)


@pytest.mark.parametrize("version", [2, 0, "1", None, True])
def test_unknown_format_version(saved, version):
    _rewrite(saved, edit_header=lambda h: h.__setitem__("format_version", version), fix_checksum=True)
    with pytest.raises(CheckpointError, match="unknown format version"):
        load(saved)


@pytest.mark.parametrize("edit, pattern", [
    (lambda h: h.__setitem__("format", "other"), "not a fastnn checkpoint"),
    (lambda h: h.pop("tree"), "malformed header"),
    (lambda h: h.__setitem__("arrays", h["arrays"][:-1]), "do not match"),
    (lambda h: h["tree"]["items"][0].__setitem__(1, {"t": "module", "class": "os.system", "config": None}),
     "unknown module class"),
    (lambda h: h["tree"]["items"][0][1].__setitem__("class", "Module"), "unknown module class"),
    (lambda h: h["tree"]["items"][0][1]["children"].pop(0), "do not fit the saved architecture"),
    (lambda h: h["tree"]["items"][2].__setitem__(1, {"t": "pickle"}), "unknown node type"),
])
def test_malformed_but_checksummed_headers(saved, edit, pattern):
    _rewrite(saved, edit_header=edit, fix_checksum=True)
    with pytest.raises(CheckpointError, match=pattern):
        load(saved)


def test_not_json_and_not_a_zip(saved, tmp_path):
    with zipfile.ZipFile(saved, "w") as zf:
        zf.writestr("header.json", b"{not json")
    with pytest.raises(CheckpointError, match="malformed header"):
        load(saved)
    npy = tmp_path / "x.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(CheckpointError, match="not a zip"):
        load(npy)


def test_hostile_arrays_are_rejected_before_allocation(saved):
    # A consistent checksum does not make a file trustworthy: an array header claiming a huge
    # shape, or an object (pickled) array, must be refused without allocating or unpickling.
    def huge(arrays):
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 12,)})
        return [(arrays[0][0], buf.getvalue() + b"\0" * 8)] + arrays[1:]
    _rewrite(saved, edit_array=huge, fix_checksum=True)
    with pytest.raises(CheckpointError, match="should hold 8000000000000 bytes"):
        load(saved)

    def pickled(arrays):
        buf = io.BytesIO()
        np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
        return [(arrays[0][0], buf.getvalue())] + arrays[1:]
    _rewrite(saved, edit_array=pickled, fix_checksum=True)
    with pytest.raises(CheckpointError, match="dtype object"):
        load(saved)
