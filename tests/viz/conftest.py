"""Helpers for the plot tests: a written PNG must be a real, non-trivial image."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def check_png(path: Path, min_width: int = 200, min_height: int = 150) -> np.ndarray:
    """Open ``path`` as a PNG, check its size and that it is not one flat colour; return its RGB pixels."""
    path = Path(path)
    assert path.is_file(), f"{path} was not written"
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()  # decodes every row: a truncated file fails here
        width, height = image.size
        pixels = np.asarray(image.convert("RGB"))
    assert width >= min_width and height >= min_height, f"{path}: only {width}x{height} pixels"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, f"{path}: (almost) a single colour"
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, f"temporary files left next to {path}: {leftovers}"
    return pixels


@pytest.fixture
def png_check():
    return check_png
