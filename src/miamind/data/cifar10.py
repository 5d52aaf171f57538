"""CIFAR-10: find, verify, decode once, cache, and hand uint8 arrays to a training engine.

Three layouts are read, each from a directory or straight out of a ``.tar.gz`` (nothing is
extracted to disk):

* ``python`` -- the official python batches ``cifar-10-batches-py/{data_batch_1..5,test_batch,
  batches.meta}``: Python-2 dict pickles with ``b'data'`` (N x 3072 uint8, 1024 R then G then B,
  row-major) and ``b'labels'``. Read with :mod:`miamind.data.safe_pickle`, never ``pickle.load``.
  Every file is checked against its published md5 (a mismatch is an error unless
  ``verify=False``).
* ``binary`` -- the official binary batches ``cifar-10-batches-bin/{data_batch_1..5,test_batch}
  .bin``: 3073-byte records (label byte + 3072 pixels as above). Only the archive's md5 is
  published, not per-file sums; ``verify=True`` checks 10,000 records per file instead.
* ``image-folder`` -- ``train/<class>/<index>.<jpg|png>`` and ``test/<class>/...``, e.g. the
  JPEG (quality 75, lossy) copy ``cifar-10-images-jpeg-q75_YoongiKim.tar.gz``. Images must be
  32x32 RGB; ``verify=True`` requires 5,000 train and 1,000 test images per class.

Array conventions (:class:`Cifar10Arrays`): images are ``uint8`` **NHWC** ``(N, 32, 32, 3)``, as
stored in image files and as the rest of the Python ecosystem holds CIFAR; labels are ``int64``.
``Cifar10Arrays.tensors()`` gives NCHW ``torch.uint8`` batches for :mod:`miamind.data.augment`.

Order: official batches keep the official order (``data_batch_1..5`` concatenated). An image
folder has no global order, so its images are sorted by class index, then by the numeric file
index; in the YoongiKim set ``NNNN`` is the per-class running index in the official order, so
within each class the order is the official one (the split is class-major, not interleaved).

Decoding happens once: the arrays are cached as ``.npz`` (see :mod:`miamind.data.cache`) under a
key derived from the sha256 of the source files (and their names), so a later load only hashes
the sources and reads the cache.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .cache import cached_arrays, fingerprint, md5_file, sha256_file
from .errors import DataError, DatasetNotFoundError
from .fetch import Remote, Source, fetch_dataset
from .info import DatasetInfo
from .root import data_root
from .safe_pickle import safe_load

PathLike = str | Path

NAME = "cifar10"
CLASS_NAMES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
TRAIN_PER_CLASS, TEST_PER_CLASS = 5000, 1000
RECORDS_PER_BATCH = 10000
PIXELS = 3 * 32 * 32  # one image, channel-planar: 1024 R, 1024 G, 1024 B
RECORD_BYTES = 1 + PIXELS  # binary version: label byte + pixels

# Official sources (https://www.cs.toronto.edu/~kriz/cifar.html). Module constants so tests can
# point download() at a local file:// archive.
PYTHON_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
PYTHON_TAR_MD5 = "c58f30108f718f92721af3b95e74349a"
BINARY_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
BINARY_TAR_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"

PYTHON_FOLDER, BINARY_FOLDER = "cifar-10-batches-py", "cifar-10-batches-bin"
TRAIN_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
TEST_BATCHES = ("test_batch",)
# Per-file md5 of the python version, as torchvision (datasets/cifar.py) lists them.
PYTHON_MD5: dict[str, str] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
CACHE_VERSION = "cifar10-v1"  # bump when decoding changes, so stale caches are not reused

HOW_TO_OBTAIN = (
    f"Get the official CIFAR-10 python version {PYTHON_URL} (md5 {PYTHON_TAR_MD5}), e.g. with "
    "`miamind data fetch cifar10`, or the binary version "
    f"{BINARY_URL} (md5 {BINARY_TAR_MD5}), and put the .tar.gz or its extracted "
    f"{PYTHON_FOLDER}/ / {BINARY_FOLDER}/ folder into <data root>/cifar10/. An image folder "
    "train/<class>/<index>.png|jpg + test/<class>/... (directory or .tar.gz) works too. "
    "The data root is --data-dir / data_dir=, else $MIAMIND_DATA, else ~/.cache/miamind/data."
)

#: What `miamind data fetch cifar10` downloads: the official python archive, md5 as published.
FETCH = Source(
    dataset=NAME,
    folder=NAME,
    copy="the official python batches (cifar-10-python.tar.gz, md5-checked)",
    files=(Remote("cifar-10-python.tar.gz", (PYTHON_URL,), f"md5:{PYTHON_TAR_MD5}", unpack=True),),
)


CIFAR10_INFO = DatasetInfo(
    name=NAME, task="image-classification", class_names=CLASS_NAMES, input_shape=(3, 32, 32)
)


@dataclass(frozen=True, eq=False)
class Cifar10Arrays:
    """Decoded CIFAR-10. Images uint8 NHWC ``(N, 32, 32, 3)``; labels int64 in ``0..9``."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    layout: str  # "python" | "binary" | "image-folder"
    source: Path  # the folder or archive read
    source_sha256: str  # sha256 of the archive, or cache.fingerprint of the files in a folder
    md5_verified: bool  # every file matched its published md5 (python layout only)
    lossy: bool  # True for JPEG image folders: pixels are not the official ones
    files: tuple[tuple[str, str], ...] = field(default=())  # (name, md5) of the batch files
    info: DatasetInfo = CIFAR10_INFO

    def tensors(self, split: str = "train"):
        """``(images, labels)`` as torch tensors: uint8 NCHW (contiguous) and int64."""
        import torch

        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        images = getattr(self, f"{split}_images")
        labels = getattr(self, f"{split}_labels")
        return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean/std in [0, 1] units, from the TRAINING images only."""
        from .augment import channel_stats

        return channel_stats(self.train_images, layout="NHWC")

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class, per split."""
        return {
            split: {
                name: int(n)
                for name, n in zip(
                    self.class_names, np.bincount(labels, minlength=len(self.class_names)), strict=True
                )
            }
            for split, labels in (("train", self.train_labels), ("test", self.test_labels))
        }


# --------------------------------------------------------------------------------------------
# Layout detection


@dataclass(frozen=True)
class _Source:
    layout: str
    path: Path  # folder holding the layout, or the archive
    in_tar: bool
    prefix: str = ""  # folder inside the archive holding the layout ("" or "dir/")

    def label(self, rel: str) -> tuple[Path, str | None]:
        """(path, where) for DataError: a file in a folder, or a member of an archive."""
        return (self.path, self.prefix + rel) if self.in_tar else (self.path / rel, None)


# Files that tell a layout apart (batches.meta / readme.html may sit beside any layout).
_PY_NAMES = re.compile(r"^(data_batch_[1-5]|test_batch)$")
_BIN_NAMES = re.compile(r"^(data_batch_[1-5]|test_batch)\.bin$")
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def _is_archive(path: Path) -> bool:
    return path.name.lower().endswith(_TAR_SUFFIXES)


def _member_parts(name: str) -> tuple[str, ...]:
    return tuple(p for p in name.split("/") if p not in (".", ""))


def _layout_of_member(parts: tuple[str, ...]) -> tuple[str, str] | None:
    """(layout, prefix) told by one file path inside an archive, or None if it says nothing."""
    if not parts:
        return None
    base, folder = parts[-1], parts[:-1]
    prefix = "/".join(folder) + "/" if folder else ""
    if _PY_NAMES.match(base):
        return "python", prefix
    if _BIN_NAMES.match(base):
        return "binary", prefix
    if len(parts) >= 3 and parts[-3] in ("train", "test") and parts[-2] in CLASS_NAMES:
        return "image-folder", "/".join(parts[:-3]) + "/" if len(parts) > 3 else ""
    return None


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(path, f"cannot open archive: {e}") from None


def _detect_tar(path: Path, max_files: int = 64) -> _Source | None:
    """Peek at the first few files of an archive to tell its layout (cheap: no full read)."""
    with _open_tar(path) as tf:
        seen = 0
        try:
            for m in tf:
                if not m.isfile():
                    continue
                found = _layout_of_member(_member_parts(m.name))
                if found:
                    return _Source(found[0], path, True, found[1])
                seen += 1
                if seen >= max_files:
                    break
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise DataError(path, f"corrupt or truncated archive: {e}") from None
    return None


def _detect_dir(folder: Path, official_only: bool = False) -> _Source | None:
    """Layout inside ``folder``; python > binary > image folder > archives (exact data first).

    ``official_only`` (used for the data root itself, which holds other datasets too) looks only
    for the official folder and archive names.
    """
    py = folder / PYTHON_FOLDER
    if py.is_dir():
        return _Source("python", py, False)
    if not official_only and (folder / "data_batch_1").is_file():
        return _Source("python", folder, False)
    binf = folder / BINARY_FOLDER
    if binf.is_dir():
        return _Source("binary", binf, False)
    if not official_only and (folder / "data_batch_1.bin").is_file():
        return _Source("binary", folder, False)
    if not official_only and (folder / "train").is_dir() and (folder / "test").is_dir():
        return _Source("image-folder", folder, False)
    official = [folder / "cifar-10-python.tar.gz", folder / "cifar-10-binary.tar.gz"]
    others = (
        []
        if official_only
        else sorted(p for p in folder.iterdir() if p.is_file() and _is_archive(p) and p not in official)
    )
    for archive in official + others:
        if archive.is_file():
            src = _detect_tar(archive)
            if src is not None:
                return src
    return None


def _detect(path: Path) -> _Source:
    if not path.exists():
        raise DatasetNotFoundError(NAME, [path], HOW_TO_OBTAIN)
    if path.is_file():
        if not _is_archive(path):
            raise DataError(path, "expected a CIFAR-10 folder or a .tar.gz/.tgz/.tar archive")
        src = _detect_tar(path)
    else:
        src = _detect_dir(path)
    if src is None:
        raise DataError(
            path,
            f"no CIFAR-10 layout found (looked for {PYTHON_FOLDER}/ or data_batch_1, "
            f"{BINARY_FOLDER}/ or data_batch_1.bin, train/<class>/ + test/<class>/ image folders, "
            "and archives holding one of these)",
        )
    return src


def locate(data_dir: PathLike | None = None) -> Path:
    """The CIFAR-10 folder: ``<root>/cifar10`` (any layout), else the data root itself if it holds
    ``cifar-10-batches-py/``, ``cifar-10-batches-bin/`` or the official archives (torchvision's
    arrangement). Raises :class:`DatasetNotFoundError` listing both places."""
    root = data_root(data_dir)
    searched: list[Path] = []
    for cand, official_only in ((root / NAME, False), (root, True)):
        searched.append(cand)
        if cand.is_dir() and _detect_dir(cand, official_only) is not None:
            return cand
    raise DatasetNotFoundError(NAME, searched, HOW_TO_OBTAIN)


# --------------------------------------------------------------------------------------------
# Reading files out of a folder or an archive


def _iter_files(src: _Source) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(path relative to the layout folder, reader) for every regular file, in a stable order.

    Archives are read sequentially in one pass (random access into a .tar.gz re-decompresses).
    """
    if src.in_tar:
        with _open_tar(src.path) as tf:
            try:
                for m in tf:
                    if not m.isfile():
                        continue
                    name = "/".join(_member_parts(m.name))
                    if not name.startswith(src.prefix):
                        continue
                    fobj = tf.extractfile(m)
                    assert fobj is not None  # m.isfile() above
                    yield name[len(src.prefix) :], fobj.read
            except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
                raise DataError(src.path, f"corrupt or truncated archive: {e}") from None
    else:
        for dirpath, dirnames, filenames in os.walk(src.path):
            dirnames.sort()
            for fn in sorted(filenames):
                full = Path(dirpath) / fn
                yield full.relative_to(src.path).as_posix(), full.read_bytes


def _read_named(src: _Source, names: Sequence[str], optional: Sequence[str] = ()) -> dict[str, bytes]:
    """Bytes of the files ``names`` (required) and ``optional`` at the top of the layout folder."""
    wanted = set(names) | set(optional)
    out: dict[str, bytes] = {}
    if src.in_tar:
        for rel, read in _iter_files(src):
            if rel in wanted:
                out[rel] = read()
    else:
        for rel in wanted:
            p = src.path / rel
            if p.is_file():
                out[rel] = p.read_bytes()
    missing = [n for n in names if n not in out]
    if missing:
        where = f"{src.path}" + (f" (inside, under '{src.prefix}')" if src.in_tar and src.prefix else "")
        raise DataError(where, f"missing {src.layout} batch file(s): {', '.join(missing)}")
    return out


def _source_files(src: _Source) -> list[Path]:
    if src.in_tar:
        return [src.path]
    if src.layout == "image-folder":
        return sorted(p for p in src.path.rglob("*") if p.is_file())
    if src.layout == "binary":
        names = tuple(n + ".bin" for n in TRAIN_BATCHES + TEST_BATCHES) + ("batches.meta.txt",)
    else:
        names = TRAIN_BATCHES + TEST_BATCHES + ("batches.meta",)
    return [src.path / n for n in names if (src.path / n).is_file()]


def _source_digest(src: _Source) -> tuple[str, str]:
    """(sha256 of the source, cache key). The key also covers file names, which carry labels in
    an image folder, and the decoder version."""
    files = _source_files(src)
    if not files:
        raise DataError(src.path, f"no {src.layout} files found")
    sha = sha256_file(src.path) if src.in_tar else fingerprint(files)
    h = hashlib.sha256(f"{CACHE_VERSION}|{src.layout}|{src.prefix}|{sha}|".encode())
    if not src.in_tar:
        for p in files:
            h.update(p.relative_to(src.path).as_posix().encode() + b"\n")
    return sha, h.hexdigest()


# --------------------------------------------------------------------------------------------
# Decoders: each returns (images NHWC uint8, labels int64) or raises DataError naming the place


def _check_labels(labels: np.ndarray, path: Path, where: str | None) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= len(CLASS_NAMES)))
    if bad.size:
        i = int(bad[0])
        loc = f"{where} record {i}" if where else f"record {i}"
        raise DataError(
            path,
            f"label {int(labels[i])} outside 0..{len(CLASS_NAMES) - 1} "
            f"({bad.size} bad label(s) in this file)",
            where=loc,
        )


def _planar_to_nhwc(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _decode_python_batch(raw: bytes, path: Path, where: str | None) -> tuple[np.ndarray, np.ndarray]:
    label = f"{path}:{where}" if where else str(path)
    obj = safe_load(raw, name=label)
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a dict batch, got {type(obj).__name__}", where=where)

    def entry(key: str):
        for k in (key.encode(), key):
            if k in obj:
                return obj[k]
        raise DataError(path, f"batch has no b'{key}' entry (keys: {sorted(map(repr, obj))})", where=where)

    data, labels = entry("data"), entry("labels")
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != PIXELS
    ):
        what = (
            f"shape {data.shape} dtype {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        )
        raise DataError(path, f"b'data' is {what}; expected an (N, {PIXELS}) uint8 array", where=where)
    try:
        lab = np.asarray(labels)
    except Exception:  # ragged or odd objects
        lab = np.asarray([], dtype=object)
    if lab.ndim != 1 or lab.dtype.kind not in "iu":
        raise DataError(path, f"b'labels' must be a list of ints, got {type(labels).__name__}", where=where)
    if len(lab) != len(data):
        raise DataError(
            path, f"b'labels' has {len(lab)} entries but b'data' has {len(data)} rows", where=where
        )
    lab = lab.astype(np.int64)
    _check_labels(lab, path, where)
    return _planar_to_nhwc(data), lab


def _decode_binary_batch(raw: bytes, path: Path, where: str | None) -> tuple[np.ndarray, np.ndarray]:
    if not raw:
        raise DataError(path, "empty file (0 bytes)", where=where)
    if len(raw) % RECORD_BYTES:
        raise DataError(
            path,
            f"length {len(raw)} bytes is not a multiple of the {RECORD_BYTES}-byte record "
            f"(1 label byte + {PIXELS} pixels): {len(raw) // RECORD_BYTES} whole records and "
            f"{len(raw) % RECORD_BYTES} bytes left over (truncated or not a CIFAR-10 .bin file)",
            where=where,
        )
    recs = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    lab = recs[:, 0].astype(np.int64)
    _check_labels(lab, path, where)
    return _planar_to_nhwc(recs[:, 1:]), lab


def _decode_image(raw: bytes, path: Path, where: str | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not raw:
        raise DataError(path, "empty file (0 bytes); expected a 32x32 RGB image", where=where)
    try:
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            mode, size = im.mode, im.size
            arr = np.asarray(im) if (mode, size) == ("RGB", (32, 32)) else None
    except UnidentifiedImageError:
        raise DataError(path, "cannot decode image: not a recognised image format", where=where) from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt image data
        raise DataError(path, f"cannot decode image: {e}", where=where) from None
    if arr is None:
        raise DataError(path, f"image is {mode} {size[0]}x{size[1]}; expected RGB 32x32", where=where)
    return arr


def _decode_image_folder(src: _Source) -> tuple[dict[str, np.ndarray], bool]:
    class_index = {n: i for i, n in enumerate(CLASS_NAMES)}
    items: dict[str, list] = {"train": [], "test": []}
    lossy = False
    for rel, read in _iter_files(src):
        parts = rel.split("/")
        if parts[0] not in items:
            continue  # e.g. a README or batches.meta beside train/ and test/
        path, where = src.label(rel)
        if parts[-1].startswith("."):
            continue  # hidden files (.DS_Store) are not data
        if len(parts) != 3:
            raise DataError(
                path, f"expected {parts[0]}/<class>/<image>, found a file at depth {len(parts)}", where=where
            )
        split, cls, fname = parts
        if cls not in class_index:
            raise DataError(
                path, f"unknown class folder '{cls}' (expected one of: {', '.join(CLASS_NAMES)})", where=where
            )
        stem, suffix = os.path.splitext(fname)
        if suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(path, f"not an image file (expected {'/'.join(IMAGE_SUFFIXES)})", where=where)
        lossy |= suffix.lower() in (".jpg", ".jpeg")
        arr = _decode_image(read(), path, where)
        # numeric file index first (NNNN = per-class running index in official order)
        order = (0, int(stem), "") if stem.isdigit() else (1, 0, stem)
        items[split].append((class_index[cls], order, arr))
    out: dict[str, np.ndarray] = {}
    for split, rows in items.items():
        if not rows:
            raise DataError(src.path, f"no images under {src.prefix}{split}/<class>/")
        rows.sort(key=lambda r: (r[0], r[1]))
        out[f"{split}_images"] = np.stack([r[2] for r in rows])
        out[f"{split}_labels"] = np.array([r[0] for r in rows], dtype=np.int64)
    return out, lossy


def _verified_md5(raw: bytes, official_name: str | None, verify: bool, path: Path, where: str | None) -> str:
    """md5 of one file; with ``verify``, a file with a published md5 must match it (checked before
    anything is unpickled)."""
    md5 = hashlib.md5(raw).hexdigest()
    expected = PYTHON_MD5.get(official_name) if official_name else None
    if verify and expected and md5 != expected:
        raise DataError(
            path,
            f"md5 {md5} does not match the published {expected} (corrupt, truncated, or not "
            "the official file); pass verify=False to load your own batches",
            where=where,
        )
    return md5


def _decode_batches(src: _Source, verify: bool) -> tuple[dict[str, np.ndarray], list[tuple[str, str]]]:
    suffix = ".bin" if src.layout == "binary" else ""
    names = [n + suffix for n in TRAIN_BATCHES + TEST_BATCHES]
    meta_name = "batches.meta" if src.layout == "python" else "batches.meta.txt"
    raw = _read_named(src, names, optional=[meta_name])
    files: list[tuple[str, str]] = []
    for name in names + [meta_name]:
        if name not in raw:
            continue
        path, where = src.label(name)
        md5 = _verified_md5(raw[name], name if src.layout == "python" else None, verify, path, where)
        files.append((name, md5))
    if meta_name in raw:
        _check_meta(raw[meta_name], src, meta_name)
    decode = _decode_python_batch if src.layout == "python" else _decode_binary_batch
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "test": []}
    for name in names:
        path, where = src.label(name)
        images, labels = decode(raw.pop(name), path, where)
        if verify and len(labels) != RECORDS_PER_BATCH:
            raise DataError(
                path,
                f"{len(labels)} records; the official batches hold {RECORDS_PER_BATCH} "
                "(pass verify=False to load a subset)",
                where=where,
            )
        parts["test" if name.startswith("test_batch") else "train"].append((images, labels))
    out = {}
    for split, chunks in parts.items():
        out[f"{split}_images"] = np.concatenate([c[0] for c in chunks])
        out[f"{split}_labels"] = np.concatenate([c[1] for c in chunks])
    return out, files


def _check_meta(raw: bytes, src: _Source, name: str) -> None:
    """batches.meta (pickle) / batches.meta.txt (text) must list the ten CIFAR-10 class names."""
    path, where = src.label(name)
    if name.endswith(".txt"):
        names = [ln.strip() for ln in raw.decode("utf-8", "replace").splitlines() if ln.strip()]
    else:
        label = f"{path}:{where}" if where else str(path)
        obj = safe_load(raw, name=label)
        got = obj.get(b"label_names", obj.get("label_names")) if isinstance(obj, dict) else None
        if not isinstance(got, list):
            raise DataError(path, "no b'label_names' list in batches.meta", where=where)
        names = [n.decode("latin-1") if isinstance(n, bytes) else str(n) for n in got]
    if tuple(names) != CLASS_NAMES:
        raise DataError(path, f"class names {names} differ from CIFAR-10's {list(CLASS_NAMES)}", where=where)


def read_batches_meta(path: PathLike) -> dict[str, Any]:
    """Read an official ``batches.meta`` with the safe unpickler: label names, md5, sizes."""
    path = Path(path)
    raw = path.read_bytes()
    obj = safe_load(raw, name=str(path))
    if not isinstance(obj, dict) or b"label_names" not in obj:
        raise DataError(path, "not a CIFAR-10 batches.meta (no b'label_names')")
    md5 = hashlib.md5(raw).hexdigest()
    return {
        "label_names": [n.decode("latin-1") for n in obj[b"label_names"]],
        "num_cases_per_batch": obj.get(b"num_cases_per_batch"),
        "num_vis": obj.get(b"num_vis"),
        "md5": md5,
        "md5_ok": md5 == PYTHON_MD5["batches.meta"],
    }


def _check_counts(arrays: dict[str, np.ndarray], src: _Source) -> None:
    """verify=True: the full dataset, 5,000 train and 1,000 test images of every class."""
    for split, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        counts = np.bincount(arrays[f"{split}_labels"], minlength=len(CLASS_NAMES))
        for i, n in enumerate(counts):
            if n != per_class:
                raise DataError(
                    src.path,
                    f"{n} images of class '{CLASS_NAMES[i]}', expected {per_class} "
                    "(pass verify=False to load a subset)",
                    where=f"{src.prefix}{split}/{CLASS_NAMES[i]}",
                )


# --------------------------------------------------------------------------------------------
# Public API


def load_cifar10(
    data_dir: PathLike | None = None,
    *,
    path: PathLike | None = None,
    cache_dir: PathLike | None = None,
    verify: bool = True,
) -> Cifar10Arrays:
    """Load CIFAR-10 as uint8 NHWC arrays (decoded once, then read from the cache).

    Args:
        data_dir: data root (else $MIAMIND_DATA, else ~/.cache/miamind/data); the dataset is
            looked up by :func:`locate`.
        path: read this folder or archive instead of locating one.
        cache_dir: decoded-array cache (default: $MIAMIND_CACHE or ~/.cache/miamind/cache).
        verify: python layout -- every file must match its published md5; all layouts -- the
            full dataset (10,000 records per batch; 5,000/1,000 images per class). ``False``
            loads your own or partial files (labels, sizes and formats are still checked).

    Raises:
        DatasetNotFoundError: nothing found (says where it looked and how to get the files).
        DataError: a bad file, naming it (and the record or archive member) and what is wrong.
            Nothing is cached from a bad source.
    """
    src = _detect(Path(path) if path is not None else locate(data_dir))
    sha, key = _source_digest(src)

    def build() -> dict[str, np.ndarray]:
        if src.layout == "image-folder":
            arrays, lossy = _decode_image_folder(src)
            files: list[tuple[str, str]] = []
        else:
            arrays, files = _decode_batches(src, verify)
            lossy = False
        if verify:
            _check_counts(arrays, src)
        arrays["class_names"] = np.array(CLASS_NAMES)
        arrays["file_names"] = np.array([f[0] for f in files], dtype="<U64")
        arrays["file_md5"] = np.array([f[1] for f in files], dtype="<U32")
        arrays["lossy"] = np.array(lossy)
        return arrays

    arrays = cached_arrays(NAME, key, build, Path(cache_dir) if cache_dir is not None else None)
    files = tuple(zip(arrays["file_names"].tolist(), arrays["file_md5"].tolist(), strict=True))
    md5_ok = src.layout == "python" and bool(files) and all(PYTHON_MD5.get(n) == m for n, m in files)
    if verify:
        # The cache may have been filled by a verify=False load of the same bytes: check again.
        if src.layout == "python":
            for n, m in files:
                if n in PYTHON_MD5 and m != PYTHON_MD5[n]:
                    p, where = src.label(n)
                    raise DataError(p, f"md5 {m} does not match the published {PYTHON_MD5[n]}", where=where)
        _check_counts(arrays, src)
    return Cifar10Arrays(
        train_images=arrays["train_images"],
        train_labels=arrays["train_labels"],
        test_images=arrays["test_images"],
        test_labels=arrays["test_labels"],
        class_names=tuple(arrays["class_names"].tolist()),
        layout=src.layout,
        source=src.path,
        source_sha256=sha,
        md5_verified=md5_ok,
        lossy=bool(arrays["lossy"]),
        files=files,
    )


def _check_batch_file(path: Path) -> dict:
    """One official file: ``batches.meta``, a python batch (safe unpickler) or a ``.bin`` batch."""
    if path.name == "batches.meta":
        return {"layout": "python", "file": "batches.meta", **read_batches_meta(path)}
    raw = path.read_bytes()
    if not raw:
        raise DataError(path, "empty file (0 bytes)")
    binary = path.suffix == ".bin"
    _, labels = (_decode_binary_batch if binary else _decode_python_batch)(raw, path, None)
    md5 = _verified_md5(raw, None if binary else path.name, True, path, None)
    published = None if binary else PYTHON_MD5.get(path.name)
    return {
        "layout": "binary" if binary else "python",
        "file": path.name,
        "records": int(len(labels)),
        "counts": {
            n: int(c)
            for n, c in zip(CLASS_NAMES, np.bincount(labels, minlength=len(CLASS_NAMES)), strict=True)
        },
        "md5": md5,
        "md5_published": published,
        "md5_ok": None if published is None else md5 == published,
    }


def check(path: PathLike, *, cache_dir: PathLike | None = None) -> dict:
    """Validate a CIFAR-10 folder or archive (full decode, cached), or one batch file, and summarise it.

    A single file (``data_batch_1``, ``test_batch``, ``batches.meta``, ``*.bin``) is decoded on its
    own: record count, images per class, md5 against the published value where one exists.

    Returns layout, counts per split and class, sha256 of the source, md5 of every batch file
    with the published value and whether it matches, and, for an image folder, the official
    ``batches.meta`` found beside it. Raises DataError on bad input (verify=True).
    """
    path = Path(path)
    if path.is_file() and not _is_archive(path):
        return _check_batch_file(path)
    src = _detect(path)
    arr = load_cifar10(path=path, cache_dir=cache_dir, verify=True)
    counts = arr.counts()
    files = []
    for name, md5 in arr.files:
        expected = PYTHON_MD5.get(name) if arr.layout == "python" else None
        files.append(
            {
                "name": name,
                "md5": md5,
                "md5_published": expected,
                "md5_ok": None if expected is None else md5 == expected,
            }
        )
    if arr.layout == "python":
        verification = "every file matches its published md5"
    elif arr.layout == "binary":
        verification = (
            "no per-file md5 is published for the binary version (only the archive's, "
            f"{BINARY_TAR_MD5}); checked: record size, 10,000 records per file, labels"
        )
    else:
        verification = (
            "image folder: no official checksum exists; checked: 32x32 RGB images, "
            "5,000 train / 1,000 test per class, class folder names"
        )
    report: dict[str, Any] = {
        "layout": arr.layout,
        "container": "archive" if src.in_tar else "folder",
        "source": str(arr.source),
        "source_sha256": arr.source_sha256,
        "lossy": arr.lossy,
        "md5_verified": arr.md5_verified,
        "verification": verification,
        "counts": counts,
        "totals": {s: int(sum(c.values())) for s, c in counts.items()},
        "files": files,
    }
    official_archive = {"cifar-10-python.tar.gz": PYTHON_TAR_MD5, "cifar-10-binary.tar.gz": BINARY_TAR_MD5}
    if src.in_tar and src.path.name in official_archive:
        md5 = md5_file(src.path)
        report["archive_md5"] = md5
        report["archive_md5_ok"] = md5 == official_archive[src.path.name]
    if arr.layout == "image-folder":
        holder = src.path.parent if src.in_tar else src.path
        meta = holder / "batches.meta"
        if meta.is_file():
            info = read_batches_meta(meta)
            if tuple(info["label_names"]) != CLASS_NAMES:
                raise DataError(meta, f"class names {info['label_names']} differ from {list(CLASS_NAMES)}")
            report["batches_meta"] = {"path": str(meta), **info}
    return report


# --------------------------------------------------------------------------------------------
# Download (needs internet; tests run it against a local file:// archive)


def download(data_dir: PathLike | None = None, *, version: str = "python") -> Path:
    """Download the official archive into ``<data root>/cifar10/``, check its md5, extract it.

    ``version`` is "python" (``cifar-10-batches-py/``) or "binary" (``cifar-10-batches-bin/``).
    The same path as ``miamind data fetch cifar10`` (:mod:`miamind.data.fetch`): resumable,
    md5 checked before unpacking, safe unpacking, atomic move. Returns the ``cifar10`` folder.
    """
    if version == "python":
        url, md5 = PYTHON_URL, PYTHON_TAR_MD5
    elif version == "binary":
        url, md5 = BINARY_URL, BINARY_TAR_MD5
    else:
        raise ValueError(f"version must be 'python' or 'binary', got {version!r}")
    source = Source(
        dataset=NAME,
        folder=NAME,
        copy=f"the official {version} batches",
        files=(Remote(PurePosixPath(url).name, (url,), f"md5:{md5}", unpack=True),),
    )
    fetch_dataset(NAME, data_dir, source=source, log=None)
    return data_root(data_dir) / NAME


__all__ = [
    "CIFAR10_INFO",
    "CLASS_NAMES",
    "Cifar10Arrays",
    "HOW_TO_OBTAIN",
    "NAME",
    "check",
    "download",
    "load_cifar10",
    "locate",
    "read_batches_meta",
]
