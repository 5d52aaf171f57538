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
float32 matrix plus one chunk (``miamind.bench.csv_memory`` measures it; results/data has the numbers).

Splitting (``make_splits``) is stratified with a fixed seed and comes first; every fitted
statistic (non-finite clip bounds, scaler, class weights) is computed on the training split only.

One concept a module (its docstring says which).
"""

from __future__ import annotations

from .check import describe_flows, summarise_for_check
from .clean import apply_clip, finite_rows, first_of_duplicates, fit_clip
from .csv_chunks import NA_TOKENS, RepeatedHeaderFilter, csv_chunks, numeric_column
from .dataset import CsvFlowDataset
from .features import read_feature_csv
from .files import CSV_SUFFIXES, PathLike, PathsArg, csv_files_in, locate_csv_folder, resolve_files
from .labels import BENIGN, normalise_label
from .layout import FlowLayout, detect_layout, read_header
from .read import DEFAULT_CHUNKSIZE, read_flow_files
from .splits import FlowSplits, SplitOptions, make_splits
from .table import PARSER_VERSION, FlowTable, cached_table

__all__ = [
    "BENIGN",
    "CSV_SUFFIXES",
    "DEFAULT_CHUNKSIZE",
    "NA_TOKENS",
    "PARSER_VERSION",
    "CsvFlowDataset",
    "FlowLayout",
    "FlowSplits",
    "FlowTable",
    "PathLike",
    "PathsArg",
    "RepeatedHeaderFilter",
    "SplitOptions",
    "apply_clip",
    "describe_flows",
    "cached_table",
    "csv_chunks",
    "csv_files_in",
    "detect_layout",
    "finite_rows",
    "first_of_duplicates",
    "fit_clip",
    "locate_csv_folder",
    "make_splits",
    "normalise_label",
    "numeric_column",
    "read_feature_csv",
    "read_flow_files",
    "read_header",
    "resolve_files",
    "summarise_for_check",
]
