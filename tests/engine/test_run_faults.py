"""Run folders under faults: one writer per folder, I/O errors end the run in one line with the last
complete checkpoint intact, damaged checkpoints are refused naming the file."""

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from miamind import _atomic, cli
from miamind.engine.checkpoint_io import SafetensorsCheckpointIO
from miamind.engine.run_lock import RunFolderInUseError, run_folder_lock

TRAIN = [
    "train",
    "--task",
    "cicids2017",
    "--epochs",
    "2",
    "--threads",
    "1",
    "--set",
    "data.synthetic=true",
    "--set",
    "data.batch_size=256",
    "--set",
    "trainer.progress_bar=false",
    "--set",
    "plots=false",
]


def _one_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("miamind: error")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("faults") / "run"
    assert cli.main([*TRAIN, "--out", str(run)]) == 0
    return run


def test_a_second_writer_is_refused_and_nothing_is_written(tmp_path, capsys):
    run = tmp_path / "run"
    with run_folder_lock(run):
        assert cli.main([*TRAIN, "--out", str(run)]) == 2
        line = _one_error_line(capsys)
        assert str(run) in line and "in use by process" in line
        assert sorted(p.name for p in run.iterdir()) == [".lock"]  # the refused run wrote nothing


def test_resume_of_a_folder_in_use_is_refused(finished_run):
    from miamind.engine.train import train

    with run_folder_lock(finished_run):
        with pytest.raises(RunFolderInUseError, match=str(finished_run)):
            train({}, finished_run, resume=True, quiet=True)


def test_the_lock_is_held_across_processes_and_dropped_when_the_holder_dies(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import sys, time
                from miamind.engine.run_lock import run_folder_lock
                with run_folder_lock({str(run)!r}):
                    print("locked", flush=True)
                    time.sleep(60)
            """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderInUseError, match=f"process {holder.pid}"):
            with run_folder_lock(run):
                pass
    finally:
        holder.kill()
        holder.wait()
    with run_folder_lock(run):  # SIGKILL released it
        pass


def _fail_on(monkeypatch, name: str, err: int, after: int = 0):
    """Make the atomic rename into ``name`` fail with ``err`` from its ``after``+1-th write on."""
    real_replace = os.replace
    seen = {"n": 0}

    def replace(src, dst):
        if Path(dst).name == name:
            seen["n"] += 1
            if seen["n"] > after:
                raise OSError(err, os.strerror(err), str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(_atomic.os, "replace", replace)


def test_disk_full_while_checkpointing_keeps_the_last_complete_checkpoint(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    _fail_on(monkeypatch, "last.safetensors", errno.ENOSPC, after=1)  # epoch 1 written, epoch 2 fails
    assert cli.main([*TRAIN, "--out", str(run)]) == 1
    line = _one_error_line(capsys)
    assert "last.safetensors" in line and "No space left on device" in line
    ckpt = SafetensorsCheckpointIO().load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert ckpt["epoch"] == 0  # epoch 1's state, complete and readable
    assert not list((run / "checkpoints").glob(".*.tmp"))  # no half-written temporary left behind
    assert not (run / "metrics.json").exists()


def test_permission_denied_on_a_result_file_names_it(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    _fail_on(monkeypatch, "metrics.json", errno.EACCES)
    assert cli.main([*TRAIN, "--out", str(run)]) != 0
    line = _one_error_line(capsys)
    assert "metrics.json" in line and "Permission denied" in line
    assert (run / "checkpoints" / "last.safetensors").is_file()


@pytest.mark.parametrize("damage", ["truncated", "not_a_checkpoint"])
def test_damaged_checkpoints_are_refused_naming_the_file(finished_run, tmp_path, capsys, damage):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(finished_run, run, ignore=shutil.ignore_patterns(".lock"))
    for ckpt in (run / "checkpoints").glob("*.safetensors"):
        data = ckpt.read_bytes()
        ckpt.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"hello, not a checkpoint\n")
    (run / "metrics.json").unlink()  # an interrupted run, so --resume is allowed
    last = run / "checkpoints" / "last.safetensors"
    flows = tmp_path / "flows.csv"
    flows.write_text("a,b\n1,2\n")
    for argv in (
        ["train", "--resume", str(run)],
        ["evaluate", str(run), "--checkpoint", "last"],
        ["predict", str(run), str(flows), "--checkpoint", "last"],
        ["export", str(run), "--format", "onnx", "--out", str(tmp_path / "m.onnx")],
        ["convert", str(last), str(tmp_path / "w.ckpt")],
    ):
        assert cli.main(argv) != 0, argv
        line = _one_error_line(capsys)
        assert f"{run}/checkpoints/" in line and ".safetensors" in line, (argv, line)  # names the file
