"""Where datasets live: an explicit argument, else $MIAMIND_DATA, else ~/.cache/miamind/data."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MIAMIND_DATA"
DEFAULT_ROOT = Path("~/.cache/miamind/data")

PathLike = str | Path


def data_roots(data_dir: PathLike | None = None) -> list[Path]:
    """Roots to search, in priority order (only the first that is given counts)."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    env = os.environ.get(ENV_VAR)
    if env:
        return [Path(env).expanduser()]
    return [DEFAULT_ROOT.expanduser()]


def data_root(data_dir: PathLike | None = None) -> Path:
    return data_roots(data_dir)[0]


def cache_root() -> Path:
    """Decoded-array cache; $MIAMIND_CACHE overrides (tests point it at a temp folder)."""
    env = os.environ.get("MIAMIND_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/miamind/cache").expanduser()
