"""Where a run came from: ``RUN_DIR/provenance.json``, written by the process that trains it.

One entry per attempt (a resumed or requeued run adds one), each read at train time in the training
process itself -- not by a study runner on another host, whose checkout may differ from the code
the cell imported. ``cells.csv`` and the study report read commit and environment from here.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from .._atomic import PathLike

PROVENANCE = "provenance.json"
#: scheduler variables worth keeping with an attempt (which job, which task of an array, which restart)
SLURM_KEYS = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT")


def source_commit(where: PathLike | None = None) -> str | None:
    """HEAD of the git checkout holding the imported ``miamind`` source (``+dirty`` when tracked files
    differ); None for an installed package (its version says what it is)."""

    def git(folder: PathLike, *args: str) -> str:
        run = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True)
        return run.stdout

    if where is None:
        where = Path(__file__).resolve().parent
    try:
        top = git(where, "rev-parse", "--show-toplevel", "HEAD").split()
        # site-packages inside some unrelated repository is not a checkout of this project
        if not (Path(top[0]) / "src" / "miamind").is_dir():
            return None
        dirty = git(top[0], "status", "--porcelain", "--untracked-files=no").strip()
    except (OSError, subprocess.CalledProcessError, IndexError):
        return None
    return top[1] + ("+dirty" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """This process: code (version, commit), libraries, device, threads, host, scheduler job."""
    import torch

    from .. import __version__

    if torch.cuda.is_available():
        device = f"cuda: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    else:
        device = f"cpu: {_cpu_model()}"
    env: dict[str, Any] = {
        "miamind": __version__,
        "commit": source_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": _version("lightning"),
        "timm": _version("timm"),
        "numpy": _version("numpy"),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "host": socket.gethostname(),
    }
    slurm = {k.lower(): os.environ[k] for k in SLURM_KEYS if k in os.environ}
    if slurm:
        env["slurm"] = slurm
    return env


def read_provenance(run_dir: PathLike) -> list[dict[str, Any]]:
    """The attempts recorded in ``RUN_DIR/provenance.json`` (empty when there is none)."""
    path = Path(run_dir) / PROVENANCE
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return list(data.get("attempts", [])) if isinstance(data, dict) else []


def record_attempt(run_dir: PathLike, kind: str) -> dict[str, Any]:
    """Append this process's :func:`environment` to ``RUN_DIR/provenance.json`` (``kind``: start or
    resume); returns the entry."""
    entry = {"kind": kind, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **environment()}
    from .run_folder import write_json

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    write_json(Path(run_dir) / PROVENANCE, {"attempts": [*read_provenance(run_dir), entry]})
    return entry
