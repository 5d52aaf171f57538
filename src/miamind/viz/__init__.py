"""Plots of training runs: learning curves, confusion matrices, segmentation overlays, attention maps,
attention gates of several runs side by side.

Every function writes one PNG, headless (Agg canvas, no pyplot, no window), atomically (temporary
file + ``os.replace``), creating parent folders. matplotlib is imported inside the functions, so
importing this package does not import it.
"""

from .attention_maps import AttentionCapture, capture_attention, plot_attention_maps
from .confusion import confusion_display_matrix, plot_confusion
from .curves import epoch_curves, plot_learning_curves
from .gate_capture import GateCapture, capture_gates
from .gate_comparison import GateColumn, pick_layer, plot_gate_comparison
from .overlays import plot_segmentation_overlays

__all__ = [
    "plot_learning_curves",
    "epoch_curves",
    "plot_confusion",
    "confusion_display_matrix",
    "plot_segmentation_overlays",
    "AttentionCapture",
    "capture_attention",
    "plot_attention_maps",
    "GateCapture",
    "capture_gates",
    "GateColumn",
    "pick_layer",
    "plot_gate_comparison",
]
