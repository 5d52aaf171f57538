"""The improved CIC-IDS2017 re-extraction (Engelen, Rimmer, Joosen; distrinet, KU Leuven).

Not the CIC's MachineLearningCVE files: the traffic was re-processed with a fixed CICFlowMeter
and relabelled, so the columns (91: ``id, Flow ID, Src IP, ..., Label, Attempted Category``),
the features and the label names differ (``Portscan``, ``Botnet``, ``Web Attack - SQL
Injection``, ``Infiltration - Portscan``, ...). It is a separate dataset, ``cicids2017_improved``.

Columns dropped: identifiers ``id, Flow ID, Src IP, Src Port, Dst IP, Timestamp`` and the
non-feature ``Attempted Category``; 83 features remain (``Dst Port`` and ``Protocol`` included).

'Attempted' rows: the full release labels flows that an attack tool opened but that carry no
attack behaviour (e.g. the connection failed or no payload was sent) as '<attack> - Attempted'
(e.g. 'DoS Hulk - Attempted', 11 such labels). The traffic they carry is not an attack, so by
default they count as BENIGN (``attempted="benign"``);
``"drop"`` removes them, ``"keep"`` keeps them as their own classes. The choice and the rows it
touched are in ``report["relabelled"]``. (The shared 25,127-row sample has no attempted rows.)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import cicflowmeter
from .fetch import Remote, Source
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

NAME = "cicids2017_improved"
# Where a copy may sit under the data root: its own folder, or the sample shipped beside CIC-IDS2017.
FOLDERS = ("cicids2017_improved", "cicids2017/alt_CICIDS2017_improved_distrinet_sample_rnd2500")
HOW_TO_OBTAIN = (
    "Download the improved CIC-IDS2017 CSVs (monday.csv ... friday.csv) from "
    "https://intrusion-detection.distrinet-research.be/CNS2022/ and put them directly in "
    "<data root>/cicids2017_improved/ (gzipped *.csv.gz also work). The data root is the "
    "data_dir argument, else $MIAMIND_DATA, else ~/.cache/miamind/data."
)

# What `miamind data fetch cicids2017_improved` downloads: the full release (distrinet-research.be)
# publishes no checksum, so the fetchable copy is a public per-class random sample (<= 2,500 rows per
# class, 25,127 rows, every class present) in ScubaInstructor/fuh, pinned to the commit that last
# changed the files. sha256 values are of the copies taken from that commit (PROVENANCE.md of the
# shared data: gzipped, otherwise unchanged), not published by the authors.
FUH_COMMIT = "d0a060811fa8b867f1e46fd0c21a4e3bab763d16"
FUH_FOLDER = "nids-daten/sampled_CICIDS2017_improved_rnd_2500"
FUH_MIRRORS = (
    "https://raw.githubusercontent.com/ScubaInstructor/fuh/{commit}/{folder}/{name}",
    "https://github.com/ScubaInstructor/fuh/raw/{commit}/{folder}/{name}",
    "https://cdn.jsdelivr.net/gh/ScubaInstructor/fuh@{commit}/{folder}/{name}",
)
SAMPLE_SHA256: dict[str, str] = {
    "BENIGN_2500.csv": "adfd6359996aa569e4c111ed3e8226a73611d126b5ff750a9c6960cb49696983",
    "Botnet_736.csv": "55b49f70d1d7df13644a3d5f01abb742e35cda5d952ee43c737eaa38a1a6ea79",
    "DDoS_2500.csv": "649426c17372f70bcd12af6fb7d333b98c96f558915ef60313fa3087c06f85d8",
    "DoS_GoldenEye_2500.csv": "99571e3d8a722a53d0632ab9e3d3600b4411e57a392cba58e921912be75a994e",
    "DoS_Hulk_2500.csv": "0a68edaa84548ff4e8d155fcbf36afd942c0f18ebe1fc529dc06144dcd2a750e",
    "DoS_Slowhttptest_1740.csv": "4159ba005254aa8b0a0c04b47844f2221369279eedf19308fa9875cc075f3534",
    "DoS_Slowloris_2500.csv": "2291e442b950a6892603c82a696d00b48e58d69a96272d074889a67722d654ce",
    "FTP-Patator_2500.csv": "d063124f7d6c38837ff4f238444b386d8bf3e49d443e84150c3b5ba3f68498ac",
    "Heartbleed_11.csv": "bf610cc626325778dda3e54b431cc60142f6b8bffedb1f9b8a7f9481a673ea55",
    "Infiltration_-_Portscan_2500.csv": "bb449e82862a06156dd0e9f15d2ef9709ad778c0a0eeb414913fe9415c9d3301",
    "Infiltration_36.csv": "3cd57b9cd7a7a9f7fa98f2c4d2147febafe551cc9d9b86a949a6947cda576beb",
    "Portscan_2500.csv": "e92fd395ee6f73145faadd548d177cd9b9d5b5e47aee899b711560160de52db7",
    "SSH-Patator_2500.csv": "aeb6c38c523eae830bfd6b75a079c66295a6243aff5dd544f1f417490c76d2d9",
    "Web_Attack_-_Brute_Force_73.csv": "d244df46f686a48ded36b0328ad14e80beee1c5560fede0e3f07cea02ee030d9",
    "Web_Attack_-_SQL_Injection_13.csv": "aca6ed973bf1ace011a44ddfc3914393895828666314a018e7581e27343be1e0",
    "Web_Attack_-_XSS_18.csv": "51ffc2d6d24497e11768b2b80beca3a15353d76c3e28f5c98affc24e8affb94e",
}
FETCH = Source(
    dataset=NAME,
    folder=FOLDERS[0],
    copy=(
        "a per-class sample of the improved re-extraction "
        "(25,127 rows, 16 CSVs from ScubaInstructor/fuh; sha256-checked)"
    ),
    files=tuple(
        Remote(
            name,
            tuple(m.format(commit=FUH_COMMIT, folder=FUH_FOLDER, name=name) for m in FUH_MIRRORS),
            f"sha256:{h}",
        )
        for name, h in SAMPLE_SHA256.items()
    ),
)

ATTACKS = (
    "Botnet",
    "DDoS",
    "DoS GoldenEye",
    "DoS Hulk",
    "DoS Slowhttptest",
    "DoS Slowloris",
    "FTP-Patator",
    "Heartbleed",
    "Infiltration",
    "Infiltration - Portscan",
    "Portscan",
    "SSH-Patator",
    "Web Attack - Brute Force",
    "Web Attack - SQL Injection",
    "Web Attack - XSS",
)
# Attacks with '- Attempted' rows in the full release.
ATTEMPTED = tuple(
    f"{a} - Attempted"
    for a in (
        "Botnet",
        "DoS GoldenEye",
        "DoS Hulk",
        "DoS Slowhttptest",
        "DoS Slowloris",
        "FTP-Patator",
        "Infiltration",
        "SSH-Patator",
        "Web Attack - Brute Force",
        "Web Attack - SQL Injection",
        "Web Attack - XSS",
    )
)
LABELS = ("BENIGN", *ATTACKS, *ATTEMPTED)

_IDENTIFIERS = ("id", "Flow ID", "Src IP", "Src Port", "Dst IP", "Timestamp", "Attempted Category")
IMPROVED = FlowLayout(
    "CICIDS2017-improved",
    (
        "id",
        "Flow ID",
        "Src IP",
        "Src Port",
        "Dst IP",
        "Dst Port",
        "Protocol",
        "Timestamp",
        "Flow Duration",
        "Total Fwd Packet",
        "Total Bwd packets",
        "Total Length of Fwd Packet",
        "Total Length of Bwd Packet",
        *cicflowmeter.PACKET_LENGTH_STATS,
        *cicflowmeter.FLOW_RATES,
        *cicflowmeter.IAT_STATS,
        *cicflowmeter.PSH_URG_FLAGS,
        "Fwd RST Flags",
        "Bwd RST Flags",
        *cicflowmeter.HEADER_LENGTHS_AND_PACKET_RATES,
        "Packet Length Min",
        "Packet Length Max",
        *cicflowmeter.PACKET_LENGTH_MOMENTS,
        *cicflowmeter.FLAG_COUNTS,
        "CWR Flag Count",
        "ECE Flag Count",
        "Down/Up Ratio",
        "Average Packet Size",
        "Fwd Segment Size Avg",
        "Bwd Segment Size Avg",
        "Fwd Bytes/Bulk Avg",
        "Fwd Packet/Bulk Avg",
        "Fwd Bulk Rate Avg",
        "Bwd Bytes/Bulk Avg",
        "Bwd Packet/Bulk Avg",
        "Bwd Bulk Rate Avg",
        *cicflowmeter.SUBFLOWS,
        "FWD Init Win Bytes",
        "Bwd Init Win Bytes",
        "Fwd Act Data Pkts",
        "Fwd Seg Size Min",
        *cicflowmeter.ACTIVE_IDLE,
        "ICMP Code",
        "ICMP Type",
        "Total TCP Flow Time",
        "Label",
        "Attempted Category",
    ),
    drop=_IDENTIFIERS,
)
LAYOUTS = (IMPROVED,)
FEATURE_NAMES = IMPROVED.feature_names
CICIDS2017_IMPROVED = CsvFlowDataset(NAME, FOLDERS, HOW_TO_OBTAIN, LAYOUTS, LABELS)


# The dataset contract (see ``cicids2017``); ``locate`` tries ``FOLDERS`` in order.
describe = describe_flows
locate = CICIDS2017_IMPROVED.locate
check = CICIDS2017_IMPROVED.check


def read_flows(
    paths_or_folder: PathsArg,
    *,
    nonfinite: str = "drop",
    chunksize: int = DEFAULT_CHUNKSIZE,
) -> FlowTable:
    """Read improved-CIC-IDS2017 CSV file(s) or a folder; labels keep their '- Attempted' form."""
    return CICIDS2017_IMPROVED.read(paths_or_folder, nonfinite=nonfinite, chunksize=chunksize)


def attempted_relabel(policy: str) -> dict[str, str | None]:
    """Label mapping for the '- Attempted' rows: "benign" -> BENIGN, "drop" -> removed, "keep"."""
    if policy == "benign":
        return {a: "BENIGN" for a in ATTEMPTED}
    if policy == "drop":
        return {a: None for a in ATTEMPTED}
    if policy == "keep":
        return {}
    raise ValueError(f"attempted must be 'benign', 'drop' or 'keep', got {policy!r}")


def load_table(
    data_dir: PathLike | None = None,
    *,
    path: PathsArg | None = None,
    cache_dir: Path | None = None,
    chunksize: int = DEFAULT_CHUNKSIZE,
) -> FlowTable:
    """The parsed table, non-finite rows kept (the policy is applied after the split); cached."""
    return CICIDS2017_IMPROVED.load_table(data_dir, path=path, cache_dir=cache_dir, chunksize=chunksize)


def load_cicids2017_improved(
    data_dir: PathLike | None = None,
    *,
    path: PathsArg | None = None,
    attempted: str = "benign",
    cache_dir: Path | None = None,
    chunksize: int = DEFAULT_CHUNKSIZE,
    **options: Unpack[SplitOptions],
) -> FlowSplits:
    """Train/val/test arrays for the improved re-extraction; same options as ``load_cicids2017``
    plus ``attempted`` (see the module docstring)."""
    table = load_table(data_dir, path=path, cache_dir=cache_dir, chunksize=chunksize)
    return make_splits(table, relabel=attempted_relabel(attempted), dataset=NAME, **options)
