"""The SLURM executor on a real single-node SLURM (``make test-cluster``; CI starts it as root).

Cells are 1-D CNNs on generated flows, so each trains in seconds; the cluster has 2 CPUs.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from miamind.study import load_study
from miamind.study.report import write_report
from miamind.study.runner import CELL_FILE, LOCK, LOG_FILE, run_study, study_states
from miamind.study.slurm import ExecutorConfigError, SlurmExecutor, cancel_study, queue_states

FLOWS = {"data.synthetic": True, "trainer.progress_bar": False, "plots": False}


def _study(tmp_path: Path, name: str, *, attentions=("mia",), seeds=(0,), epochs=2, extra=None, group=None):
    spec = {
        "name": name,
        "groups": [
            {
                "name": "flows",
                "task": "cicids2017",
                "models": ["flowcnn"],
                "attentions": list(attentions),
                "seeds": list(seeds),
                "set": {**FLOWS, "trainer.epochs": epochs, **(extra or {})},
                **(group or {}),
            }
        ],
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_study(path)


def _executor(**config) -> SlurmExecutor:
    return SlurmExecutor({"cpus_per_task": 1, "timeout_min": 60, "poll_s": 1, **config}, threads=1)


def _wait(what, timeout=180.0, every=0.5, explain=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = what()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}" + (f": {explain()}" if explain else ""))


def _explain(run_dir: Path, job: str, slurm=None):
    """What the queue, the run folder and the controller say, for a wait that timed out."""

    def explain() -> str:
        record = run_dir / CELL_FILE
        logs = sorted((run_dir.parent / ".submitit").rglob("*.err"))
        tail = logs[-1].read_text()[-1500:] if logs else "(no job log)"
        cell_log = run_dir / LOG_FILE
        tail += "; cell log: " + (cell_log.read_text()[-1500:] if cell_log.exists() else "(none)")
        ctld = ""
        if slurm is not None:
            log = slurm.root / "log" / "slurmctld.log"
            lines = log.read_text().splitlines() if log.exists() else []
            ctld = "\n".join(s for s in lines if f"JobId={job}" in s or f"job {job}" in s.lower())[-3000:]
        shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True)
        return (
            f"queue {queue_states(max_age_s=0)}, job {job}: {shown.stdout or shown.stderr}; record "
            f"{record.read_text() if record.exists() else '(none)'}; last job log: {tail}; "
            f"controller on the job: {ctld or '(nothing)'}"
        )

    return explain


def _job(run_dir: Path) -> str:
    return _wait(
        lambda: (json.loads((run_dir / LOCK).read_text()) if (run_dir / LOCK).exists() else {}).get("job_id")
    )


def _queued(job: str) -> str | None:
    return (queue_states(max_age_s=0) or {}).get(job)  # the queue now, not a cached answer


def _test_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())["test"]


def _scripts(runs: Path) -> list[str]:
    return [p.read_text() for p in sorted((runs / ".submitit").glob(".submission_file_*.sh"))]


def _one_long_cell(tmp_path: Path, name: str):
    """A one-cell study (6 epochs of small batches: long enough to signal) submitted detached:
    (study, runs folder, cell, run folder, job id)."""
    study = _study(tmp_path, name, epochs=6, extra={"data.batch_size": 32})
    runs = tmp_path / "runs"
    run_study(study, runs_dir=runs, executor=_executor(), detach=True, log=print)
    (cell,) = study.cells
    run_dir = study.run_dir(cell, runs)
    return study, runs, cell, run_dir, _job(run_dir)


def test_a_study_is_one_throttled_array_and_reports_as_the_local_executor_does(slurm, tmp_path):
    study = _study(tmp_path, "array", attentions=("none", "mia"), seeds=(0, 1))
    runs, lines = tmp_path / "slurm-runs", []
    out = run_study(study, runs_dir=runs, executor=_executor(slurm_array_parallelism=2), log=lines.append)
    assert (out["ran"], out["failed"], out["submitted"]) == (4, 0, 4), lines
    (script,) = _scripts(runs)
    assert "#SBATCH --array=0-3%2" in script and "#SBATCH --signal=USR2@120" in script
    arrays = set()
    for cell in study.cells:
        run_dir = study.run_dir(cell, runs)
        (attempt,) = json.loads((run_dir / CELL_FILE).read_text())["attempts"]
        assert attempt["outcome"] == "done" and attempt["omp_num_threads"] == "1"
        arrays.add(attempt["job_id"].split("_")[0])
        (provenance,) = json.loads((run_dir / "provenance.json").read_text())["attempts"]
        assert provenance["slurm"]["slurm_array_job_id"] in attempt["job_id"]
        assert not (run_dir / LOCK).exists()
    assert len(arrays) == 1

    local = tmp_path / "local-runs"
    assert run_study(study, runs_dir=local, env={"OMP_NUM_THREADS": "1"}, log=lines.append)["ran"] == 4
    reports = [
        json.loads(
            (write_report(study, runs_dir=r, out=tmp_path / f"report-{r.name}") / "summary.json").read_text()
        )
        for r in (runs, local)
    ]
    assert reports[0]["comparisons"] == reports[1]["comparisons"]
    assert reports[0]["configs"] == reports[1]["configs"]


def test_a_second_run_while_the_first_ones_cells_run_starts_nothing_twice(slurm, tmp_path):
    study = _study(tmp_path, "twice", seeds=(0, 1), epochs=6, extra={"data.batch_size": 32})
    runs = tmp_path / "runs"
    first = run_study(study, runs_dir=runs, executor=_executor(), detach=True, log=print)
    assert first["submitted"] == 2
    jobs = {_job(study.run_dir(c, runs)) for c in study.cells}
    lines: list[str] = []
    again = run_study(study, runs_dir=runs, executor=_executor(), detach=True, log=lines.append)
    assert again["submitted"] == 0 and sum("running elsewhere" in s or ": running (" in s for s in lines) >= 2
    local = run_study(study, runs_dir=runs, log=lines.append)  # a local runner on the login node too
    assert local["ran"] == 0 and local["failed"] == 0
    assert set(queue_states(max_age_s=0) or {}) <= jobs  # nothing else was submitted
    _wait(lambda: all(r["state"] == "done" for r in study_states(study, runs)), timeout=240)
    for cell in study.cells:
        record = json.loads((study.run_dir(cell, runs) / CELL_FILE).read_text())
        assert len(record["attempts"]) == 1


def test_the_warning_signal_requeues_and_the_cell_ends_as_an_uninterrupted_run(slurm, tmp_path):
    study, runs, cell, run_dir, job = _one_long_cell(tmp_path, "preempt")
    _wait(lambda: (run_dir / "checkpoints" / "last.safetensors").is_file())
    slurm.run("scancel", "--signal=USR2", job, check=False)
    _wait(lambda: _queued(job) == "PENDING")
    requeued_at = time.time()
    assert [r["state"] for r in study_states(study, runs)] == ["requeued"]

    def resumed_and_done() -> bool:
        # Skip SLURM's requeue delay (again if a requeue set it later), but not within the second of the
        # requeue: slurmd revoked the job's credential then, at one-second resolution, and a credential
        # issued in that second is refused ("Job credential revoked"): the job is killed, not started.
        if _queued(job) == "PENDING" and time.time() > requeued_at + 2:
            slurm.run("scontrol", "update", f"JobId={job}", "StartTime=now", check=False)
        return (run_dir / "metrics.json").is_file() and not (run_dir / LOCK).exists()

    _wait(resumed_and_done, timeout=240, every=2.0, explain=_explain(run_dir, job, slurm))
    first, second = json.loads((run_dir / CELL_FILE).read_text())["attempts"]
    assert (first["outcome"], first["rc"], first["job_id"]) == ("preempted", 75, job)
    assert (second["outcome"], second["resumed"], second["job_id"]) == ("done", True, job)

    uninterrupted = tmp_path / "local"
    run_study(study, runs_dir=uninterrupted, env={"OMP_NUM_THREADS": "1"}, log=print)
    assert _test_metrics(run_dir) == _test_metrics(study.run_dir(cell, uninterrupted))


def test_a_cancelled_cell_is_recorded_failed_and_retried_by_the_next_run(slurm, tmp_path):
    study, runs, cell, run_dir, job = _one_long_cell(tmp_path, "cancel")
    # Cancel once training runs (its first epoch is saved): a SIGTERM that lands before Lightning has
    # installed its handler kills the process outright (rc -15), also a failed attempt, but not the
    # path this test is for.
    _wait(lambda: (run_dir / "checkpoints" / "last.safetensors").is_file())
    assert cancel_study(study, runs, log=print) == 1
    _wait(lambda: _queued(job) is None)
    _wait(lambda: (run_dir / CELL_FILE).is_file())
    record = json.loads((run_dir / CELL_FILE).read_text())
    # SLURM's SIGTERM: Lightning stops at a step boundary; the run exits 143, unfinished
    (attempt,) = record["attempts"]
    assert (record["status"], attempt["rc"], attempt["job_id"]) == ("failed", 143, job)
    assert [r["state"] for r in study_states(study, runs)] == ["failed"]
    out = run_study(study, runs_dir=runs, executor=_executor(), log=print)
    assert out["ran"] == 1 and (run_dir / "metrics.json").is_file()
    record = json.loads((run_dir / CELL_FILE).read_text())
    assert [a["outcome"] for a in record["attempts"]] == ["failed", "done"]


def test_gpu_cells_are_submitted_with_a_gpu_request(slurm, tmp_path):
    study = _study(tmp_path, "gpu", group={"requires": "gpu", "resources": {"time": 30}})
    runs = tmp_path / "runs"
    hold = {"slurm_additional_parameters": {"hold": True}}  # submitted, never started
    out = run_study(study, runs_dir=runs, executor=_executor(**hold), detach=True, log=print)
    assert out["submitted"] == 1
    (script,) = _scripts(runs)
    assert "#SBATCH --gpus-per-node=1" in script and "#SBATCH --time=30" in script
    job = _job(study.run_dir(study.cells[0], runs))
    assert "gpu" in slurm.run("squeue", "-h", "-j", job, "-o", "%b")  # the scheduler holds the request
    assert cancel_study(study, runs, log=print) == 1


def test_the_paper_protocol_submits_its_gpu_cells_as_arrays_with_a_gpu(slurm, tmp_path):
    repo = Path(__file__).resolve().parents[2]
    config = tmp_path / "gpu.yaml"
    config.write_text(yaml.safe_dump({"slurm_additional_parameters": {"hold": True}, "poll_s": 1}))
    runs = tmp_path / "runs"
    study = load_study(repo / "studies" / "paper_protocol.yaml")
    gpu_groups = sorted({c.group for c in study.cells if c.requires == "gpu"})
    assert gpu_groups
    done = subprocess.run(
        [
            *(sys.executable, "-m", "miamind", "study", "run", str(repo / "studies" / "paper_protocol.yaml")),
            *("--runs-dir", str(runs), "--executor", "slurm", "--executor-config", str(config)),
            *("--only", *gpu_groups, "--detach"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    scripts = _scripts(runs)
    assert scripts and all("#SBATCH --gpus-per-node=1" in s and "#SBATCH --array=" in s for s in scripts)
    n = sum(1 for c in study.cells if c.requires == "gpu")
    assert f"submitted {n} cells" in done.stdout
    assert cancel_study(study, runs, log=print) == n


def test_bad_input_submits_nothing(slurm, tmp_path):
    study = _study(tmp_path, "bad")
    runs = tmp_path / "runs"
    with pytest.raises(ExecutorConfigError, match="slurm_partiton"):
        run_study(study, runs_dir=runs, executor=_executor(slurm_partiton="debug"), log=print)
    with pytest.raises(ExecutorConfigError, match="partition 'nope' does not exist"):
        run_study(study, runs_dir=runs, executor=_executor(slurm_partition="nope"), log=print)
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(readonly)], check=True)
    try:
        with pytest.raises(ExecutorConfigError, match="not writable"):
            run_study(study, runs_dir=readonly, executor=_executor(), log=print)
    finally:
        subprocess.run(["umount", str(readonly)], check=False)
    assert not queue_states(max_age_s=0)


def test_lightning_in_an_allocation(slurm, tmp_path):
    # One device in an allocation of two tasks: Lightning must not take it for a 2-rank job.
    out = tmp_path / "one-device"
    train = f"{sys.executable} -m miamind train --task cicids2017 --epochs 1 --set data.synthetic=true --out {out}"
    log = tmp_path / "slurm-%j.out"
    job = slurm.run("sbatch", "--parsable", "--ntasks=2", f"--output={log}", "--wrap", train).strip()
    _wait(lambda: _queued(job) is None, timeout=120)
    assert json.loads((out / "metrics.json").read_text())["world_size"] == 1

    # Two devices: one SLURM task per device, DDP across them.
    study = _study(
        tmp_path,
        "ddp",
        epochs=1,
        extra={"trainer.devices": 2, "trainer.accelerator": "cpu", "trainer.strategy": "ddp"},
    )
    runs = tmp_path / "runs"
    result = run_study(study, runs_dir=runs, executor=_executor(), log=print)
    assert result["ran"] == 1, result
    (script,) = _scripts(runs)
    assert "#SBATCH --ntasks-per-node=2" in script
    assert json.loads((study.run_dir(study.cells[0], runs) / "metrics.json").read_text())["world_size"] == 2
