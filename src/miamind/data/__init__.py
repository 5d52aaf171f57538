"""Dataset loaders. Each dataset module exposes the same small contract:

- ``NAME`` and ``HOW_TO_OBTAIN`` (text for the not-found error);
- ``locate(data_dir=None) -> Path``: the dataset's folder under the data root, or
  ``DatasetNotFoundError`` naming the paths searched;
- ``check(path) -> dict``: validate one file or folder and return a JSON-able summary (counts
  per split and class, checksums, rows dropped); raises ``DataError`` naming file and place.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from .errors import DataError, DatasetNotFoundError
from .info import DatasetInfo
from .root import data_root, data_roots

# name -> module; imported lazily so `import miamind` stays light.
DATASETS: dict[str, str] = {
    "cifar10": "miamind.data.cifar10",
    "isbi2012": "miamind.data.isbi2012",
    "cicids2017": "miamind.data.cicids2017",
    "cicids2017_improved": "miamind.data.cicids2017_improved",
}


def dataset_module(name: str) -> ModuleType:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return importlib.import_module(DATASETS[name])


def check_dataset(name: str, path: Path | None = None, data_dir: Path | None = None) -> dict:
    """Check one dataset: at ``path`` if given, else where ``locate`` finds it."""
    mod = dataset_module(name)
    target = Path(path) if path is not None else mod.locate(data_dir)
    report = mod.check(target)
    report.setdefault("dataset", name)
    report.setdefault("path", str(target))
    return report


def check_all(data_dir: Path | None = None) -> dict[str, dict]:
    """Check every dataset found under the data root. Missing ones are reported, not errors."""
    out: dict[str, dict] = {}
    for name in DATASETS:
        try:
            out[name] = {"status": "ok", **check_dataset(name, data_dir=data_dir)}
        except DatasetNotFoundError as e:
            out[name] = {"status": "missing", "error": str(e)}
        except DataError as e:
            out[name] = {"status": "invalid", "error": str(e)}
    return out


__all__ = [
    "DATASETS",
    "DataError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "check_all",
    "check_dataset",
    "data_root",
    "data_roots",
    "dataset_module",
]
