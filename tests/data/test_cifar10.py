"""CIFAR-10 loader: three layouts (folder or .tar.gz), md5 verification, caching, bad input,
download, and the real JPEG set under MIAMIND_DATA checked against the official order."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import pickletools
import re
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import miamind.data.cifar10 as cifar10
from miamind.data import check_dataset
from miamind.data.cifar10 import CIFAR10_INFO, CLASS_NAMES, load_cifar10
from miamind.data.errors import DataError, DatasetNotFoundError

from .test_safe_pickle import _Reduce, py2_pickle

REAL_TAR = "cifar-10-images-jpeg-q75_YoongiKim.tar.gz"
REAL_TAR_SHA256 = "a2636809c359f100f7d4afb566e847b7c3ec92516fc99b4f43b349cfafac88e1"

# ----------------------------------------------------------------------------------------------
# Builders for small datasets in each layout, from the same arrays


def make_arrays(train_per_class=15, test_per_class=3, seed=0):
    """Balanced labels in shuffled ("official-like") order, random pixels."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, k in (("train", train_per_class), ("test", test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(10), k)).astype(np.int64)
        out[f"{split}_labels"] = labels
        out[f"{split}_images"] = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    return out


def planar_rows(images):
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # 1024 R, 1024 G, 1024 B


def write_python(folder: Path, arrs) -> Path:
    d = folder / "cifar-10-batches-py"
    d.mkdir(parents=True)
    chunks = np.array_split(np.arange(len(arrs["train_labels"])), 5)
    batches = [
        (f"data_batch_{k + 1}", f"training batch {k + 1} of 5", "train", idx) for k, idx in enumerate(chunks)
    ]
    batches.append(("test_batch", "testing batch 1 of 1", "test", np.arange(len(arrs["test_labels"]))))
    for name, label, split, idx in batches:
        (d / name).write_bytes(
            py2_pickle(
                {
                    "batch_label": label,
                    "labels": [int(v) for v in arrs[f"{split}_labels"][idx]],
                    "data": planar_rows(arrs[f"{split}_images"][idx]),
                    "filenames": [f"{split}_{i}.png" for i in idx],
                }
            )
        )
    (d / "batches.meta").write_bytes(
        py2_pickle({"num_cases_per_batch": 10000, "label_names": list(CLASS_NAMES), "num_vis": 3072})
    )
    return d


def write_binary(folder: Path, arrs) -> Path:
    d = folder / "cifar-10-batches-bin"
    d.mkdir(parents=True)
    chunks = np.array_split(np.arange(len(arrs["train_labels"])), 5)
    files = [(f"data_batch_{k + 1}.bin", "train", idx) for k, idx in enumerate(chunks)]
    files.append(("test_batch.bin", "test", np.arange(len(arrs["test_labels"]))))
    for name, split, idx in files:
        labels = arrs[f"{split}_labels"][idx].astype(np.uint8)[:, None]
        (d / name).write_bytes(
            np.concatenate([labels, planar_rows(arrs[f"{split}_images"][idx])], 1).tobytes()
        )
    (d / "batches.meta.txt").write_text("\n".join(CLASS_NAMES) + "\n\n")
    return d


def write_image_folder(folder: Path, arrs, ext="png") -> Path:
    """train/<class>/NNNN.<ext>, NNNN = running index within the class in array order."""
    for split in ("train", "test"):
        running = {c: 0 for c in CLASS_NAMES}
        for img, lab in zip(arrs[f"{split}_images"], arrs[f"{split}_labels"], strict=True):
            cls = CLASS_NAMES[lab]
            p = folder / split / cls / f"{running[cls]:04d}.{ext}"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(p)
            running[cls] += 1
    return folder


def make_tar(src: Path, tar_path: Path, arcname: str) -> Path:
    with tarfile.open(tar_path, "w:gz") as tf:
        tf.add(src, arcname=arcname)
    return tar_path


def class_major(arrs, split):
    """Official order -> image-folder order (class, then running index = stable sort)."""
    order = np.argsort(arrs[f"{split}_labels"], kind="stable")
    return arrs[f"{split}_images"][order], arrs[f"{split}_labels"][order]


def cache_files(cache: Path):
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


def expect_error(cache: Path, match: str, **kwargs) -> DataError:
    """Loading fails with a DataError matching ``match`` and nothing lands in the cache."""
    kwargs.setdefault("verify", False)
    with pytest.raises(DataError, match=match) as err:
        load_cifar10(cache_dir=cache, **kwargs)
    assert cache_files(cache) == []
    return err.value


@pytest.fixture
def arrs():
    return make_arrays()


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def small_counts(monkeypatch):
    """Make the "full dataset" checks of verify=True apply to the small synthetic sets."""
    monkeypatch.setattr(cifar10.release, "RECORDS_PER_BATCH", 30)
    monkeypatch.setattr(cifar10.release, "TRAIN_PER_CLASS", 15)
    monkeypatch.setattr(cifar10.release, "TEST_PER_CLASS", 3)


# ----------------------------------------------------------------------------------------------
# Layouts agree


def assert_layouts_agree(tmp_path: Path, arrs, cache: Path):
    py = write_python(tmp_path / "py", arrs)
    binf = write_binary(tmp_path / "bin", arrs)
    img = write_image_folder(tmp_path / "img", arrs)
    sources = {
        "python-dir": tmp_path / "py",
        "python-tar": make_tar(py, tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py"),
        "binary-dir": tmp_path / "bin",
        "binary-tar": make_tar(binf, tmp_path / "cifar-10-binary.tar.gz", "cifar-10-batches-bin"),
        "image-dir": img,
        "image-tar": make_tar(img, tmp_path / "images.tar.gz", "CIFAR-10-images"),  # with a top folder
    }
    loaded = {k: load_cifar10(path=p, cache_dir=cache, verify=False) for k, p in sources.items()}
    for k, a in loaded.items():
        assert a.layout == k.split("-")[0].replace("image", "image-folder"), k
        assert a.train_images.dtype == np.uint8 and a.train_images.shape == arrs["train_images"].shape
        assert a.train_labels.dtype == np.int64 and a.class_names == CLASS_NAMES
        assert not a.lossy  # PNG
        if a.layout == "image-folder":
            for split in ("train", "test"):
                images, labels = class_major(arrs, split)
                np.testing.assert_array_equal(getattr(a, f"{split}_images"), images)
                np.testing.assert_array_equal(getattr(a, f"{split}_labels"), labels)
        else:  # official layouts keep the official order
            for key in ("train_images", "train_labels", "test_images", "test_labels"):
                np.testing.assert_array_equal(getattr(a, key), arrs[key])
    return loaded


def test_three_layouts_give_identical_arrays(tmp_path, arrs, cache):
    loaded = assert_layouts_agree(tmp_path, arrs, cache)
    assert len(cache_files(cache)) == len(loaded)  # one cache entry per source
    a = loaded["python-dir"]
    images, labels = a.tensors("train")
    assert images.shape == (150, 3, 32, 32) and str(images.dtype) == "torch.uint8" and images.is_contiguous()
    np.testing.assert_array_equal(images.numpy(), arrs["train_images"].transpose(0, 3, 1, 2))
    assert str(labels.dtype) == "torch.int64"
    with pytest.raises(ValueError, match="split"):
        a.tensors("val")


def test_meta():
    assert CIFAR10_INFO.class_names == CLASS_NAMES and CIFAR10_INFO.num_classes == 10
    assert CIFAR10_INFO.channels == 3 and CIFAR10_INFO.input_shape == (3, 32, 32)


# ----------------------------------------------------------------------------------------------
# Verification and caching


def test_python_md5_verified_path(tmp_path, arrs, cache, monkeypatch, small_counts):
    d = write_python(tmp_path, arrs)
    published = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in d.iterdir()}
    monkeypatch.setattr(cifar10.release, "PYTHON_MD5", published)
    a = load_cifar10(path=tmp_path, cache_dir=cache)
    assert a.md5_verified and a.layout == "python"
    assert dict(a.files) == published
    rep = check_dataset("cifar10", path=tmp_path)
    json.dumps(rep)
    assert rep["md5_verified"] and all(f["md5_ok"] for f in rep["files"])
    (tmp_path / "t").mkdir()
    make_tar(d, tmp_path / "t" / "cifar-10-python.tar.gz", "cifar-10-batches-py")
    rep = cifar10.check(tmp_path / "t")
    assert rep["container"] == "archive" and rep["md5_verified"] and rep["archive_md5_ok"] is False
    assert rep["counts"]["train"]["cat"] == 15 and rep["totals"] == {"train": 150, "test": 30}


def test_md5_mismatch_is_an_error_unless_verify_false(tmp_path, arrs, cache):
    write_python(tmp_path, arrs)  # synthetic files: not the official md5s
    err = expect_error(
        cache,
        r"data_batch_1: md5 [0-9a-f]{32} does not match the published "
        "c99cafc152244af753f735de768cd75f",
        path=tmp_path,
        verify=True,
    )
    assert err.path == tmp_path / "cifar-10-batches-py" / "data_batch_1"
    a = load_cifar10(path=tmp_path, cache_dir=cache, verify=False)
    assert not a.md5_verified
    # A cache entry made with verify=False must not let verify=True skip the md5 check.
    with pytest.raises(DataError, match="does not match the published"):
        load_cifar10(path=tmp_path, cache_dir=cache, verify=True)


def test_md5_is_checked_before_unpickling(tmp_path, arrs, cache):
    d = write_python(tmp_path, arrs)
    marker = tmp_path / "marker"
    (d / "data_batch_1").write_bytes(
        pickle.dumps({"data": _Reduce(os.system, f"touch {marker}")}, protocol=2)
    )
    expect_error(cache, "md5", path=tmp_path, verify=True)
    assert not marker.exists()


def test_verify_requires_the_full_dataset(tmp_path, arrs, cache):
    write_image_folder(tmp_path, arrs)
    err = expect_error(
        cache, r"train/airplane: 15 images of class 'airplane', expected 5000", path=tmp_path, verify=True
    )
    assert "verify=False" in str(err)
    write_binary(tmp_path / "b", arrs)
    expect_error(
        cache,
        r"data_batch_1.bin: 30 records; the official batches hold 10000",
        path=tmp_path / "b",
        verify=True,
    )


def test_second_load_comes_from_the_cache(tmp_path, arrs, cache, monkeypatch):
    write_python(tmp_path, arrs)
    first = load_cifar10(path=tmp_path, cache_dir=cache, verify=False)
    assert len(cache_files(cache)) == 1

    def no_decode(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(cifar10.load, "decode_batches", no_decode)
    second = load_cifar10(path=tmp_path, cache_dir=cache, verify=False)
    np.testing.assert_array_equal(second.train_images, first.train_images)
    assert second.source_sha256 == first.source_sha256
    # Changed content -> new key -> decoded again (and the change is seen).
    arrs["train_images"][0, 0, 0] ^= 0xFF
    write_python(tmp_path / "v2", arrs)
    with pytest.raises(AssertionError, match="decoded again"):
        load_cifar10(path=tmp_path / "v2", cache_dir=cache, verify=False)
    monkeypatch.undo()
    third = load_cifar10(path=tmp_path / "v2", cache_dir=cache, verify=False)
    assert third.source_sha256 != first.source_sha256
    np.testing.assert_array_equal(third.train_images, arrs["train_images"])


def test_cache_key_covers_file_names_of_an_image_folder(tmp_path, arrs, cache):
    write_image_folder(tmp_path, arrs)
    a = load_cifar10(path=tmp_path, cache_dir=cache, verify=False)
    # moving an image to another class folder changes labels but not file contents
    (tmp_path / "train" / "cat" / "0000.png").rename(tmp_path / "train" / "dog" / "9999.png")
    b = load_cifar10(path=tmp_path, cache_dir=cache, verify=False)
    assert np.bincount(b.train_labels)[3] == np.bincount(a.train_labels)[3] - 1
    assert np.bincount(b.train_labels)[5] == np.bincount(a.train_labels)[5] + 1


def test_channel_stats_use_training_images_only(tmp_path, arrs, cache):
    from miamind.data.augment import channel_stats

    arrs["test_images"][:] = 255  # test split far from the training distribution
    write_image_folder(tmp_path, arrs)
    a = load_cifar10(path=tmp_path, cache_dir=cache, verify=False)
    mean, std = a.channel_stats()
    assert (mean, std) == channel_stats(arrs["train_images"], layout="NHWC")
    both = np.concatenate([a.train_images, a.test_images])
    assert channel_stats(both, layout="NHWC")[0][0] > mean[0] + 0.05


# ----------------------------------------------------------------------------------------------
# Bad input: a clear DataError naming the file (and record / member); nothing cached


def test_truncated_pickle(tmp_path, arrs, cache):
    d = write_python(tmp_path, arrs)
    raw = (d / "data_batch_3").read_bytes()
    (d / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    expect_error(cache, r"data_batch_3: truncated pickle", path=tmp_path)


def test_foreign_global_is_not_executed(tmp_path, arrs, cache):
    d = write_python(tmp_path, arrs)
    marker = tmp_path / "marker"
    (d / "data_batch_2").write_bytes(
        pickle.dumps({"data": _Reduce(os.system, f"touch {marker}")}, protocol=2)
    )
    err = expect_error(
        cache, r"data_batch_2: pickle refers to forbidden global 'posix\.system'", path=tmp_path
    )
    assert "refusing" in str(err)
    assert not marker.exists()


def test_wrong_array_size(tmp_path, arrs, cache):
    d = write_python(tmp_path, arrs)
    (d / "data_batch_1").write_bytes(py2_pickle({"labels": [0] * 4, "data": np.zeros((4, 3000), np.uint8)}))
    expect_error(
        cache,
        r"data_batch_1: b'data' is shape \(4, 3000\) dtype uint8; expected an \(N, 3072\) uint8",
        path=tmp_path,
    )
    (d / "data_batch_1").write_bytes(py2_pickle({"labels": [0] * 3, "data": np.zeros((4, 3072), np.uint8)}))
    expect_error(cache, r"data_batch_1: b'labels' has 3 entries but b'data' has 4 rows", path=tmp_path)
    (d / "data_batch_1").write_bytes(py2_pickle([1, 2]))
    expect_error(cache, r"data_batch_1: expected a dict batch, got list", path=tmp_path)


def test_unknown_label_in_python_batch(tmp_path, arrs, cache):
    d = write_python(tmp_path, arrs)
    labels = [1] * 10
    labels[7] = 10
    (d / "test_batch").write_bytes(py2_pickle({"labels": labels, "data": np.zeros((10, 3072), np.uint8)}))
    expect_error(cache, r"test_batch:record 7: label 10 outside 0\.\.9", path=tmp_path)


def test_empty_and_missing_batch_files(tmp_path, arrs, cache):
    d = write_python(tmp_path, arrs)
    (d / "test_batch").write_bytes(b"")
    expect_error(cache, r"test_batch: empty file", path=tmp_path)
    (d / "data_batch_4").unlink()
    expect_error(cache, r"cifar-10-batches-py: missing python batch file\(s\): data_batch_4", path=tmp_path)


def test_binary_wrong_length_label_and_empty(tmp_path, arrs, cache):
    d = write_binary(tmp_path, arrs)
    good = (d / "data_batch_2.bin").read_bytes()
    (d / "data_batch_2.bin").write_bytes(good + b"12345")
    expect_error(
        cache,
        r"data_batch_2\.bin: length 92195 bytes is not a multiple of the 3073-byte record",
        path=tmp_path,
    )
    bad = bytearray(good)
    bad[3 * 3073] = 12  # label byte of record 3
    (d / "data_batch_2.bin").write_bytes(bytes(bad))
    expect_error(cache, r"data_batch_2\.bin:record 3: label 12 outside 0\.\.9", path=tmp_path)
    (d / "data_batch_2.bin").write_bytes(b"")
    expect_error(cache, r"data_batch_2\.bin: empty file", path=tmp_path)


def _image_bytes(mode="RGB", size=(32, 32), fmt="PNG"):
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    "rel,content,match",
    [
        ("train/cat/notes.txt", b"hello", r"train/cat/notes\.txt: not an image file"),
        ("train/cat/0100.png", b"not really a png", r"train/cat/0100\.png: cannot decode image"),
        ("train/cat/0100.png", b"", r"train/cat/0100\.png: empty file"),
        (
            "test/dog/0100.png",
            ("RGB", (28, 28)),
            r"test/dog/0100\.png: image is RGB 28x28; expected RGB 32x32",
        ),
        ("test/dog/0100.png", ("L", (32, 32)), r"test/dog/0100\.png: image is L 32x32; expected RGB 32x32"),
        ("train/lion/0000.png", ("RGB", (32, 32)), r"train/lion/0000\.png: unknown class folder 'lion'"),
        ("train/0000.png", ("RGB", (32, 32)), r"train/0000\.png: expected train/<class>/<image>"),
    ],
)
def test_bad_image_folder_entries(tmp_path, arrs, cache, rel, content, match):
    root = write_image_folder(tmp_path / "img", arrs)
    raw = content if isinstance(content, bytes) else _image_bytes(*content)
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(raw)
    err = expect_error(cache, match, path=root)
    # the same inside an archive: the error names the archive and the member
    tar = make_tar(root, tmp_path / "imgs.tar.gz", "top")
    err_tar = expect_error(cache, re.escape(f"{tar}:top/{rel}: "), path=tar)
    assert str(err_tar).split(": ", 1)[1] == str(err).split(": ", 1)[1]


def test_not_found_and_no_layout(tmp_path, cache, monkeypatch):
    with pytest.raises(DatasetNotFoundError) as err:
        load_cifar10(tmp_path / "data", cache_dir=cache)
    msg = str(err.value)
    assert (
        str(tmp_path / "data" / "cifar10") in msg
        and cifar10.PYTHON_URL in msg
        and cifar10.PYTHON_TAR_MD5 in msg
    )
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "README").write_text("x")
    with pytest.raises(DataError, match="no CIFAR-10 layout found"):
        load_cifar10(path=tmp_path / "cifar10", cache_dir=cache)
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(DataError, match="junk.tar.gz: cannot open archive"):
        load_cifar10(path=tmp_path / "junk.tar.gz", cache_dir=cache)
    assert cache_files(cache) == []


# ----------------------------------------------------------------------------------------------
# Finding the data


def test_locate_roots_and_priority(tmp_path, arrs, monkeypatch):
    env_root, arg_root = tmp_path / "env", tmp_path / "arg"
    write_image_folder(env_root / "cifar10", arrs)
    arg_root.mkdir()
    make_tar(write_python(tmp_path / "p", arrs), arg_root / "cifar-10-python.tar.gz", "cifar-10-batches-py")
    monkeypatch.setenv("MIAMIND_DATA", str(env_root))
    assert cifar10.locate() == env_root / "cifar10"
    # torchvision's arrangement: the official archive directly in the data root
    assert cifar10.locate(arg_root) == arg_root
    assert load_cifar10(arg_root, verify=False).layout == "python"
    monkeypatch.delenv("MIAMIND_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "home" / ".cache" / "miamind" / "data")):
        cifar10.locate()
    # python batches beat an image folder in the same place (exact pixels first)
    write_python(env_root / "cifar10", arrs)
    assert load_cifar10(env_root, verify=False).layout == "python"


# ----------------------------------------------------------------------------------------------
# Download (against a local file:// archive: no internet here)


def _serve(tmp_path, monkeypatch, tar_path, md5=None):
    monkeypatch.setattr(cifar10.release, "PYTHON_URL", tar_path.as_uri())
    monkeypatch.setattr(
        cifar10.release, "PYTHON_TAR_MD5", md5 or hashlib.md5(tar_path.read_bytes()).hexdigest()
    )


def test_download_verifies_and_extracts(tmp_path, arrs, monkeypatch):
    src = make_tar(
        write_python(tmp_path / "src", arrs), tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py"
    )
    _serve(tmp_path, monkeypatch, src)
    root = tmp_path / "root"
    dest = cifar10.download(root)
    assert dest == root / "cifar10" and (dest / "cifar-10-batches-py" / "data_batch_5").is_file()
    a = load_cifar10(root, verify=False)
    assert a.layout == "python" and a.source == dest / "cifar-10-batches-py"
    np.testing.assert_array_equal(a.test_images, arrs["test_images"])


def test_download_md5_mismatch(tmp_path, arrs, monkeypatch):
    src = make_tar(write_python(tmp_path / "src", arrs), tmp_path / "c.tar.gz", "cifar-10-batches-py")
    _serve(tmp_path, monkeypatch, src, md5="0" * 32)
    with pytest.raises(DataError, match=r"c\.tar\.gz: md5 [0-9a-f]{32} differs from the expected 0{32}"):
        cifar10.download(tmp_path / "root")
    assert not (tmp_path / "root" / "cifar10").exists()  # nothing unpacked
    assert list((tmp_path / "root").rglob("*.part")) == []  # no partial file left


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink"])
def test_download_refuses_unsafe_archives(tmp_path, monkeypatch, kind):
    tar_path = tmp_path / "evil.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        info = tarfile.TarInfo(
            {
                "traversal": "../../escaped.txt",
                "absolute": "/tmp/escaped_abs.txt",
                "symlink": "cifar-10-batches-py/link",
            }[kind]
        )
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(info)
        else:
            info.size = 3
            tf.addfile(info, io.BytesIO(b"bad"))
    _serve(tmp_path, monkeypatch, tar_path)
    with pytest.raises(DataError, match="refusing to extract"):
        cifar10.download(tmp_path / "a" / "root")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "a" / "escaped.txt").exists()
    assert not (tmp_path / "a" / "root" / "cifar10" / "cifar-10-batches-py").exists()


# ----------------------------------------------------------------------------------------------
# The real data under MIAMIND_DATA (the JPEG set; the official batches are not available here)


@pytest.fixture(scope="module")
def real(real_data_dir, shared_cache_dir):
    t0 = time.perf_counter()
    first = load_cifar10(real_data_dir, cache_dir=shared_cache_dir)
    t1 = time.perf_counter()
    again = load_cifar10(real_data_dir, cache_dir=shared_cache_dir)
    t2 = time.perf_counter()
    return {
        "arr": first,
        "again": again,
        "first_s": t1 - t0,
        "cached_s": t2 - t1,
        "dir": real_data_dir / "cifar10",
    }


@pytest.mark.realdata
def test_real_counts_shapes_and_source(real):
    a = real["arr"]
    assert a.layout == "image-folder" and a.lossy and not a.md5_verified
    assert a.source.name == REAL_TAR and a.source_sha256 == REAL_TAR_SHA256
    assert a.train_images.shape == (50000, 32, 32, 3) and a.test_images.shape == (10000, 32, 32, 3)
    assert a.train_images.dtype == np.uint8 and a.train_labels.dtype == np.int64
    assert a.counts() == {"train": {c: 5000 for c in CLASS_NAMES}, "test": {c: 1000 for c in CLASS_NAMES}}
    assert np.array_equal(real["again"].train_images, a.train_images)
    assert real["cached_s"] < 2.0, f"cached load took {real['cached_s']:.2f} s"


@pytest.mark.realdata
def test_real_labels_and_pixels_match_the_official_order(real):
    import pandas as pd

    a, d = real["arr"], real["dir"]
    index = pd.read_csv(d / "official_order_index.csv.gz")
    official = np.load(d / "official_order_labels_and_exact_prefix_pixels.npz")
    for split, per_class in (("train", 5000), ("test", 1000)):
        rows = index[index.split == split].sort_values("index_in_split")
        assert rows.index_in_split.tolist() == list(range(10 * per_class))
        parts = rows.jpeg_path_in_tar.str.split("/", expand=True)
        cls = parts[1].map({c: i for i, c in enumerate(CLASS_NAMES)}).to_numpy()
        num = parts[2].str.slice(0, 4).astype(int).to_numpy()
        assert (parts[0] == split).all() and num.min() == 0 and num.max() == per_class - 1
        # our class-major order: position = class * per_class + NNNN
        pos = cls * per_class + num
        assert np.array_equal(np.sort(pos), np.arange(10 * per_class))  # a permutation
        ours = getattr(a, f"{split}_labels")
        np.testing.assert_array_equal(ours[pos], official[f"{split}_labels"])
        np.testing.assert_array_equal(rows.label.to_numpy(), official[f"{split}_labels"])

        # pixels: JPEG vs the exact official rows available (1,017 per batch)
        exact = official[f"{split}_prefix_data"].reshape(-1, 1017, 3072)
        offsets = np.arange(exact.shape[0]) * 10000
        official_idx = (offsets[:, None] + np.arange(1017)[None]).ravel()
        exact_nhwc = exact.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.int16)
        imgs = getattr(a, f"{split}_images")
        mae = np.abs(imgs[pos[official_idx]].astype(np.int16) - exact_nhwc).mean()
        assert mae < 15, f"{split}: JPEG vs exact MAE {mae:.1f}/255"
        wrong = np.abs(imgs[pos[official_idx + 1]].astype(np.int16) - exact_nhwc).mean()
        assert wrong > 30, f"{split}: a shifted mapping should not match (MAE {wrong:.1f})"


@pytest.mark.realdata
def test_real_batches_meta_and_check(real, shared_cache_dir):
    meta_path = real["dir"] / "batches.meta"
    info = cifar10.read_batches_meta(meta_path)
    assert info["md5"] == "5ff9c542aee3614f3951f8cda6e48888" and info["md5_ok"]
    assert tuple(info["label_names"]) == CLASS_NAMES
    # our py2-style writer reproduces the official pickle's opcode sequence
    ours = py2_pickle({"num_cases_per_batch": 10000, "label_names": list(CLASS_NAMES), "num_vis": 3072})

    def ops(raw):
        return [op.name for op, _, _ in pickletools.genops(raw) if op.name not in ("BINPUT", "MEMOIZE")]

    assert ops(ours) == ops(meta_path.read_bytes())
    rep = cifar10.check(real["dir"], cache_dir=shared_cache_dir)
    json.dumps(rep)
    assert rep["totals"] == {"train": 50000, "test": 10000} and rep["lossy"] is True
    assert rep["source_sha256"] == REAL_TAR_SHA256 and rep["batches_meta"]["md5_ok"] is True


@pytest.mark.realdata
def test_real_training_statistics(real):
    mean, std = real["arr"].channel_stats()
    # Close to the published statistics of the lossless training set (JPEG shifts them slightly).
    np.testing.assert_allclose(mean, (0.4914, 0.4822, 0.4465), atol=0.005)
    np.testing.assert_allclose(std, (0.2470, 0.2435, 0.2616), atol=0.005)


@pytest.mark.realdata
def test_real_images_through_all_three_layouts(real, tmp_path, cache):
    a = real["arr"]
    rng = np.random.default_rng(1)
    pick = {}
    for split, k in (("train", 15), ("test", 5)):
        labels = getattr(a, f"{split}_labels")
        idx = np.concatenate([np.flatnonzero(labels == c)[:k] for c in range(10)])
        idx = rng.permutation(idx)
        pick[f"{split}_images"] = getattr(a, f"{split}_images")[idx]
        pick[f"{split}_labels"] = labels[idx]
    assert_layouts_agree(tmp_path, pick, cache)


# ------------------------------------------------------------------ one file at a time (data check --path)


def test_check_single_python_and_binary_batch_files(tmp_path, arrs, monkeypatch):
    py = write_python(tmp_path / "py", arrs)
    binary = write_binary(tmp_path / "bin", arrs)
    expected = {
        n: int(c) for n, c in zip(CLASS_NAMES, np.bincount(arrs["test_labels"], minlength=10), strict=True)
    }
    # a file named like an official batch must carry the official md5: pretend ours is official
    monkeypatch.setitem(
        cifar10.PYTHON_MD5, "test_batch", hashlib.md5((py / "test_batch").read_bytes()).hexdigest()
    )
    assert cifar10.check(py / "test_batch")["md5_ok"] is True
    for f in (py / "test_batch", binary / "test_batch.bin"):
        rep = cifar10.check(f)
        assert rep["records"] == len(arrs["test_labels"]) and rep["counts"] == expected, f
    assert cifar10.check(py / "batches.meta")["label_names"] == list(CLASS_NAMES)
    monkeypatch.setitem(cifar10.PYTHON_MD5, "test_batch", "0" * 32)
    with pytest.raises(DataError, match=r"test_batch: md5 .* does not match the published"):
        cifar10.check(py / "test_batch")


def test_check_single_file_rejects_foreign_global_without_running_it(tmp_path):
    marker = tmp_path / "marker"
    bad = tmp_path / "data_batch_1"
    bad.write_bytes(pickle.dumps({"data": _Reduce(os.system, f"touch {marker}")}, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_1: .*forbidden global"):
        cifar10.check(bad)
    assert not marker.exists()
    short = tmp_path / "data_batch_1.bin"
    short.write_bytes(b"\x01" * 100)
    with pytest.raises(DataError, match=r"data_batch_1\.bin: length 100 bytes"):
        cifar10.check(short)
