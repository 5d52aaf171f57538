"""Column names that CICFlowMeter writes with the same spelling in both CIC-IDS2017 extractions.

The CIC's release (``cicids2017``, CICFlowMeter-V3) and the improved re-extraction
(``cicids2017_improved``, a fixed CICFlowMeter) name some columns differently (``Total Fwd
Packets`` / ``Total Fwd Packet``, ``Min Packet Length`` / ``Packet Length Min``, ...) but these
groups alike, in this order. Each dataset's header is spelled out in its module from these
groups and its own names, so a group changes in one place for both.
"""

from __future__ import annotations

# Per-direction packet length statistics.
PACKET_LENGTH_STATS = (
    "Fwd Packet Length Max",
    "Fwd Packet Length Min",
    "Fwd Packet Length Mean",
    "Fwd Packet Length Std",
    "Bwd Packet Length Max",
    "Bwd Packet Length Min",
    "Bwd Packet Length Mean",
    "Bwd Packet Length Std",
)
FLOW_RATES = ("Flow Bytes/s", "Flow Packets/s")
# Inter-arrival times: of the whole flow, then per direction.
IAT_STATS = (
    "Flow IAT Mean",
    "Flow IAT Std",
    "Flow IAT Max",
    "Flow IAT Min",
    "Fwd IAT Total",
    "Fwd IAT Mean",
    "Fwd IAT Std",
    "Fwd IAT Max",
    "Fwd IAT Min",
    "Bwd IAT Total",
    "Bwd IAT Mean",
    "Bwd IAT Std",
    "Bwd IAT Max",
    "Bwd IAT Min",
)
PSH_URG_FLAGS = ("Fwd PSH Flags", "Bwd PSH Flags", "Fwd URG Flags", "Bwd URG Flags")
HEADER_LENGTHS_AND_PACKET_RATES = ("Fwd Header Length", "Bwd Header Length", "Fwd Packets/s", "Bwd Packets/s")
PACKET_LENGTH_MOMENTS = ("Packet Length Mean", "Packet Length Std", "Packet Length Variance")
FLAG_COUNTS = (
    "FIN Flag Count",
    "SYN Flag Count",
    "RST Flag Count",
    "PSH Flag Count",
    "ACK Flag Count",
    "URG Flag Count",
)
SUBFLOWS = ("Subflow Fwd Packets", "Subflow Fwd Bytes", "Subflow Bwd Packets", "Subflow Bwd Bytes")
ACTIVE_IDLE = (
    "Active Mean",
    "Active Std",
    "Active Max",
    "Active Min",
    "Idle Mean",
    "Idle Std",
    "Idle Max",
    "Idle Min",
)
