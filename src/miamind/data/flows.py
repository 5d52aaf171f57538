"""Flow-feature CSV tables (CIC-IDS2017 and its re-extractions): read, split, scale.

Reading (``read_flow_files``) turns one or several CICFlowMeter CSV files into a ``FlowTable``:
a float32 feature matrix, integer label codes into a fixed label vocabulary and a report of
everything that was skipped or found. It handles the quirks of the released files:

- latin-1 bytes (the 0x96 dash in the web-attack labels), header names with leading spaces,
  a header name repeated inside the header (the second copy is checked against the first,
  then dropped), header lines repeated inside a file (skipped, counted), empty lines and lines
  of bare commas (skipped, counted), ``Infinity`` / ``NaN`` cells (counted; dropped or kept);
- any text in a numeric column is an error naming file, line and column: nothing is coerced.

Files are read in chunks and each chunk becomes float32 at once, so peak memory is about the
float32 matrix plus one chunk (measured by ``miamind.bench.csv_memory``: ~1.2 GB above the
interpreter for a 1 GB file, see results/data/cicids2017_read_memory.md).

Splitting (``make_splits``) is stratified with a fixed seed and comes first; every fitted
statistic (non-finite clip bounds, scaler, class weights) is computed on the training split only.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from .cache import cached_arrays, fingerprint, sha256_file
from .errors import DataError, DatasetNotFoundError
from .info import DatasetInfo
from .root import data_root
from .splits import apply_scaler, balanced_class_weights, fit_scaler, stratified_split

PathLike = str | Path
PathsArg = PathLike | Sequence[PathLike]

BENIGN = "BENIGN"
DEFAULT_CHUNKSIZE = 100_000
# Cells read as missing. Deliberately short: any other text in a numeric column is an error.
NA_TOKENS = ("", "NaN", "nan")
# Bump when parsing changes, so cached tables from an older parser are not reused.
PARSER_VERSION = "1"

# Spellings of the dash in 'Web Attack \x96 XSS' found in copies of the data, longest first:
# UTF-8 en dash / em dash / U+FFFD / U+0096 read as latin-1, then the single characters
# (cp1252 0x96 decoded as latin-1 is U+0096; decoded as cp1252 it is the en dash U+2013).
_DASH_FORMS = (
    "\u00e2\u0080\u0093",
    "\u00e2\u0080\u0094",
    "\u00ef\u00bf\u00bd",
    "\u00c2\u0096",
    "\u0096",
    "\u2013",
    "\u2014",
    "\ufffd",
)
_SPACES = re.compile(r"\s+")


def normalise_label(raw: str) -> str:
    """Label text with every dash form turned into '-' and runs of spaces collapsed."""
    text = raw
    for form in _DASH_FORMS:
        text = text.replace(form, "-")
    return _SPACES.sub(" ", text).strip()


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


@dataclass
class FlowTable:
    """Parsed flows: ``features`` (N, F) float32 and ``label_codes`` (N,) indexing ``label_names``."""

    features: np.ndarray
    label_codes: np.ndarray
    label_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    report: dict

    @property
    def labels(self) -> np.ndarray:
        """Canonical label string of each row."""
        return np.asarray(self.label_names, dtype=object)[self.label_codes]

    def label_counts(self, mask: np.ndarray | None = None) -> dict[str, int]:
        codes = self.label_codes if mask is None else self.label_codes[mask]
        counts = np.bincount(codes, minlength=len(self.label_names))
        return {n: int(c) for n, c in zip(self.label_names, counts, strict=True) if c}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "features": self.features,
            "label_codes": self.label_codes,
            "label_names": np.asarray(self.label_names, dtype=str),
            "feature_names": np.asarray(self.feature_names, dtype=str),
            "report": np.asarray(json.dumps(self.report)),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> FlowTable:
        return cls(
            features=arrays["features"],
            label_codes=arrays["label_codes"],
            label_names=tuple(str(s) for s in arrays["label_names"]),
            feature_names=tuple(str(s) for s in arrays["feature_names"]),
            report=json.loads(str(arrays["report"])),
        )


# ----------------------------------------------------------------------------------------------
# Reading


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


def _open_binary(path: Path) -> BinaryIO:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its name)."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")  # type: ignore[return-value]


def _first_line(path: Path) -> bytes:
    try:
        with _open_binary(path) as f:
            return f.readline()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(path, f"cannot read file: {e}") from None


def read_header(path: Path) -> list[str]:
    """Normalised header names: stripped, BOM removed, a repeated name suffixed '.1', '.2' ..."""
    first = _first_line(path)
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


def _numeric_column(path: Path, col: pd.Series, name: str, lines: np.ndarray) -> pd.Series:
    """A column pandas could not read as numbers: accept padded numbers and Infinity, else fail."""
    if pd.api.types.is_numeric_dtype(col):
        return col
    stripped = col.astype(object).where(col.isna(), col.astype(str).str.strip())  # keeps NaN as NaN
    values = pd.to_numeric(stripped, errors="coerce")
    bad = values.isna() & stripped.notna() & ~stripped.isin(NA_TOKENS)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            path, f"column {name!r}: {stripped.iloc[i]!r} is not a number", where=f"line {int(lines[i])}"
        )
    return values


class _RepeatedHeaderFilter(io.RawIOBase):
    """Byte stream in which exact copies of the header line inside the file become empty lines.

    Concatenated copies of the data repeat the header line mid-file; left in, it turns every
    column of its chunk into text, which is ~7x slower to convert. Blanking it here (the line
    stays, so line numbers stay right) keeps the columns numeric; ``count`` says how many.
    Header lines spelled differently are still caught, row by row, by their 'Label' cell.
    """

    def __init__(self, raw: BinaryIO, header: bytes, block: int = 1 << 22):
        self.raw, self.block = raw, block
        self.pattern = b"\n" + header
        self.pending = b""  # tail that may hold the start of a match
        self.out = bytearray()
        self.eof = False
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self.eof and len(self.out) < len(b):
            chunk = self.raw.read(self.block)
            self.eof = not chunk
            self.out += self._blank_headers(self.pending + chunk, final=self.eof)
        n = min(len(b), len(self.out))
        b[:n] = self.out[:n]
        del self.out[:n]
        return n

    def _blank_headers(self, data: bytes, final: bool) -> bytes:
        size = len(self.pattern)
        # A match must start before `limit`, so its end and the 2 bytes after it are in `data`.
        limit = len(data) if final else len(data) - size - 2
        parts, pos = [], 0
        i = data.find(self.pattern)
        while 0 <= i < limit:
            end = i + size
            after = data[end : end + 2]
            at_eof = final and after in (b"", b"\r")
            if after[:1] == b"\n" or after == b"\r\n" or at_eof:
                parts.append(data[pos : i + 1])  # up to and including the newline before it
                pos = end
                if at_eof:  # end the blank line, so the parser still sees one (empty) row
                    parts.append(b"\n")
                    pos = len(data)
                self.count += 1
            i = data.find(self.pattern, end)
        keep = len(data) if final else max(pos, limit)
        parts.append(data[pos:keep])
        self.pending = data[keep:]
        return b"".join(parts)

    def close(self) -> None:
        self.raw.close()
        super().close()


@contextmanager
def _csv_chunks(
    path: Path, usecols: list[int], label_pos: int, chunksize: int
) -> Iterator[tuple[Iterator[pd.DataFrame], _RepeatedHeaderFilter]]:
    """The data lines (after the header) as frames of at most ``chunksize`` rows, indexed from 0.

    Bytes are decoded as latin-1 (any byte decodes, as the released files need); only
    ``NA_TOKENS`` count as missing; blank lines are kept (as all-missing rows) so that row
    index + 2 is the file line number.
    """
    header = _first_line(path).rstrip(b"\r\n")
    stream = _RepeatedHeaderFilter(_open_binary(path), header)
    with io.BufferedReader(stream, buffer_size=1 << 20) as handle:
        try:
            reader = pd.read_csv(
                handle,
                encoding="latin-1",
                header=None,
                skiprows=1,
                usecols=usecols,
                dtype={label_pos: str},
                keep_default_na=False,
                na_values=list(NA_TOKENS),
                skip_blank_lines=False,
                chunksize=chunksize,  # low_memory stays on: ~3x faster here than off
            )
        except pd.errors.EmptyDataError:  # a header line and nothing else
            yield iter(()), stream
            return
        with reader, warnings.catch_warnings():
            # Mixed types only arise in a column holding text, which _numeric_column reports.
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            yield reader, stream


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
        name: _numeric_column(path, chunk[pos[name]], name, lines)
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
        with _csv_chunks(st.path, sorted(st.pos.values()), st.pos[st.layout.label], chunksize) as (
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
        raise ValueError(f"nonfinite must be 'drop' or 'keep', got {nonfinite!r}")
    if chunksize < 1:
        raise ValueError(f"chunksize must be positive, got {chunksize}")
    by_name = {lo.name: lo for lo in layouts}
    if layout != "auto" and layout not in by_name:
        raise ValueError(f"unknown layout {layout!r}; valid: auto, {', '.join(by_name)}")
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
        out: dict[str, int] = {}
        for r in per_file:
            for k, v in r[key].items():
                out[k] = out.get(k, 0) + v
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


def summarise_for_check(table: FlowTable, files: Sequence[Path]) -> dict:
    """What ``check`` reports: layout, checksums, rows per label read / kept / dropped."""
    rep = table.report
    read = rep["label_counts_read"]
    nonfinite = rep["nonfinite_rows"]
    return {
        "files": [
            {
                "path": str(f),
                "sha256": sha256_file(f),
                "bytes": f.stat().st_size,
                "layout": r["layout"],
                "rows_read": r["rows_read"],
            }
            for f, r in zip(files, rep["files"], strict=True)
        ],
        "layouts": rep["layouts"],
        "rows_read": rep["rows_read"],
        "skipped_lines": rep["skipped_lines"],
        "label_counts_read": read,
        "nonfinite_cells": rep["nonfinite_cells"],
        "rows_with_nonfinite": nonfinite,
        "rows_kept_if_dropping_nonfinite": {k: v - nonfinite.get(k, 0) for k, v in read.items()},
        "duplicate_column_mismatches": rep["duplicate_column_mismatches"],
        "n_features": rep["n_features"],
    }


def cached_table(
    namespace: str,
    files: Sequence[Path],
    read: Callable[[], FlowTable],
    options: Mapping[str, object],
    cache_dir: Path | None = None,
) -> FlowTable:
    """The parsed table from the cache, keyed by file contents + options, else ``read()`` it."""
    # Paths are in the key too: the cached report names the files it was read from.
    key = hashlib.sha256(
        json.dumps(
            {
                "files": fingerprint(files),
                "paths": [str(f) for f in files],
                "parser": PARSER_VERSION,
                **options,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:32]
    arrays = cached_arrays(namespace, key, lambda: read().to_arrays(), cache_dir)
    return FlowTable.from_arrays(arrays)


# ----------------------------------------------------------------------------------------------
# Splitting, fitting, scaling


def first_of_duplicates(features: np.ndarray, codes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For ``rows`` of the table: True where the row is the first (in row order) with its exact
    features and label code. Rows compare by their float32 bytes, so NaN equals NaN and -0.0
    differs from 0.0, as an exact copy in the file would."""
    x = np.ascontiguousarray(features[rows], dtype=np.float32)
    key = np.concatenate([x.view(np.uint32), codes[rows].astype(np.uint32)[:, None]], axis=1)
    key = np.ascontiguousarray(key).view(np.dtype((np.void, key.shape[1] * 4))).ravel()
    _, first_index = np.unique(key, return_index=True)
    first = np.zeros(len(rows), bool)
    first[first_index] = True
    return first


def fit_clip(x_train: np.ndarray, block: int = 262_144) -> dict[str, np.ndarray]:
    """Replacement values for non-finite cells, from the finite training values of each column:
    +inf -> column max, -inf -> column min, NaN -> 0 (a 0/0 rate in CICFlowMeter output).
    A column with no finite training value gets 0."""
    f = x_train.shape[1]
    hi = np.full(f, -np.inf, np.float32)
    lo = np.full(f, np.inf, np.float32)
    for i in range(0, len(x_train), block):
        a = x_train[i : i + block]
        finite = np.isfinite(a)
        hi = np.maximum(hi, np.where(finite, a, -np.inf).max(axis=0))
        lo = np.minimum(lo, np.where(finite, a, np.inf).min(axis=0))
    hi[~np.isfinite(hi)] = 0
    lo[~np.isfinite(lo)] = 0
    return {"posinf": hi.astype(np.float32), "neginf": lo.astype(np.float32), "nan": np.zeros(f, np.float32)}


def finite_rows(x: np.ndarray, block: int = 262_144) -> np.ndarray:
    """Rows whose values are all finite (in row blocks: no (N, F) temporary)."""
    out = np.empty(len(x), bool)
    for i in range(0, len(x), block):
        out[i : i + block] = np.isfinite(x[i : i + block]).all(axis=1)
    return out


def apply_clip(x: np.ndarray, clip: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Replace non-finite cells in place; returns how many of each kind were replaced."""
    counts = {}
    for kind, test in (("posinf", np.isposinf), ("neginf", np.isneginf), ("nan", np.isnan)):
        rows, cols = np.nonzero(test(x))
        x[rows, cols] = clip[kind][cols]
        counts[kind] = int(len(rows))
    return counts


@dataclass
class FlowSplits:
    """Train/val/test arrays ready for a training engine, and what was fitted on train.

    ``x_*`` are float32 (N, F), ``y_*`` int64 class indices into ``class_names``. For a 1-D CNN,
    ``x.reshape(-1, *input_shape)`` gives (N, 1, F). ``indices`` are the rows of the parsed
    table in each split; ``transform`` applies the fitted clip + scaling to new raw features.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    class_weights: np.ndarray
    feature_names: tuple[str, ...]
    scaler: dict[str, object]
    clip: dict[str, np.ndarray] | None
    indices: dict[str, np.ndarray]
    label_mode: str
    report: dict
    dataset: str = "cicids2017"

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(self.dataset, "flow-classification", self.class_names, self.input_shape)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int]:
        return (1, self.n_features)

    def transform(self, x_raw: np.ndarray) -> np.ndarray:
        """Raw features -> model input, with the statistics fitted on the training split."""
        x = np.array(x_raw, dtype=np.float32, copy=True)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected features of shape (N, {self.n_features}), got {x.shape}")
        if self.clip is not None:
            apply_clip(x, self.clip)
        return apply_scaler(x, self.scaler)  # type: ignore[arg-type]


def make_splits(
    table: FlowTable,
    *,
    label_mode: str = "binary",
    split: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    nonfinite: str = "drop",
    scale: str | None = "standard",
    all_classes: bool = False,
    relabel: Mapping[str, str | None] | None = None,
    dataset: str = "cicids2017",
    drop_duplicates: bool = True,
) -> FlowSplits:
    """Split first (stratified, seeded), then fit clip bounds, scaler and class weights on train.

    - ``label_mode``: "binary" (0 = BENIGN, 1 = attack) or "multiclass" (the table's labels).
      The split is stratified by the fine label in both modes, so it is the same rows either way.
    - ``nonfinite``: "drop" rows with Infinity/NaN (before splitting; counted per label) or
      "clip" them after splitting (see ``fit_clip``; replacements counted per split).
    - ``all_classes``: multiclass over the whole label vocabulary, absent classes included
      (weight 0); default is the labels present, in vocabulary order.
    - ``relabel``: label -> new label (or None to drop the rows); used for dataset policies such
      as the improved re-extraction's '... - Attempted' rows. Counted in the report.
    - ``drop_duplicates``: keep only the first of rows that are exact copies (every feature and the
      label, after relabelling and the non-finite policy), *before* splitting; otherwise a copy in
      train and another in test makes the test score partly a memory test. Counted per label in
      ``report["duplicates_dropped"]``.
    """
    if label_mode not in ("binary", "multiclass"):
        raise ValueError(f"label_mode must be 'binary' or 'multiclass', got {label_mode!r}")
    if nonfinite not in ("drop", "clip"):
        raise ValueError(f"nonfinite must be 'drop' or 'clip', got {nonfinite!r}")
    if scale not in ("standard", "minmax", None):
        raise ValueError(f"scale must be 'standard', 'minmax' or None, got {scale!r}")
    names = list(table.label_names)
    codes = table.label_codes
    keep = np.ones(len(codes), bool)
    report: dict = {"read": table.report, "label_mode": label_mode, "nonfinite_policy": nonfinite}

    if relabel:
        unknown = set(relabel) - set(names)
        if unknown:
            raise ValueError(f"relabel names labels not in the vocabulary: {sorted(unknown)}")
        targets = [t for t in relabel.values() if t is not None and t not in names]
        if targets:
            raise ValueError(f"relabel targets not in the vocabulary: {sorted(set(targets))}")
        before = table.label_counts()
        lookup = np.arange(len(names))
        for src, dst in relabel.items():
            lookup[names.index(src)] = -1 if dst is None else names.index(dst)
        codes = lookup[codes]
        keep &= codes >= 0
        report["relabelled"] = {src: {"to": dst, "rows": before.get(src, 0)} for src, dst in relabel.items()}

    if nonfinite == "drop":
        finite = finite_rows(table.features)
        report["rows_dropped_nonfinite"] = _counts(codes[keep & ~finite], names)
        keep &= finite
    rows = np.flatnonzero(keep)
    if drop_duplicates:
        first = first_of_duplicates(table.features, codes, rows)
        report["duplicates_dropped"] = _counts(codes[rows[~first]], names)
        report["duplicate_rows_dropped"] = int((~first).sum())
        rows = rows[first]
    if not len(rows):
        raise ValueError("no rows left to split")
    codes = codes[rows]

    (tr, va, te), train_only = stratified_split(codes, split, seed)
    if train_only:
        rare = {names[c]: n for c, n in train_only.items()}
        report["train_only_classes"] = rare
        warnings.warn(
            f"classes with fewer than 3 rows cannot be split three ways; kept in train only: {rare}",
            stacklevel=2,
        )

    if label_mode == "binary":
        class_names: tuple[str, ...] = (BENIGN, "attack")
        benign = names.index(BENIGN)
        y_all = (codes != benign).astype(np.int64)
    else:
        mapped_away = {names.index(s) for s, d in (relabel or {}).items() if d != s}
        vocabulary = np.array([c for c in range(len(names)) if c not in mapped_away], np.int64)
        chosen = vocabulary if all_classes else np.unique(codes)
        class_names = tuple(names[c] for c in chosen)
        to_class = np.full(len(names), -1, np.int64)
        to_class[chosen] = np.arange(len(chosen))
        y_all = to_class[codes]

    xs = {}
    clip = None
    for part, idx in (("train", tr), ("val", va), ("test", te)):
        xs[part] = table.features[rows[idx]]  # fancy indexing: a copy, scaled in place below
    if nonfinite == "clip":
        clip = fit_clip(xs["train"])
        report["values_clipped"] = {part: apply_clip(x, clip) for part, x in xs.items()}
    scaler = fit_scaler(xs["train"], scale)
    for x in xs.values():
        apply_scaler(x, scaler)

    y = {"train": y_all[tr], "val": y_all[va], "test": y_all[te]}
    report["split"] = {
        "seed": seed,
        "fractions": [float(v) for v in split],
        "rows": {p: int(len(i)) for p, i in (("train", tr), ("val", va), ("test", te))},
        "label_counts": {p: _counts(codes[i], names) for p, i in (("train", tr), ("val", va), ("test", te))},
    }
    return FlowSplits(
        x_train=xs["train"],
        y_train=y["train"],
        x_val=xs["val"],
        y_val=y["val"],
        x_test=xs["test"],
        y_test=y["test"],
        class_names=class_names,
        class_weights=balanced_class_weights(y["train"], len(class_names)),
        feature_names=table.feature_names,
        scaler={"kind": scale, **scaler},
        clip=clip,
        indices={"train": rows[tr], "val": rows[va], "test": rows[te]},
        label_mode=label_mode,
        report=report,
        dataset=dataset,
    )


def _counts(codes: np.ndarray, names: Sequence[str]) -> dict[str, int]:
    c = np.bincount(codes, minlength=len(names))
    return {n: int(v) for n, v in zip(names, c, strict=True) if v}
