"""Feature columns of a flow CSV, by name, for scoring new flows (no labels needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from .csv_chunks import csv_chunks, numeric_column
from .layout import read_header


def read_feature_csv(path: Path, feature_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(float32 raw features (N, F) in ``feature_names`` order, file line numbers (N,)).

    For scoring new flows (``miamind predict``): the file holds the training feature columns under
    their CICFlowMeter names, in any order; other columns (identifiers, ``Label``) are ignored.
    Read with the dataset reader's rules: repeated header lines and empty lines are skipped,
    ``Infinity``/``NaN`` are accepted, any other text in a feature column is a DataError.
    """
    header = read_header(path)
    missing = [n for n in feature_names if n not in header]
    if missing:
        raise DataError(
            path,
            f"missing feature column(s) {missing[:8]}{' ...' if len(missing) > 8 else ''} "
            f"({len(missing)} of {len(feature_names)})",
            where="line 1",
        )
    pos = [header.index(n) for n in feature_names]
    xs: list[np.ndarray] = []
    lines: list[np.ndarray] = []
    try:
        with csv_chunks(path, sorted(set(pos)), pos[0], 100_000) as (chunks, _):
            for chunk in chunks:
                line = chunk.index.to_numpy() + 2  # line 1 is the header
                # Blank lines (and repeated header lines, blanked by the reader) are all-missing rows.
                cells = chunk[pos]
                keep = ~cells.isna().all(axis=1).to_numpy()
                # A repeated header spelled differently: its first feature cell is a column name.
                keep &= ~(cells[pos[0]].astype(str).str.strip() == feature_names[0]).to_numpy()
                cells, line = cells[keep], line[keep]
                x = np.empty((len(cells), len(pos)), np.float32)
                with np.errstate(over="ignore"):  # beyond float32 range becomes inf, as in training
                    for j, (p, name) in enumerate(zip(pos, feature_names, strict=True)):
                        x[:, j] = numeric_column(path, cells[p], name, line).to_numpy(np.float64)
                xs.append(x)
                lines.append(line)
    except pd.errors.ParserError as e:
        raise DataError(path, f"malformed CSV: {e}") from None
    except (OSError, EOFError) as e:
        raise DataError(path, f"cannot read file: {e}") from None
    if not xs or not sum(len(x) for x in xs):
        raise DataError(path, "no data rows")
    return np.concatenate(xs), np.concatenate(lines)
