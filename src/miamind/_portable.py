"""Paths as committed results write them: nothing of the machine that produced them.

A path inside the working folder becomes relative to it; a path inside the runs folder becomes
``"$RUNS_DIR"/...`` (set ``RUNS_DIR`` to your runs folder to rerun a command); other absolute
paths keep only their name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ._atomic import PathLike

RUNS_DIR = '"$RUNS_DIR"'


def portable_path(path: PathLike, runs_root: PathLike | None = None) -> str:
    p = Path(path)
    if not p.is_absolute():
        return str(p)
    if runs_root is not None:
        root = Path(runs_root).resolve()
        try:
            rel = p.resolve().relative_to(root)
        except ValueError:
            pass
        else:
            return RUNS_DIR if str(rel) == "." else f"{RUNS_DIR}/{rel}"
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return p.name


# an absolute path inside a command or a sentence: after a space, quote, '=', '(' or a line start
_ABSOLUTE = re.compile(r"(?:(?<=[\s='\"(`])|^)(/[^\s'\"`,;)]+)", re.MULTILINE)


def portable_text(text: str, runs_root: PathLike | None = None) -> str:
    """``text`` (a command, a sentence) with every absolute path made portable: the data folder
    as ``$MIAMIND_DATA``, then :func:`portable_path` for the rest."""
    from .data.root import data_root

    roots = []
    for root in (os.environ.get("MIAMIND_DATA"), data_root(None)):
        if root:
            roots.append(str(Path(root).resolve()))

    def one(match: re.Match) -> str:
        path = match.group(1)
        for root in roots:
            if path == root or path.startswith(root + "/"):
                return "$MIAMIND_DATA" + path[len(root) :]
        return portable_path(path, runs_root)

    return _ABSOLUTE.sub(one, text)
