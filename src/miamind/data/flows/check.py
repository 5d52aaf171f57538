"""What ``check`` reports for flow CSV files: layout, checksums, rows per label read / kept / dropped."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..cache import sha256_file
from .table import FlowTable


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


def describe_flows(report: dict) -> str:
    """Which copy of a flow dataset a ``check`` report describes: files, rows and labels read."""
    rows, labels = report.get("rows_read", 0), len(report.get("label_counts_read", {}))
    return f"{len(report.get('files', []))} CSV file(s), {rows:,} rows, {labels} labels"
