"""TEMPORARY placeholder so the package imports while mia.py is being written."""
import torch.nn as nn


class MIAMind(nn.Module):
    pass


MIAMindAdd = MIAMindSeq = MIAMindCode = MIAMindAdaptive = MIAMind
