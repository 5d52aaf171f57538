"""mia-mind: the MIA-Mind attention mechanism (arXiv 2504.19080) and an experiment toolkit."""
from .attention import (
    MIAMind, MIAMindAdaptive, MIAMindAdd, MIAMindCode, MIAMindSeq,
    create_attention, get_attention, list_attention, register_attention,
)

__version__ = "0.1.0"
__all__ = [
    "MIAMind", "MIAMindAdd", "MIAMindSeq", "MIAMindCode", "MIAMindAdaptive",
    "create_attention", "get_attention", "list_attention", "register_attention", "__version__",
]
