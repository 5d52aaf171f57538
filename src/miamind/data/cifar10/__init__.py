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

One concept a module (its docstring says which). Tests that point a constant elsewhere patch it in
``release``.
"""

from __future__ import annotations

from .arrays import Cifar10Arrays
from .batches import read_batches_meta
from .check import check, describe
from .decode import decode_image
from .download import download
from .layout import locate
from .load import load_cifar10
from .release import (
    BINARY_FOLDER,
    BINARY_TAR_MD5,
    BINARY_URL,
    CIFAR10_INFO,
    CLASS_NAMES,
    FETCH,
    HOW_TO_OBTAIN,
    IMAGE_SUFFIXES,
    NAME,
    PIXELS,
    PYTHON_FOLDER,
    PYTHON_MD5,
    PYTHON_TAR_MD5,
    PYTHON_URL,
    RECORD_BYTES,
    RECORDS_PER_BATCH,
    TEST_BATCHES,
    TEST_PER_CLASS,
    TRAIN_BATCHES,
    TRAIN_PER_CLASS,
    PathLike,
)

__all__ = [
    "BINARY_FOLDER",
    "BINARY_TAR_MD5",
    "BINARY_URL",
    "CIFAR10_INFO",
    "CLASS_NAMES",
    "FETCH",
    "HOW_TO_OBTAIN",
    "IMAGE_SUFFIXES",
    "NAME",
    "PIXELS",
    "PYTHON_FOLDER",
    "PYTHON_MD5",
    "PYTHON_TAR_MD5",
    "PYTHON_URL",
    "RECORDS_PER_BATCH",
    "RECORD_BYTES",
    "TEST_BATCHES",
    "TEST_PER_CLASS",
    "TRAIN_BATCHES",
    "TRAIN_PER_CLASS",
    "Cifar10Arrays",
    "PathLike",
    "check",
    "describe",
    "decode_image",
    "download",
    "load_cifar10",
    "locate",
    "read_batches_meta",
]
