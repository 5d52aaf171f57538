"""Which CIFAR-10 layout a folder or archive holds (python / binary batches, image folder), and where."""

from __future__ import annotations

import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, DatasetNotFoundError
from ..root import data_root
from .release import BINARY_FOLDER, CLASS_NAMES, HOW_TO_OBTAIN, NAME, PYTHON_FOLDER, PathLike


@dataclass(frozen=True)
class LayoutSource:
    layout: str
    path: Path  # folder holding the layout, or the archive
    in_tar: bool
    prefix: str = ""  # folder inside the archive holding the layout ("" or "dir/")

    def label(self, rel: str) -> tuple[Path, str | None]:
        """(path, where) for DataError: a file in a folder, or a member of an archive."""
        return (self.path, self.prefix + rel) if self.in_tar else (self.path / rel, None)


# Files that tell a layout apart (batches.meta / readme.html may sit beside any layout).
_PY_NAMES = re.compile(r"^(data_batch_[1-5]|test_batch)$")
_BIN_NAMES = re.compile(r"^(data_batch_[1-5]|test_batch)\.bin$")
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(_TAR_SUFFIXES)


def member_parts(name: str) -> tuple[str, ...]:
    return tuple(p for p in name.split("/") if p not in (".", ""))


def _layout_of_member(parts: tuple[str, ...]) -> tuple[str, str] | None:
    """(layout, prefix) told by one file path inside an archive, or None if it says nothing."""
    if not parts:
        return None
    base, folder = parts[-1], parts[:-1]
    prefix = "/".join(folder) + "/" if folder else ""
    if _PY_NAMES.match(base):
        return "python", prefix
    if _BIN_NAMES.match(base):
        return "binary", prefix
    if len(parts) >= 3 and parts[-3] in ("train", "test") and parts[-2] in CLASS_NAMES:
        return "image-folder", "/".join(parts[:-3]) + "/" if len(parts) > 3 else ""
    return None


def open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(path, f"cannot open archive: {e}") from None


def _detect_tar(path: Path, max_files: int = 64) -> LayoutSource | None:
    """Peek at the first few files of an archive to tell its layout (cheap: no full read)."""
    with open_tar(path) as tf:
        seen = 0
        try:
            for m in tf:
                if not m.isfile():
                    continue
                found = _layout_of_member(member_parts(m.name))
                if found:
                    return LayoutSource(found[0], path, True, found[1])
                seen += 1
                if seen >= max_files:
                    break
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise DataError(path, f"corrupt or truncated archive: {e}") from None
    return None


def _detect_dir(folder: Path, official_only: bool = False) -> LayoutSource | None:
    """Layout inside ``folder``; python > binary > image folder > archives (exact data first).

    ``official_only`` (used for the data root itself, which holds other datasets too) looks only
    for the official folder and archive names.
    """
    for layout, sub, batch in (
        ("python", PYTHON_FOLDER, "data_batch_1"),
        ("binary", BINARY_FOLDER, "data_batch_1.bin"),
    ):
        if (folder / sub).is_dir():
            return LayoutSource(layout, folder / sub, False)
        if not official_only and (folder / batch).is_file():
            return LayoutSource(layout, folder, False)
    if not official_only and (folder / "train").is_dir() and (folder / "test").is_dir():
        return LayoutSource("image-folder", folder, False)
    official = [folder / "cifar-10-python.tar.gz", folder / "cifar-10-binary.tar.gz"]
    others = (
        []
        if official_only
        else sorted(p for p in folder.iterdir() if p.is_file() and is_archive(p) and p not in official)
    )
    for archive in official + others:
        if archive.is_file():
            src = _detect_tar(archive)
            if src is not None:
                return src
    return None


def detect(path: Path) -> LayoutSource:
    if not path.exists():
        raise DatasetNotFoundError(NAME, [path], HOW_TO_OBTAIN)
    if path.is_file():
        if not is_archive(path):
            raise DataError(path, "expected a CIFAR-10 folder or a .tar.gz/.tgz/.tar archive")
        src = _detect_tar(path)
    else:
        src = _detect_dir(path)
    if src is None:
        raise DataError(
            path,
            f"no CIFAR-10 layout found (looked for {PYTHON_FOLDER}/ or data_batch_1, "
            f"{BINARY_FOLDER}/ or data_batch_1.bin, train/<class>/ + test/<class>/ image folders, "
            "and archives holding one of these)",
        )
    return src


def locate(data_dir: PathLike | None = None) -> Path:
    """The CIFAR-10 folder: ``<root>/cifar10`` (any layout), else the data root itself if it holds
    ``cifar-10-batches-py/``, ``cifar-10-batches-bin/`` or the official archives (torchvision's
    arrangement). Raises :class:`DatasetNotFoundError` listing both places."""
    root = data_root(data_dir)
    searched: list[Path] = []
    for cand, official_only in ((root / NAME, False), (root, True)):
        searched.append(cand)
        if cand.is_dir() and _detect_dir(cand, official_only) is not None:
            return cand
    raise DatasetNotFoundError(NAME, searched, HOW_TO_OBTAIN)
