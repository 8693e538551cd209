"""The restricted unpickler: hostile pickles are refused before anything runs; damaged files give clear errors."""

from __future__ import annotations

import builtins
import collections
import os
import pickle
import subprocess
import zipfile

import numpy as np
import pytest

import fixtures_data as fx
from modeling.converters import (
    PickleFormatError,
    UnsafePickleError,
    convert_mmsa_pickle,
    convert_mult_pickle,
    safe_load_pickle,
)


class _Call:
    """Pickles as ``func(*args)``: what a hostile file does with ``__reduce__``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker):
    touch = f"open({str(marker)!r}, 'w').write('pwned')"
    return {
        "os.system": _Call(os.system, f"touch {marker}"),
        "builtins.eval": _Call(builtins.eval, touch),
        "builtins.exec": _Call(builtins.exec, touch),
        "subprocess.Popen": _Call(subprocess.Popen, ["touch", str(marker)]),
        "builtins.__import__": _Call(builtins.__import__, "os"),
        "builtins.open": _Call(open, str(marker), "w"),
    }


def _write(path, obj, protocol):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
                                  "builtins.__import__", "builtins.open"])
def test_reduce_payloads_are_refused(tmp_path, name, protocol):
    marker = tmp_path / "marker"
    payload = _payloads(marker)[name]
    module, _, attribute = name.partition(".")
    path = _write(tmp_path / "evil.pkl", {"train": {"audio": np.zeros((2, 3)), "x": [payload]}}, protocol)
    with pytest.raises(UnsafePickleError) as err:
        safe_load_pickle(path)
    message = str(err.value)
    assert str(path) in message and "refused global" in message and attribute in message
    assert "nothing was executed" in message
    assert not marker.exists()


@pytest.mark.parametrize(
    "raw, refused",
    [
        (b"cos\nsystem\n(S'touch {m}'\ntR.", "os.system"),  # protocol 0 GLOBAL + REDUCE
        (b"(S'touch {m}'\nios\nsystem\n.", "os.system"),  # INST opcode
        (b"cposix\nsystem\n(S'touch {m}'\ntR.", "posix.system"),
        (b"ccopyreg\n_reconstructor\n(cos\nsystem\nc__builtin__\nobject\nNtR.", "copyreg._reconstructor"),
        (b"cnumpy\nload\n(S'{m}'\ntR.", "numpy.load"),
        (b"ctorch._utils\n_rebuild_tensor_v2\n(tR.", "torch._utils._rebuild_tensor_v2"),
    ],
)
def test_handmade_opcode_payloads_are_refused(tmp_path, raw, refused):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pkl"
    path.write_bytes(raw.replace(b"{m}", str(marker).encode()))
    with pytest.raises(UnsafePickleError, match=refused.replace(".", r"\.")):
        safe_load_pickle(path)
    assert not marker.exists()


def test_non_latin1_codecs_call_is_refused(tmp_path):
    path = tmp_path / "codec.pkl"
    path.write_bytes(b"c_codecs\nencode\n(Vabc\nVrot13\ntR.")
    with pytest.raises(UnsafePickleError, match="encoding 'rot13'"):
        safe_load_pickle(path)


def test_persistent_id_is_refused(tmp_path):
    path = tmp_path / "pid.pkl"
    path.write_bytes(b"P0\n.")
    with pytest.raises(UnsafePickleError, match="persistent id"):
        safe_load_pickle(path)


def test_torch_tensors_ask_for_numpy(tmp_path):
    torch = pytest.importorskip("torch")
    path = _write(tmp_path / "fet_pt.pkl", {"train": {"audio": torch.zeros(2, 3)}}, 4)
    with pytest.raises(UnsafePickleError, match=r"torch.*Convert them to numpy"):
        safe_load_pickle(path)


def test_hostile_payload_inside_mmsa_split_is_refused_by_converters(tmp_path):
    marker = tmp_path / "marker"
    path, raw = fx.make_mmsa_pickle(tmp_path)
    raw["train"]["config"] = _Call(os.system, f"touch {marker}")
    _write(path, raw, 4)
    for convert in (convert_mmsa_pickle, convert_mult_pickle):
        with pytest.raises(UnsafePickleError, match=r"aligned_50\.pkl: refused global '(posix|os)\.system'"):
            convert(path)
    assert not marker.exists()


def test_truncated_and_corrupt_files(tmp_path):
    path, _ = fx.make_mmsa_pickle(tmp_path)
    data = path.read_bytes()
    for cut in (1, 50, len(data) // 2, len(data) - 1):
        broken = tmp_path / f"cut{cut}.pkl"
        broken.write_bytes(data[:cut])
        with pytest.raises(PickleFormatError, match=rf"cut{cut}.pkl: cannot read the pickle \(truncated or corrupt"):
            safe_load_pickle(broken)
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises((PickleFormatError, UnsafePickleError), match="garbage.pkl"):
        safe_load_pickle(garbage)
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(PickleFormatError, match="empty.pkl: the file is empty"):
        safe_load_pickle(empty)
    archive = tmp_path / "model.pt"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data.pkl", b"x")
    with pytest.raises(PickleFormatError, match="model.pt: this is a zip archive"):
        safe_load_pickle(archive)
    files, _, _ = fx.make_csd_files(tmp_path / "csd")
    with pytest.raises(PickleFormatError, match="HDF5 file.*convert_csd"):
        safe_load_pickle(files["audio"])


@pytest.mark.parametrize("top", [[np.zeros(3)], "text", 3, (np.zeros(2),)])
def test_non_dict_top_level(tmp_path, top):
    path = _write(tmp_path / "top.pkl", top, 4)
    for convert in (convert_mmsa_pickle, convert_mult_pickle):
        expected = f"top.pkl: expected a dict with keys train/valid/test.*found {type(top).__name__}"
        with pytest.raises(ValueError, match=expected):
            convert(path)


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_legitimate_numpy_pickle_loads(tmp_path, protocol):
    obj = {
        "train": {
            "audio": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
            "fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
            "raw_text": np.array(["A LOT OF SAD PARTS", "ok"], dtype=object),
            "id": np.array(["03bSnISJMiM$_$11", "x$_$1"]),
            "bytes_ids": np.array([[b"vid", b"1.0", b"2.5"]]),
            "audio_lengths": [3, 2],
            "scalar": np.float32(1.5),
            "int": np.int64(7),
            "bool": np.array([True, False]),
        },
        "list": [np.zeros(2), (1, 2.5, None, True), {1, 2}, complex(1, 2), b"raw", "text"],
        "ordered": collections.OrderedDict(a=1),
    }
    loaded = safe_load_pickle(_write(tmp_path / f"ok{protocol}.pkl", obj, protocol))
    for key, value in obj["train"].items():
        np.testing.assert_array_equal(loaded["train"][key], value)
        assert np.asarray(loaded["train"][key]).dtype == np.asarray(value).dtype
    assert loaded["list"][1:] == obj["list"][1:] and loaded["ordered"] == obj["ordered"]
    np.testing.assert_array_equal(loaded["list"][0], obj["list"][0])


def test_ordered_dict_can_be_disallowed(tmp_path):
    path = _write(tmp_path / "od.pkl", collections.OrderedDict(a=1), 4)
    with pytest.raises(UnsafePickleError, match="collections.OrderedDict"):
        safe_load_pickle(path, allow_ordered_dict=False)


def test_legitimate_mmsa_pickle_protocol_2_converts(tmp_path):
    path, raw = fx.make_mmsa_pickle(tmp_path)
    _write(path, raw, 2)
    dd, meta = convert_mmsa_pickle(path)
    assert meta["split_sizes"] == {"train": 5, "validation": 3, "test": 4}
