"""Reading flow CSV files into a FlowTable, chunk by chunk, counting everything skipped or found."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ..errors import DataError
from .csv_chunks import csv_chunks, numeric_column
from .files import PathsArg, resolve_files
from .labels import normalise_label
from .layout import FlowLayout, detect_layout, read_header
from .table import FlowTable

DEFAULT_CHUNKSIZE = 100_000


class _RowBuffer:
    """Float32 rows appended chunk by chunk, grown to the exact size each time.

    ``ndarray.resize`` reallocates; for large arrays glibc moves pages (mremap) instead of
    copying them, so neither a second full copy nor growth slack is ever resident.
    """

    def __init__(self, n_features: int):
        self.x = np.empty((0, n_features), np.float32)
        self.codes = np.empty(0, np.int64)
        self.n = 0

    def append(self, x: np.ndarray, codes: np.ndarray) -> None:
        need = self.n + len(x)
        if need > len(self.x):
            self.x.resize((need, self.x.shape[1]), refcheck=False)
            self.codes.resize(need, refcheck=False)
        self.x[self.n : need] = x
        self.codes[self.n : need] = codes
        self.n = need

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        self.x.resize((self.n, self.x.shape[1]), refcheck=False)
        self.codes.resize(self.n, refcheck=False)
        return self.x, self.codes


class _Counts:
    """Per-label counters keyed by label code."""

    def __init__(self, n: int):
        self.c = np.zeros(n, np.int64)

    def add(self, codes: np.ndarray) -> None:
        self.c += np.bincount(codes, minlength=len(self.c))

    def as_dict(self, names: Sequence[str]) -> dict[str, int]:
        return {n: int(v) for n, v in zip(names, self.c, strict=True) if v}


class _FileState:
    """What reading one file has counted so far, and its raw label -> code cache."""

    def __init__(
        self,
        path: Path,
        layout: FlowLayout,
        header: Sequence[str],
        label_index: Mapping[str, int],
        label_names: Sequence[str],
    ):
        self.path, self.layout = path, layout
        self.dups = list(layout.duplicates.items())
        wanted = [*layout.feature_names, *(d for d, _ in self.dups), layout.label]
        self.pos = {name: header.index(name) for name in wanted}
        self.label_index, self.label_names = label_index, label_names
        self.code_of_raw: dict[str, int] = {}
        self.rows_read = 0
        self.read = _Counts(len(label_names))
        self.nonfinite_rows = _Counts(len(label_names))
        self.cells = {"posinf": 0, "neginf": 0, "nan": 0}
        self.skipped = {"repeated_header": 0, "empty": 0}
        self.dup_mismatch = {d: 0 for d, _ in self.dups}

    def label_codes(self, label_col: pd.Series, lines: np.ndarray) -> np.ndarray:
        raw_codes, uniques = pd.factorize(label_col)
        lookup = np.empty(len(uniques), np.int64)
        for j, raw in enumerate(uniques):
            if raw not in self.code_of_raw:
                code = self.label_index.get(normalise_label(raw).lower())
                if code is None:
                    line = int(lines[np.flatnonzero(raw_codes == j)[0]])
                    raise DataError(
                        self.path,
                        f"unknown label {raw!r} (known labels: {', '.join(self.label_names)})",
                        where=f"line {line}",
                    )
                self.code_of_raw[raw] = code
            lookup[j] = self.code_of_raw[raw]
        return lookup[raw_codes]

    def report(self) -> dict:
        return {
            "path": str(self.path),
            "layout": self.layout.name,
            "rows_read": self.rows_read,
            "skipped_lines": self.skipped,
            "label_counts_read": self.read.as_dict(self.label_names),
            "nonfinite_rows": self.nonfinite_rows.as_dict(self.label_names),
            "nonfinite_cells": self.cells,
            "duplicate_column_mismatches": self.dup_mismatch,
        }


def _parse_chunk(st: _FileState, chunk: pd.DataFrame, keep_nonfinite: bool) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of raw cells -> (float32 features, label codes), counting what it skips."""
    layout, pos, path = st.layout, st.pos, st.path
    st.rows_read += len(chunk)
    lines = chunk.index.to_numpy() + 2  # file line numbers; line 1 is the header
    label_col = chunk[pos[layout.label]]
    empty = chunk.isna().all(axis=1).to_numpy()
    repeated = (label_col.str.strip() == layout.label).fillna(False).to_numpy(bool)
    st.skipped["empty"] += int(empty.sum())
    st.skipped["repeated_header"] += int(repeated.sum())
    skip = empty | repeated
    if skip.any():
        chunk, lines, label_col = chunk[~skip], lines[~skip], label_col[~skip]
    missing = label_col.isna().to_numpy()
    if missing.any():
        raise DataError(path, f"empty {layout.label!r} cell", where=f"line {int(lines[missing][0])}")
    codes = st.label_codes(label_col, lines)

    feats = layout.feature_names
    columns = {
        name: numeric_column(path, chunk[pos[name]], name, lines)
        for name in (*feats, *(d for d, _ in st.dups))
    }
    for dup, orig in st.dups:
        a, b = columns[dup].to_numpy(np.float64), columns[orig].to_numpy(np.float64)
        st.dup_mismatch[dup] += int(np.sum((a != b) & ~(np.isnan(a) & np.isnan(b))))
    x = np.empty((len(chunk), len(feats)), np.float32)
    with np.errstate(over="ignore"):  # beyond float32 range becomes inf: counted below
        for j, name in enumerate(feats):
            x[:, j] = columns[name].to_numpy(np.float64)

    st.read.add(codes)
    finite = np.isfinite(x)
    if not finite.all():
        st.cells["posinf"] += int(np.isposinf(x).sum())
        st.cells["neginf"] += int(np.isneginf(x).sum())
        st.cells["nan"] += int(np.isnan(x).sum())
        bad_rows = ~finite.all(axis=1)
        st.nonfinite_rows.add(codes[bad_rows])
        if not keep_nonfinite:
            x, codes = x[~bad_rows], codes[~bad_rows]
    return x, codes


def _read_one(st: _FileState, buf: _RowBuffer, keep_nonfinite: bool, chunksize: int) -> dict:
    """Append one file's rows to ``buf``; return its report."""
    try:
        with csv_chunks(st.path, sorted(st.pos.values()), st.pos[st.layout.label], chunksize) as (
            chunks,
            stream,
        ):
            for chunk in chunks:
                buf.append(*_parse_chunk(st, chunk, keep_nonfinite))
            blanked = stream.count
    except pd.errors.ParserError as e:
        raise DataError(st.path, f"malformed CSV: {e}") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(st.path, f"cannot read file: {e}") from None
    # Header copies blanked in the byte stream were counted as empty rows by the parser.
    st.skipped["repeated_header"] += blanked
    st.skipped["empty"] -= blanked
    return st.report()


def read_flow_files(
    paths: PathsArg,
    layouts: Sequence[FlowLayout],
    label_names: Sequence[str],
    *,
    layout: str = "auto",
    nonfinite: str = "drop",
    chunksize: int = DEFAULT_CHUNKSIZE,
) -> FlowTable:
    """Read CSV files of one of ``layouts`` into a FlowTable.

    ``label_names`` is the fixed vocabulary; raw labels match it after ``normalise_label`` and
    case-insensitively, any other label is a DataError naming file and line.
    ``nonfinite``: "drop" removes rows holding Infinity/NaN (counted per label in the report),
    "keep" keeps them for a later policy (``make_splits(nonfinite="clip")``).
    """
    if nonfinite not in ("drop", "keep"):
        raise InputError(f"nonfinite must be 'drop' or 'keep', got {nonfinite!r}")
    if chunksize < 1:
        raise InputError(f"chunksize must be positive, got {chunksize}")
    by_name = {lo.name: lo for lo in layouts}
    if layout != "auto" and layout not in by_name:
        raise InputError(f"unknown layout {layout!r}; valid: auto, {', '.join(by_name)}")
    candidates = list(layouts) if layout == "auto" else [by_name[layout]]
    files = resolve_files(paths)
    plan = []
    for f in files:  # check every header before reading any rows
        header = read_header(f)
        plan.append((f, detect_layout(f, header, candidates), header))
    feature_names = plan[0][1].feature_names
    for f, lo, _ in plan[1:]:
        if lo.feature_names != feature_names:
            raise DataError(f, f"layout {lo.name} has other features than {plan[0][0]} ({plan[0][1].name})")

    label_index = {n.lower(): i for i, n in enumerate(label_names)}
    buf = _RowBuffer(len(feature_names))
    per_file = [
        _read_one(_FileState(f, lo, header, label_index, label_names), buf, nonfinite == "keep", chunksize)
        for f, lo, header in plan
    ]
    x, codes = buf.finish()
    table = FlowTable(x, codes, tuple(label_names), tuple(feature_names), {})
    if not any(r["label_counts_read"] for r in per_file):
        where = files[0] if len(files) == 1 else None
        raise DataError(where, "no data rows" + ("" if where else " in " + ", ".join(map(str, files))))
    table.report = _summarise(per_file, table, nonfinite, label_names)
    return table


def _summarise(per_file: list[dict], table: FlowTable, nonfinite: str, names: Sequence[str]) -> dict:
    def total(key: str) -> dict[str, int]:
        out: Counter[str] = Counter()
        for r in per_file:
            out.update(r[key])
        return {n: out[n] for n in [*names, *sorted(set(out) - set(names))] if n in out}

    return {
        "files": per_file,
        "layouts": sorted({r["layout"] for r in per_file}),
        "rows_read": sum(r["rows_read"] for r in per_file),
        "skipped_lines": total("skipped_lines"),
        "label_counts_read": total("label_counts_read"),
        "nonfinite_cells": total("nonfinite_cells"),
        "nonfinite_rows": total("nonfinite_rows"),
        "nonfinite_policy": nonfinite,
        "rows_dropped_nonfinite": total("nonfinite_rows") if nonfinite == "drop" else {},
        "duplicate_column_mismatches": total("duplicate_column_mismatches"),
        "rows": int(len(table.label_codes)),
        "label_counts": table.label_counts(),
        "n_features": len(table.feature_names),
    }
