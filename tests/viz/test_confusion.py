"""Confusion-matrix plot: the drawn matrix (normalisation), input checks, readable PNGs."""

import numpy as np
import pytest
import torch

from miamind.viz import confusion_display_matrix, plot_confusion


def test_row_normalisation_is_per_true_class():
    counts = np.array([[8, 2, 0], [1, 1, 2], [0, 0, 0]])
    shown = confusion_display_matrix(counts, ["a", "b", "c"], normalize=True)
    expected = np.array([[0.8, 0.2, 0.0], [0.25, 0.25, 0.5], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(shown, expected)
    assert shown.dtype == np.float64
    # Rows with samples sum to 1; the empty class stays at zero instead of NaN.
    np.testing.assert_allclose(shown.sum(axis=1), [1.0, 1.0, 0.0])


def test_unnormalised_is_the_counts_and_accepts_tensors():
    counts = torch.tensor([[3, 1], [0, 4]])
    shown = confusion_display_matrix(counts, ["x", "y"], normalize=False)
    np.testing.assert_array_equal(shown, [[3.0, 1.0], [0.0, 4.0]])
    assert not np.shares_memory(shown, counts.numpy())


@pytest.mark.parametrize(
    "confmat, names, match",
    [
        (np.ones((2, 3)), ["a", "b"], "square"),
        (np.ones((3, 3)), ["a", "b"], "does not match 2 class_names"),
        (np.array([[1, -1], [0, 1]]), ["a", "b"], "negative"),
        (np.array([[1, np.nan], [0, 1]]), ["a", "b"], "NaN"),
        (np.ones(4), ["a", "b", "c", "d"], "square"),
    ],
)
def test_bad_confmat_errors(confmat, names, match):
    with pytest.raises(ValueError, match=match):
        confusion_display_matrix(confmat, names)


def test_plot_two_classes(tmp_path, png_check):
    out = plot_confusion(
        np.array([[50, 3], [7, 40]]), ["benign", "attack"], tmp_path / "cm.png", normalize=False
    )
    assert out == tmp_path / "cm.png"
    png_check(out, min_width=300, min_height=300)


def test_plot_fifteen_classes_with_long_names(tmp_path, png_check):
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 30, (15, 15)) + np.diag(np.full(15, 200))
    names = [f"DoS Slowhttptest variant {i}" for i in range(15)]
    out = tmp_path / "nested" / "cm15.png"
    plot_confusion(torch.as_tensor(counts), names, out)
    pixels = png_check(out, min_width=600, min_height=600)
    # The diagonal is dark (most mass), so the figure holds strongly saturated blue pixels.
    dark_blue = (pixels[..., 2] > 80) & (pixels[..., 0] < 40)
    assert dark_blue.sum() > 1000
