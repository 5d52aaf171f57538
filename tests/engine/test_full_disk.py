"""A really full filesystem (a small tmpfs mounted here), not a mocked exception: every write ends in
one ``WriteError`` naming the file, whichever library wrote it, and what was complete stays intact.

Mounting needs root (as in CI); elsewhere these tests skip with that reason.
"""

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest

from miamind import cli
from miamind._atomic import WriteError
from miamind.engine.checkpoint_io import SafetensorsCheckpointIO
from miamind.engine.run_folder import write_metrics

from .test_run_faults import TRAIN, _one_error_line

PAGE = 4096


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a tmpfs of ``size`` bytes on a fresh folder; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mounted: list[Path] = []

    def mount(size: int) -> Path:
        where = tmp_path / f"tmpfs{len(mounted)}"
        where.mkdir()
        pages = -(-size // PAGE)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={pages * PAGE}", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(folder: Path) -> None:
    """Write a filler file until the filesystem refuses another byte."""
    with open(folder / "filler", "wb", buffering=0) as f:
        chunk = b"\0" * PAGE
        try:
            while True:
                f.write(chunk)
        except OSError as e:
            assert e.errno == errno.ENOSPC
    assert os.statvfs(folder).f_bavail == 0


def _pages(folder: Path) -> int:
    return sum(-(-p.stat().st_size // PAGE) * PAGE for p in folder.rglob("*") if p.is_file())


def test_training_into_a_filesystem_that_fills_ends_in_one_line(tmpfs, tmp_path, capsys):
    # A one-epoch run measures what the first epoch leaves; the tmpfs then holds that plus half a
    # checkpoint, so the second epoch's checkpoint is the write that finds the disk full.
    reference = tmp_path / "reference"
    assert cli.main([*[a if a != "2" else "1" for a in TRAIN], "--out", str(reference)]) == 0
    capsys.readouterr()
    checkpoint = (reference / "checkpoints" / "last.safetensors").stat().st_size
    disk = tmpfs(_pages(reference) + checkpoint // 2)
    run = disk / "run"
    assert cli.main([*TRAIN, "--out", str(run)]) == 1
    line = _one_error_line(capsys)
    assert "No space left on device" in line and f"{run}/checkpoints/" in line, line
    assert "Traceback" not in capsys.readouterr().err
    ckpt = SafetensorsCheckpointIO().load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert ckpt["epoch"] == 0  # the first epoch's checkpoint, complete and readable
    assert not list(run.rglob(".*.tmp"))  # the failed write left nothing behind
    assert not (run / "metrics.json").exists()


def test_a_checkpoint_write_on_a_full_disk_is_a_write_error(tmpfs):
    import torch

    from miamind.engine.checkpoint_io import _atomic_save_tensors

    disk = tmpfs(64 * PAGE)
    _fill(disk)
    target = disk / "last.safetensors"
    with pytest.raises(WriteError) as info:  # safetensors raises its own SafetensorError
        _atomic_save_tensors(target, {"w": torch.zeros(4096)}, {})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert not list(disk.glob(".*.tmp"))


def test_a_metrics_write_on_a_full_disk_keeps_the_previous_file(tmpfs):
    disk = tmpfs(16 * PAGE)
    write_metrics(disk, {"acc": 0.5})
    _fill(disk)
    with pytest.raises(WriteError) as info:
        write_metrics(disk, {"acc": 0.75, "padding": "x" * 3 * PAGE})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(disk / "metrics.json")
    assert json.loads((disk / "metrics.json").read_text()) == {"acc": 0.5}
    assert not list(disk.glob(".*.tmp"))


def test_a_plot_write_on_a_full_disk_is_a_write_error(tmpfs):
    from miamind.viz._figure import new_figure, save_png

    disk = tmpfs(16 * PAGE)
    _fill(disk)
    fig = new_figure((4, 3))
    fig.add_subplot().plot([0, 1, 2], [1, 0, 1])
    with pytest.raises(WriteError) as info:  # matplotlib's own write path
        save_png(fig, disk / "curves.png")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(disk / "curves.png")
    assert not (disk / "curves.png").exists()


def test_the_cli_reports_a_full_disk_for_a_study_report(tmpfs, tmp_path, capsys):
    """The study runner's report (CSV, Markdown, JSON, PNG) into a full disk: one line, exit 1."""
    study = tmp_path / "s.yaml"
    study.write_text(
        "name: s\ngroups:\n  - name: g\n    task: cicids2017\n    preset: fast\n    models: [flowcnn]\n"
        "    attentions: [none]\n    seeds: [0]\n"
    )
    disk = tmpfs(4 * PAGE)
    _fill(disk)
    code = cli.main(["study", "report", str(study), "--runs-dir", str(tmp_path / "runs"), "--out", str(disk)])
    assert code == 1
    line = _one_error_line(capsys)
    assert str(disk) in line and "No space left on device" in line, line
