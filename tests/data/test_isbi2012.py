"""ISBI 2012 loader: TIFF/PNG layouts, bad input, label encoding, folds, crops, padding, real data."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from miamind.data import check_dataset
from miamind.data import isbi2012 as isbi
from miamind.data.errors import DataError, DatasetNotFoundError

N, H, W = 6, 32, 32


# --------------------------------------------------------------------------- synthetic layouts


def _synthetic(n: int = N, h: int = H, w: int = W, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
    labels = np.where(rng.random((n, h, w)) < 0.25, 0, 255).astype(np.uint8)
    test = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
    return images, labels, test


def _write_tif(root: Path, images, labels, test) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(root / "train-volume.tif", images)
    tifffile.imwrite(root / "train-labels.tif", labels)
    if test is not None:
        tifffile.imwrite(root / "test-volume.tif", test)
    return root


def _write_png(root: Path, images, labels, test, test_dir: str = "test/image") -> Path:
    for sub, stack in (("train/image", images), ("train/label", labels), (test_dir, test)):
        if stack is None:
            continue
        (root / sub).mkdir(parents=True, exist_ok=True)
        for i, sl in enumerate(stack):
            Image.fromarray(sl, mode="L").save(root / sub / f"{i}.png")
    return root


@pytest.fixture
def arrays():
    return _synthetic()


@pytest.fixture
def tif_root(tmp_path, arrays):
    return _write_tif(tmp_path / "isbi2012", *arrays)


@pytest.fixture
def png_root(tmp_path, arrays):
    return _write_png(tmp_path / "isbi2012", *arrays)


def _cache_files(cache_dir: Path):
    return [p for p in cache_dir.rglob("*") if p.is_file()] if cache_dir.exists() else []


# --------------------------------------------------------------------------- loading


def test_tif_and_png_layouts_load_identically(tmp_path, arrays):
    images, labels, test = arrays
    root = _write_png(_write_tif(tmp_path / "isbi2012", *arrays), *arrays)
    from_tif = isbi.load_isbi2012(path=root, source="tif")
    from_png = isbi.load_isbi2012(path=root, source="png")
    auto = isbi.load_isbi2012(path=root)
    assert auto.meta["source"] == "tif"  # TIFF stacks win when both are present
    for got in (from_tif, from_png):
        np.testing.assert_array_equal(got.train_images, images)
        np.testing.assert_array_equal(got.train_labels, labels)
        np.testing.assert_array_equal(got.test_images, test)
        assert got.train_images.dtype == np.uint8 and got.train_labels.dtype == np.uint8
    assert from_png.meta["source"] == "png"
    # the PNG-only folder is picked up by 'auto' as well
    png_only = _write_png(tmp_path / "png_only", *arrays)
    np.testing.assert_array_equal(isbi.load_isbi2012(path=png_only).train_labels, labels)


def test_meta_and_label_encoding_are_explicit(tif_root, arrays):
    data = isbi.load_isbi2012(path=tif_root)
    m = data.meta
    assert m["class_names"] == ["membrane", "cell"]
    assert m["label_values"] == {"membrane": 0, "cell": 255}
    assert m["target_values"] == {"membrane": 0, "cell": 1}
    assert m["channels"] == 1 and m["input_shape"] == [1, H, W]
    assert m["n_train"] == N and m["n_test"] == N
    # target = class index into CLASS_NAMES; membrane pixels (label 0) must map to "membrane"
    labels = arrays[1]
    target = data.train_targets
    assert set(np.unique(target).tolist()) == {0, 1}
    assert all(isbi.CLASS_NAMES[t] == "membrane" for t in target[labels == isbi.MEMBRANE_VALUE][:50])
    assert all(isbi.CLASS_NAMES[t] == "cell" for t in target[labels == isbi.CELL_VALUE][:50])
    np.testing.assert_array_equal(isbi.target_to_labels(target), labels)
    with pytest.raises(ValueError, match="membrane"):
        isbi.labels_to_target(np.array([0, 128, 255], dtype=np.uint8))
    with pytest.raises(ValueError, match="cell"):
        isbi.target_to_labels(np.array([0, 2]))
    assert isbi.membrane_fraction(labels) == pytest.approx(np.mean(labels == 0))


def test_png_slices_are_sorted_numerically(tmp_path):
    # 12 slices: a lexicographic sort would put 10.png and 11.png before 2.png
    images, labels, test = _synthetic(n=12, h=8, w=8)
    images[:] = np.arange(12, dtype=np.uint8)[:, None, None] * 10
    root = _write_png(tmp_path / "isbi2012", images, labels, test)
    got = isbi.load_isbi2012(path=root)
    np.testing.assert_array_equal(got.train_images[:, 0, 0], np.arange(12) * 10)
    np.testing.assert_array_equal(got.train_labels, labels)


def test_unet_repo_test_folder_is_accepted(tmp_path, arrays):
    images, labels, test = arrays
    root = _write_png(tmp_path / "isbi2012", images, labels, test, test_dir="test")
    Image.fromarray(np.zeros((H, W), np.uint8), mode="L").save(root / "test" / "0_predict.png")
    got = isbi.load_isbi2012(path=root)
    np.testing.assert_array_equal(got.test_images, test)


def test_test_split_is_optional(tmp_path, arrays):
    images, labels, _ = arrays
    got = isbi.load_isbi2012(path=_write_tif(tmp_path / "isbi2012", images, labels, None))
    assert got.test_images.shape == (0, H, W) and got.meta["n_test"] == 0


def test_cache_is_used_and_keyed_by_content(tif_root, arrays, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = isbi.load_isbi2012(path=tif_root, cache_dir=cache)
    assert len(_cache_files(cache)) == 1

    def no_decode(layout):
        raise AssertionError("decoded again although cached")

    monkeypatch.setattr(isbi.load, "read_layout", no_decode)
    again = isbi.load_isbi2012(path=tif_root, cache_dir=cache)
    np.testing.assert_array_equal(again.train_labels, first.train_labels)
    monkeypatch.undo()
    # changed content -> new key -> decoded afresh, new values returned
    new_images = arrays[0].copy()
    new_images[0] ^= 0xFF
    tifffile.imwrite(tif_root / "train-volume.tif", new_images)
    changed = isbi.load_isbi2012(path=tif_root, cache_dir=cache)
    np.testing.assert_array_equal(changed.train_images, new_images)
    assert changed.meta["fingerprint"] != first.meta["fingerprint"]


def test_locate_order_and_not_found(tmp_path, monkeypatch, arrays):
    explicit = tmp_path / "explicit"
    env = tmp_path / "env"
    _write_tif(explicit / "isbi2012", *arrays)
    _write_tif(env / "isbi2012", *arrays)
    monkeypatch.setenv("MIAMIND_DATA", str(env))
    assert isbi.locate(explicit) == explicit / "isbi2012"
    assert isbi.locate() == env / "isbi2012"
    monkeypatch.delenv("MIAMIND_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(DatasetNotFoundError) as err:
        isbi.locate()
    msg = str(err.value)
    assert str(tmp_path / "home" / ".cache" / "miamind" / "data" / "isbi2012") in msg
    assert "zhixuhao/unet" in msg and "isbi" in msg.lower() and "train-volume.tif" in msg
    with pytest.raises(DatasetNotFoundError):
        isbi.load_isbi2012(tmp_path / "nothing_here")
    (tmp_path / "empty" / "isbi2012").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="train-labels.tif"):
        isbi.load_isbi2012(path=tmp_path / "empty" / "isbi2012")


def test_check_folder_and_single_file(tmp_path, arrays):
    images, labels, test = arrays
    root = _write_png(_write_tif(tmp_path / "isbi2012", *arrays), *arrays)
    rep = isbi.check(root)
    assert rep["layout"] == "tif" and rep["train_slices"] == N and rep["test_slices"] == N
    assert rep["slice_shape"] == [H, W]
    assert rep["membrane_fraction"] == pytest.approx(np.mean(labels == 0), abs=1e-6)
    assert rep["pixels"]["membrane"] + rep["pixels"]["cell"] == labels.size
    assert set(rep["sha256"]) == {"train-volume.tif", "train-labels.tif", "test-volume.tif"}
    assert rep["png_matches_tif"] is True
    assert len(rep["membrane_fraction_per_fold"]) == isbi.N_FOLDS
    # a PNG that disagrees with the TIFF is reported, not hidden
    Image.fromarray(255 - labels[2], mode="L").save(root / "train" / "label" / "2.png")
    assert isbi.check(root)["png_matches_tif"] is False

    png_rep = isbi.check(_write_png(tmp_path / "png_only", *arrays))
    assert png_rep["layout"] == "png" and set(png_rep["fingerprint"]) == {
        "train_images",
        "train_labels",
        "test_images",
    }

    one = isbi.check(root / "train-labels.tif")
    assert one["slices"] == N and one["binary_0_255"] is True
    assert isbi.check(root / "train-volume.tif")["binary_0_255"] is False
    assert check_dataset("isbi2012", path=root)["dataset"] == "isbi2012"


# --------------------------------------------------------------------------- bad input


def _rgb_pages(root, images, labels, test):
    tifffile.imwrite(root / "train-volume.tif", np.stack([images] * 3, axis=-1), photometric="rgb")


def _single_page(root, images, labels, test):
    tifffile.imwrite(root / "train-volume.tif", images[0])


def _label_shape(root, images, labels, test):
    tifffile.imwrite(root / "train-labels.tif", labels[:-1])


def _label_not_binary_tif(root, images, labels, test):
    bad = labels.copy()
    bad[3, 5, 5] = 128
    tifffile.imwrite(root / "train-labels.tif", bad)


def _empty_tif(root, images, labels, test):
    (root / "train-labels.tif").write_bytes(b"")


def _garbage_tif(root, images, labels, test):
    (root / "train-volume.tif").write_bytes(b"this is not a tiff file at all" * 10)


def _uint16_tif(root, images, labels, test):
    tifffile.imwrite(root / "train-volume.tif", images.astype(np.uint16) * 256)


def _test_shape(root, images, labels, test):
    tifffile.imwrite(root / "test-volume.tif", test[:, : H // 2])


TIF_CASES = {
    # case: (mutation, file named in the error, 'where' in the error or None, words in the message)
    "single_2d_page": (_single_page, "train-volume.tif", None, ["single 2-D page", "stack"]),
    "three_channel_pages": (_rgb_pages, "train-volume.tif", "page 0", ["3 channels", "grayscale"]),
    "label_stack_shape": (
        _label_shape,
        "train-labels.tif",
        None,
        [f"({N - 1}, {H}, {W})", f"({N}, {H}, {W})"],
    ),
    "label_not_binary": (
        _label_not_binary_tif,
        "train-labels.tif",
        "page 3",
        ["not binary", "128", "membrane", "cell"],
    ),
    "empty_file": (_empty_tif, "train-labels.tif", None, ["empty file"]),
    "not_a_tiff": (_garbage_tif, "train-volume.tif", None, ["not a readable TIFF"]),
    "uint16_pages": (_uint16_tif, "train-volume.tif", "page 0", ["uint16", "uint8"]),
    "test_slice_shape": (_test_shape, "test-volume.tif", None, [f"({H // 2}, {W})"]),
}


@pytest.mark.parametrize("case", list(TIF_CASES))
def test_bad_tif_raises_dataerror_and_caches_nothing(case, tif_root, arrays, tmp_path):
    mutate, fname, where, words = TIF_CASES[case]
    mutate(tif_root, *arrays)
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as err:
        isbi.load_isbi2012(path=tif_root, cache_dir=cache)
    e = err.value
    assert e.path is not None and e.path.name == fname, str(e)
    assert str(e).startswith(str(tif_root / fname)), str(e)
    if where is not None:
        assert e.where == where and f":{where}:" in str(e)
    for w in words:
        assert w in str(e), (w, str(e))
    assert "\n" not in str(e)
    assert _cache_files(cache) == []
    with pytest.raises(DataError):  # check() validates the same way
        isbi.check(tif_root)


def _label_missing(root, images, labels, test):
    (root / "train" / "label" / f"{N - 1}.png").unlink()


def _label_renamed(root, images, labels, test):
    (root / "train" / "label" / "2.png").rename(root / "train" / "label" / "label_2.png")


def _label_gap(root, images, labels, test):
    (root / "train" / "label" / "2.png").rename(root / "train" / "label" / f"{N}.png")


def _label_not_binary_png(root, images, labels, test):
    bad = labels[4].copy()
    bad[0, 0] = 1
    Image.fromarray(bad, mode="L").save(root / "train" / "label" / "4.png")


def _empty_png(root, images, labels, test):
    (root / "train" / "image" / "1.png").write_bytes(b"")


def _truncated_png(root, images, labels, test):
    p = root / "train" / "image" / "3.png"
    p.write_bytes(p.read_bytes()[:60])


def _garbage_png(root, images, labels, test):
    (root / "test" / "image" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)


def _rgb_png(root, images, labels, test):
    Image.fromarray(np.stack([images[2]] * 3, axis=-1), mode="RGB").save(root / "train" / "image" / "2.png")


def _png_shape(root, images, labels, test):
    Image.fromarray(images[5][: H // 2], mode="L").save(root / "train" / "image" / "5.png")


PNG_CASES = {
    "label_count_mismatch": (
        _label_missing,
        "train/label",
        [f"{N} images", f"{N - 1} labels", f"{{{N - 1}}}.png"],
    ),
    "label_name_mismatch": (_label_renamed, "train/label/label_2.png", ["unexpected file name"]),
    "label_index_gap": (_label_gap, "train/label", ["missing {2}.png"]),
    "label_not_binary": (_label_not_binary_png, "train/label/4.png", ["slice 4", "not binary", "[1]"]),
    "empty_png": (_empty_png, "train/image/1.png", ["empty file"]),
    "truncated_png": (_truncated_png, "train/image/3.png", ["not a readable PNG"]),
    "corrupt_png": (_garbage_png, "test/image/0.png", ["not a readable PNG"]),
    "rgb_png": (_rgb_png, "train/image/2.png", ["'RGB'", "grayscale"]),
    "slice_shape": (_png_shape, "train/image/5.png", [f"({H // 2}, {W})", f"({H}, {W})"]),
}


@pytest.mark.parametrize("case", list(PNG_CASES))
def test_bad_png_raises_dataerror_and_caches_nothing(case, png_root, arrays, tmp_path):
    mutate, rel, words = PNG_CASES[case]
    mutate(png_root, *arrays)
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as err:
        isbi.load_isbi2012(path=png_root, cache_dir=cache)
    e = err.value
    assert e.path == png_root / rel, str(e)
    assert str(e).startswith(str(png_root / rel)), str(e)
    for w in words:
        assert w in str(e), (w, str(e))
    assert _cache_files(cache) == []


def test_incomplete_tif_layout_names_missing_file(tmp_path, arrays):
    root = tmp_path / "isbi2012"
    root.mkdir()
    tifffile.imwrite(root / "train-volume.tif", arrays[0])
    with pytest.raises(DataError, match="train-labels.tif"):
        isbi.load_isbi2012(path=root)
    with pytest.raises(ValueError, match="source"):
        isbi.load_isbi2012(path=root, source="jpeg")


def test_cli_reports_bad_file_in_one_line(tif_root, arrays, capsys):
    from miamind.cli import main

    _label_not_binary_tif(tif_root, *arrays)
    assert main(["data", "check", "--dataset", "isbi2012", "--path", str(tif_root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("miamind: error:") and "train-labels.tif:page 3" in err and "\n" not in err


# --------------------------------------------------------------------------- folds


def test_default_folds_are_five_contiguous_blocks_of_six():
    vals = []
    for k in range(5):
        train_idx, val_idx = isbi.kfold_slices(30, 5, k)
        assert len(val_idx) == 6 and len(train_idx) == 24
        assert not set(train_idx) & set(val_idx)  # never validate on a training slice
        assert sorted(set(train_idx) | set(val_idx)) == list(range(30))
        np.testing.assert_array_equal(val_idx, np.arange(6 * k, 6 * k + 6))
        vals.append(val_idx)
    assert sorted(np.concatenate(vals).tolist()) == list(range(30))  # each slice validated once
    train_idx, val_idx = isbi.kfold_slices()
    np.testing.assert_array_equal(val_idx, np.arange(24, 30))
    assert isbi.DEFAULT_FOLD == 4
    # deterministic
    for k in range(5):
        a, b = isbi.kfold_slices(30, 5, k), isbi.kfold_slices(30, 5, k)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_uneven_folds_and_gap():
    sizes = [len(isbi.kfold_slices(7, 3, k)[1]) for k in range(3)]
    assert sorted(sizes) == [2, 2, 3] and sum(sizes) == 7
    train_idx, val_idx = isbi.kfold_slices(30, 5, 2, gap=2)
    np.testing.assert_array_equal(val_idx, np.arange(12, 18))
    assert set(range(10, 12)).isdisjoint(train_idx) and set(range(18, 20)).isdisjoint(train_idx)
    assert len(train_idx) == 20


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(fold=5),
        dict(fold=-1),
        dict(n_folds=1, fold=0),
        dict(n_slices=4, n_folds=5, fold=0),
        dict(fold=1.0),
        dict(fold=True),
        dict(gap=-1),
        dict(n_folds=2, fold=0, gap=30),
    ],
)
def test_bad_fold_arguments(kwargs):
    with pytest.raises(ValueError):
        isbi.kfold_slices(**kwargs)


def test_fold_tensors_hold_whole_held_out_slices(tif_root, arrays):
    images, labels, _ = arrays
    data = isbi.load_isbi2012(path=tif_root)
    f = data.fold(fold=1, n_folds=3)
    np.testing.assert_array_equal(f.val_idx, [2, 3])
    assert f.train_images.shape == (4, 1, H, W) and f.train_images.dtype == torch.float32
    assert f.val_images.shape == (2, 1, H, W) and f.val_targets.dtype == torch.int64
    torch.testing.assert_close(f.val_images[:, 0], torch.from_numpy(images[[2, 3]]).float() / 255)
    torch.testing.assert_close(f.val_targets, torch.from_numpy((labels[[2, 3]] == 255).astype(np.int64)))
    assert 0 <= float(f.train_images.min()) and float(f.train_images.max()) <= 1


# --------------------------------------------------------------------------- crops


def _reference(image: torch.Tensor, p: dict, k: int, crop: int) -> torch.Tensor:
    """Loop-based reference: crop, then transpose / vertical flip / horizontal flip."""
    top, left = int(p["top"][k]), int(p["left"][k])
    c = image[int(p["slice"][k]), top : top + crop, left : left + crop]
    if p["transpose"][k]:
        c = c.T
    if p["flip_v"][k]:
        c = torch.flip(c, dims=[0])
    if p["flip_h"][k]:
        c = torch.flip(c, dims=[1])
    return c


def test_random_crops_keep_image_and_target_aligned():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (5, 40, 48), generator=g, dtype=torch.uint8)
    targets = (images > 127).long()  # target is a pixelwise function of the image
    img, tgt, p = isbi.random_crops(images, targets, crop=16, n=64, generator=g, return_params=True)
    assert img.shape == (64, 1, 16, 16) and tgt.shape == (64, 16, 16)
    assert img.dtype == torch.uint8 and tgt.dtype == torch.int64
    torch.testing.assert_close(tgt, (img[:, 0] > 127).long())
    for k in range(64):
        torch.testing.assert_close(img[k, 0], _reference(images, p, k, 16))
        torch.testing.assert_close(tgt[k], _reference(targets, p, k, 16))


def test_random_crops_apply_all_orientations_and_only_given_slices():
    # every pixel value is unique and encodes (slice, row, col): the crop tells where it came from
    n_sl, size, crop = 3, 20, 6
    s, r, c = torch.meshgrid(torch.arange(n_sl), torch.arange(size), torch.arange(size), indexing="ij")
    images = (s * 10_000 + r * 100 + c).float()
    targets = s * 0 + r * 100 + c
    img, tgt = isbi.random_crops(
        images[:, None], targets, crop=crop, n=200, generator=torch.Generator().manual_seed(1)
    )
    img = img[:, 0]
    # step along output row / column, in (row, col) units of the source slice
    d_col = img[:, 0, 1] - img[:, 0, 0]
    d_row = img[:, 1, 0] - img[:, 0, 0]
    orientations = set(zip(d_row.tolist(), d_col.tolist(), strict=True))
    assert orientations == {
        (100.0, 1.0),
        (100.0, -1.0),
        (-100.0, 1.0),
        (-100.0, -1.0),
        (1.0, 100.0),
        (1.0, -100.0),
        (-1.0, 100.0),
        (-1.0, -100.0),
    }
    assert set((img // 10_000).unique().tolist()) <= {0.0, 1.0, 2.0}
    torch.testing.assert_close(img % 10_000, tgt.float())  # target followed the same transform
    # a subset of slices: crops only ever come from those
    sub = images[[0, 2]]
    img2, _ = isbi.random_crops(
        sub, targets[[0, 2]], crop=crop, n=100, generator=torch.Generator().manual_seed(2)
    )
    assert set((img2 // 10_000).unique().tolist()) == {0.0, 2.0}


def test_random_crops_are_seeded_and_validate_arguments():
    images = torch.rand(4, 32, 32)
    targets = (images > 0.5).long()
    a = isbi.random_crops(images, targets, 8, 10, torch.Generator().manual_seed(3))
    b = isbi.random_crops(images, targets, 8, 10, torch.Generator().manual_seed(3))
    c = isbi.random_crops(images, targets, 8, 10, torch.Generator().manual_seed(4))
    torch.testing.assert_close(a[0], b[0])
    assert not torch.equal(a[0], c[0])
    for bad in (dict(crop=33), dict(crop=0), dict(n=0)):
        with pytest.raises(ValueError):
            isbi.random_crops(images, targets, **{"crop": 8, "n": 2, **bad})
    with pytest.raises(ValueError, match="targets shape"):
        isbi.random_crops(images, targets[:, :16], 8, 2)
    # full-size crop from numpy input still works (position fixed, orientation random)
    full, _ = isbi.random_crops(images.numpy(), targets.numpy(), 32, 2, torch.Generator().manual_seed(0))
    assert full.shape == (2, 1, 32, 32)


# --------------------------------------------------------------------------- padding


def test_pad_to_multiple_and_unpad():
    x = torch.rand(2, 1, 512, 512)
    same, size = isbi.pad_to_multiple(x, 16)
    assert same is x and size == (512, 512)
    y = torch.rand(2, 1, 50, 70)
    padded, size = isbi.pad_to_multiple(y, 16)
    assert padded.shape == (2, 1, 64, 80) and size == (50, 70)
    torch.testing.assert_close(isbi.unpad(padded, size), y)
    # reflect: row 50 mirrors row 48
    torch.testing.assert_close(padded[..., 50, :70], y[..., 48, :])
    t = torch.randint(0, 2, (3, 50, 70))
    pt, size = isbi.pad_to_multiple(t, 16)
    assert pt.dtype == torch.int64 and pt.shape == (3, 64, 80)
    torch.testing.assert_close(isbi.unpad(pt, size), t)
    with pytest.raises(ValueError):
        isbi.unpad(torch.rand(1, 10, 10), (20, 20))


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_isbi2012(real_data_dir, shared_cache_dir):
    root = real_data_dir / "isbi2012"
    if not root.is_dir():
        pytest.skip(f"no isbi2012 folder under {real_data_dir}")
    t0 = time.perf_counter()
    data = isbi.load_isbi2012(real_data_dir, cache_dir=shared_cache_dir)
    cold = time.perf_counter() - t0
    assert data.meta["source"] == "tif"
    assert data.train_images.shape == (30, 512, 512) and data.train_labels.shape == (30, 512, 512)
    assert data.test_images.shape == (30, 512, 512)
    assert set(np.unique(data.train_labels).tolist()) == {0, 255}
    frac = isbi.membrane_fraction(data.train_labels)
    assert abs(frac - 0.2196) < 1e-3, frac
    png = isbi.load_isbi2012(path=root, source="png", cache_dir=shared_cache_dir)
    for k in ("train_images", "train_labels", "test_images"):
        np.testing.assert_array_equal(getattr(png, k), getattr(data, k))
    t0 = time.perf_counter()
    cached = isbi.load_isbi2012(real_data_dir, cache_dir=shared_cache_dir)
    warm = time.perf_counter() - t0
    np.testing.assert_array_equal(cached.train_labels, data.train_labels)
    fold = data.fold()
    np.testing.assert_array_equal(fold.val_idx, np.arange(24, 30))
    assert fold.train_images.shape == (24, 1, 512, 512)
    print(f"isbi2012 load: cold {cold:.2f}s, cached {warm:.2f}s, membrane fraction {frac:.4f}")
