"""Atomic writes: a finished file has normal permissions; a failed write leaves the old file alone."""

import os
import stat

import pytest

from miamind._atomic import atomic_open, atomic_path


def test_finished_file_gets_umask_permissions_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "sub" / "a.txt") as f:
            f.write("hello")
    finally:
        os.umask(old)
    path = tmp_path / "sub" / "a.txt"
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failure_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_read_modes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="mode must start with 'w'"):
        with atomic_open(tmp_path / "x", "r"):
            pass
