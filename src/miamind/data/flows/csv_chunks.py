"""CSV bytes -> pandas chunks of raw cells: repeated header lines blanked, numeric columns checked."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from ..errors import DataError
from .files import first_line, open_binary

# Cells read as missing. Deliberately short: any other text in a numeric column is an error.
NA_TOKENS = ("", "NaN", "nan")


def numeric_column(path: Path, col: pd.Series, name: str, lines: np.ndarray) -> pd.Series:
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


class RepeatedHeaderFilter(io.RawIOBase):
    """Byte stream in which exact copies of the header line inside the file become empty lines.

    Concatenated copies of the data repeat the header line mid-file; left in, it turns every
    column of its chunk into text, which is much slower to convert. Blanking it here (the line
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
def csv_chunks(
    path: Path, usecols: list[int], label_pos: int, chunksize: int
) -> Iterator[tuple[Iterator[pd.DataFrame], RepeatedHeaderFilter]]:
    """The data lines (after the header) as frames of at most ``chunksize`` rows, indexed from 0.

    Bytes are decoded as latin-1 (any byte decodes, as the released files need); only
    ``NA_TOKENS`` count as missing; blank lines are kept (as all-missing rows) so that row
    index + 2 is the file line number.
    """
    header = first_line(path).rstrip(b"\r\n")
    stream = RepeatedHeaderFilter(open_binary(path), header)
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
                chunksize=chunksize,  # low_memory stays on: faster than off
            )
        except pd.errors.EmptyDataError:  # a header line and nothing else
            yield iter(()), stream
            return
        with reader, warnings.catch_warnings():
            # Mixed types only arise in a column holding text, which numeric_column reports.
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            yield reader, stream
