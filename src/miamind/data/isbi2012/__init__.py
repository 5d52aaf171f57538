"""ISBI 2012 EM segmentation challenge ("membrane"): loading, validation, folds, crops.

The dataset is one serial-section transmission EM volume of the *Drosophila* ventral nerve cord:
30 labelled training slices and 30 unlabelled test slices, each 512 x 512, 8-bit grayscale.

Label and target encodings (named here once so nobody has to guess):

- **label files** (``train-labels.tif`` / ``train/label/{i}.png``): ``MEMBRANE_VALUE = 0`` (black)
  and ``CELL_VALUE = 255`` (white, cell interior). Any other value is a ``DataError``.
- **training targets** (what a loss sees): the class index into ``CLASS_NAMES``, so
  ``MEMBRANE_TARGET = 0`` and ``CELL_TARGET = 1``; i.e. ``target = label // 255``, the convention
  of the zhixuhao/unet Keras U-Net (labels / 255) on which most published numbers for this
  data rest. A binary "foreground" metric on these targets (e.g. Dice of class 1) therefore
  scores **cell interior**; score membrane as class 0 and say so. Use ``labels_to_target`` and
  ``target_to_labels`` rather than re-deriving the mapping.

Layouts under ``<data root>/isbi2012/`` (``source="auto"`` prefers the TIFF stacks):

- ``tif``: ``train-volume.tif``, ``train-labels.tif``, ``test-volume.tif`` (multi-page, N x H x W);
- ``png``: ``train/image/{i}.png``, ``train/label/{i}.png``, ``test/image/{i}.png`` with
  ``i = 0..N-1`` sorted numerically (``test/{i}.png`` as in the U-Net repo is accepted too).
  The test split is optional in both layouts (then ``test_images`` has 0 slices).

The test slices have no labels, so evaluation uses held-out *training* slices:
``kfold_slices`` splits the slices into contiguous blocks (default 5 folds of 6) and
``DEFAULT_FOLD`` names the held-out block used unless told otherwise. Training samples come from
``random_crops`` (random crop + flips + 90-degree rotations, identical for image and target) drawn
only from the training slices of a fold; evaluation runs on whole validation slices
(``IsbiFold.val_images``), padded with ``pad_to_multiple`` when a network needs it.

One concept a module (its docstring says which).
"""

from __future__ import annotations

from .arrays import IsbiArrays, IsbiFold
from .check import check, describe
from .encoding import (
    CELL_TARGET,
    CELL_VALUE,
    CLASS_NAMES,
    MEMBRANE_TARGET,
    MEMBRANE_VALUE,
    labels_to_target,
    membrane_fraction,
    target_to_labels,
)
from .folds import DEFAULT_FOLD, N_FOLDS, kfold_slices
from .layout import locate
from .load import ISBI_META, load_isbi2012
from .read import read_png, read_tif_stack
from .release import (
    FETCH,
    HOW_TO_OBTAIN,
    NAME,
    PNG_DIRS,
    PNG_SHA256,
    PNG_TEST_FALLBACK,
    TIF_FILES,
    UNET_COMMIT,
    UNET_MIRRORS,
    PathLike,
)
from .tensors import images_to_tensor, pad_to_multiple, random_crops, unpad

__all__ = [
    "CELL_TARGET",
    "CELL_VALUE",
    "CLASS_NAMES",
    "DEFAULT_FOLD",
    "FETCH",
    "HOW_TO_OBTAIN",
    "ISBI_META",
    "MEMBRANE_TARGET",
    "MEMBRANE_VALUE",
    "NAME",
    "N_FOLDS",
    "PNG_DIRS",
    "PNG_SHA256",
    "PNG_TEST_FALLBACK",
    "TIF_FILES",
    "UNET_COMMIT",
    "UNET_MIRRORS",
    "IsbiArrays",
    "IsbiFold",
    "PathLike",
    "check",
    "describe",
    "images_to_tensor",
    "kfold_slices",
    "labels_to_target",
    "load_isbi2012",
    "locate",
    "membrane_fraction",
    "pad_to_multiple",
    "random_crops",
    "read_png",
    "read_tif_stack",
    "target_to_labels",
    "unpad",
]
