"""``load_isbi2012``: the slices, decoded once and cached by the source files' contents."""

from __future__ import annotations

from pathlib import Path

from ..cache import cached_arrays, fingerprint
from .arrays import IsbiArrays
from .encoding import CELL_TARGET, CELL_VALUE, CLASS_NAMES, MEMBRANE_TARGET, MEMBRANE_VALUE
from .folds import DEFAULT_FOLD, N_FOLDS
from .layout import find_layout, locate, read_layout
from .release import NAME, PathLike

ISBI_META: dict[str, object] = {
    "name": NAME,
    "task": "binary semantic segmentation of EM slices (membrane vs cell interior)",
    "class_names": list(CLASS_NAMES),
    "label_values": {"membrane": MEMBRANE_VALUE, "cell": CELL_VALUE},
    "target_values": {"membrane": MEMBRANE_TARGET, "cell": CELL_TARGET},
    "target_encoding": "target = class index into class_names: 0 = membrane, 1 = cell (= label // 255)",
    "channels": 1,
    "image_dtype": "uint8",
    "n_folds": N_FOLDS,
    "default_fold": DEFAULT_FOLD,
    "fold_scheme": "contiguous blocks of adjacent slices (see kfold_slices)",
}

_CACHE_FORMAT = "v1"  # bump when the cached arrays change meaning


def load_isbi2012(
    data_dir: PathLike | None = None,
    *,
    path: PathLike | None = None,
    source: str = "auto",
    cache_dir: PathLike | None = None,
) -> IsbiArrays:
    """Load the ISBI 2012 slices from ``path`` (the dataset folder) or ``locate(data_dir)``.

    ``source``: 'auto' (TIFF stacks when present, else PNG folders), 'tif' or 'png'. Decoded
    arrays are cached (``data.cache.cached_arrays``) under a key made from the source files'
    contents, so a changed file is decoded afresh; a bad file raises ``DataError`` and caches
    nothing.
    """
    root = Path(path) if path is not None else locate(data_dir)
    layout = find_layout(root, source)
    fp = fingerprint(layout.source_files())
    key = f"{layout.kind}-{_CACHE_FORMAT}-{fp[:32]}"
    arrays = cached_arrays(NAME, key, lambda: read_layout(layout), Path(cache_dir) if cache_dir else None)
    train_images = arrays["train_images"]
    meta = dict(ISBI_META)
    meta.update(
        source=layout.kind,
        root=str(root),
        fingerprint=fp,
        n_train=int(len(train_images)),
        n_test=int(len(arrays["test_images"])),
        input_shape=[1, int(train_images.shape[1]), int(train_images.shape[2])],
    )
    return IsbiArrays(arrays["train_images"], arrays["train_labels"], arrays["test_images"], meta)
