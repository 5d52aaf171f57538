"""load_inputs: raw files -> exactly the tensors the evaluation loaders give; errors name the file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from miamind.data.errors import DataError
from miamind.data.flows import make_splits
from miamind.tasks.datamodules import build_datamodule, crop_to_target
from miamind.tasks.inputs import load_inputs, preprocess_state_from_json, preprocess_state_to_json
from miamind.tasks.synthetic import synthetic_cifar10, synthetic_flow_table, synthetic_isbi2012
from tests.data.test_cicids2017 import mlcve_header, mlcve_row, write

CIFAR_CFG = dict(
    data_dir=None,
    batch_size=16,
    eval_batch_size=8,
    val_size=20,
    limit_train=None,
    augment=dict(crop_pad=4, flip=True, cutout=0),
)
ISBI_CFG = dict(
    data_dir=None,
    fold=2,
    n_folds=3,
    crop=24,
    crops_per_epoch=16,
    batch_size=8,
    eval_batch_size=4,
    pad_multiple=16,
)


def flow_cfg(nonfinite: str) -> dict:
    return dict(
        data_dir=None,
        dataset="cicids2017",
        label_mode="binary",
        split=[0.7, 0.15, 0.15],
        nonfinite=nonfinite,
        scale="standard",
        batch_size=16,
        eval_batch_size=1000,
        class_weights=False,
    )


# ------------------------------------------------------------------------------ CIFAR-10


def test_cifar_images_round_trip(tmp_path):
    arrays = synthetic_cifar10(100, 8, seed=0)
    dm = build_datamodule("cifar10", CIFAR_CFG, 0, arrays=arrays)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, img in enumerate(arrays.test_images):
        Image.fromarray(img).save(folder / f"img{i}.png")
    x, names = load_inputs("cifar10", [folder], dm.preprocess_state())
    expected = next(iter(dm.test_dataloader()))[0]
    assert x.dtype == torch.float32 and x.shape == (8, 3, 32, 32)
    assert torch.equal(x, expected)  # exactly what evaluation saw
    assert names == [str(folder / f"img{i}.png") for i in range(8)]
    x2, names2 = load_inputs("cifar10", [folder / "img3.png", folder / "img1.png"], dm.preprocess_state())
    assert torch.equal(x2, expected[[3, 1]]) and names2 == [
        str(folder / "img3.png"),
        str(folder / "img1.png"),
    ]


def test_cifar_bad_images_are_named(tmp_path):
    state = {"mean": np.full(3, 0.5), "std": np.full(3, 0.25)}
    Image.fromarray(np.zeros((64, 48, 3), np.uint8)).save(tmp_path / "big.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "gray.png")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(DataError, match=r"big\.png: image is RGB 48x64; expected RGB 32x32"):
        load_inputs("cifar10", [tmp_path / "big.png"], state)
    with pytest.raises(DataError, match=r"gray\.png: image is L 32x32; expected RGB 32x32"):
        load_inputs("cifar10", [tmp_path / "gray.png"], state)
    with pytest.raises(DataError, match=r"notes\.txt: unsupported file type"):
        load_inputs("cifar10", [tmp_path / "notes.txt"], state)
    with pytest.raises(DataError, match=r"broken\.jpg: cannot decode image"):
        load_inputs("cifar10", [tmp_path / "broken.jpg"], state)
    with pytest.raises(DataError, match=r"missing\.png: no such file or folder"):
        load_inputs("cifar10", [tmp_path / "missing.png"], state)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: folder has no image files"):
        load_inputs("cifar10", [tmp_path / "empty"], state)
    with pytest.raises(ValueError, match="lacks std"):
        load_inputs("cifar10", [tmp_path / "gray.png"], {"mean": state["mean"]})
    with pytest.raises(ValueError, match="unknown task"):
        load_inputs("mnist", [tmp_path], state)


# ------------------------------------------------------------------------------ ISBI 2012


def test_isbi_tif_stack_and_png_round_trip(tmp_path):
    import tifffile

    arrays = synthetic_isbi2012(9, 40, seed=1)
    dm = build_datamodule("isbi2012", ISBI_CFG, 0, arrays=arrays)
    val = arrays.train_images[dm.val_slices]  # slices 6, 7, 8
    tifffile.imwrite(tmp_path / "stack.tif", val[:2], photometric="minisblack")
    tifffile.imwrite(tmp_path / "single.tif", val[2], photometric="minisblack")
    Image.fromarray(val[2]).save(tmp_path / "slice.png")
    x, names = load_inputs(
        "isbi2012",
        [tmp_path / "stack.tif", tmp_path / "slice.png", tmp_path / "single.tif"],
        dm.preprocess_state(),
    )
    xv, yv = next(iter(dm.val_dataloader()))
    assert xv.shape == (3, 1, 48, 48)  # padded for the network ...
    expected = crop_to_target(xv, yv)  # ... and the original pixels are the top-left block
    assert x.shape == (4, 1, 40, 40) and x.dtype == torch.float32  # not padded: original sizes
    assert torch.equal(x[:3], expected) and torch.equal(x[3], expected[2])
    assert names == [
        f"{tmp_path / 'stack.tif'}:page 0",
        f"{tmp_path / 'stack.tif'}:page 1",
        str(tmp_path / "slice.png"),
        f"{tmp_path / 'single.tif'}:page 0",
    ]


def test_isbi_bad_inputs_are_named(tmp_path):
    import tifffile

    state = {"mean": np.array([0.5]), "std": np.array([0.2])}
    tifffile.imwrite(tmp_path / "deep.tif", np.zeros((2, 16, 16), np.uint16), photometric="minisblack")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((24, 16), np.uint8)).save(tmp_path / "b.png")
    (tmp_path / "junk.tif").write_bytes(b"not a tiff")
    with pytest.raises(DataError, match=r"deep\.tif: TIFF has dtype uint16; expected uint8"):
        load_inputs("isbi2012", [tmp_path / "deep.tif"], state)
    with pytest.raises(DataError, match=r"rgb\.png: image mode 'RGB'"):
        load_inputs("isbi2012", [tmp_path / "rgb.png"], state)
    with pytest.raises(DataError, match=r"b\.png: slices are 24x16 but .*a\.png is 16x16"):
        load_inputs("isbi2012", [tmp_path / "a.png", tmp_path / "b.png"], state)
    with pytest.raises(DataError, match=r"junk\.tif: not a readable TIFF"):
        load_inputs("isbi2012", [tmp_path / "junk.tif"], state)


# ------------------------------------------------------------------------------ CIC-IDS2017


def _flow_csv(tmp_path, table, extra_lines: bool = True):
    rows = [
        mlcve_row(x, label) for x, label in zip(table.features.astype(np.float64), table.labels, strict=True)
    ]
    lines = [mlcve_header()] + rows
    if extra_lines:  # an empty line and a repeated header, as in the released files: skipped
        lines = lines[:4] + [""] + lines[4:10] + [mlcve_header()] + lines[10:]
    return write(tmp_path / "flows.csv", lines), lines


@pytest.mark.parametrize("nonfinite", ["clip", "drop"])
def test_flow_csv_rows_are_transformed_as_in_training(tmp_path, nonfinite):
    table = synthetic_flow_table(120, 77, seed=3, nonfinite_rows=4 if nonfinite == "clip" else 0)
    dm = build_datamodule("cicids2017", flow_cfg(nonfinite), 3, arrays=table)
    splits = make_splits(table, seed=3, nonfinite=nonfinite)  # what dm did, for the row indices and transform
    path, lines = _flow_csv(tmp_path, table)
    x, names = load_inputs("cicids2017", [path], dm.preprocess_state())
    assert x.shape == (120, 1, 77) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert torch.equal(x[:, 0], torch.from_numpy(splits.transform(table.features)))
    # The test rows, read back from the CSV, are exactly the test batch the model was scored on.
    test_x = next(iter(dm.test_dataloader()))[0]
    assert torch.equal(x[torch.from_numpy(splits.indices["test"])], test_x)
    file_lines = [i + 1 for i, line in enumerate(lines) if line and line != mlcve_header()]
    assert names == [f"{path}:line {n}" for n in file_lines]


def test_flow_csv_without_label_column_in_another_order(tmp_path):
    table = synthetic_flow_table(40, 77, seed=1)
    state = build_datamodule("cicids2017", flow_cfg("drop"), 1, arrays=table).preprocess_state()
    names = list(table.feature_names)
    order = names[::-1]  # columns in any order, an extra identifier column, no Label
    rows = [",".join(["10.0.0.1"] + [repr(float(v)) for v in row[::-1]]) for row in table.features]
    path = write(tmp_path / "unlabelled.csv", [",".join(["Source IP"] + order)] + rows)
    x, _ = load_inputs("cicids2017", [path], state)
    labelled, _ = load_inputs("cicids2017", [_flow_csv(tmp_path, table, extra_lines=False)[0]], state)
    assert torch.equal(x, labelled)


def test_flow_csv_problems_are_named(tmp_path):
    table = synthetic_flow_table(30, 77, seed=0)
    state = build_datamodule("cicids2017", flow_cfg("drop"), 0, arrays=table).preprocess_state()
    x = table.features.astype(np.float64).copy()
    x[4, 2] = np.inf  # row 4 -> line 6
    path = write(tmp_path / "inf.csv", [mlcve_header()] + [mlcve_row(r, "BENIGN") for r in x])
    with pytest.raises(
        DataError, match=r"inf\.csv:line 6: column 'Total Fwd Packets' is inf; .*nonfinite='drop'"
    ):
        load_inputs("cicids2017", [path], state)
    header = mlcve_header().replace(" Flow Duration", " Flow Time")
    path = write(tmp_path / "cols.csv", [header, mlcve_row(x[0], "BENIGN")])
    with pytest.raises(DataError, match=r"cols\.csv:line 1: missing feature column\(s\) \['Flow Duration'\]"):
        load_inputs("cicids2017", [path], state)
    cells = mlcve_row(x[0], "BENIGN").split(",")
    cells[1] = "fast"
    path = write(tmp_path / "text.csv", [mlcve_header(), mlcve_row(x[1], "BENIGN"), ",".join(cells)])
    with pytest.raises(DataError, match=r"text\.csv:line 3: column 'Flow Duration': 'fast' is not a number"):
        load_inputs("cicids2017", [path], state)
    path = write(tmp_path / "header_only.csv", [mlcve_header()])
    with pytest.raises(DataError, match=r"header_only\.csv: no data rows"):
        load_inputs("cicids2017", [path], state)


def test_preprocess_state_json_round_trip():
    table = synthetic_flow_table(60, 10, seed=0, nonfinite_rows=2)
    state = build_datamodule("cicids2017", flow_cfg("clip"), 0, arrays=table).preprocess_state()
    back = preprocess_state_from_json(json.loads(json.dumps(preprocess_state_to_json(state))))
    assert set(back) == set(state)
    for k, v in state.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and np.array_equal(back[k], v), k
    img = {"mean": np.array([0.1, 0.2, 0.3]), "std": np.array([0.3, 0.2, 0.1])}
    assert all(
        np.array_equal(preprocess_state_from_json(preprocess_state_to_json(img))[k], img[k]) for k in img
    )
