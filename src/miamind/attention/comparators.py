"""Comparator attention layers (placeholder while being written)."""
