"""The safe unpickler: loads what the official CIFAR-10 batches contain, refuses everything else
without executing it."""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import pickle
import pickletools
import struct

import numpy as np
import pytest

from miamind.data.errors import DataError
from miamind.data.safe_pickle import CIFAR_BATCH_GLOBALS, safe_load


class Py2StylePickler(pickle._Pickler):
    """Writes protocol 2 the way Python 2's cPickle did for the official batches: every str and
    bytes as a byte string (SHORT_BINSTRING / BINSTRING), so it loads back as ``bytes`` with
    ``encoding='bytes'`` -- keys b'data', b'labels', dtype code b'u1'."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        raw = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = _save_py2_str
    dispatch[bytes] = _save_py2_str


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2StylePickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def official_like_batch(n: int = 12, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "batch_label": "training batch 1 of 5",
        "labels": [int(x) for x in rng.integers(0, 10, n)],
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img_{i}.png" for i in range(n)],
    }


def globals_named(raw: bytes) -> set:
    """Every module/name a pickle refers to (GLOBAL arguments; STACK_GLOBAL pairs)."""
    out, strings = set(), []
    for op, arg, _ in pickletools.genops(raw):
        if op.name in ("GLOBAL", "INST"):
            out.add(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            out.add(".".join(strings[-2:]))
        if isinstance(arg, str):
            strings.append(arg)
    return out


class _Reduce:
    """Pickles as ``func(*args)``: what an attacker puts into a fake batch file."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_official_like_batch_needs_exactly_the_allowed_globals():
    raw = py2_pickle(official_like_batch())
    # The disassembly of a batch written like the official ones: three globals, all allowed.
    assert globals_named(raw) == {"numpy.core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype"}
    allowed = {f"{m}.{n}" for m, n in CIFAR_BATCH_GLOBALS}
    assert globals_named(raw) <= allowed


def test_round_trip_of_an_official_like_batch(tmp_path):
    batch = official_like_batch(n=300)  # > 256 bytes per string: BINSTRING as well as SHORT_BINSTRING
    path = tmp_path / "data_batch_1"
    path.write_bytes(py2_pickle(batch))
    out = safe_load(path)
    assert set(out) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert out[b"batch_label"] == b"training batch 1 of 5"
    assert out[b"labels"] == batch["labels"]
    np.testing.assert_array_equal(out[b"data"], batch["data"])
    assert out[b"data"].dtype == np.uint8


def test_numpy2_spelling_is_admitted():
    raw = py2_pickle(official_like_batch(n=3))
    raw2 = raw.replace(b"numpy.core.multiarray\n", b"numpy._core.multiarray\n")
    assert raw2 != raw
    np.testing.assert_array_equal(safe_load(raw2)[b"data"], safe_load(raw)[b"data"])


def test_real_batches_meta_has_no_globals_and_loads(real_data_dir):
    path = real_data_dir / "cifar10" / "batches.meta"
    raw = path.read_bytes()
    assert hashlib.md5(raw).hexdigest() == "5ff9c542aee3614f3951f8cda6e48888"
    assert globals_named(raw) == set()
    meta = safe_load(path)
    assert meta[b"label_names"][0] == b"airplane" and len(meta[b"label_names"]) == 10
    assert meta[b"num_cases_per_batch"] == 10000 and meta[b"num_vis"] == 3072


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_foreign_global_is_refused_without_running_it(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"data": _Reduce(os.system, f"touch {marker}")}, protocol=protocol)
    path = tmp_path / "data_batch_1"
    path.write_bytes(payload)
    with pytest.raises(DataError) as err:
        safe_load(path)
    msg = str(err.value)
    assert str(path) in msg and "forbidden global" in msg
    assert f"{os.system.__module__}.system" in msg  # posix.system on Linux
    assert not marker.exists()


def test_builtins_open_payload_is_live_but_refused(tmp_path):
    marker = tmp_path / "created_by_pickle"
    payload = pickle.dumps(_Reduce(builtins.open, str(marker), "w"), protocol=2)
    # Positive control: plain pickle would really create the file...
    pickle.loads(payload).close()
    assert marker.exists()
    marker.unlink()
    # ... the safe unpickler refuses before calling anything.
    with pytest.raises(DataError, match=r"forbidden global 'io\.open'"):  # builtins.open's home
        safe_load(payload, name="evil.pkl")
    assert not marker.exists()


def test_inst_opcode_and_hand_written_global_are_refused(tmp_path):
    marker = tmp_path / "m"
    inst = b"(S'touch " + str(marker).encode() + b"'\nios\nsystem\n."  # protocol-0 INST opcode
    glob = b"cposix\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    for raw in (inst, glob):
        with pytest.raises(DataError, match="forbidden global"):
            safe_load(raw, name="x")
    assert not marker.exists()


def test_allowed_callable_cannot_smuggle_objects_via_object_dtype():
    raw = py2_pickle({"data": np.array([1, "a"], dtype=object)})
    with pytest.raises(DataError, match="object dtype"):
        safe_load(raw, name="objarr")


@pytest.mark.parametrize("cut", [1, 2, 40, 500, -1])
def test_truncated_pickle(tmp_path, cut):
    raw = py2_pickle(official_like_batch(n=50))
    path = tmp_path / "data_batch_3"
    path.write_bytes(raw[:cut])
    with pytest.raises(DataError) as err:
        safe_load(path)
    assert str(path) in str(err.value)
    assert "truncated" in str(err.value) or "invalid pickle" in str(err.value)


def test_empty_file(tmp_path):
    path = tmp_path / "test_batch"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"test_batch: empty file"):
        safe_load(path)


def test_garbage_and_persistent_ids_are_errors():
    with pytest.raises(DataError, match="garbage"):
        safe_load(b"\x00\x01not a pickle at all", name="garbage")

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "pid" if isinstance(obj, list) else None

    buf = io.BytesIO()
    P(buf, protocol=2).dump({"a": [1]})
    with pytest.raises(DataError, match="persistent id"):
        safe_load(buf.getvalue(), name="p")


def test_file_object_source_named_in_errors(tmp_path):
    path = tmp_path / "data_batch_5"
    path.write_bytes(pickle.dumps(_Reduce(eval, "1+1"), protocol=2))
    with open(path, "rb") as f, pytest.raises(DataError, match="data_batch_5.*forbidden global .*eval"):
        safe_load(f)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        safe_load(tmp_path / "nope")
