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
- ``RUN_DIR/study.lock``: a runner (pid) is working on the cell; another runner skips it unless
  neither that runner nor its child is alive any more;
- ``RUN_DIR/study_cell.json``: the cell, the command, the commit, and every attempt with its wall
  seconds and exit code; ``RUN_DIR/study.log`` the attempts' output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._atomic import atomic_open
from .spec import Cell, Study, is_baseline, select

LOCK = "study.lock"
CELL_FILE = "study_cell.json"
LOG_FILE = "study.log"


@dataclass
class CellStatus:
    cell: Cell
    run_dir: Path
    state: str  # done | na | needs_gpu | pending | resume | running | failed
    reason: str = ""


def _write_json(path: Path, data: Any) -> None:
    with atomic_open(path, "w") as f:
        f.write(json.dumps(data, indent=2) + "\n")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


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


def git_commit(where: Path | str | None = None) -> str:
    """HEAD of the repository at ``where`` (default: the one holding this package's source;
    ``+dirty`` when tracked files differ). Outside a git checkout (a copy of the tree sent to a GPU
    machine, ``scripts/gpu_cells.sh``): ``$MIAMIND_SOURCE_COMMIT`` if set, else 'unknown'."""
    if where is None:
        where = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("MIAMIND_SOURCE_COMMIT") or "unknown"
    return head + ("+dirty" if dirty else "")


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
    if lock and (_alive(lock.get("runner")) or _alive(lock.get("child"))):
        return CellStatus(cell, run_dir, "running", f"locked by pid {lock.get('runner')}")
    if (run_dir / "config.yaml").is_file() and not is_baseline(cell.model):
        return CellStatus(cell, run_dir, "resume")
    return CellStatus(cell, run_dir, "pending")


def _take_lock(run_dir: Path) -> bool:
    """Create RUN_DIR/study.lock exclusively; a stale lock (no live runner or child) is replaced."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            lock = _read_json(path) or {}
            if _alive(lock.get("runner")) or _alive(lock.get("child")):
                return False
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump({"runner": os.getpid(), "child": None}, f)
        return True
    return False


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
            eta = None
            if self.walls:
                eta = sum(self.walls) / len(self.walls) * left / self.jobs
            self.log(
                f"[study {self.name}] {'ok    ' if ok else 'FAILED'} {cell.id} ({wall:.0f} s) | "
                f"{self.done}/{self.total} done, {self.failed} failed, {left} left, "
                f"ETA {_format_eta(eta if left else 0)}"
            )


def rerun_command(cell: Cell, run_dir: Path, record: dict | None) -> str:
    """The command that reruns ``cell``: ``OMP_NUM_THREADS=N miamind ...`` when every recorded
    attempt ran with the same ``OMP_NUM_THREADS`` (the numbers depend on it), else the plain one."""
    command = cell.command(run_dir)
    seen = {a.get("omp_num_threads") for a in (record or {}).get("attempts", [])}
    if len(seen) == 1 and (threads := seen.pop()):
        return f"OMP_NUM_THREADS={threads} {command}"
    return command


def run_cell(
    study: Study,
    cell: Cell,
    runs_dir: Path | str | None = None,
    *,
    commit: str = "unknown",
    python: str = sys.executable,
    env: dict[str, str] | None = None,
) -> tuple[bool | None, float]:
    """Train one cell in a subprocess (resuming it if it was interrupted); returns (ok, wall seconds).

    ``ok`` is None when the cell was not run here: another runner holds it, or finished it after this
    runner listed its cells (two runners given overlapping ``--only`` lists).
    """
    run_dir = study.run_dir(cell, runs_dir)
    if not _take_lock(run_dir):
        return None, 0.0
    try:
        if (run_dir / "metrics.json").is_file():
            return None, 0.0  # finished by another runner between the listing and the lock
        resume = (run_dir / "config.yaml").is_file() and not is_baseline(cell.model)
        argv = ["train", "--resume", str(run_dir)] if resume else cell.argv(run_dir)
        record = _read_json(run_dir / CELL_FILE) or {
            "cell": cell.id,
            "study": cell.study,
            "group": cell.group,
            "identity": cell.identity(),
            "command": cell.command(run_dir),
            "attempts": [],
        }
        t0 = time.perf_counter()
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(run_dir / LOG_FILE, "a") as log:
            log.write(f"\n=== {started} {'resume' if resume else 'start'}: miamind {' '.join(argv)}\n")
            log.flush()
            proc = subprocess.Popen(
                [python, "-m", "miamind", *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )
            _write_json(run_dir / LOCK, {"runner": os.getpid(), "child": proc.pid})
            rc = proc.wait()
        wall = time.perf_counter() - t0
        ok = rc == 0 and (run_dir / "metrics.json").is_file()
        # CPU kernels sum in a thread-count-dependent order, so the thread count is part of what
        # reproduces a cell's numbers: recorded per attempt, put in front of the rerun command.
        threads = {**os.environ, **(env or {})}.get("OMP_NUM_THREADS")
        record["attempts"].append(
            {
                "started": started,
                "resumed": resume,
                "wall_s": round(wall, 2),
                "rc": rc,
                "commit": commit,
                "omp_num_threads": threads,
            }
        )
        record["wall_s"] = round(sum(a["wall_s"] for a in record["attempts"]), 2)
        record["commit"] = commit
        record["status"] = "done" if ok else "failed"
        _write_json(run_dir / CELL_FILE, record)
        return ok, wall
    finally:
        (run_dir / LOCK).unlink(missing_ok=True)


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
) -> dict[str, int]:
    """Run the study's unfinished cells, ``jobs`` at a time; returns counts per outcome."""
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    gpu = gpu_available() if gpu is None else gpu
    cells = select(study.cells, only)
    if only and not cells:
        raise ValueError(f"study {study.name}: no cell, group or task named {', '.join(only)}")
    statuses = [cell_status(study, c, runs_dir, gpu=gpu) for c in cells]
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.state] = counts.get(s.state, 0) + 1
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
    progress = _Progress(study.name, runnable, counts.get("done", 0), jobs, log)
    commit = git_commit()
    outcome = {"ran": 0, "failed": 0, "skipped_done": counts.get("done", 0), "skipped_elsewhere": 0}

    def work(status: CellStatus) -> None:
        ok, wall = run_cell(study, status.cell, runs_dir, commit=commit, python=python, env=env)
        if ok is None:
            log(f"[study {study.name}] skip {status.cell.id}: taken or finished by another runner")
            outcome["skipped_elsewhere"] += 1
            progress.not_run_here()
            return
        progress.finished(status.cell, ok, wall)
        outcome["ran" if ok else "failed"] += 1
        if not ok:
            log(f"[study {study.name}] see {status.run_dir / LOG_FILE}")

    if jobs == 1:
        for status in todo:
            work(status)
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(work, todo))
    return outcome
