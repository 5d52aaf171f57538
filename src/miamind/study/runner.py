"""``miamind study run``: train every cell of a study, skipping finished ones, resuming interrupted ones.

Each cell runs as its own ``miamind train`` (or ``miamind baseline``) *subprocess*, the exact
command ``cells.csv`` gives for rerunning it. A subprocess rather than a call of
``engine.train.train`` in this process because

- a cell that crashes (out of memory, a segfault in a kernel, a bug) ends its own process and is
  recorded as failed; the runner and the other cells go on;
- every cell starts from a clean process: no torch thread settings, RNG state, Lightning globals or
  memory fragmentation carried from the previous cell into this one's timings and results;
- ``--jobs N`` is then simply N processes, with no shared-state questions.

State lives in the run folders only, so a killed runner loses at most the cells in flight:

- ``RUN_DIR/metrics.json`` present: the cell is finished and skipped;
- ``RUN_DIR/config.yaml`` present without ``metrics.json``: interrupted; continued with
  ``miamind train --resume RUN_DIR`` (the engine restarts from its last checkpoint);
- ``RUN_DIR/study.lock``: who works on the cell -- a local runner (host and pids) or a scheduler
  job (its job id). Another runner skips the cell while that holder is alive: a pid is tested on
  its own host, a job id with the scheduler (``squeue``); a local runner on another host cannot be
  tested and counts as alive until ``miamind study cancel`` or the lock's removal;
- ``RUN_DIR/study_cell.json``: the cell, the command, and every attempt (host, job id, start and
  end, wall seconds, exit code or signal, outcome); ``RUN_DIR/study.log`` the attempts' output;
- ``RUN_DIR/provenance.json``: written by the training process itself (code, libraries, device).

Where cells run is an *executor*'s business (:class:`LocalExecutor` here, a thread pool of
subprocesses; :mod:`miamind.study.slurm` for a SLURM cluster): it gets the cells to run and
returns counts; everything above is shared.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .._atomic import atomic_open
from ..engine.preemption import PREEMPTED_EXIT
from ..errors import InputError
from .spec import Cell, Study, is_baseline, select

LOCK = "study.lock"
CELL_FILE = "study_cell.json"
LOG_FILE = "study.log"


@dataclass
class CellStatus:
    cell: Cell
    run_dir: Path
    state: str  # done | na | needs_gpu | pending | resume | running
    reason: str = ""
    lock: dict[str, Any] = field(default_factory=dict)  # the live holder's study.lock, when running


def _write_json(path: Path, data: Any) -> None:
    with atomic_open(path, "w") as f:
        f.write(json.dumps(data, indent=2) + "\n")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def this_host() -> str:
    return socket.gethostname()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_alive(lock: dict[str, Any]) -> bool:
    """Whether the holder of a ``study.lock`` may still be working on its cell.

    A scheduler job is asked for by id; a local runner's pids are tested on their own host. Where
    that cannot be decided (no scheduler command here, a runner on another host) the answer is
    yes: starting a cell twice costs more than waiting for a person to cancel it.
    """
    if lock.get("job_id"):
        from .slurm import job_active

        active = job_active(str(lock["job_id"]))
        return True if active is None else active
    if lock.get("host", this_host()) != this_host():
        return True
    return _alive(lock.get("runner")) or _alive(lock.get("child"))


def gpu_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def cell_status(
    study: Study, cell: Cell, runs_dir: Path | str | None = None, *, gpu: bool = False
) -> CellStatus:
    run_dir = study.run_dir(cell, runs_dir)
    if cell.na_reason:
        return CellStatus(cell, run_dir, "na", cell.na_reason)
    if (run_dir / "metrics.json").is_file():
        return CellStatus(cell, run_dir, "done")
    if cell.requires == "gpu" and not gpu:
        return CellStatus(cell, run_dir, "needs_gpu", "needs a GPU (none found)")
    lock = _read_json(run_dir / LOCK)
    if lock and lock_alive(lock):
        return CellStatus(cell, run_dir, "running", f"held by {describe_lock(lock)}", lock)
    if (run_dir / "config.yaml").is_file() and not is_baseline(cell.model):
        return CellStatus(cell, run_dir, "resume")
    return CellStatus(cell, run_dir, "pending")


def describe_lock(lock: dict[str, Any]) -> str:
    if lock.get("job_id"):
        return f"job {lock['job_id']}"
    return f"pid {lock.get('runner')} on {lock.get('host', this_host())}"


def local_lock() -> dict[str, Any]:
    return {"executor": "local", "host": this_host(), "runner": os.getpid(), "child": None}


def take_lock(run_dir: Path, holder: dict[str, Any], *, adopt: str | None = None) -> bool:
    """Create RUN_DIR/study.lock for ``holder`` exclusively; a stale lock (holder gone) is replaced.

    ``adopt``: a job id whose lock this process may take over: the same job after a requeue, or the
    lock a submitter wrote for a job whose id it did not know yet (a task can start before
    ``sbatch`` has returned its id to the submitter).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            lock = _read_json(path) or {}
            submitting = lock.get("executor") == "slurm" and not lock.get("job_id")
            mine = adopt is not None and (str(lock.get("job_id")) == adopt or submitting)
            if not mine and lock_alive(lock):
                return False
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(holder, f)
        return True
    return False


def update_lock(run_dir: Path, **changes: Any) -> None:
    lock = _read_json(run_dir / LOCK) or {}
    _write_json(run_dir / LOCK, {**lock, **changes})


def _format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class _Progress:
    """Cells done / left and an ETA from the mean wall time of the cells run in this session."""

    def __init__(self, name: str, total: int, done: int, jobs: int, log: Callable[[str], None]):
        self.name, self.total, self.done, self.jobs, self.log = name, total, done, jobs, log
        self.failed = 0
        self.walls: list[float] = []
        self.lock = threading.Lock()

    def not_run_here(self) -> None:
        """A listed cell another runner took or finished: no longer this runner's to count."""
        with self.lock:
            self.total -= 1

    def finished(self, cell: Cell, ok: bool, wall: float) -> None:
        with self.lock:
            if ok:
                self.done += 1
                self.walls.append(wall)
            else:
                self.failed += 1
            left = self.total - self.done - self.failed
            eta = sum(self.walls) / len(self.walls) * left / self.jobs if self.walls else None
            self.log(
                f"[study {self.name}] {'ok    ' if ok else 'FAILED'} {cell.id} ({wall:.0f} s) | "
                f"{self.done}/{self.total} done, {self.failed} failed, {left} left, "
                f"ETA {_format_eta(eta if left else 0)}"
            )


def rerun_command(cell: Cell, run_dir: Path, record: dict | None, runs_root: Path | None = None) -> str:
    """The command that reruns ``cell``: ``OMP_NUM_THREADS=N miamind ...`` when every recorded
    attempt ran with the same ``OMP_NUM_THREADS`` (the numbers depend on it), else the plain one.
    With ``runs_root``, the run folder is written ``"$RUNS_DIR"/CELL`` (no path of this machine)."""
    command = cell.command(run_dir)
    if runs_root is not None:
        from .._portable import portable_path

        command = shlex.join(["miamind", *cell.argv("@RUN@")]).replace(
            "@RUN@", portable_path(run_dir, runs_root)
        )
    seen = {a.get("omp_num_threads") for a in (record or {}).get("attempts", [])}
    if len(seen) == 1 and (threads := seen.pop()):
        return f"OMP_NUM_THREADS={threads} {command}"
    return command


def _signal_name(rc: int) -> str | None:
    if rc >= 0:
        return None
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


class CellAttempt:
    """One start (or resumption) of a cell's training process, and its record in ``study_cell.json``.

    :meth:`finish` records the attempt once, whoever calls it first: the code that waited for the
    process, or a scheduler's signal handler that stopped it (:mod:`miamind.study.slurm`).
    """

    def __init__(self, cell: Cell, run_dir: Path, *, python: str, env: dict[str, str], job_id: str | None):
        from ..engine.loggers import TAGS_ENV

        self.cell, self.run_dir, self.python, self.job_id = cell, run_dir, python, job_id
        # what an MLflow run of this cell is tagged with (engine/loggers.py)
        tags = {"study": cell.study, "group": cell.group, "cell": cell.id}
        self.env = {**env, TAGS_ENV: json.dumps(tags)}
        self.resume = (run_dir / "config.yaml").is_file() and not is_baseline(cell.model)
        self.argv = ["train", "--resume", str(run_dir)] if self.resume else cell.argv(run_dir)
        self.proc: subprocess.Popen | None = None
        self.started = ""
        self.t0 = 0.0
        self.ok: bool | None = None

    def start(self) -> subprocess.Popen:
        self.started = _now()
        self.t0 = time.perf_counter()
        with open(self.run_dir / LOG_FILE, "a") as log:
            where = f"{this_host()}" + (f", job {self.job_id}" if self.job_id else "")
            log.write(
                f"\n=== {self.started} {'resume' if self.resume else 'start'} on {where}: "
                f"miamind {' '.join(self.argv)}\n"
            )
            log.flush()
            self.proc = subprocess.Popen(
                [self.python, "-m", "miamind", *self.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        update_lock(self.run_dir, child=self.proc.pid)
        return self.proc

    def finish(self, rc: int) -> bool:
        """Record the attempt that ended with exit status ``rc``; True when the cell is done."""
        if self.ok is not None:
            return self.ok
        from ..engine.provenance import read_provenance

        wall = time.perf_counter() - self.t0
        # Done means the process exited 0 *and* wrote metrics.json: a wrapper that survived its
        # child's signal must not turn a killed run into a finished one.
        self.ok = rc == 0 and (self.run_dir / "metrics.json").is_file()
        outcome = "done" if self.ok else "preempted" if rc == PREEMPTED_EXIT else "failed"
        metrics = self.run_dir / "metrics.json"
        if not self.ok and metrics.is_file():
            # written, then killed (plots, a wrapper's signal): not a finished cell; a resumed
            # attempt writes it again
            metrics.replace(self.run_dir / "metrics.unfinished.json")
        record = _read_json(self.run_dir / CELL_FILE) or {
            "cell": self.cell.id,
            "study": self.cell.study,
            "group": self.cell.group,
            "identity": self.cell.identity(),
            "command": self.cell.command(self.run_dir),
            "attempts": [],
        }
        provenance = read_provenance(self.run_dir)
        record["attempts"].append(
            {
                "started": self.started,
                "ended": _now(),
                "host": this_host(),
                "job_id": self.job_id,
                "resumed": self.resume,
                "wall_s": round(wall, 2),
                "rc": rc,
                "signal": _signal_name(rc),
                "outcome": outcome,
                # CPU kernels sum in a thread-count-dependent order, so the thread count is part of
                # what reproduces a cell's numbers: recorded, and put in front of the rerun command.
                "omp_num_threads": self.env.get("OMP_NUM_THREADS"),
                "commit": provenance[-1].get("commit") if provenance else None,
            }
        )
        record["wall_s"] = round(sum(a["wall_s"] for a in record["attempts"]), 2)
        record["status"] = outcome
        _write_json(self.run_dir / CELL_FILE, record)
        return self.ok


def run_cell(
    study: Study,
    cell: Cell,
    runs_dir: Path | str | None = None,
    *,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
) -> tuple[bool | None, float]:
    """Train one cell here, in a subprocess (resuming it if it was interrupted); (ok, wall seconds).

    ``ok`` is None when the cell was not run here: another runner holds it, or finished it after this
    runner listed its cells (two runners given overlapping ``--only`` lists).
    """
    run_dir = study.run_dir(cell, runs_dir)
    if not take_lock(run_dir, local_lock()):
        return None, 0.0
    try:
        if (run_dir / "metrics.json").is_file():
            return None, 0.0  # finished by another runner between the listing and the lock
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        attempt = CellAttempt(cell, run_dir, python=python, env=env, job_id=None)
        rc = attempt.start().wait()
        return attempt.finish(rc), time.perf_counter() - attempt.t0
    finally:
        (run_dir / LOCK).unlink(missing_ok=True)


class Executor(Protocol):
    """Where a study's cells run: given the cells to start, it starts them and returns counts."""

    name: str

    def run(
        self,
        study: Study,
        todo: Sequence[CellStatus],
        runs_dir: Path | str | None,
        *,
        env: dict[str, str],
        log: Callable[[str], None],
        progress: _Progress,
        detach: bool,
    ) -> dict[str, int]: ...


@dataclass
class LocalExecutor:
    """``jobs`` cells at a time on this machine, each a subprocess (the default)."""

    jobs: int = 1
    python: str = sys.executable
    name: str = "local"

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise InputError(f"--jobs must be >= 1, got {self.jobs}")

    def run(self, study, todo, runs_dir, *, env, log, progress, detach):
        if detach:
            raise InputError("--detach needs a scheduler to hand the cells to (--executor slurm)")
        outcome = {"ran": 0, "failed": 0, "skipped_elsewhere": 0}

        def work(status: CellStatus) -> None:
            ok, wall = run_cell(study, status.cell, runs_dir, python=self.python, env=env)
            if ok is None:
                log(f"[study {study.name}] skip {status.cell.id}: taken or finished by another runner")
                outcome["skipped_elsewhere"] += 1
                progress.not_run_here()
                return
            progress.finished(status.cell, ok, wall)
            outcome["ran" if ok else "failed"] += 1
            if not ok:
                log(f"[study {study.name}] see {status.run_dir / LOG_FILE}")

        progress.jobs = self.jobs
        if self.jobs == 1:
            for status in todo:
                work(status)
        else:
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                list(pool.map(work, todo))
        return outcome


def run_study(
    study: Study,
    *,
    jobs: int = 1,
    runs_dir: Path | str | None = None,
    only: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
    gpu: bool | None = None,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
    executor: Executor | None = None,
    detach: bool = False,
) -> dict[str, int]:
    """Run the study's unfinished cells with ``executor`` (default: ``jobs`` local processes)."""
    executor = executor or LocalExecutor(jobs, python)
    cells = select(study.cells, only)
    if only and not cells:
        raise InputError(f"study {study.name}: no cell, group or task named {', '.join(only)}")
    # A scheduler gives GPU cells the GPU they ask for; locally they need one here.
    gpu = True if executor.name != "local" else gpu_available() if gpu is None else gpu
    statuses = [cell_status(study, c, runs_dir, gpu=gpu) for c in cells]
    counts = Counter(s.state for s in statuses)
    for s in statuses:
        if s.state in ("na", "needs_gpu", "running"):
            log(f"[study {study.name}] skip {s.cell.id}: {s.state} ({s.reason})")
    # Seed (fold) by seed: a study stopped half-way has every configuration at the same n.
    todo = sorted(
        (s for s in statuses if s.state in ("pending", "resume")),
        key=lambda s: (s.cell.seed, -1 if s.cell.fold is None else s.cell.fold),
    )
    runnable = len([s for s in statuses if s.state in ("done", "pending", "resume")])
    log(
        f"[study {study.name}] {len(cells)} cells: {counts.get('done', 0)} finished, "
        f"{counts.get('resume', 0)} to resume, {counts.get('pending', 0)} to start, "
        f"{counts.get('na', 0)} N/A, {counts.get('needs_gpu', 0)} need a GPU, "
        f"{counts.get('running', 0)} running elsewhere; runs in {study.runs_root(runs_dir)}"
    )
    progress = _Progress(study.name, runnable, counts.get("done", 0), 1, log)
    outcome = executor.run(
        study,
        todo,
        runs_dir,
        env={"PYTHONUNBUFFERED": "1", **(env or {})},
        log=log,
        progress=progress,
        detach=detach,
    )
    return {
        "ran": outcome.get("ran", 0),
        "failed": outcome.get("failed", 0),
        "skipped_done": counts.get("done", 0),
        "skipped_elsewhere": outcome.get("skipped_elsewhere", 0),
        **{k: v for k, v in outcome.items() if k not in ("ran", "failed", "skipped_elsewhere")},
    }


def study_states(study: Study, runs_dir: Path | str | None = None) -> list[dict[str, Any]]:
    """Each cell's state from its run folder and, for cells handed to a scheduler, the queue:
    done, pending, running, requeued (pending again after the warning signal), failed,
    interrupted (stopped, to be resumed), not started, n/a."""
    queue: dict[str, str] | None = None
    rows = []
    for cell in study.cells:
        run_dir = study.run_dir(cell, runs_dir)
        record = _read_json(run_dir / CELL_FILE) or {}
        attempts = record.get("attempts", [])
        lock = _read_json(run_dir / LOCK) or {}
        job = lock.get("job_id")
        state = None
        if cell.na_reason:
            state = "n/a"
        elif job:
            if queue is None:
                from .slurm import queue_states

                queue = queue_states() or {}
            queued = queue.get(str(job))
            if queued in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED"):
                preempted = bool(attempts) and attempts[-1].get("outcome") == "preempted"
                state = "requeued" if preempted else "pending"
            elif queued is not None:
                state = "running"
        elif lock and lock_alive(lock):
            state = "running"
        if state is None and (run_dir / "metrics.json").is_file():
            state = "done"  # and recorded: the holder of the lock (if any) has finished
        if state is None:
            status = record.get("status")
            interrupted = status == "preempted" or (run_dir / "config.yaml").is_file()
            state = "failed" if status == "failed" else "interrupted" if interrupted else "not started"
        last = attempts[-1] if attempts else {}
        exit_ = last.get("signal") or (None if last.get("rc") is None else f"rc {last['rc']}")
        rows.append(
            {
                "cell": cell.id,
                "state": state,
                "job_id": job or last.get("job_id"),
                "attempts": len(attempts),
                "last_exit": exit_,
            }
        )
    return rows
