"""Errors for data loading: each names the file (and where in it) and what is wrong."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..errors import UserError


class DataError(UserError, ValueError):
    """Invalid data file. ``str(err)`` is one line: '<path>[:<where>]: <what is wrong>'."""

    def __init__(self, path: str | Path | None, message: str, where: str | None = None):
        self.path = None if path is None else Path(path)
        self.where = where
        self.message = message
        loc = "" if path is None else str(path)
        if where:
            loc = f"{loc}:{where}" if loc else where
        super().__init__(f"{loc}: {message}" if loc else message)


class DatasetNotFoundError(UserError, FileNotFoundError):
    """A dataset was not found under any searched root; says where it looked and how to get it."""

    def __init__(self, dataset: str, searched: Iterable[str | Path], how_to_obtain: str):
        self.dataset = dataset
        self.searched = [str(p) for p in searched]
        self.how_to_obtain = how_to_obtain
        super().__init__(
            f"dataset {dataset!r} not found; searched: {', '.join(self.searched) or '(nothing)'}. "
            f"{how_to_obtain}"
        )
