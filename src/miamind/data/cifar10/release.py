"""What the official CIFAR-10 release is: class names, sizes, file names, URLs and checksums.

Other modules read the constants a test may point elsewhere (``PYTHON_URL``, ``PYTHON_TAR_MD5``,
``PYTHON_MD5``, ``RECORDS_PER_BATCH``, ``TRAIN_PER_CLASS``, ``TEST_PER_CLASS``) as
``release.NAME`` at call time, so patching them here reaches every use.
"""

from __future__ import annotations

from pathlib import Path

from ..fetch import Remote, Source
from ..info import DatasetInfo

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
