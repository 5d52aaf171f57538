"""Which CSV files to read (one, several, a folder; gzip detected) and their first line."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from ..errors import DataError, DatasetNotFoundError
from ..root import data_root

PathLike = str | Path
PathsArg = PathLike | Sequence[PathLike]

CSV_SUFFIXES = (".csv", ".csv.gz")


def csv_files_in(folder: Path) -> list[Path]:
    """The folder's own ``*.csv`` / ``*.csv.gz`` files (subfolders are not searched)."""
    return [f for f in folder.iterdir() if f.is_file() and f.name.lower().endswith(CSV_SUFFIXES)]


def locate_csv_folder(
    dataset: str, folders: Sequence[str], data_dir: PathLike | None, how_to_obtain: str
) -> Path:
    """The first of ``folders`` (relative to the data root) that holds CSV files directly."""
    root = data_root(data_dir)
    searched = [root / f for f in folders]
    for folder in searched:
        if folder.is_dir() and csv_files_in(folder):
            return folder
    raise DatasetNotFoundError(dataset, searched, how_to_obtain)


def resolve_files(paths: PathsArg) -> list[Path]:
    """Files to read: one file, several, or a folder (its ``*.csv`` / ``*.csv.gz``, not recursive).

    Sorted, so the row order (and with it the seeded split) does not depend on argument order.
    """
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise DataError(None, "no input files given")
    files: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            found = csv_files_in(p)
            if not found:
                raise DataError(p, "folder has no *.csv or *.csv.gz files (subfolders are not searched)")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(p, "no such file or folder")
    return sorted(set(files))


def open_binary(path: Path) -> BinaryIO:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its name)."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")  # type: ignore[return-value]


def first_line(path: Path) -> bytes:
    try:
        with open_binary(path) as f:
            return f.readline()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(path, f"cannot read file: {e}") from None
