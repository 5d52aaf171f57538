"""Plots of training runs: learning curves, confusion matrices, segmentation overlays, attention maps.

Every function writes one PNG, headless (Agg canvas, no pyplot, no window), atomically (temporary
file + ``os.replace``), creating parent folders. matplotlib is imported inside the functions, so
importing this package does not import it.
"""

from .attention_maps import AttentionCapture, capture_attention, plot_attention_maps
from .confusion import confusion_display_matrix, plot_confusion
from .curves import epoch_curves, plot_learning_curves
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
]
