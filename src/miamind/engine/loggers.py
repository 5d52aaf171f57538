"""A run's loggers: CSV always (the record the run folder keeps), TensorBoard and MLflow on request.

``trainer.loggers: [csv, tensorboard, mlflow]``, as ``docs/training.md`` describes them. Each attempt
logs to ``attempt-K`` (CSV: under ``RUN_DIR/logs``; TensorBoard: under ``RUN_DIR/tensorboard``); an
MLflow run is one per run folder, continued by a resumed attempt, its store by default the runs
folder's ``mlflow.db`` (works offline, one store per study). Everything that can be refused is
refused by :func:`check_loggers` before the run folder is touched.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .._atomic import PathLike, atomic_open
from ..errors import UserError
from .config import Config
from .run_folder import logs_dir

LOGGERS = ("csv", "tensorboard", "mlflow")
#: JSON object of tags the study runner passes to a cell's training process (study, group, cell)
TAGS_ENV = "MIAMIND_RUN_TAGS"
MLFLOW_RUN_FILE = "mlflow_run.json"


class LoggerError(UserError, ValueError):
    """A logger that cannot be used as configured (unknown, not installed, unreachable)."""


def mlflow_uri(cfg: Config, run_dir: PathLike) -> str:
    uri = cfg.trainer.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{Path(run_dir).resolve().parent / 'mlflow.db'}"


def run_tags() -> dict[str, str]:
    try:
        tags = json.loads(os.environ.get(TAGS_ENV) or "{}")
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


def check_loggers(cfg: Config, run_dir: PathLike) -> None:
    """Refuse, in one line, a logger that is unknown, not installed, or (MLflow) unreachable."""
    names = cfg.trainer.loggers
    if "tensorboard" in names:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise LoggerError(
                "trainer.loggers: tensorboard needs pip install 'miamind[tensorboard]'"
            ) from None
    if "mlflow" in names:
        try:
            from mlflow import MlflowClient
        except ImportError:
            raise LoggerError("trainer.loggers: mlflow needs pip install 'miamind[mlflow]'") from None
        uri = mlflow_uri(cfg, run_dir)
        # no retries: an unreachable server is reported now, not after minutes of back-off
        saved = {
            k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
        }
        os.environ.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="10")
        try:
            if uri.startswith("sqlite:///"):
                Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        except Exception as e:  # MLflow raises its own, requests' and SQLAlchemy's errors
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise LoggerError(f"trainer.mlflow_tracking_uri: cannot reach {uri} ({first[:200]})") from None
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def build_loggers(cfg: Config, run_dir: Path, attempt: int) -> list:
    """The Lightning loggers of attempt ``attempt`` of the run in ``run_dir``."""
    from lightning.pytorch.loggers import CSVLogger

    names = cfg.trainer.loggers
    loggers: list = [CSVLogger(str(logs_dir(run_dir)), name="", version=f"attempt-{attempt}")]
    if "tensorboard" in names:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(
            TensorBoardLogger(
                str(run_dir / "tensorboard"), name="", version=f"attempt-{attempt}", default_hp_metric=False
            )
        )
    if "mlflow" in names:
        from lightning.pytorch.loggers import MLFlowLogger

        record = logs_dir(run_dir) / MLFLOW_RUN_FILE
        previous = json.loads(record.read_text()) if record.is_file() else {}
        tags = {"run_dir": run_dir.name, "task": str(cfg.task), **run_tags()}
        logger = MLFlowLogger(
            experiment_name=cfg.trainer.mlflow_experiment or f"miamind-{tags.get('study', cfg.task)}",
            run_name=run_dir.name,
            tracking_uri=mlflow_uri(cfg, run_dir),
            tags=tags,
            run_id=previous.get("run_id"),  # a resumed attempt continues its MLflow run
        )
        record.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(record, "w") as f:
            f.write(json.dumps({"run_id": logger.run_id, "experiment_id": logger.experiment_id}) + "\n")
        loggers.append(logger)
    return loggers
