"""Dataset loaders. Each dataset module exposes the same small contract:

- ``NAME`` and ``HOW_TO_OBTAIN`` (text for the not-found error);
- ``FETCH``: a :class:`miamind.data.fetch.Source`, what ``miamind data fetch NAME`` downloads (URLs
  and checksums) or, when that cannot be automated, what to do by hand;
- ``locate(data_dir=None) -> Path``: the dataset's folder under the data root, or
  ``DatasetNotFoundError`` naming the paths searched;
- ``check(path) -> dict``: validate one file or folder and return a JSON-able summary (counts
  per split and class, checksums, rows dropped); raises ``DataError`` naming file and place;
- ``describe(report) -> str``: which copy a ``check`` report describes, in a few words;
- ``load_NAME(...)``: arrays with an ``.info`` :class:`DatasetInfo`, split before anything is fit.

Registering it is one entry of :data:`DATASETS`; ``miamind data check`` and ``miamind info`` then
report it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from ..errors import InputError
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
        raise InputError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return importlib.import_module(DATASETS[name])


def check_dataset(name: str, path: Path | None = None, data_dir: Path | None = None) -> dict:
    """Check one dataset: at ``path`` if given, else where ``locate`` finds it."""
    mod = dataset_module(name)
    target = Path(path) if path is not None else mod.locate(data_dir)
    report = mod.check(target)
    report.setdefault("dataset", name)
    report.setdefault("path", str(target))
    return report


def describe_copy(name: str, report: dict) -> str:
    """Which copy of the dataset a ``check`` report describes, in a few words (its ``describe``)."""
    return dataset_module(name).describe(report)


def fetch_hint(name: str) -> str:
    """The command that fetches ``name``, or why it has to be fetched by hand."""
    source = dataset_module(name).FETCH
    if source.fetchable:
        return f"miamind data fetch {name}  ({source.copy})"
    return f"by hand: {source.manual}"


def check_all(data_dir: Path | None = None) -> dict[str, dict]:
    """Check every dataset found under the data root. Missing ones are reported, not errors.

    A found dataset's report says which copy it is (``copy``); a missing one says how to get it
    (``fetch``).
    """
    out: dict[str, dict] = {}
    for name in DATASETS:
        try:
            report = check_dataset(name, data_dir=data_dir)
            out[name] = {"status": "ok", "copy": describe_copy(name, report), **report}
        except DatasetNotFoundError as e:
            where = ", ".join(e.searched)
            out[name] = {
                "status": "missing",
                "error": f"not found; searched: {where}",
                "fetch": fetch_hint(name),
            }
        except DataError as e:
            out[name] = {"status": "invalid", "error": str(e), "fetch": fetch_hint(name)}
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
    "describe_copy",
    "fetch_hint",
]
