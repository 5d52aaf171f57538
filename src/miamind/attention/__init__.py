"""Attention layers: MIA-Mind (paper form and variants) and comparators, behind one registry."""

from .comparators import (
    CBAM,
    CoordAttention,
    EfficientChannelAttention,
    GatherExciteBlock,
    GlobalContextBlock,
    SimAM,
    SqueezeExcite,
    TripletAttention,
)

# Importing the layer modules registers their names (mia*, se, eca, cbam, ...).
from .mia import MIAMind, MIAMindAdaptive, MIAMindAdd, MIAMindCode, MIAMindSeq
from .registry import create_attention, get_attention, list_attention, register_attention

__all__ = [
    "MIAMind",
    "MIAMindAdd",
    "MIAMindSeq",
    "MIAMindCode",
    "MIAMindAdaptive",
    "SqueezeExcite",
    "EfficientChannelAttention",
    "CBAM",
    "GlobalContextBlock",
    "GatherExciteBlock",
    "CoordAttention",
    "TripletAttention",
    "SimAM",
    "create_attention",
    "get_attention",
    "list_attention",
    "register_attention",
]
