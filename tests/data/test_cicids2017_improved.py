"""Improved CIC-IDS2017 re-extraction: its own layout, labels and 'Attempted' policy."""

from __future__ import annotations

import gzip
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from miamind.data import cicids2017
from miamind.data import cicids2017_improved as imp
from miamind.data.errors import DataError, DatasetNotFoundError

FEATURES = imp.FEATURE_NAMES
COLUMNS = imp.IMPROVED.columns


def improved_rows(x: np.ndarray, labels: Sequence[str]) -> list:
    out = []
    for i, (row, label) in enumerate(zip(x, labels, strict=True)):
        cells = dict(
            zip(
                FEATURES,
                (str(int(v)) if float(v).is_integer() else repr(float(v)) for v in row),
                strict=True,
            )
        )
        cells.update(
            {
                "id": str(1000 + i),
                "Flow ID": f"192.168.10.5-192.168.10.3-{50000 + i}-53-17",
                "Src IP": "192.168.10.5",
                "Src Port": str(50000 + i),
                "Dst IP": "192.168.10.3",
                "Timestamp": "2017-07-07 12:59:21.088203",
                "Label": label,
                "Attempted Category": "3" if label.endswith("Attempted") else "-1",
            }
        )
        out.append(",".join(cells[c] for c in COLUMNS))
    return out


def write_improved(path: Path, x: np.ndarray, labels: Sequence[str], gz: bool = False) -> Path:
    data = ("\n".join([",".join(COLUMNS)] + improved_rows(x, labels)) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def features(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 5000, size=(n, len(FEATURES))).astype(np.float64) / 4


def test_layout_drops_identifiers_and_keeps_83_features(tmp_path):
    x = features(4)
    labels = ["BENIGN", "Portscan", "Web Attack - SQL Injection", "Infiltration - Portscan"]
    t = imp.read_flows(write_improved(tmp_path / "friday.csv.gz", x, labels, gz=True))
    assert len(FEATURES) == 83 and t.feature_names == FEATURES
    for col in ("id", "Flow ID", "Src IP", "Src Port", "Dst IP", "Timestamp", "Attempted Category", "Label"):
        assert col not in t.feature_names
    assert {"Dst Port", "Protocol"} <= set(t.feature_names)
    np.testing.assert_array_equal(t.features, x.astype(np.float32))
    assert list(t.labels) == labels
    assert t.report["layouts"] == ["CICIDS2017-improved"]


def test_attempted_policies(tmp_path):
    labels = ["BENIGN"] * 40 + ["DoS Hulk"] * 20 + ["DoS Hulk - Attempted"] * 10 + ["Botnet - Attempted"] * 5
    path = write_improved(tmp_path / "wednesday.csv", features(len(labels)), labels)
    assert imp.read_flows(path).label_counts() == {
        "BENIGN": 40,
        "DoS Hulk": 20,
        "DoS Hulk - Attempted": 10,
        "Botnet - Attempted": 5,
    }

    benign = imp.load_cicids2017_improved(path=path, label_mode="multiclass", attempted="benign")
    assert benign.class_names == ("BENIGN", "DoS Hulk")
    assert sum(benign.report["split"]["rows"].values()) == 75
    assert sum(benign.report["split"]["label_counts"][p]["BENIGN"] for p in ("train", "val", "test")) == 55
    assert benign.report["relabelled"]["DoS Hulk - Attempted"] == {"to": "BENIGN", "rows": 10}

    drop = imp.load_cicids2017_improved(path=path, label_mode="multiclass", attempted="drop")
    assert drop.class_names == ("BENIGN", "DoS Hulk") and sum(drop.report["split"]["rows"].values()) == 60
    assert drop.report["relabelled"]["Botnet - Attempted"] == {"to": None, "rows": 5}

    keep = imp.load_cicids2017_improved(path=path, label_mode="multiclass", attempted="keep")
    assert keep.class_names == ("BENIGN", "DoS Hulk", "Botnet - Attempted", "DoS Hulk - Attempted")
    binary = imp.load_cicids2017_improved(path=path, label_mode="binary", attempted="keep")
    np.testing.assert_array_equal(binary.indices["train"], keep.indices["train"])
    train_labels = np.array(labels)[binary.indices["train"]]
    np.testing.assert_array_equal(
        binary.y_train, train_labels != "BENIGN"
    )  # kept attempted rows count as attacks
    assert binary.y_train.sum() == 23  # 14 DoS Hulk + 6 + 3 attempted in train

    full = imp.load_cicids2017_improved(
        path=path, label_mode="multiclass", attempted="benign", all_classes=True
    )
    assert full.class_names == ("BENIGN", *imp.ATTACKS) and not any(
        "Attempted" in c for c in full.class_names
    )
    with pytest.raises(ValueError, match="attempted must be"):
        imp.load_cicids2017_improved(path=path, attempted="maybe")


def test_labels_of_the_original_release_are_unknown_here(tmp_path):
    # 'PortScan' matches 'Portscan' ignoring case, but 'Bot' is not 'Botnet': an error, not a guess.
    path = write_improved(tmp_path / "f.csv", features(3), ["BENIGN", "PortScan", "Bot"])
    with pytest.raises(DataError, match=r"f\.csv:line 4: unknown label 'Bot'"):
        imp.read_flows(path)


def test_files_of_the_other_dataset_are_rejected(tmp_path):
    path = write_improved(tmp_path / "improved.csv", features(2), ["BENIGN", "DDoS"])
    with pytest.raises(
        DataError,
        match=r"improved\.csv:line 1: 91 columns do not match the (MachineLearningCVE|TrafficLabelling)",
    ):
        cicids2017.read_flows(path)
    orig = tmp_path / "orig.csv"
    orig.write_text(
        ",".join(
            ("Fwd Header Length" if c.endswith(".1") else c) for c in cicids2017.MACHINE_LEARNING_CVE.columns
        )
        + "\n"
        + ",".join(["1"] * 78)
        + ",BENIGN\n"
    )
    with pytest.raises(
        DataError, match=r"orig\.csv:line 1: 79 columns do not match the CICIDS2017-improved layout"
    ):
        imp.read_flows(orig)


def test_text_in_numeric_column_names_line_and_column(tmp_path):
    rows = improved_rows(features(3), ["BENIGN"] * 3)
    cells = rows[1].split(",")
    cells[COLUMNS.index("Flow Bytes/s")] = "fast"
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([",".join(COLUMNS), rows[0], ",".join(cells), rows[2]]) + "\n")
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"bad\.csv:line 3: column 'Flow Bytes/s': 'fast' is not a number"):
        imp.load_cicids2017_improved(path=path, cache_dir=cache)
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_locate_own_folder_then_sample_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        imp.locate(tmp_path)
    for folder in imp.FOLDERS:
        assert str(tmp_path / folder) in str(err.value)
    assert "distrinet-research.be" in str(err.value)
    sample = tmp_path / "cicids2017" / "alt_CICIDS2017_improved_distrinet_sample_rnd2500"
    sample.mkdir(parents=True)
    write_improved(sample / "BENIGN_3.csv.gz", features(3), ["BENIGN"] * 3, gz=True)
    assert imp.locate(tmp_path) == sample
    own = tmp_path / "cicids2017_improved"
    own.mkdir()
    write_improved(own / "monday.csv", features(3), ["BENIGN"] * 3)
    assert imp.locate(tmp_path) == own


@pytest.mark.realdata
def test_real_sample_counts(real_data_dir, shared_cache_dir):
    folder = imp.locate(real_data_dir)
    r = imp.check(folder)
    assert len(r["files"]) == 16 and r["rows_read"] == 25127
    assert r["label_counts_read"] == {
        "BENIGN": 2500,
        "Botnet": 736,
        "DDoS": 2500,
        "DoS GoldenEye": 2500,
        "DoS Hulk": 2500,
        "DoS Slowhttptest": 1740,
        "DoS Slowloris": 2500,
        "FTP-Patator": 2500,
        "Heartbleed": 11,
        "Infiltration": 36,
        "Infiltration - Portscan": 2500,
        "Portscan": 2500,
        "SSH-Patator": 2500,
        "Web Attack - Brute Force": 73,
        "Web Attack - SQL Injection": 13,
        "Web Attack - XSS": 18,
    }
    assert r["nonfinite_cells"] == {"nan": 0, "neginf": 0, "posinf": 0} and r["n_features"] == 83
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every class has >= 3 rows: no train-only warning
        d = imp.load_cicids2017_improved(real_data_dir, label_mode="multiclass", cache_dir=shared_cache_dir)
    assert d.n_classes == 16 and d.input_shape == (1, 83)
    # 166 exact copies removed before the split (with them, 42 of 3,769 test rows had a copy in train)
    assert d.report["duplicates_dropped"] == {"BENIGN": 3, "Infiltration - Portscan": 131, "Portscan": 32}
    assert sum(d.report["split"]["rows"].values()) == 25127 - 166
    for part in ("train", "val", "test"):
        assert set(d.report["split"]["label_counts"][part]) == set(d.class_names)
