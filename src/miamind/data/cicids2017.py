"""CIC-IDS2017 flow features (Sharafaldin et al., ICISSP 2018), as released by the CIC.

Two layouts of the same flows are read, detected from the header:

- ``MachineLearningCVE`` (MachineLearningCSV.zip, 8 files, ~2.8 M rows): 79 columns, names with
  leading spaces, ``Fwd Header Length`` twice, last column ``Label``;
- ``TrafficLabelling`` (GeneratedLabelledFlows.zip): the same plus ``Flow ID``, ``Source IP``,
  ``Source Port``, ``Destination IP``, ``Protocol``, ``Timestamp`` (85 columns). Those six are
  identifiers (or, for Protocol, absent from MachineLearningCVE) and are dropped, so both
  layouts give the same 77 features for the same flow.

The duplicated ``Fwd Header Length`` (second copy, named ``Fwd Header Length.1`` here as pandas
does) is compared with the first copy (mismatches are reported) and dropped: 77 features, not 78.

Labels are matched to the 15 canonical CIC-IDS2017 labels (``LABELS``) after normalising the
latin-1 0x96 dash (and its mojibake forms) to '-', e.g. 'Web Attack - XSS'; matching ignores case.
Any other label is an error naming file and line, in every label mode (a typo would otherwise
silently become an 'attack' in binary mode).

Usage::

    from miamind.data.cicids2017 import load_cicids2017

    d = load_cicids2017(label_mode="multiclass")  # data root: arg, $MIAMIND_DATA, ~/.cache/...
    d.x_train.shape, d.class_names, d.class_weights, d.input_shape  # (N, 77), ..., (1, 77)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import cicflowmeter
from .fetch import Source
from .flows import (
    DEFAULT_CHUNKSIZE,
    CsvFlowDataset,
    FlowLayout,
    FlowSplits,
    FlowTable,
    PathLike,
    PathsArg,
    SplitOptions,
    describe_flows,
    make_splits,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

NAME = "cicids2017"
HOW_TO_OBTAIN = (
    "Download MachineLearningCSV.zip (or GeneratedLabelledFlows.zip) from the official page "
    "https://www.unb.ca/cic/datasets/ids-2017.html, unzip it and put the CSV files directly in "
    "<data root>/cicids2017/ (gzipped copies *.csv.gz also work). The data root is the data_dir "
    "argument, else $MIAMIND_DATA, else ~/.cache/miamind/data."
)

# `miamind data fetch cicids2017` cannot download the original release: the CSV archive is handed out
# after a registration form and no checksum is published to check it against.
FETCH = Source(
    dataset=NAME,
    folder=NAME,
    copy="the MachineLearningCVE CSVs",
    manual=(
        "the official MachineLearningCSV.zip comes after a registration form at "
        "https://www.unb.ca/cic/datasets/ids-2017.html and has no published checksum; download it by "
        "hand, unzip it and put the CSV files in <data root>/cicids2017/. "
        "`miamind data fetch cicids2017_improved` gets a public sample of the improved re-extraction"
    ),
)

# Canonical labels: BENIGN first (class 0 in binary mode), then the 14 attacks.
LABELS = (
    "BENIGN",
    "Bot",
    "DDoS",
    "DoS GoldenEye",
    "DoS Hulk",
    "DoS Slowhttptest",
    "DoS slowloris",
    "FTP-Patator",
    "Heartbleed",
    "Infiltration",
    "PortScan",
    "SSH-Patator",
    "Web Attack - Brute Force",
    "Web Attack - Sql Injection",
    "Web Attack - XSS",
)

_FEATURES_AND_LABEL = (
    "Destination Port",
    "Flow Duration",
    "Total Fwd Packets",
    "Total Backward Packets",
    "Total Length of Fwd Packets",
    "Total Length of Bwd Packets",
    *cicflowmeter.PACKET_LENGTH_STATS,
    *cicflowmeter.FLOW_RATES,
    *cicflowmeter.IAT_STATS,
    *cicflowmeter.PSH_URG_FLAGS,
    *cicflowmeter.HEADER_LENGTHS_AND_PACKET_RATES,
    "Min Packet Length",
    "Max Packet Length",
    *cicflowmeter.PACKET_LENGTH_MOMENTS,
    *cicflowmeter.FLAG_COUNTS,
    "CWE Flag Count",
    "ECE Flag Count",
    "Down/Up Ratio",
    "Average Packet Size",
    "Avg Fwd Segment Size",
    "Avg Bwd Segment Size",
    "Fwd Header Length.1",
    "Fwd Avg Bytes/Bulk",
    "Fwd Avg Packets/Bulk",
    "Fwd Avg Bulk Rate",
    "Bwd Avg Bytes/Bulk",
    "Bwd Avg Packets/Bulk",
    "Bwd Avg Bulk Rate",
    *cicflowmeter.SUBFLOWS,
    "Init_Win_bytes_forward",
    "Init_Win_bytes_backward",
    "act_data_pkt_fwd",
    "min_seg_size_forward",
    *cicflowmeter.ACTIVE_IDLE,
    "Label",
)
_DUPLICATE = {"Fwd Header Length.1": "Fwd Header Length"}

MACHINE_LEARNING_CVE = FlowLayout("MachineLearningCVE", _FEATURES_AND_LABEL, duplicates=_DUPLICATE)
TRAFFIC_LABELLING = FlowLayout(
    "TrafficLabelling",
    (
        "Flow ID",
        "Source IP",
        "Source Port",
        "Destination IP",
        "Destination Port",
        "Protocol",
        "Timestamp",
        *_FEATURES_AND_LABEL[1:],
    ),
    drop=("Flow ID", "Source IP", "Source Port", "Destination IP", "Protocol", "Timestamp"),
    duplicates=_DUPLICATE,
)
LAYOUTS = (MACHINE_LEARNING_CVE, TRAFFIC_LABELLING)
FEATURE_NAMES = MACHINE_LEARNING_CVE.feature_names
CICIDS2017 = CsvFlowDataset(NAME, (NAME,), HOW_TO_OBTAIN, LAYOUTS, LABELS)


# The dataset contract: ``describe`` a check report; ``locate`` <data root>/cicids2017 (CSV files
# directly in it: subfolders are not data files); ``check`` file(s) or a folder.
describe = describe_flows
locate = CICIDS2017.locate
check = CICIDS2017.check


def read_flows(
    paths_or_folder: PathsArg,
    *,
    layout: str = "auto",
    nonfinite: str = "drop",
    chunksize: int = DEFAULT_CHUNKSIZE,
) -> FlowTable:
    """Read CIC-IDS2017 CSV file(s) or a folder (``*.csv``, ``*.csv.gz``; gzip is detected).

    ``layout``: "auto", "MachineLearningCVE" or "TrafficLabelling". ``nonfinite``: "drop" rows
    with Infinity/NaN or "keep" them; either way they are counted per label in ``report``.
    """
    return CICIDS2017.read(paths_or_folder, layout=layout, nonfinite=nonfinite, chunksize=chunksize)


def load_table(
    data_dir: PathLike | None = None,
    *,
    path: PathsArg | None = None,
    layout: str = "auto",
    cache_dir: Path | None = None,
    chunksize: int = DEFAULT_CHUNKSIZE,
) -> FlowTable:
    """The parsed table, non-finite rows kept (the policy is applied after the split); cached."""
    return CICIDS2017.load_table(data_dir, path=path, layout=layout, cache_dir=cache_dir, chunksize=chunksize)


def load_cicids2017(
    data_dir: PathLike | None = None,
    *,
    path: PathsArg | None = None,
    layout: str = "auto",
    cache_dir: Path | None = None,
    chunksize: int = DEFAULT_CHUNKSIZE,
    **options: Unpack[SplitOptions],
) -> FlowSplits:
    """Train/val/test arrays for CIC-IDS2017.

    ``path`` (files or a folder) overrides the dataset folder found by ``locate(data_dir)``.
    The parsed, unscaled table is cached by file content; ``options`` (and their defaults) are
    those of ``flows.make_splits``: split first, stratified by label, then fit on train.
    A class with < 3 rows goes to train only (reported, with a warning).
    """
    table = load_table(data_dir, path=path, layout=layout, cache_dir=cache_dir, chunksize=chunksize)
    return make_splits(table, dataset=NAME, **options)
