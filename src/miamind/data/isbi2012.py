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
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .cache import cached_arrays, fingerprint, sha256_file
from .errors import DataError, DatasetNotFoundError
from .fetch import Remote, Source
from .info import DatasetInfo
from .root import data_root
from .splits import kfold_blocks

PathLike = str | Path

NAME = "isbi2012"
HOW_TO_OBTAIN = (
    "Get the ISBI 2012 EM segmentation challenge data (https://imagej.net/events/isbi-2012-segmentation-challenge, "
    "originally http://brainiac2.mit.edu/isbi_challenge/) and put train-volume.tif, train-labels.tif and "
    "test-volume.tif in <data root>/isbi2012/; or copy the PNG export from https://github.com/zhixuhao/unet "
    "(data/membrane/train/image, data/membrane/train/label, data/membrane/test) to "
    "<data root>/isbi2012/train/image/{i}.png, train/label/{i}.png, test/image/{i}.png. "
    "The data root is the data_dir argument, else $MIAMIND_DATA, else ~/.cache/miamind/data."
)

# What `miamind data fetch isbi2012` downloads: the PNG export in the U-Net repository (the challenge
# site itself asks for a registration), pinned to the commit that added the files, from three hosts
# serving the same Git blobs. No checksum is published for these PNGs: the sha256 values are of the
# copies taken from that commit with `git show` (PROVENANCE.md of the shared data), so a fetch gets
# byte-for-byte what the shipped copy holds, or nothing.
UNET_COMMIT = "909ae9b5fefd8a55900e24a771b073b1d4ef70ff"
UNET_MIRRORS = (
    "https://raw.githubusercontent.com/zhixuhao/unet/{commit}/data/membrane/{path}",
    "https://github.com/zhixuhao/unet/raw/{commit}/data/membrane/{path}",
    "https://cdn.jsdelivr.net/gh/zhixuhao/unet@{commit}/data/membrane/{path}",
)
#: dataset-folder path -> sha256; test slices sit in data/membrane/test/{i}.png in the repository
PNG_SHA256: dict[str, str] = {
    "train/image/0.png": "12c0ed6f42fc09f512abf6b354f217c950e4c8223b57a0315449b62a14556523",
    "train/image/1.png": "2cfc7ee635a6f85d5faf5c82a71d3a37bf5af4784b554964e3e07193e3ee2166",
    "train/image/2.png": "fe60d8d4f93102666a23a18d718b4b59fab8e616987d11c5072f4a87fac7301f",
    "train/image/3.png": "636d16cbb02f99dda4c9fb6db98dfba066142afa981ffdcfaf54453982e8250c",
    "train/image/4.png": "991fb3a8e4abc73da1d6159ca28fa4397f0a8351f30a8ba3669c86414d2ce239",
    "train/image/5.png": "7e9d9fb787664336d6f2cd68b23986f04527e7f8f494410983b4d70c6de1de3b",
    "train/image/6.png": "7c0a87933ffc72f4ff02f5996d9c3f69fe9a0b5277507415743ad8afb5e5d308",
    "train/image/7.png": "19f2c25716107d41008c83ba8a814ae47a090e00dea766dde38dce1f00899270",
    "train/image/8.png": "a8979e4abd1a10af9ca75e614d97875659adbd8ee3a68eba483bf556cfe3023d",
    "train/image/9.png": "730ebf435ab0f6e625d342552ad03736799fd660d0c6af744674c61a46aa082a",
    "train/image/10.png": "7c3717bcd48c4b7e5c878d7f0b809b8687a4e6fac471f3863de320a82ee72b8a",
    "train/image/11.png": "dd7857b25ca1417f87c282750e22c50947f75e81fa032d4e0c96b902c9dc9757",
    "train/image/12.png": "9f8eff9239bb764d51524a998387a7babcff9f62161804651b030b81aabd5ab8",
    "train/image/13.png": "377e5cdbcd7f0ac7336f482fc7ead7446887863f26769b3841fe98aadca77dad",
    "train/image/14.png": "f50d2d77acd2df564c5f0f40b1b24cd929f5944460aa4cd90c422cb5cef33a59",
    "train/image/15.png": "3e13fdea09accc14f46fb2f3ffa1e882cdd9c53b28a6842c4c10229692c7d1a4",
    "train/image/16.png": "ffc951c12450f94129582c16fd0d4b165c4a31469b0c42d966f07c183d3132e2",
    "train/image/17.png": "0f4f7e8e0619e4c7d517ac68d3789a3b6248253747717eac418bb7d32bef4de3",
    "train/image/18.png": "1bb1edd50595861743d14e1955dfa5d3c9395fb87563eca6dc81433bf9df49de",
    "train/image/19.png": "999b55633f8d7082add72082656e9532c5c3d97203b376eb317f09ba88a5a5b7",
    "train/image/20.png": "9153d14bfd15955fab576ea23281c4f23104b45dceed6e03e0b254607f50a1b2",
    "train/image/21.png": "9ad07cf4f67984f17a08aa63e6d92d395ce55f5132e6ff4fa6d95d6890ea7f97",
    "train/image/22.png": "6278609b4c42a7cb43212de0e2e2ceded758bafe0856fb56214ce658a61668e4",
    "train/image/23.png": "9ef4e9fbc838b9791af83a36918d729a0ea2e90ebc71c4a3c4554059f9379756",
    "train/image/24.png": "f0f917b9c3e9c96d16ea287aff9b05ecf4de88bc61d478e4aefcb64932fba70c",
    "train/image/25.png": "e0154737e76392e8bf94fb2c0dfa5ddad4b53aeec942a0a8cdd8ba63443e6072",
    "train/image/26.png": "d0ff11e09b0ee0c817334946e746a38ab621161d5f9c46af95c68b851f8d9a1a",
    "train/image/27.png": "eed8e8bee1db8fe7af39b5b43ecf14282c5c33eca0959726eea06f662027eacc",
    "train/image/28.png": "974df4b51e8905bdaabe61e80496cbf331f5c9aa9ddc2cb94113f58c2b7d2837",
    "train/image/29.png": "d9ae868509c610a69acbf3d69cde4f36a8e344cbbc444f93c917bf7b9f3e784f",
    "train/label/0.png": "13b67edd7607a1f284c09170c96a27d38422b0ffaf88024ea5b689acb5e1b4b0",
    "train/label/1.png": "cff60a00de2901e67165c91d7708d784e4c5bcc9d1c8c677922c905d63bbc3d1",
    "train/label/2.png": "a578af998c017f56763b81941c4dc612dde5731809b2cea0e8ebc37aecb84dbb",
    "train/label/3.png": "c8ae3b843fed02e09411a24c10850160922c331041b17c2674025f05a99b8834",
    "train/label/4.png": "a2f19c01b5d982a97923a0d29e64127a05e3f496731480ac9d9d302b5427f7ff",
    "train/label/5.png": "2dd5779118f6f4d87f88ec112f1cea20663b50acb8c748b0db1f23eda82b5118",
    "train/label/6.png": "2b0984e9f31fb41d4c5f4a754a3e080036b7321a0cbd9591a62010d20a574ce7",
    "train/label/7.png": "2ebc8c835999589bfd7d80d81f83d24e5c41138362b0faafef0f009e1ce82144",
    "train/label/8.png": "db979010ca4fbdb38c8b32d455aed0da90d598153f2a0046b63d02a6efa32b9e",
    "train/label/9.png": "8ee6c79adbb740595c4d61776e065e7164c00d52c7dd7562b5279041e7f3567b",
    "train/label/10.png": "b0156cc8186b0ee521927ac95645b406a42d27564607a6fea3a59c34add78f7c",
    "train/label/11.png": "e47b3aa0cfb3106476af1666e631d45bd16dbf2aff88260ee65d16e4134332db",
    "train/label/12.png": "85a7a899c0b72b81633ad122887ba5161d650385d7775a5b3074eb00131b3620",
    "train/label/13.png": "88549c22fd647312d6b37e17d33e90800d347d60ccb1156a8dde5e67394f9f3d",
    "train/label/14.png": "bcd775017eb4fdbdfe7ad6cc6420b2f16aa9d0576894d08370edcf564b46680a",
    "train/label/15.png": "59a854887b504ff00a5b4b93b2299bbc0bf0cbe54dea58d2b31969229b28b369",
    "train/label/16.png": "b34eb88cdc3313a6f4190f5753465df7f69d8f3c243a5c25427b1b99ecfe2499",
    "train/label/17.png": "4fa076cbeb744803d987dc46cf308dc3026408e7a5188838e30e25fe3ea67dbe",
    "train/label/18.png": "bd009dda57f204804732f592ed1d41ba18961d83c492413fe71548efa4a288d9",
    "train/label/19.png": "bf38407c55b6033c1677230228ecb100a11294aa74a7b92e5edfdc4abadcfef9",
    "train/label/20.png": "7af7296f2e892866669d4e4f9c0d4178987e6ec6e7d0751ec238d1bbe2da9c55",
    "train/label/21.png": "772c722acb2eac01769b53fa5037a3d62745e53102398bf9b2202df605cadda4",
    "train/label/22.png": "b19f5533ec24077a2395a085fe53af75dd350ef03798c4ff40ba9ebecb2ee0ad",
    "train/label/23.png": "2d8f1df5c9ee83e59eb2d709eb153b0570f12e726690f586154b01b0a88bb540",
    "train/label/24.png": "6ab02d922b5c937ecfe2a479be87a5d3e5ef950dc48da09d31f37b47d899ca9c",
    "train/label/25.png": "c5ea59aca7789dd507ac31c4a82bbd4c172f9e3544f8e040442c20d1dfa9e16d",
    "train/label/26.png": "b056fae9f358111b6c9e2494bdba645f206be581959b8d3763e97d62a65dd961",
    "train/label/27.png": "5be3823a57c82b632cead6eb09f438c6010a244dc0975f2a3e466f45d2c06840",
    "train/label/28.png": "c0b0e2a2b7aad46919d1afc980f7d5e39101fb07948ce65d9cac802d8b47682e",
    "train/label/29.png": "1e8839a97178914171defd6a97158f06fcac1fc3f0d45f2acdff9c49ab3fced9",
    "test/image/0.png": "3c67a0f520d6504eecffe20fc2799287cad05e3d8915466c4127ee8463db03b6",
    "test/image/1.png": "73b2d6c585dd130b9e04c06ce4f7dd2c21496bc760c6088b948933d7a3ff44d8",
    "test/image/2.png": "33d0ba0f00760a8223d33e0d00f1fbd8992783c216f9fc386a2c7d62a31a3263",
    "test/image/3.png": "0507ff479733fefcbc00c68dc1b848dd7c15546e49241414d5a05beaf2092fbf",
    "test/image/4.png": "c75debf18db3b7e4476712d28bb6925e1d3b99287fc8808a3f8611f1f1ac9e6c",
    "test/image/5.png": "e2756965f5f7162c9bee9f05d6a6856d0ca310c736644000234cae634883c8f6",
    "test/image/6.png": "832c23a05680902deec4efe639373892b2cdc83ecfcdd6bc7b90f6f1d474379c",
    "test/image/7.png": "e673e89ac632bc3f13ff6dcd9d0f733b39d6618f21f015ed4106e1f32b3518f1",
    "test/image/8.png": "8064a6d599edadb9ebd0d23b3fe1a61a0c165445e2dfc1289af4e16509424344",
    "test/image/9.png": "6fe32299f09cfbff582cb90a39d1bd9214614a675be99e6729686f3a4d9b5a5f",
    "test/image/10.png": "8f907e1cfc8593527fb48c7fe08ba80eb380e0bfc0cdfe5eec8da0044eec0309",
    "test/image/11.png": "27ae843bb0a63ceded00acb182469a20292d70d717dc16296e6e1ea3e760dc7f",
    "test/image/12.png": "eb9eacb4cd836e84a36655e59c67c6ffc9be860ade97e585d21b1caf721acb2b",
    "test/image/13.png": "f7d454b79c73789c644c56d38a1adc57614fd45bbdaaeab25ad84aa9f36188f1",
    "test/image/14.png": "5e68324d85e271a23fb96da4425d12fb182ccad885edf63b5a33a4929e9f3788",
    "test/image/15.png": "874d88be3e6fb24ff4cc70cae292ec27462365c418a332631cb2ab17bac1bb47",
    "test/image/16.png": "69e09074fd73e5e9458067e77ba1d42bb212c350413f01b64e5d7269a1130588",
    "test/image/17.png": "95468c5106091112bff1fe694f06ac7af5f1b052e700fcbbe4492bcdd8cf47bf",
    "test/image/18.png": "090accd8da157be1f739a2bde77335216209ec854351d18d7d328ea2d3065c6a",
    "test/image/19.png": "fe7e8dd86300e462c2574f1c409510bb8bcb8b3ceb3c2bb28583e7241ab22f05",
    "test/image/20.png": "260b6e3e43a1c63da9779992ca90e692cd04e854029ef2f964010daf58ff4daf",
    "test/image/21.png": "cd82df9e4f7aa44a8d1172d4bac6f50dd3bc6dd063c1b3ad65647c4bc7749042",
    "test/image/22.png": "242289a02a83161b98553606654c17868818bdea638bc25c1208298501b92bfa",
    "test/image/23.png": "496786c0636607b2e086528d517e00c4444270d40972940c70f7ca93cc0cc173",
    "test/image/24.png": "a1979d58bceac2cd352a4aeb7a047c0e92d94c52a3cbc60abac67bb7a68865a1",
    "test/image/25.png": "8a078743880a854f2127cc59425c5a47bbf348b31ac2524cf7621eb108748c5a",
    "test/image/26.png": "2643df636a202d53bdc870bd1239db761d1b586e048cb6ddeb83310c9b76f6f4",
    "test/image/27.png": "36c4983e85e127a622e395842642dd0762657831901e70ff94647f3f808e53fe",
    "test/image/28.png": "0c2d296e0cd652b69198e9399e91bf2693101e58a8c878c6fe5a902d2b9448c5",
    "test/image/29.png": "e417ddbdcfed6b08b1c97d5a7796ed5b167ccc4caaf1226dc41dbb69cd724e25",
}


def _unet_path(path: str) -> str:
    return path.replace("test/image/", "test/", 1)


FETCH = Source(
    dataset=NAME,
    folder=NAME,
    copy="the PNG export of zhixuhao/unet (30 train slices + labels, 30 test slices; sha256-checked)",
    files=tuple(
        Remote(
            path,
            tuple(m.format(commit=UNET_COMMIT, path=_unet_path(path)) for m in UNET_MIRRORS),
            f"sha256:{h}",
        )
        for path, h in PNG_SHA256.items()
    ),
)

CLASS_NAMES: tuple[str, str] = ("membrane", "cell")
MEMBRANE_VALUE = 0  # pixel value of membrane in the label files
CELL_VALUE = 255  # pixel value of cell interior in the label files
MEMBRANE_TARGET = 0  # class index of membrane in training targets (= CLASS_NAMES.index("membrane"))
CELL_TARGET = 1  # class index of cell interior in training targets

N_FOLDS = 5
DEFAULT_FOLD = 4  # with 30 slices and 5 folds: validation = slices 24..29, training = slices 0..23

TIF_FILES = {
    "train_images": "train-volume.tif",
    "train_labels": "train-labels.tif",
    "test_images": "test-volume.tif",
}
PNG_DIRS = {"train_images": "train/image", "train_labels": "train/label", "test_images": "test/image"}
PNG_TEST_FALLBACK = "test"  # zhixuhao/unet keeps test slices directly in data/membrane/test/{i}.png

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
_INDEX_NAME = re.compile(r"^(\d+)\.png$", re.IGNORECASE)


# --------------------------------------------------------------------------- encodings


def labels_to_target(labels: np.ndarray) -> np.ndarray:
    """Label values {0 membrane, 255 cell} -> class indices {0 membrane, 1 cell} (uint8)."""
    labels = np.asarray(labels)
    bad = (labels != MEMBRANE_VALUE) & (labels != CELL_VALUE)
    if bad.any():
        raise ValueError(
            f"labels must be {MEMBRANE_VALUE} (membrane) or {CELL_VALUE} (cell); found {_values(labels[bad])}"
        )
    return (labels == CELL_VALUE).astype(np.uint8)


def target_to_labels(target: np.ndarray) -> np.ndarray:
    """Class indices {0 membrane, 1 cell} -> label values {0 membrane, 255 cell} (uint8)."""
    target = np.asarray(target)
    bad = (target != MEMBRANE_TARGET) & (target != CELL_TARGET)
    if bad.any():
        raise ValueError(
            f"targets must be {MEMBRANE_TARGET} (membrane) or {CELL_TARGET} (cell); found {_values(target[bad])}"
        )
    return np.where(target == CELL_TARGET, CELL_VALUE, MEMBRANE_VALUE).astype(np.uint8)


def membrane_fraction(labels: np.ndarray) -> float:
    """Fraction of label pixels that are membrane (value ``MEMBRANE_VALUE``)."""
    labels = np.asarray(labels)
    return float(np.count_nonzero(labels == MEMBRANE_VALUE) / labels.size) if labels.size else float("nan")


def _values(a: np.ndarray, limit: int = 8) -> str:
    vals = np.unique(a)
    shown = ", ".join(str(v) for v in vals[:limit].tolist())
    return f"[{shown}{', ...' if len(vals) > limit else ''}] in {a.size} pixel(s)"


# --------------------------------------------------------------------------- reading files


def _read_tif_stack(path: Path) -> np.ndarray:
    """Read a multi-page grayscale uint8 TIFF as (N, H, W); DataError names file and page."""
    import tifffile

    if not path.is_file():
        raise DataError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "empty file (0 bytes)")
    slices: list[np.ndarray] = []
    try:
        tf = tifffile.TiffFile(path)
    except Exception as e:  # tifffile raises several types for non-TIFF bytes
        raise DataError(path, f"not a readable TIFF ({type(e).__name__}: {e})") from e
    with tf:
        try:
            pages = list(tf.pages)
        except Exception as e:
            raise DataError(path, f"corrupt TIFF page directory ({type(e).__name__}: {e})") from e
        for i, page in enumerate(pages):
            where = f"page {i}"
            shape = tuple(page.shape)
            channels = int(getattr(page, "samplesperpixel", 1) or 1)
            if channels > 1:  # RGB/RGBA pages, stored interleaved (H, W, C) or planar (C, H, W)
                hint = (
                    " (a stack of 3 or 4 slices written without photometric='minisblack' is stored as one"
                    " planar RGB page)"
                    if len(shape) == 3 and shape[0] == channels
                    else ""
                )
                raise DataError(
                    path,
                    f"page has {channels} channels (shape {shape}); expected 8-bit grayscale (H, W){hint}",
                    where,
                )
            if len(shape) != 2:
                raise DataError(path, f"page has shape {shape}; expected a 2-D grayscale slice (H, W)", where)
            if page.dtype != np.uint8:
                raise DataError(path, f"page has dtype {page.dtype}; expected uint8 (8-bit grayscale)", where)
            if slices and shape != slices[0].shape:
                raise DataError(
                    path,
                    f"page has shape {shape}, page 0 has {slices[0].shape}; all slices must match",
                    where,
                )
            try:
                slices.append(np.asarray(page.asarray()))
            except Exception as e:
                raise DataError(path, f"cannot decode page ({type(e).__name__}: {e})", where) from e
    if not slices:
        raise DataError(path, "TIFF has no pages")
    if len(slices) == 1:
        # The known broken copies of these files are one-page truncations of the 30-page stacks.
        raise DataError(
            path,
            f"single 2-D page of shape {slices[0].shape}; expected a multi-page stack of slices (N, H, W) "
            "(a one-page file is usually a truncated copy)",
        )
    return np.stack(slices)


def _read_png(path: Path) -> np.ndarray:
    """Read one 8-bit grayscale PNG as (H, W) uint8; DataError names the file."""
    from PIL import Image

    if path.stat().st_size == 0:
        raise DataError(path, "empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated or corrupt file fails here, not later
            mode = img.mode
            arr = np.asarray(img)
    except Exception as e:  # PIL raises OSError / SyntaxError / ValueError for broken files
        raise DataError(path, f"not a readable PNG ({type(e).__name__}: {e})") from e
    if mode != "L":
        raise DataError(
            path, f"image mode {mode!r} with shape {arr.shape}; expected 8-bit grayscale (mode 'L')"
        )
    return arr


def _png_files(folder: Path, *, ignore_other_names: bool = False) -> dict[int, Path]:
    """Map slice index -> ``{i}.png`` in ``folder``; indices must be exactly 0..N-1."""
    found: dict[int, Path] = {}
    for p in folder.iterdir():
        if p.name.startswith(".") or not p.is_file():
            continue
        m = _INDEX_NAME.match(p.name)
        if m is None:
            if p.suffix.lower() == ".png" and not ignore_other_names:
                raise DataError(p, "unexpected file name; slices must be named {i}.png with i = 0..N-1")
            continue
        idx = int(m.group(1))
        if idx in found:
            raise DataError(p, f"slice {idx} is also stored as {found[idx].name}")
        found[idx] = p
    if not found:
        raise DataError(folder, "no {i}.png slices in folder")
    missing = sorted(set(range(len(found))) - set(found))
    if missing:
        raise DataError(
            folder, f"slice indices must be 0..N-1 without gaps; missing {_idx_list(missing)}.png"
        )
    return found


def _idx_list(idx: Sequence[int], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in idx[:limit])
    return "{" + shown + (", ..." if len(idx) > limit else "") + "}"


def _read_png_stack(files: dict[int, Path]) -> np.ndarray:
    slices: list[np.ndarray] = []
    for i in range(len(files)):
        arr = _read_png(files[i])
        if slices and arr.shape != slices[0].shape:
            raise DataError(
                files[i], f"slice {i} has shape {arr.shape}, slice 0 ({files[0].name}) has {slices[0].shape}"
            )
        slices.append(arr)
    return np.stack(slices)


def _check_labels(labels: np.ndarray, path: Path, per_file: dict[int, Path] | None = None) -> None:
    """Labels must be exactly {0 membrane, 255 cell}; name the first bad slice."""
    bad = (labels != MEMBRANE_VALUE) & (labels != CELL_VALUE)
    if not bad.any():
        return
    i = int(np.flatnonzero(bad.reshape(len(labels), -1).any(axis=1))[0])
    msg = (
        f"label is not binary: values must be {MEMBRANE_VALUE} (membrane) or {CELL_VALUE} (cell), "
        f"found {_values(labels[i][bad[i]])}"
    )
    if per_file is not None:
        raise DataError(per_file[i], msg, f"slice {i}")
    raise DataError(path, msg, f"page {i}")


def _check_pair(images: np.ndarray, labels: np.ndarray, img_src: Path, lbl_src: Path) -> None:
    if images.shape != labels.shape:
        raise DataError(
            lbl_src,
            f"label stack has shape {labels.shape} but image stack {img_src.name} has {images.shape}; "
            "they must match slice for slice",
        )


# --------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class _Layout:
    kind: str  # "tif" or "png"
    root: Path
    files: dict[str, Path] = field(default_factory=dict)  # tif: split -> file
    pngs: dict[str, dict[int, Path]] = field(default_factory=dict)  # png: split -> {i: file}

    def source_files(self) -> list[Path]:
        if self.kind == "tif":
            return list(self.files.values())
        return [p for split in self.pngs.values() for p in split.values()]


def _has_tif(root: Path) -> bool:
    return all((root / TIF_FILES[k]).is_file() for k in ("train_images", "train_labels"))


def _has_png(root: Path) -> bool:
    return (root / PNG_DIRS["train_images"]).is_dir()


def _searched(root: Path) -> list[Path]:
    """What ``locate`` looks for: the two training TIFFs or the PNG training image folder."""
    return [
        root / TIF_FILES["train_images"],
        root / TIF_FILES["train_labels"],
        root / PNG_DIRS["train_images"],
    ]


def _layout(root: Path, source: str = "auto") -> _Layout:
    """Find which layout ``root`` holds; ``source`` forces one ('tif' or 'png')."""
    if source not in ("auto", "tif", "png"):
        raise ValueError(f"source must be 'auto', 'tif' or 'png', got {source!r}")
    if not root.is_dir():
        raise DatasetNotFoundError(NAME, [root], HOW_TO_OBTAIN)
    kind = source
    if source == "auto":
        if _has_tif(root):
            kind = "tif"
        elif _has_png(root):
            kind = "png"
        else:
            partial = [root / f for f in TIF_FILES.values() if (root / f).exists()]
            if partial:  # half a TIFF layout is a broken dataset, not a missing one
                missing = [f for k, f in TIF_FILES.items() if k != "test_images" and not (root / f).is_file()]
                found = ", ".join(p.name for p in partial)
                raise DataError(root, f"incomplete TIFF layout: found {found} but not {', '.join(missing)}")
            raise DatasetNotFoundError(NAME, _searched(root), HOW_TO_OBTAIN)
    if kind == "tif":
        files = {k: root / f for k, f in TIF_FILES.items()}
        for k in ("train_images", "train_labels"):
            if not files[k].is_file():
                raise DataError(files[k], "file not found (needed for source='tif')")
        if not files["test_images"].is_file():
            del files["test_images"]
        return _Layout("tif", root, files=files)
    img_dir, lbl_dir = root / PNG_DIRS["train_images"], root / PNG_DIRS["train_labels"]
    for d in (img_dir, lbl_dir):
        if not d.is_dir():
            raise DataError(d, "folder not found (needed for source='png')")
    images, labels = _png_files(img_dir), _png_files(lbl_dir)
    if len(images) != len(labels):
        only_img = sorted(set(images) - set(labels))
        only_lbl = sorted(set(labels) - set(images))
        what = (
            f"no label for image(s) {_idx_list(only_img)}.png"
            if only_img
            else f"no image for label(s) {_idx_list(only_lbl)}.png"
        )
        raise DataError(lbl_dir, f"{len(images)} images in {img_dir.name}/ but {len(labels)} labels: {what}")
    pngs = {"train_images": images, "train_labels": labels}
    test_dir = root / PNG_DIRS["test_images"]
    if test_dir.is_dir():
        pngs["test_images"] = _png_files(test_dir)
    elif (root / PNG_TEST_FALLBACK).is_dir() and any(
        _INDEX_NAME.match(p.name) for p in (root / PNG_TEST_FALLBACK).iterdir()
    ):
        # the U-Net repo's own folder also holds '{i}_predict.png' outputs: skip those names
        pngs["test_images"] = _png_files(root / PNG_TEST_FALLBACK, ignore_other_names=True)
    return _Layout("png", root, pngs=pngs)


def _read_layout(layout: _Layout) -> dict[str, np.ndarray]:
    """Decode and validate every split; raises DataError before anything is returned."""
    if layout.kind == "tif":
        f = layout.files
        images = _read_tif_stack(f["train_images"])
        labels = _read_tif_stack(f["train_labels"])
        _check_pair(images, labels, f["train_images"], f["train_labels"])
        _check_labels(labels, f["train_labels"])
        test_src = f.get("test_images")
        test = _read_tif_stack(test_src) if test_src is not None else None
    else:
        p = layout.pngs
        images = _read_png_stack(p["train_images"])
        labels = _read_png_stack(p["train_labels"])
        _check_pair(images, labels, p["train_images"][0].parent, p["train_labels"][0].parent)
        _check_labels(labels, p["train_labels"][0].parent, per_file=p["train_labels"])
        test_src = p["test_images"][0].parent if "test_images" in p else None
        test = _read_png_stack(p["test_images"]) if test_src is not None else None
    if test is None:
        test = np.zeros((0,) + images.shape[1:], dtype=np.uint8)
    elif test.shape[1:] != images.shape[1:]:
        raise DataError(
            test_src, f"test slices are {test.shape[1:]} but training slices are {images.shape[1:]}"
        )
    return {"train_images": images, "train_labels": labels, "test_images": test}


# --------------------------------------------------------------------------- public API


def locate(data_dir: PathLike | None = None) -> Path:
    """The ``isbi2012`` folder under the data root, holding a TIFF or PNG layout.

    Raises ``DatasetNotFoundError`` naming the paths searched when neither layout is there.
    """
    root = data_root(data_dir) / NAME
    if root.is_dir() and (_has_tif(root) or _has_png(root)):
        return root
    raise DatasetNotFoundError(NAME, _searched(root), HOW_TO_OBTAIN)


@dataclass(frozen=True, eq=False)
class IsbiFold:
    """One train/validation split over the labelled slices, as tensors ready for training.

    Images are float32 in [0, 1] with shape (n, 1, H, W); targets are int64 class indices
    (0 = membrane, 1 = cell) with shape (n, H, W). Validation slices are whole slices, never
    seen in training (``train_idx`` and ``val_idx`` are disjoint).
    """

    fold: int
    n_folds: int
    train_idx: np.ndarray
    val_idx: np.ndarray
    train_images: torch.Tensor
    train_targets: torch.Tensor
    val_images: torch.Tensor
    val_targets: torch.Tensor


@dataclass(frozen=True, eq=False)
class IsbiArrays:
    """Decoded ISBI 2012 slices.

    ``train_images``: uint8 (N, H, W); ``train_labels``: uint8 (N, H, W) with 0 = membrane,
    255 = cell (label-file values); ``train_targets``: the same as class indices 0 = membrane,
    1 = cell; ``test_images``: uint8 (M, H, W), unlabelled (M may be 0); ``meta``: ``ISBI_META``
    plus per-load fields (source, fingerprint, counts, input_shape).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    meta: dict[str, object]

    @property
    def train_targets(self) -> np.ndarray:
        return labels_to_target(self.train_labels)

    @property
    def info(self) -> DatasetInfo:
        """Targets are class indices into ``CLASS_NAMES``: 0 = membrane, 1 = cell."""
        h, w = self.train_images.shape[1:]
        return DatasetInfo(NAME, "segmentation", CLASS_NAMES, (1, h, w))

    def fold(self, fold: int = DEFAULT_FOLD, n_folds: int = N_FOLDS, gap: int = 0) -> IsbiFold:
        """Tensors for one fold of ``kfold_slices`` (see there for ``gap``)."""
        train_idx, val_idx = kfold_slices(len(self.train_images), n_folds, fold, gap=gap)
        targets = self.train_targets
        return IsbiFold(
            fold=fold,
            n_folds=n_folds,
            train_idx=train_idx,
            val_idx=val_idx,
            train_images=images_to_tensor(self.train_images[train_idx]),
            train_targets=torch.from_numpy(targets[train_idx].astype(np.int64)),
            val_images=images_to_tensor(self.train_images[val_idx]),
            val_targets=torch.from_numpy(targets[val_idx].astype(np.int64)),
        )


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
    layout = _layout(root, source)
    fp = fingerprint(layout.source_files())
    key = f"{layout.kind}-{_CACHE_FORMAT}-{fp[:32]}"
    arrays = cached_arrays(NAME, key, lambda: _read_layout(layout), Path(cache_dir) if cache_dir else None)
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


def check(path: PathLike) -> dict:
    """Validate an ISBI 2012 folder (or one ``.tif`` stack / ``.png`` slice) and summarise it.

    For a folder: layout, slice counts and shape, membrane fraction over all labels and per
    default fold, sha256 of the TIFFs (or a content fingerprint of the PNG folders), and, when
    both layouts are present, whether the PNGs hold the same pixels as the TIFFs.
    """
    path = Path(path)
    if path.is_file():
        return _check_file(path)
    layout = _layout(path, "auto")
    arrays = _read_layout(layout)
    labels = arrays["train_labels"]
    n = len(labels)
    report: dict = {
        "layout": layout.kind,
        "train_slices": n,
        "test_slices": int(len(arrays["test_images"])),
        "slice_shape": list(labels.shape[1:]),
        "class_names": list(CLASS_NAMES),
        "label_values": {"membrane": MEMBRANE_VALUE, "cell": CELL_VALUE},
        "pixels": {
            "membrane": int(np.count_nonzero(labels == MEMBRANE_VALUE)),
            "cell": int(np.count_nonzero(labels == CELL_VALUE)),
        },
        "membrane_fraction": round(membrane_fraction(labels), 6),
    }
    if n >= N_FOLDS:
        report["membrane_fraction_per_fold"] = {
            f"fold {k} (slices {_span(kfold_slices(n, N_FOLDS, k)[1])})": round(
                membrane_fraction(labels[kfold_slices(n, N_FOLDS, k)[1]]), 6
            )
            for k in range(N_FOLDS)
        }
    if layout.kind == "tif":
        report["sha256"] = {p.name: sha256_file(p) for p in layout.files.values()}
        if _has_png(path):
            other = _read_layout(_layout(path, "png"))
            report["png_matches_tif"] = all(
                np.array_equal(arrays[k], other[k]) for k in ("train_images", "train_labels", "test_images")
            )
    else:
        report["fingerprint"] = {split: fingerprint(files.values()) for split, files in layout.pngs.items()}
    return report


def _span(idx: np.ndarray) -> str:
    return f"{idx[0]}..{idx[-1]}" if len(idx) else "none"


def _check_file(path: Path) -> dict:
    if path.suffix.lower() in (".tif", ".tiff"):
        arr = _read_tif_stack(path)
        kind = "tif stack"
    elif path.suffix.lower() == ".png":
        arr = _read_png(path)[None]
        kind = "png slice"
    else:
        raise DataError(path, "expected a .tif/.tiff stack, a .png slice or the isbi2012 folder")
    report: dict = {
        "file": kind,
        "slices": int(len(arr)),
        "slice_shape": list(arr.shape[1:]),
        "dtype": str(arr.dtype),
        "sha256": sha256_file(path),
    }
    is_binary = bool(np.isin(arr, (MEMBRANE_VALUE, CELL_VALUE)).all())
    report["binary_0_255"] = is_binary
    if is_binary:  # only meaningful if this is a label file
        report["membrane_fraction_if_labels"] = round(membrane_fraction(arr), 6)
    return report


# --------------------------------------------------------------------------- folds


def kfold_slices(
    n_slices: int = 30, n_folds: int = N_FOLDS, fold: int = DEFAULT_FOLD, *, gap: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-fold over slice indices: ``(train_idx, val_idx)``, both sorted int64.

    Folds are **contiguous blocks** of adjacent slices (fold k of 5 over 30 slices validates on
    slices 6k..6k+5), not a shuffled permutation: the slices are serial sections 50 nm apart,
    so neighbours look alike and a shuffled split would validate almost every slice next to a
    training neighbour, inflating scores. With blocks only the block edges touch training
    slices; ``gap`` > 0 also drops ``gap`` slices on each side of the validation block from
    training for a stricter split. Block sizes differ by at most one when ``n_folds`` does not
    divide ``n_slices``. There is no seed because nothing is random.
    """
    for name, v in (("n_slices", n_slices), ("n_folds", n_folds), ("fold", fold), ("gap", gap)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"{name} must be an int, got {v!r}")
    if not 2 <= n_folds <= n_slices:
        raise ValueError(f"n_folds must be in 2..n_slices={n_slices}, got {n_folds}")
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be in 0..{n_folds - 1} for n_folds={n_folds}, got {fold}")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    _, val_idx = kfold_blocks(n_slices, n_folds, fold)
    lo, hi = int(val_idx[0]) - gap, int(val_idx[-1]) + gap
    all_idx = np.arange(n_slices, dtype=np.int64)
    train_idx = all_idx[(all_idx < lo) | (all_idx > hi)]
    if len(train_idx) == 0:
        raise ValueError(f"gap={gap} leaves no training slices for fold {fold}")
    return train_idx, val_idx


# --------------------------------------------------------------------------- tensors, crops, padding


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) in [0, 1]. No dataset statistics are used."""
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W), got {images.dtype} {images.shape}")
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)


def random_crops(
    images: torch.Tensor | np.ndarray,
    targets: torch.Tensor | np.ndarray,
    crop: int = 256,
    n: int = 8,
    generator: torch.Generator | None = None,
    *,
    return_params: bool = False,
):
    """``n`` random square crops with random flips and 90-degree rotations, for training.

    ``images``: (N, H, W) or (N, 1, H, W); ``targets``: (N, H, W). Crops are drawn only from the
    slices passed in (pass a fold's training slices, never validation ones). Each sample gets a
    uniformly random slice, position and one of the 8 symmetries of the square (identity, 3
    rotations, 4 reflections), applied through **one shared index grid** to image and target,
    so they stay aligned. Vectorised: one gather per tensor, no Python loop over samples.

    Returns ``(images (n, 1, crop, crop), targets (n, crop, crop))`` with the input dtypes, and
    with ``return_params=True`` also a dict of per-sample ``slice``, ``top``, ``left``,
    ``transpose``, ``flip_v``, ``flip_h`` (applied in that order to the crop).
    """
    images = torch.as_tensor(images)
    targets = torch.as_tensor(targets)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W) or (N, 1, H, W), got shape {tuple(images.shape)}")
    if targets.shape != images.shape:
        raise ValueError(
            f"targets shape {tuple(targets.shape)} must match images {tuple(images.shape)} (N, H, W)"
        )
    N, H, W = images.shape
    if N == 0:
        raise ValueError("no slices to crop from")
    if not 1 <= crop <= min(H, W):
        raise ValueError(f"crop must be in 1..{min(H, W)} for slices of {H}x{W}, got {crop}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    dev = images.device
    g = generator

    def draw(high: int) -> torch.Tensor:
        return torch.randint(0, high, (n,), generator=g).to(dev)

    slice_idx, top, left = draw(N), draw(H - crop + 1), draw(W - crop + 1)
    transpose, flip_v, flip_h = (draw(2).bool() for _ in range(3))

    # Output pixel (i, j) reads crop pixel (a, b); transpose and the two flips generate all 8
    # symmetries of the square, so one index grid serves image and target alike.
    r = torch.arange(crop, device=dev)
    i = r.view(1, crop, 1).expand(n, crop, crop)
    j = r.view(1, 1, crop).expand(n, crop, crop)
    # Flipping the output coordinates, then swapping them, reads the crop as
    # flip_h(flip_v(transpose(crop))): the order the docstring promises.
    i = torch.where(flip_v.view(n, 1, 1), crop - 1 - i, i)
    j = torch.where(flip_h.view(n, 1, 1), crop - 1 - j, j)
    t = transpose.view(n, 1, 1)
    a, b = torch.where(t, j, i), torch.where(t, i, j)
    rows = top.view(n, 1, 1) + a
    cols = left.view(n, 1, 1) + b
    s = slice_idx.view(n, 1, 1)
    out_images = images[s, rows, cols].unsqueeze(1)
    out_targets = targets[s, rows, cols]
    if return_params:
        params = {
            "slice": slice_idx,
            "top": top,
            "left": left,
            "transpose": transpose,
            "flip_v": flip_v,
            "flip_h": flip_h,
        }
        return out_images, out_targets, params
    return out_images, out_targets


def pad_to_multiple(
    x: torch.Tensor, multiple: int = 16, mode: str = "reflect"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the last two dims of ``x`` (..., H, W) at the bottom/right to multiples of ``multiple``.

    For evaluating a U-Net on whole slices of any size; returns ``(padded, (H, W))`` for
    ``unpad``. 512 x 512 ISBI slices are already multiples of 16 and come back unchanged.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dims (..., H, W), got shape {tuple(x.shape)}")
    H, W = x.shape[-2:]
    ph, pw = (-H) % multiple, (-W) % multiple
    if ph == 0 and pw == 0:
        return x, (H, W)
    if mode == "reflect" and (ph >= H or pw >= W):
        raise ValueError(f"reflect padding by ({ph}, {pw}) needs H, W larger than that, got {H}x{W}")
    lead = x.shape[:-2]
    flat = x.reshape(-1, 1, H, W)
    padded = F.pad(flat if flat.is_floating_point() else flat.float(), (0, pw, 0, ph), mode=mode)
    return padded.to(x.dtype).reshape(*lead, H + ph, W + pw), (H, W)


def unpad(y: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop the last two dims of ``y`` back to ``size = (H, W)`` from ``pad_to_multiple``."""
    H, W = size
    if y.shape[-2] < H or y.shape[-1] < W:
        raise ValueError(f"cannot unpad shape {tuple(y.shape)} to {H}x{W}")
    return y[..., :H, :W]


__all__ = [
    "CELL_TARGET",
    "CELL_VALUE",
    "CLASS_NAMES",
    "DEFAULT_FOLD",
    "HOW_TO_OBTAIN",
    "ISBI_META",
    "IsbiArrays",
    "IsbiFold",
    "MEMBRANE_TARGET",
    "MEMBRANE_VALUE",
    "NAME",
    "N_FOLDS",
    "check",
    "images_to_tensor",
    "kfold_slices",
    "labels_to_target",
    "load_isbi2012",
    "locate",
    "membrane_fraction",
    "pad_to_multiple",
    "random_crops",
    "target_to_labels",
    "unpad",
]
