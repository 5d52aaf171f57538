"""The SLURM executor: a study's cells as job arrays, submitted through submitit.

``miamind study run STUDY --executor slurm --executor-config FILE`` submits one job array per
distinct resource set (a group's ``resources:``, a GPU for ``requires: gpu`` cells), one cell per
task, throttled by ``slurm_array_parallelism``. Each task runs :class:`CellJob` on a compute node:
the same ``miamind train`` subprocess the local executor starts, in the same run folder.

Assumes what SLURM sites provide: the runs folder and the Python environment on a filesystem that
login and compute nodes share. Without one, cells run but their results stay on the node.

Preemption and time limits: submitit asks SLURM for ``SIGUSR2`` ``slurm_signal_delay_s`` seconds
before the limit. The training process stops at its next step boundary (exit status 75) and the
task is requeued; the requeued task resumes from the last epoch checkpoint and ends with the
metrics of an uninterrupted run. Every attempt is recorded in ``study_cell.json``.

Job states come from ``squeue`` (pending and running jobs), never from ``sacct``, which needs the
accounting daemon many small clusters lack: a job that left the queue is done when its run folder
holds ``metrics.json``, failed otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError
from .runner import (
    LOCK,
    CellAttempt,
    CellStatus,
    _Progress,
    _read_json,
    _write_json,
    take_lock,
    this_host,
)
from .spec import Cell, Study

#: squeue states of a job that is still the cell's holder (queued, running, or on its way back)
ACTIVE_STATES = {
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
}
#: keys of an executor config that are this executor's own; every other key goes to submitit
OWN_KEYS = {"poll_s": "seconds between two looks at the queue while waiting (default 30)"}
#: a group's resources -> submitit's parameters
RESOURCE_PARAMS = {
    "gpus": "gpus_per_node",
    "cpus": "cpus_per_task",
    "mem": "slurm_mem",
    "time": "timeout_min",
    "partition": "slurm_partition",
}
SUBMITIT_FOLDER = ".submitit"


class ExecutorConfigError(UserError, ValueError):
    """An executor config or a resource this cluster cannot give; nothing was submitted."""


# ------------------------------------------------------------------------------------------ queue
def _squeue(*args: str) -> str | None:
    if shutil.which("squeue") is None:
        return None
    done = subprocess.run(["squeue", "-h", *args], capture_output=True, text=True, timeout=60)
    return done.stdout if done.returncode == 0 else None


_QUEUE_CACHE: dict[str, Any] = {"at": -1e9, "states": None}
#: one squeue answer serves the lock checks of a whole study listing
QUEUE_CACHE_S = 2.0


def queue_states(max_age_s: float = QUEUE_CACHE_S) -> dict[str, str] | None:
    """Job id (``ARRAY_TASK`` for array tasks) -> state of this user's queued and running jobs;
    None when there is no scheduler to ask. Answers up to ``max_age_s`` old are reused."""
    now = time.monotonic()
    if now - _QUEUE_CACHE["at"] <= max_age_s and _QUEUE_CACHE["states"] is not None:
        return dict(_QUEUE_CACHE["states"])
    out = _squeue("--me", "-r", "-o", "%i|%T")
    if out is None:
        return None
    states = {job: state for job, _, state in (ln.strip().partition("|") for ln in out.splitlines()) if job}
    _QUEUE_CACHE.update(at=now, states=states)
    return dict(states)


def job_active(job_id: str, states: Mapping[str, str] | None = None) -> bool | None:
    """Whether ``job_id`` is still queued or running; None when no scheduler can be asked here."""
    states = queue_states() if states is None else states
    if states is None:
        return None
    return states.get(job_id) in ACTIVE_STATES


def cancel_jobs(job_ids: Sequence[str]) -> None:
    if job_ids:
        subprocess.run(["scancel", *job_ids], check=True, capture_output=True, timeout=60)
        _QUEUE_CACHE["at"] = -1e9


# ------------------------------------------------------------------------------------------ on the node
@dataclass
class CellJob:
    """What one array task runs: train (or resume) one cell in its run folder.

    Pickled by submitit at submission; :meth:`checkpoint` is submitit's hook for the warning
    signal (it runs in this process's signal handler while :meth:`__call__` waits).
    """

    cell: Cell
    run_dir: str
    threads: int | None = None
    _attempt: CellAttempt | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_attempt": None}  # a running process does not travel

    def _job_id(self) -> str:
        env = os.environ
        if "SLURM_ARRAY_JOB_ID" in env:
            return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
        return env.get("SLURM_JOB_ID", "")

    def __call__(self) -> bool:
        run_dir = Path(self.run_dir)
        job_id = self._job_id()
        rank = int(os.environ.get("SLURM_PROCID", "0"))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        threads = self.threads or os.environ.get("SLURM_CPUS_PER_TASK")
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        if rank != 0:  # another rank of a multi-device cell: train, record nothing
            attempt = CellAttempt(self.cell, run_dir, python=sys.executable, env=env, job_id=job_id)
            return subprocess.run([sys.executable, "-m", "miamind", *attempt.argv], env=env).returncode == 0
        if (run_dir / "metrics.json").is_file():
            (run_dir / LOCK).unlink(missing_ok=True)
            return True
        holder = {"executor": "slurm", "job_id": job_id, "host": this_host(), "runner": os.getpid()}
        if not take_lock(run_dir, holder, adopt=job_id):
            raise RuntimeError(f"{run_dir}: held by another runner; not started twice")
        self._attempt = CellAttempt(self.cell, run_dir, python=sys.executable, env=env, job_id=job_id)
        requeued = False
        try:
            rc = self._attempt.start().wait()
            ok = self._attempt.finish(rc)
            if rc == 75:  # the signal reached the training process only: requeue ourselves
                requeued = True
                subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=60)
                time.sleep(300)  # the scheduler ends this task now
            return ok
        except SystemExit:
            requeued = True  # submitit's handler requeued the task after checkpoint()
            raise
        finally:
            if not requeued:  # a requeued task keeps its lock: the queue still holds it
                (run_dir / LOCK).unlink(missing_ok=True)

    def checkpoint(self, *args: Any, **kwargs: Any):
        """The warning signal: let the training process stop at its step boundary, then requeue."""
        import signal

        from submitit.helpers import DelayedSubmission

        attempt = self._attempt
        if attempt is not None and attempt.proc is not None and attempt.proc.returncode is None:
            rc = _stop_child(attempt.proc.pid, signal.SIGUSR2, grace_s=240)
            attempt.proc.returncode = rc
            attempt.finish(rc)
        return DelayedSubmission(CellJob(self.cell, self.run_dir, self.threads))


def _stop_child(pid: int, signum: int, grace_s: float) -> int:
    """Send ``signum`` to the child ``pid`` and reap it (SIGKILL after ``grace_s``); its exit status.

    ``os.waitpid`` rather than ``Popen.wait``: this runs in a signal handler that interrupted
    ``Popen.wait`` in the same thread, which holds the lock every ``Popen`` wait takes.
    """
    import signal

    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
    end = time.monotonic() + grace_s
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return -signal.SIGKILL  # reaped elsewhere: unknown, so not a success
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            end = float("inf")
        time.sleep(0.2)


# ------------------------------------------------------------------------------------------ config
def load_executor_config(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ExecutorConfigError(f"executor config {path}: no such file") from None
    except yaml.YAMLError as e:
        raise ExecutorConfigError(
            f"executor config {path}: not valid YAML ({str(e).splitlines()[0]})"
        ) from None
    if not isinstance(data, dict):
        raise ExecutorConfigError(f"executor config {path}: expected a mapping of submitit parameters")
    return {"_path": str(path), **data}


def _require_slurm() -> Any:
    try:
        import submitit
    except ImportError:
        raise ExecutorConfigError("--executor slurm needs submitit: pip install 'miamind[slurm]'") from None
    if shutil.which("sbatch") is None:
        raise ExecutorConfigError(
            "--executor slurm needs SLURM's client commands (sbatch, squeue, scancel) on the PATH: "
            "run it on a login node, or install slurm-client"
        )
    return submitit


def _cluster_resources() -> dict[str, dict[str, Any]]:
    """Partition -> {"gres": [...], "default": bool} from ``sinfo``."""
    done = subprocess.run(["sinfo", "-h", "-o", "%P|%G"], capture_output=True, text=True, timeout=60)
    parts: dict[str, dict[str, Any]] = {}
    for line in done.stdout.splitlines():
        name, _, gres = line.strip().partition("|")
        if not name:
            continue
        default = name.endswith("*")
        entry = parts.setdefault(name.rstrip("*"), {"gres": [], "default": default})
        entry["gres"] += [g for g in gres.split(",") if g and g != "(null)"]
    return parts


def _check_resources(params: Mapping[str, Any], where: str) -> None:
    parts = _cluster_resources()
    if not parts:
        return  # sinfo says nothing: let sbatch judge
    partition = params.get("slurm_partition") or next((p for p, e in parts.items() if e["default"]), None)
    if partition is not None and partition not in parts:
        raise ExecutorConfigError(
            f"{where}: partition {partition!r} does not exist on this cluster (partitions: {', '.join(parts)})"
        )
    gpus = params.get("gpus_per_node") or 0
    if gpus and partition is not None and not any(g.startswith("gpu") for g in parts[partition]["gres"]):
        raise ExecutorConfigError(
            f"{where}: asks for {gpus} GPU(s) per cell, but partition {partition!r} has no GPUs "
            f"(GRES: {', '.join(parts[partition]['gres']) or 'none'})"
        )


# ------------------------------------------------------------------------------------------ submitting
def cell_params(cell: Cell) -> dict[str, Any]:
    """The submitit parameters a cell asks for (its group's resources; a GPU if it requires one)."""
    params = {RESOURCE_PARAMS[k]: v for k, v in cell.resources.items()}
    if cell.requires == "gpu" and not params.get("gpus_per_node"):
        params["gpus_per_node"] = 1
    devices = cell.sets.get("trainer.devices")
    if isinstance(devices, int) and devices > 1:
        # one SLURM task per device: Lightning's SLURM environment maps tasks to ranks
        params["tasks_per_node"] = devices
    return params


@dataclass
class SlurmExecutor:
    """Cells as SLURM job arrays (see the module docstring)."""

    config: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    name: str = "slurm"
    study_name: str = "study"
    #: seconds between two looks at the queue while waiting for the cells
    poll_s: float = 30.0

    def __post_init__(self) -> None:
        self.config = dict(self.config)
        self.where = f"executor config {self.config.pop('_path', '(none)')}"
        for key in OWN_KEYS:
            if key in self.config:
                setattr(self, key, float(self.config.pop(key)))

    def _executor(self, submitit: Any, folder: Path, params: Mapping[str, Any]):
        executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm")
        merged = {
            "name": f"miamind-{self.study_name}",
            "slurm_signal_delay_s": 120,
            "timeout_min": 60,
            **self.config,
            **params,
        }
        try:
            executor.update_parameters(**merged)
        except (NameError, ValueError, TypeError) as e:
            first = str(e).splitlines()[0]
            raise ExecutorConfigError(f"{self.where}: {first}") from None
        return executor, merged

    def check(self, todo: Sequence[CellStatus], runs_root: Path) -> None:
        """Everything that can be refused before anything is submitted."""
        submitit = _require_slurm()
        self._executor(submitit, runs_root / SUBMITIT_FOLDER, {})  # unknown keys
        for status in todo:
            _, merged = self._executor(submitit, runs_root / SUBMITIT_FOLDER, cell_params(status.cell))
            _check_resources(merged, f"{self.where}, group {status.cell.group!r}")
        runs_root.mkdir(parents=True, exist_ok=True)
        probe = runs_root / f".write-probe-{os.getpid()}"
        try:
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise ExecutorConfigError(f"{runs_root}: runs folder not writable ({e.strerror})") from None

    def submit(self, study: Study, todo: Sequence[CellStatus], runs_dir) -> dict[str, str]:
        """Submit ``todo`` (one array per resource set); cell id -> job id."""
        submitit = _require_slurm()
        self.study_name = study.name
        runs_root = study.runs_root(runs_dir).resolve()
        self.check(todo, runs_root)
        by_params: dict[str, list[CellStatus]] = {}
        for status in todo:
            by_params.setdefault(repr(sorted(cell_params(status.cell).items())), []).append(status)
        job_ids: dict[str, str] = {}
        for statuses in by_params.values():
            executor, _ = self._executor(submitit, runs_root / SUBMITIT_FOLDER, cell_params(statuses[0].cell))
            # hold each cell before it is submitted: no second runner takes it
            holder = {"executor": "slurm", "job_id": None, "host": this_host(), "runner": os.getpid()}
            mine = [status for status in statuses if take_lock(status.run_dir, holder)]
            try:
                with executor.batch():
                    jobs = [
                        executor.submit(CellJob(s.cell, str(s.run_dir.resolve()), self.threads)) for s in mine
                    ]
            except BaseException:
                for status in mine:
                    (status.run_dir / LOCK).unlink(missing_ok=True)
                raise
            for status, job in zip(mine, jobs, strict=True):
                lock = _read_json(status.run_dir / LOCK) or {}
                if not lock.get("job_id"):  # the task may have started and taken it already
                    _write_json(status.run_dir / LOCK, {**lock, "job_id": job.job_id})
                job_ids[status.cell.id] = job.job_id
        _QUEUE_CACHE["at"] = -1e9  # the queue has changed: the next look asks squeue again
        return job_ids

    def run(self, study, todo, runs_dir, *, env, log, progress: _Progress, detach):
        if not todo:
            return {"ran": 0, "failed": 0, "skipped_elsewhere": 0, "submitted": 0}
        job_ids = self.submit(study, todo, runs_dir)
        arrays = sorted({j.split("_")[0] for j in job_ids.values()})
        log(f"[study {study.name}] submitted {len(job_ids)} cells as job array(s) {', '.join(arrays)}")
        for s in todo:
            if s.cell.id not in job_ids:
                progress.not_run_here()
        progress.jobs = int(self.config.get("slurm_array_parallelism") or len(job_ids))
        outcome = {
            "ran": 0,
            "failed": 0,
            "skipped_elsewhere": len(todo) - len(job_ids),
            "submitted": len(job_ids),
        }
        if detach:
            log(f"[study {study.name}] detached: `miamind study status` shows the cells' states")
            return outcome
        waiting = {s.cell.id: s for s in todo if s.cell.id in job_ids}
        started = time.perf_counter()
        while waiting:
            time.sleep(self.poll_s)
            states = queue_states() or {}
            for cell_id, status in list(waiting.items()):
                if states.get(job_ids[cell_id]) in ACTIVE_STATES:
                    continue
                del waiting[cell_id]
                ok = (status.run_dir / "metrics.json").is_file()
                progress.finished(status.cell, ok, time.perf_counter() - started)
                outcome["ran" if ok else "failed"] += 1
        return outcome


def study_jobs(study: Study, runs_dir) -> list[tuple[Cell, Path, dict[str, Any]]]:
    """Every cell whose run folder holds a scheduler job's lock: (cell, run folder, lock)."""
    out = []
    for cell in study.cells:
        run_dir = study.run_dir(cell, runs_dir)
        lock = _read_json(run_dir / LOCK)
        if lock and lock.get("job_id"):
            out.append((cell, run_dir, lock))
    return out


def cancel_study(study: Study, runs_dir, log: Callable[[str], None] = print) -> int:
    """scancel every queued or running job of the study; returns how many were cancelled."""
    states = queue_states()
    if states is None:
        raise ExecutorConfigError("miamind study cancel needs SLURM's squeue and scancel on the PATH")
    jobs = [
        lock["job_id"]
        for _, _, lock in study_jobs(study, runs_dir)
        if states.get(lock["job_id"]) in ACTIVE_STATES
    ]
    cancel_jobs(jobs)
    log(f"[study {study.name}] cancelled {len(jobs)} job(s){': ' + ', '.join(jobs) if jobs else ''}")
    return len(jobs)
