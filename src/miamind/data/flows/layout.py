"""CSV layouts: a header's column names and roles, read from line 1 and matched to a known layout."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from .files import first_line


@dataclass(frozen=True)
class FlowLayout:
    """One CSV layout: its header (names stripped; a repeated name gets '.1') and column roles."""

    name: str
    columns: tuple[str, ...]
    drop: tuple[str, ...] = ()  # identifiers and non-features: never features
    duplicates: Mapping[str, str] = field(default_factory=dict)  # copy -> original
    label: str = "Label"

    def __post_init__(self):
        unknown = [c for c in (*self.drop, *self.duplicates, self.label) if c not in self.columns]
        if unknown or len(set(self.columns)) != len(self.columns):
            raise ValueError(f"layout {self.name!r}: bad column roles {unknown}")

    @property
    def feature_names(self) -> tuple[str, ...]:
        skip = {self.label, *self.drop, *self.duplicates}
        return tuple(c for c in self.columns if c not in skip)


def read_header(path: Path) -> list[str]:
    """Normalised header names: stripped, BOM removed, a repeated name suffixed '.1', '.2' ..."""
    first = first_line(path)
    text = first.decode("latin-1").rstrip("\r\n")
    for bom in ("\ufeff", "\u00ef\u00bb\u00bf"):  # BOM decoded as UTF-8 or as latin-1
        text = text[len(bom) :] if text.startswith(bom) else text
    if not text.strip():
        what = "empty file (no header line)" if not first else "empty header line"
        raise DataError(path, what, where="line 1")
    names = [n.strip() for n in next(csv.reader([text]))]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}.{k}")
    return out


def detect_layout(path: Path, header: Sequence[str], layouts: Sequence[FlowLayout]) -> FlowLayout:
    """The layout whose columns equal the header's (in any order); else a DataError saying why."""
    label = layouts[0].label
    if label not in header:
        shown = ", ".join(repr(h[:40]) for h in header[:5]) + (", ..." if len(header) > 5 else "")
        raise DataError(
            path, f"no {label!r} column in the header ({len(header)} columns: {shown})", where="line 1"
        )
    have = set(header)
    for layout in layouts:
        if have == set(layout.columns):
            return layout
    best = min(layouts, key=lambda lo: len(have ^ set(lo.columns)))
    missing = [c for c in best.columns if c not in have]
    extra = [c for c in header if c not in set(best.columns)]
    raise DataError(
        path,
        f"{len(header)} columns do not match the {best.name} layout ({len(best.columns)} columns): "
        f"missing {missing[:8]}{' ...' if len(missing) > 8 else ''}, "
        f"unexpected {extra[:8]}{' ...' if len(extra) > 8 else ''}",
        where="line 1",
    )
