"""Segmentation overlays: PNG content (error colours where errors are), input checks."""

import numpy as np
import pytest
import torch

from miamind.viz import plot_segmentation_overlays
from miamind.viz.overlays import FALSE_POSITIVE_RGB, MISSED_RGB


def _slices(n=2, size=48):
    yy, xx = np.mgrid[:size, :size]
    membrane = (xx % 12 < 2) | (yy % 16 < 2)
    target = np.where(membrane, 0, 1)[None].repeat(n, axis=0)  # 0 = membrane, 1 = cell
    rng = np.random.default_rng(0)
    images = (target + rng.normal(0, 0.3, target.shape)).astype(np.float32)
    return images, target


def _has_colour(pixels, rgb, tol=3):
    want = np.round(np.array(rgb) * 255)
    return bool(np.any(np.all(np.abs(pixels.astype(int) - want) <= tol, axis=-1)))


def test_error_colours_show_exactly_the_error_kinds(tmp_path, png_check):
    images, target = _slices()
    pred = target.copy()
    pred[0, 20:30, 20:30] = 0  # false membrane only
    out = plot_segmentation_overlays(torch.from_numpy(images)[:, None], target, pred, tmp_path / "a.png")
    pixels = png_check(out, min_width=800, min_height=400)
    # The legend also shows both colours, so check the error panels only: the right quarter above it.
    panels = pixels[: int(pixels.shape[0] * 0.85), int(pixels.shape[1] * 0.76) :]
    assert _has_colour(panels, FALSE_POSITIVE_RGB)
    assert not _has_colour(panels, MISSED_RGB)

    pred = target.copy()
    pred[1, 5:40, 0:2] = 1  # missed membrane only
    pixels = png_check(plot_segmentation_overlays(images, torch.from_numpy(target), pred, tmp_path / "b.png"))
    panels = pixels[: int(pixels.shape[0] * 0.85), int(pixels.shape[1] * 0.76) :]
    assert _has_colour(panels, MISSED_RGB)
    assert not _has_colour(panels, FALSE_POSITIVE_RGB)


def test_three_classes_and_max_slices(tmp_path, png_check):
    images, target = _slices(n=5, size=32)
    target = target.copy()
    target[:, :8, :8] = 2
    out = plot_segmentation_overlays(
        images,
        target,
        np.roll(target, 3, axis=2),
        tmp_path / "c.png",
        class_names=("membrane", "cell", "mitochondrion"),
        max_slices=2,
    )
    pixels = png_check(out)
    assert pixels.shape[0] < 900  # 2 rows, not 5


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda i, t, p: (i[:, None].repeat(3, 1), t, p), r"images: expected \(N, 1, H, W\)"),
        (lambda i, t, p: (i, t[:, :-1], p), "targets: expected shape"),
        (lambda i, t, p: (i, t, p + 1), r"preds: class indices must lie in \[0, 2\)"),
        (lambda i, t, p: (i, t.astype(float) + 0.5, p), "targets: expected integer class indices"),
        (lambda i, t, p: (i[:0], t[:0], p[:0]), "no slices"),
    ],
)
def test_bad_inputs(tmp_path, change, match):
    images, target = _slices()
    args = change(images, target, target.copy())
    with pytest.raises(ValueError, match=match):
        plot_segmentation_overlays(*args, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
