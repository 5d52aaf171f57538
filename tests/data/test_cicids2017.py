"""CIC-IDS2017 reader and splits: every quirk and bad input on small files written by the test."""

from __future__ import annotations

import gzip
import io
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from miamind.data import cicids2017 as cic
from miamind.data.errors import DataError, DatasetNotFoundError
from miamind.data.flows import RepeatedHeaderFilter, normalise_label
from miamind.data.flows import dataset as flows_dataset
from miamind.data.splits import stratified_split

FEATURES = cic.FEATURE_NAMES
F = len(FEATURES)
# File column order with the second 'Fwd Header Length' spelled as in the original header.
ORIGINAL_COLUMNS = [
    ("Fwd Header Length" if c == "Fwd Header Length.1" else c) for c in cic.MACHINE_LEARNING_CVE.columns
]
TL_PREFIX = [
    "Flow ID",
    "Source IP",
    "Source Port",
    "Destination IP",
    "Destination Port",
    "Protocol",
    "Timestamp",
]


def fmt(v: float, trailing_zero: bool = False) -> str:
    if np.isposinf(v):
        return "Infinity"
    if np.isneginf(v):
        return "-Infinity"
    if np.isnan(v):
        return "NaN"
    if float(v).is_integer():
        return f"{int(v)}.0" if trailing_zero else str(int(v))
    return repr(float(v))


def mlcve_header() -> str:
    # Leading spaces on most names, as in the released files.
    return ",".join(n if i % 4 == 0 else " " + n for i, n in enumerate(ORIGINAL_COLUMNS))


def mlcve_row(x: Sequence[float], label: str) -> str:
    cells = dict(zip(FEATURES, (fmt(v) for v in x), strict=True))
    cells["Fwd Header Length.1"] = cells["Fwd Header Length"]
    cells["Label"] = label
    return ",".join(cells[c] for c in cic.MACHINE_LEARNING_CVE.columns)


def tl_header(pandas_resaved: bool) -> str:
    names = TL_PREFIX + list(cic.TRAFFIC_LABELLING.columns[len(TL_PREFIX) :])
    if pandas_resaved:  # re-saved by pandas: spaces stripped, duplicate already renamed '.1'
        return ",".join(names)
    return ",".join(" " + ("Fwd Header Length" if n == "Fwd Header Length.1" else n) for n in names)


def tl_row(x: Sequence[float], label: str, i: int, pandas_resaved: bool) -> str:
    cells = dict(zip(FEATURES, (fmt(v, pandas_resaved) for v in x), strict=True))
    cells["Fwd Header Length.1"] = cells["Fwd Header Length"]
    cells["Label"] = label
    sport = f"{40000 + i}.0" if pandas_resaved else str(40000 + i)
    cells.update(
        {
            "Flow ID": f"172.16.0.1-192.168.10.50-{40000 + i}-80-6",
            "Source IP": "172.16.0.1",
            "Source Port": sport,
            "Destination IP": "192.168.10.50",
            "Protocol": "6.0" if pandas_resaved else "6",
            "Timestamp": "7/7/2017 3:56",
        }
    )
    return ",".join(cells[c] for c in cic.TRAFFIC_LABELLING.columns)


def write(path: Path, lines: list[str], *, gz: bool = False, encoding: str = "latin-1") -> Path:
    data = ("\r\n".join(lines) + "\r\n").encode(encoding)
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def random_features(n: int, rng: np.random.Generator, shift: float = 0.0) -> np.ndarray:
    """Values exact in float32 (integers and halves), so read-back can be compared exactly."""
    return (rng.integers(0, 2000, size=(n, F)) + shift).astype(np.float64) / 2


def write_mlcve(path: Path, x: np.ndarray, labels: Sequence[str], **kw) -> Path:
    return write(path, [mlcve_header()] + [mlcve_row(r, lab) for r, lab in zip(x, labels, strict=True)], **kw)


def labelled_set(rng, counts) -> tuple:
    labels, xs = [], []
    for k, (label, n) in enumerate(counts.items()):
        xs.append(random_features(n, rng, shift=100.0 * k))
        labels += [label] * n
    return np.concatenate(xs), labels


SPLIT_COUNTS = {
    "BENIGN": 300,
    "DDoS": 60,
    "PortScan": 40,
    "Web Attack \x96 Sql Injection": 3,
    "Heartbleed": 2,
}


@pytest.fixture
def split_file(tmp_path):
    x, labels = labelled_set(np.random.default_rng(1), SPLIT_COUNTS)
    return write_mlcve(tmp_path / "split.csv", x, labels), x, labels


def load(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 2-row class warning is tested on its own
        return cic.load_cicids2017(path=path, **kw)


# ----------------------------------------------------------------------------------------------
# Reading: quirks


def test_original_layout_quirks_are_handled(tmp_path):
    rng = np.random.default_rng(0)
    x = random_features(7, rng)
    labels = [
        "BENIGN",
        "DDoS",
        "Web Attack \x96 XSS",
        "BENIGN",
        "PortScan",
        "Web Attack \x96 Sql Injection",
        "Web Attack \x96 Brute Force",
    ]
    rows = [mlcve_row(r, lab) for r, lab in zip(x, labels, strict=True)]
    lines = [mlcve_header()] + rows[:3] + [mlcve_header()] + rows[3:5] + ["", "," * 78] + rows[5:]
    path = write(tmp_path / "Thursday.pcap_ISCX.csv", lines)
    assert b"Web Attack \x96 XSS" in path.read_bytes()  # the real latin-1 byte

    for chunksize in (2, 100_000):  # line numbers and the row buffer across chunk borders
        t = cic.read_flows(path, chunksize=chunksize)
        assert t.feature_names == FEATURES and F == 77 and "Fwd Header Length.1" not in t.feature_names
        assert t.features.dtype == np.float32 and t.features.shape == (7, 77)
        np.testing.assert_array_equal(t.features, x.astype(np.float32))
        assert list(t.labels) == [
            "BENIGN",
            "DDoS",
            "Web Attack - XSS",
            "BENIGN",
            "PortScan",
            "Web Attack - Sql Injection",
            "Web Attack - Brute Force",
        ]
        assert t.report["skipped_lines"] == {"empty": 2, "repeated_header": 1}
        assert t.report["rows_read"] == 10
        assert t.report["layouts"] == ["MachineLearningCVE"]
        assert t.report["duplicate_column_mismatches"] == {"Fwd Header Length.1": 0}


def test_repeated_header_in_other_spelling_and_at_the_end(tmp_path):
    x = random_features(3, np.random.default_rng(0))
    other = ",".join(ORIGINAL_COLUMNS)  # no leading spaces: not a byte copy of line 1
    lines = [
        mlcve_header(),
        mlcve_row(x[0], "BENIGN"),
        other,
        mlcve_row(x[1], "BENIGN"),
        mlcve_row(x[2], "DDoS"),
        mlcve_header(),
    ]
    path = write_bytes(tmp_path / "h.csv", "\n".join(lines).encode("latin-1"))  # no final newline
    t = cic.read_flows(path)
    np.testing.assert_array_equal(t.features, x.astype(np.float32))
    assert t.report["skipped_lines"] == {"empty": 0, "repeated_header": 2}


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64])
def test_header_filter_blanks_whole_header_lines_only(block):
    header = b" Destination Port, Label"
    lines = [header, b"1,BENIGN", header, header + b"x,1", b"2,DDoS", header, b"", header]
    for newline in (b"\n", b"\r\n"):
        data = newline.join(lines)
        f = RepeatedHeaderFilter(io.BytesIO(data), header, block=block)
        out = io.BufferedReader(f, buffer_size=5).read()
        expected = newline.join([header, b"1,BENIGN", b"", header + b"x,1", b"2,DDoS", b"", b"", b""]) + b"\n"
        assert out == expected and f.count == 3


def test_duplicate_column_mismatch_is_reported(tmp_path):
    x = random_features(3, np.random.default_rng(0))
    row = mlcve_row(x[0], "BENIGN").split(",")
    row[ORIGINAL_COLUMNS.index("Fwd Header Length", 40)] = "12345"  # the second copy
    path = write(tmp_path / "d.csv", [mlcve_header(), ",".join(row), mlcve_row(x[1], "BENIGN")])
    t = cic.read_flows(path)
    assert t.report["duplicate_column_mismatches"] == {"Fwd Header Length.1": 1}
    assert t.features[0, FEATURES.index("Fwd Header Length")] == np.float32(
        x[0, FEATURES.index("Fwd Header Length")]
    )


@pytest.mark.parametrize(
    "raw",
    [
        "Web Attack \x96 XSS",  # cp1252/latin-1 byte 0x96
        "Web Attack \u00c2\u0096 XSS",  # UTF-8 U+0096 (C2 96) read as latin-1
        "Web Attack \u00e2\u0080\u0093 XSS",  # UTF-8 en dash read as latin-1
        "Web Attack \u2013 XSS",
        "Web Attack \ufffd XSS",
        "  web attack  -  xss ",
    ],
)
def test_label_dash_forms(raw):
    assert normalise_label(raw).lower() == "web attack - xss"


def test_label_bytes_written_as_utf8_are_read(tmp_path):
    x = random_features(2, np.random.default_rng(0))
    path = write(
        tmp_path / "u.csv",
        [mlcve_header(), mlcve_row(x[0], "Web Attack \x96 XSS"), mlcve_row(x[1], "DoS Slowloris")],
        encoding="utf-8",
    )
    assert list(cic.read_flows(path).labels) == ["Web Attack - XSS", "DoS slowloris"]


def test_nonfinite_cells_drop_and_keep(tmp_path):
    x = random_features(6, np.random.default_rng(0))
    col_b, col_p = FEATURES.index("Flow Bytes/s"), FEATURES.index("Flow Packets/s")
    x[1, col_b], x[1, col_p] = np.nan, np.inf
    x[2, col_b], x[2, col_p] = np.inf, np.inf
    x[4, col_p] = -np.inf
    labels = ["BENIGN", "BENIGN", "DDoS", "BENIGN", "PortScan", "DDoS"]
    path = write_mlcve(tmp_path / "nf.csv", x, labels)
    assert b",Infinity," in path.read_bytes() and b",NaN," in path.read_bytes()

    dropped = cic.read_flows(path, nonfinite="drop")
    kept = cic.read_flows(path, nonfinite="keep")
    for t in (dropped, kept):
        assert t.report["nonfinite_cells"] == {"nan": 1, "neginf": 1, "posinf": 3}
        assert t.report["nonfinite_rows"] == {"BENIGN": 1, "DDoS": 1, "PortScan": 1}
        assert t.report["label_counts_read"] == {"BENIGN": 3, "DDoS": 2, "PortScan": 1}
    assert dropped.report["rows_dropped_nonfinite"] == {"BENIGN": 1, "DDoS": 1, "PortScan": 1}
    assert dropped.label_counts() == {"BENIGN": 2, "DDoS": 1}
    np.testing.assert_array_equal(dropped.features, x[[0, 3, 5]].astype(np.float32))
    assert kept.report["rows_dropped_nonfinite"] == {} and kept.features.shape == (6, 77)
    np.testing.assert_array_equal(kept.features, x.astype(np.float32))  # inf/nan positions included


def test_padded_infinity_and_numbers_in_text_column_are_read(tmp_path):
    # ' Infinity' / ' 12' make pandas read the column as text; they are still numbers.
    x = random_features(2, np.random.default_rng(0))
    rows = [mlcve_row(r, "BENIGN").split(",") for r in x]
    rows[0][FEATURES.index("Flow Bytes/s")] = " Infinity"
    rows[1][FEATURES.index("Flow Bytes/s")] = " 12"
    path = write(tmp_path / "p.csv", [mlcve_header()] + [",".join(r) for r in rows])
    t = cic.read_flows(path, nonfinite="keep")
    assert np.isposinf(t.features[0, FEATURES.index("Flow Bytes/s")])
    assert t.features[1, FEATURES.index("Flow Bytes/s")] == 12


def test_gzip_equals_plain_and_is_detected_by_content(tmp_path):
    x = random_features(20, np.random.default_rng(0))
    labels = ["BENIGN"] * 15 + ["DDoS"] * 5
    plain = cic.read_flows(write_mlcve(tmp_path / "a.csv", x, labels))
    gz = cic.read_flows(write_mlcve(tmp_path / "a.csv.gz", x, labels, gz=True))
    misnamed = cic.read_flows(write_mlcve(tmp_path / "b.csv", x, labels, gz=True))
    for t in (gz, misnamed):
        np.testing.assert_array_equal(t.features, plain.features)
        np.testing.assert_array_equal(t.label_codes, plain.label_codes)


def test_several_files_and_a_folder(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cicids2017"
    (folder / "sources").mkdir(parents=True)
    xa, xb = random_features(4, rng), random_features(3, rng)
    write_mlcve(folder / "b_Tuesday.csv.gz", xb, ["SSH-Patator"] * 3, gz=True)
    write_mlcve(folder / "a_Monday.csv", xa, ["BENIGN"] * 4)
    write_mlcve(folder / "sources" / "ignored.csv", xa, ["Bot"] * 4)  # subfolders are not read
    (folder / "notes.txt").write_text("not data")

    files = cic.read_flows([folder / "b_Tuesday.csv.gz", folder / "a_Monday.csv"])
    whole = cic.read_flows(folder)
    for t in (files, whole):  # sorted by path: same rows whatever the argument order
        np.testing.assert_array_equal(t.features, np.concatenate([xa, xb]).astype(np.float32))
        assert t.label_counts() == {"BENIGN": 4, "SSH-Patator": 3}
        assert [Path(f["path"]).name for f in t.report["files"]] == ["a_Monday.csv", "b_Tuesday.csv.gz"]


@pytest.mark.parametrize("pandas_resaved", [False, True])
def test_traffic_labelling_gives_the_same_features(tmp_path, pandas_resaved):
    x = random_features(5, np.random.default_rng(0))
    labels = ["BENIGN", "DDoS", "Web Attack \x96 XSS", "PortScan", "BENIGN"]
    mlcve = cic.read_flows(write_mlcve(tmp_path / "m.csv", x, labels))
    tl_lines = [tl_header(pandas_resaved)] + [
        tl_row(r, lab, i, pandas_resaved) for i, (r, lab) in enumerate(zip(x, labels, strict=True))
    ]
    tl = cic.read_flows(
        write(tmp_path / "t.csv", tl_lines, encoding="utf-8" if pandas_resaved else "latin-1")
    )
    assert tl.report["layouts"] == ["TrafficLabelling"]
    assert tl.feature_names == mlcve.feature_names
    for dropped in ("Flow ID", "Source IP", "Source Port", "Destination IP", "Protocol", "Timestamp"):
        assert dropped not in tl.feature_names
    np.testing.assert_array_equal(tl.features, mlcve.features)
    np.testing.assert_array_equal(tl.labels, mlcve.labels)


def test_forced_layout_must_match(tmp_path):
    path = write_mlcve(tmp_path / "m.csv", random_features(2, np.random.default_rng(0)), ["BENIGN"] * 2)
    assert cic.read_flows(path, layout="MachineLearningCVE").features.shape == (2, 77)
    with pytest.raises(DataError, match=r"m\.csv:line 1: .*TrafficLabelling layout.*missing \['Flow ID'"):
        cic.read_flows(path, layout="TrafficLabelling")
    with pytest.raises(ValueError, match="unknown layout"):
        cic.read_flows(path, layout="nope")


# ----------------------------------------------------------------------------------------------
# Bad input: DataError naming file (and line) and what is wrong; nothing cached


def _bad_files(tmp_path: Path) -> dict:
    x = random_features(4, np.random.default_rng(0))
    good = [mlcve_row(r, "BENIGN") for r in x]
    text_cell = good[2].split(",")
    text_cell[FEATURES.index("Flow Duration")] = "12ms"
    no_label = [c for c in ORIGINAL_COLUMNS if c != "Label"]
    return {
        "no_label": (
            write(tmp_path / "no_label.csv", [",".join(no_label)] + [r.rsplit(",", 1)[0] for r in good]),
            r"no_label\.csv:line 1: no 'Label' column in the header \(78 columns",
        ),
        "text": (
            write(tmp_path / "text.csv", [mlcve_header(), good[0], good[1], ",".join(text_cell)]),
            r"text\.csv:line 4: column 'Flow Duration': '12ms' is not a number",
        ),
        "empty": (
            write_bytes(tmp_path / "empty.csv", b""),
            r"empty\.csv:line 1: empty file \(no header line\)",
        ),
        "header_only": (
            write(tmp_path / "header_only.csv", [mlcve_header()]),
            r"header_only\.csv: no data rows",
        ),
        "unknown_label": (
            write(
                tmp_path / "unknown.csv", [mlcve_header(), good[0], mlcve_row(x[1], "Web Attack \x96 CSRF")]
            ),
            r"unknown\.csv:line 3: unknown label 'Web Attack \\x96 CSRF'",
        ),
        "missing_label": (
            write(tmp_path / "missing.csv", [mlcve_header(), good[0], good[1].rsplit(",", 1)[0] + ","]),
            r"missing\.csv:line 3: empty 'Label' cell",
        ),
        "columns": (
            write(tmp_path / "columns.csv", [mlcve_header().replace("Flow Duration", "Flow Time")] + good),
            r"columns\.csv:line 1: 79 columns do not match the MachineLearningCVE layout.*"
            r"missing \['Flow Duration'\], unexpected \['Flow Time'\]",
        ),
        "extra_column": (
            write(tmp_path / "extra.csv", [mlcve_header() + ",Extra"] + [r + ",1" for r in good]),
            r"extra\.csv:line 1: 80 columns do not match.*unexpected \['Extra'\]",
        ),
        "corrupt_gzip": (
            write_bytes(tmp_path / "corrupt.csv.gz", _truncated_gzip(tmp_path)),
            r"corrupt\.csv\.gz: cannot read file",
        ),
    }


def _truncated_gzip(tmp_path: Path) -> bytes:
    """A gzipped file cut in the middle of its rows, as an interrupted download leaves it."""
    x = random_features(300, np.random.default_rng(0))
    data = write_mlcve(tmp_path / "whole.csv.gz", x, ["BENIGN"] * 300, gz=True).read_bytes()
    (tmp_path / "whole.csv.gz").unlink()
    return data[: len(data) // 2]


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "case",
    [
        "no_label",
        "text",
        "empty",
        "header_only",
        "unknown_label",
        "missing_label",
        "columns",
        "extra_column",
        "corrupt_gzip",
    ],
)
def test_bad_input_names_file_line_and_problem_and_caches_nothing(tmp_path, case):
    path, pattern = _bad_files(tmp_path)[case]
    with pytest.raises(DataError, match=pattern) as err:
        cic.read_flows(path)
    assert err.value.path == path
    cache = tmp_path / "cache"
    for label_mode in ("binary", "multiclass"):
        with pytest.raises(DataError, match=pattern):
            load(path, cache_dir=cache, label_mode=label_mode)
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))
    with pytest.raises(DataError, match=pattern):
        cic.check(path)


def test_bad_file_among_good_ones_is_named(tmp_path):
    x = random_features(2, np.random.default_rng(0))
    write_mlcve(tmp_path / "a.csv", x, ["BENIGN"] * 2)
    write_mlcve(tmp_path / "b.csv", x, ["BENIGN", "Nope"])
    with pytest.raises(DataError, match=r"b\.csv:line 3: unknown label 'Nope'"):
        cic.read_flows(tmp_path)


def test_missing_paths(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        cic.read_flows(tmp_path / "absent.csv")
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(DataError, match=r"empty_folder: folder has no \*\.csv"):
        cic.read_flows(tmp_path / "empty_folder")


# ----------------------------------------------------------------------------------------------
# Locating the data


def test_locate_order_and_not_found_message(tmp_path, monkeypatch):
    monkeypatch.setenv("MIAMIND_DATA", str(tmp_path / "env_root"))
    with pytest.raises(DatasetNotFoundError) as err:
        cic.locate()
    msg = str(err.value)
    assert str(tmp_path / "env_root" / "cicids2017") in msg
    assert "https://www.unb.ca/cic/datasets/ids-2017.html" in msg and "MachineLearningCSV.zip" in msg
    (tmp_path / "env_root" / "cicids2017").mkdir(parents=True)
    write_mlcve(
        tmp_path / "env_root" / "cicids2017" / "a.csv",
        random_features(2, np.random.default_rng(0)),
        ["BENIGN"] * 2,
    )
    assert cic.locate() == tmp_path / "env_root" / "cicids2017"
    with pytest.raises(DatasetNotFoundError, match="explicit"):  # an explicit data_dir wins over the env
        cic.locate(tmp_path / "explicit")
    monkeypatch.delenv("MIAMIND_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(DatasetNotFoundError, match=r"home/\.cache/miamind/data/cicids2017"):
        cic.locate()


def test_check_reports_checksums_and_counts(tmp_path):
    x = random_features(4, np.random.default_rng(0))
    x[1, FEATURES.index("Flow Bytes/s")] = np.inf
    path = write_mlcve(tmp_path / "c.csv", x, ["BENIGN", "BENIGN", "DDoS", "DDoS"])
    r = cic.check(path)
    json.dumps(r)
    import hashlib

    assert r["files"][0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert r["label_counts_read"] == {"BENIGN": 2, "DDoS": 2}
    assert r["rows_with_nonfinite"] == {"BENIGN": 1}
    assert r["rows_kept_if_dropping_nonfinite"] == {"BENIGN": 1, "DDoS": 2}
    assert r["layouts"] == ["MachineLearningCVE"] and r["n_features"] == 77


# ----------------------------------------------------------------------------------------------
# Splits: stratified, seeded, disjoint; statistics from train only


def test_split_is_stratified_deterministic_and_disjoint(split_file):
    path, x, labels = split_file
    a = load(path, label_mode="multiclass", seed=3)
    b = load(path, label_mode="multiclass", seed=3)
    c = load(path, label_mode="multiclass", seed=4)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(a.indices[part], b.indices[part])
        np.testing.assert_array_equal(getattr(a, f"x_{part}"), getattr(b, f"x_{part}"))
    assert not np.array_equal(a.indices["test"], c.indices["test"])
    tr, va, te = (set(a.indices[p].tolist()) for p in ("train", "val", "test"))
    assert not (tr & va or tr & te or va & te)
    assert tr | va | te == set(range(len(labels)))
    counts = a.report["split"]["label_counts"]
    for label, n in [("BENIGN", 300), ("DDoS", 60), ("PortScan", 40), ("Web Attack - Sql Injection", 3)]:
        # scikit-learn rounds each class's share by largest remainder: a 3-row class may get no
        # val or test row (it still is split, not kept in train); classes of >= 7 rows get one.
        assert all(counts[p].get(label, 0) >= (n >= 7) for p in ("train", "val", "test")), label
        assert sum(counts[p].get(label, 0) for p in counts) == n
    assert counts["test"]["BENIGN"] == 45 and counts["val"]["DDoS"] == 9  # 15 % of each class
    # y follows the rows: the label of each test row is its class
    names = np.array([normalise_label(s) for s in labels])
    np.testing.assert_array_equal(np.array(a.class_names)[a.y_test], names[a.indices["test"]])


def test_class_with_fewer_than_three_rows_stays_in_train(split_file):
    path, _, _ = split_file
    with pytest.warns(UserWarning, match=r"fewer than 3 rows.*Heartbleed': 2"):
        d = cic.load_cicids2017(path=path, label_mode="multiclass")
    assert d.report["train_only_classes"] == {"Heartbleed": 2}
    hb = d.class_names.index("Heartbleed")
    assert (d.y_train == hb).sum() == 2 and hb not in d.y_val and hb not in d.y_test


def test_stratified_split_tiny_classes_and_bad_fractions():
    strata = np.repeat(np.arange(4), [3, 4, 1, 100])
    (tr, va, te), rare = stratified_split(strata, (0.5, 0.3, 0.2), seed=0)
    assert rare == {2: 1}
    assert all((strata[i] == 3).sum() >= 1 for i in (tr, va, te))  # 100 rows: in every split
    assert all((strata[np.concatenate([tr, va, te])] == s).sum() == n for s, n in ((0, 3), (1, 4)))
    assert len(tr) + len(va) + len(te) == len(strata)
    for bad in [(0.5, 0.5), (0.7, 0.2, 0.2), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1)]:
        with pytest.raises(ValueError, match="split must be"):
            stratified_split(strata, bad, seed=0)


def test_standard_scaler_is_fit_on_train_only(split_file):
    path, x, labels = split_file
    d = load(path, label_mode="multiclass", scale="standard")
    raw = x.astype(np.float32).astype(np.float64)
    train_mean = raw[d.indices["train"]].mean(0)
    full_mean = raw.mean(0)
    assert np.abs(train_mean - full_mean).max() > 1.0  # the data make the two differ
    np.testing.assert_allclose(d.scaler["offset"], train_mean, rtol=1e-9)
    assert not np.allclose(d.scaler["offset"], full_mean)
    np.testing.assert_allclose(d.scaler["scale"], raw[d.indices["train"]].std(0), rtol=1e-9)
    np.testing.assert_allclose(d.x_train.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(d.x_train.std(0), 1, atol=1e-4)
    assert abs(d.x_test.mean()) > 1e-4  # test rows are scaled with the train statistics
    np.testing.assert_allclose(d.transform(raw[d.indices["test"]]), d.x_test, rtol=1e-6, atol=1e-6)


def test_minmax_scaler_and_no_scaling(split_file):
    path, x, _ = split_file
    d = load(path, scale="minmax")
    raw = x.astype(np.float32)[d.indices["train"]]
    np.testing.assert_array_equal(d.scaler["offset"], raw.min(0))
    np.testing.assert_allclose(d.x_train.min(0), 0, atol=1e-6)
    np.testing.assert_allclose(d.x_train.max(0), 1, atol=1e-6)
    n = load(path, scale=None)
    np.testing.assert_array_equal(n.x_test, x.astype(np.float32)[n.indices["test"]])
    with pytest.raises(ValueError, match="scale must be"):
        load(path, scale="robust")


def test_class_weights_come_from_train_counts(split_file):
    path, _, labels = split_file
    d = load(path, label_mode="multiclass")
    train_counts = np.bincount(d.y_train, minlength=d.n_classes)
    np.testing.assert_allclose(d.class_weights, len(d.y_train) / (d.n_classes * train_counts), rtol=1e-6)
    full_counts = np.array([sum(normalise_label(s) == c for s in labels) for c in d.class_names])
    assert not np.allclose(d.class_weights, len(labels) / (d.n_classes * full_counts), rtol=1e-3)
    assert d.class_weights.dtype == np.float32


def test_binary_and_multiclass_modes(split_file):
    path, _, labels = split_file
    b = load(path, label_mode="binary")
    m = load(path, label_mode="multiclass")
    assert b.class_names == ("BENIGN", "attack") and b.n_classes == 2
    assert m.class_names == ("BENIGN", "DDoS", "Heartbleed", "PortScan", "Web Attack - Sql Injection")
    for part in ("train", "val", "test"):  # same rows in both modes
        np.testing.assert_array_equal(b.indices[part], m.indices[part])
        np.testing.assert_array_equal(
            getattr(b, f"y_{part}"), (getattr(m, f"y_{part}") != 0).astype(np.int64)
        )
    assert b.y_train.dtype == np.int64 and b.x_train.dtype == np.float32
    assert b.input_shape == (1, 77) and b.n_features == 77 and b.feature_names == FEATURES
    full = load(path, label_mode="multiclass", all_classes=True)
    assert full.class_names == cic.LABELS and len(full.class_names) == 15
    assert full.class_weights[full.class_names.index("Bot")] == 0
    with pytest.raises(ValueError, match="label_mode"):
        load(path, label_mode="ternary")


def test_nonfinite_policies_after_split(tmp_path):
    rng = np.random.default_rng(5)
    x, labels = labelled_set(rng, {"BENIGN": 200, "DDoS": 100})
    col = FEATURES.index("Flow Packets/s")
    x[::10, col] = np.inf
    x[5, FEATURES.index("Flow Bytes/s")] = np.nan
    x[7, FEATURES.index("Flow IAT Min")] = -np.inf
    path = write_mlcve(tmp_path / "nf.csv", x, labels)

    drop = load(path, nonfinite="drop")
    assert drop.report["rows_dropped_nonfinite"] == {"BENIGN": 22, "DDoS": 10}
    assert sum(drop.report["split"]["rows"].values()) == 300 - 32

    clip = load(path, nonfinite="clip", scale=None)
    assert sum(clip.report["split"]["rows"].values()) == 300
    clipped = clip.report["values_clipped"]
    assert sum(c["posinf"] for c in clipped.values()) == 30
    assert sum(c["nan"] for c in clipped.values()) == 1 and sum(c["neginf"] for c in clipped.values()) == 1
    raw_train = x[clip.indices["train"], col]
    train_max = raw_train[np.isfinite(raw_train)].max()
    np.testing.assert_allclose(clip.clip["posinf"][col], train_max)
    for part in ("train", "val", "test"):
        xp = getattr(clip, f"x_{part}")
        assert np.isfinite(xp).all()
        was_inf = np.isinf(x[clip.indices[part], col])
        np.testing.assert_array_equal(xp[was_inf, col], np.float32(train_max))
    where_nan = list(np.concatenate([clip.indices[p] for p in ("train", "val", "test")])).index(5)
    stacked = np.concatenate([clip.x_train, clip.x_val, clip.x_test])
    assert stacked[where_nan, FEATURES.index("Flow Bytes/s")] == 0
    with pytest.raises(ValueError, match="nonfinite"):
        load(path, nonfinite="ignore")


def test_clip_bound_uses_train_rows_only(tmp_path):
    """A huge finite value that lands outside train must not become the +inf replacement."""
    rng = np.random.default_rng(0)
    x, labels = labelled_set(rng, {"BENIGN": 100})
    col = FEATURES.index("Flow Packets/s")
    x[3, col] = np.inf
    path = write_mlcve(tmp_path / "c.csv", x, labels)
    d = load(path, nonfinite="clip", scale=None, seed=0)
    outside = np.concatenate([d.indices["val"], d.indices["test"]])
    x[outside[0], col] = 10**7  # rewrite with a value far above every train value
    path = write_mlcve(tmp_path / "c.csv", x, labels)
    d2 = load(path, nonfinite="clip", scale=None, seed=0)
    np.testing.assert_array_equal(d2.indices["train"], d.indices["train"])
    assert d2.clip["posinf"][col] == d.clip["posinf"][col] < 10**7


def test_parsed_table_is_cached_by_content(tmp_path, monkeypatch):
    x, labels = labelled_set(np.random.default_rng(0), {"BENIGN": 30, "DDoS": 30})
    path = write_mlcve(tmp_path / "c.csv", x, labels)
    cache = tmp_path / "cache"
    first = load(path, cache_dir=cache)
    assert len(list((cache / "cicids2017").glob("*.npz"))) == 1

    def fail(*a, **k):
        raise AssertionError("parsed again although cached")

    monkeypatch.setattr(flows_dataset, "read_flow_files", fail)
    again = load(path, cache_dir=cache, label_mode="multiclass", nonfinite="clip")  # options after the cache
    np.testing.assert_array_equal(again.indices["train"], first.indices["train"])
    x[0, 0] += 1  # new content -> new key -> parsed again
    write_mlcve(path, x, labels)
    with pytest.raises(AssertionError, match="parsed again"):
        load(path, cache_dir=cache)


# ----------------------------------------------------------------------------------------------
# Real data (skips without MIAMIND_DATA)


@pytest.mark.realdata
def test_real_subset_counts(real_data_dir, shared_cache_dir):
    folder = cic.locate(real_data_dir)
    r = cic.check(folder)
    assert [Path(f["path"]).name for f in r["files"]] == ["MachineLearningCVE_subset.csv.gz"]
    assert r["files"][0]["sha256"] == "61e4042bd885a80f84074d31def8675169ed9694a72c137bfc0f035144ff9c7e"
    assert r["rows_read"] == 12671 and r["layouts"] == ["MachineLearningCVE"]
    assert r["label_counts_read"] == {
        "BENIGN": 9998,
        "DDoS": 1000,
        "PortScan": 1000,
        "Web Attack - Sql Injection": 21,
        "Web Attack - XSS": 652,
    }
    assert r["nonfinite_cells"] == {"nan": 1, "neginf": 0, "posinf": 13}
    assert r["rows_with_nonfinite"] == {"BENIGN": 7}
    assert r["duplicate_column_mismatches"] == {"Fwd Header Length.1": 0}

    d = cic.load_cicids2017(real_data_dir, label_mode="multiclass", cache_dir=shared_cache_dir)
    assert d.report["rows_dropped_nonfinite"] == {"BENIGN": 7}
    # 104 exact copies removed before the split (with them, 17 of 1,900 test rows had a copy in train)
    assert d.report["duplicates_dropped"] == {"BENIGN": 73, "PortScan": 31}
    assert sum(d.report["split"]["rows"].values()) == 12671 - 7 - 104
    train = {row.tobytes() for row in d.x_train}
    assert not any(row.tobytes() in train for row in d.x_test)
    assert d.class_names == ("BENIGN", "DDoS", "PortScan", "Web Attack - Sql Injection", "Web Attack - XSS")
    assert d.input_shape == (1, 77)
    assert all(
        d.report["split"]["label_counts"][p]["Web Attack - Sql Injection"] >= 3 for p in ("val", "test")
    )


def test_benchmark_generator_writes_readable_rows(tmp_path):
    from miamind.bench.csv_memory import generate

    x = random_features(4, np.random.default_rng(0))
    source = write_mlcve(
        tmp_path / "src.csv.gz", x, ["BENIGN", "DDoS", "BENIGN", "Web Attack \x96 XSS"], gz=True
    )
    info = generate(tmp_path / "big.csv", rows=10, source=source, header_every=4)
    assert info["data_rows"] == 10 and info["repeated_header_lines"] == 2
    t = cic.read_flows(tmp_path / "big.csv")
    assert t.report["skipped_lines"]["repeated_header"] == 2 and len(t.label_codes) == 10
    assert t.label_counts() == {"BENIGN": 5, "DDoS": 3, "Web Attack - XSS": 2}
    # every column but Destination Port is copied from the source rows
    np.testing.assert_array_equal(t.features[:, 1:], np.concatenate([x, x, x[:2]])[:, 1:].astype(np.float32))


def test_exact_duplicates_are_removed_before_the_split_and_counted():
    from miamind.data.flows import FlowTable, first_of_duplicates, make_splits

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    codes = np.array([0] * 40 + [1] * 20)
    # rows 50..59 copy rows 40..49 (label 1); row 0 is copied with another label (not a duplicate);
    # row 1 is copied twice; NaN equals NaN byte-wise
    x[50:60] = x[40:50]
    x[5] = x[0]
    codes[5] = 1
    x[6] = x[7] = x[1]
    x[2, 0] = x[3, 0] = np.nan
    x[3, 1:] = x[2, 1:]
    table = FlowTable(x, codes, ("BENIGN", "DDoS"), ("a", "b", "c", "d"), {})
    first = first_of_duplicates(table.features, codes, np.arange(60))
    assert (~first).sum() == 10 + 2 + 1
    assert first[0] and first[5] and not first[6] and not first[7] and not first[3] and not first[55]

    d = make_splits(table, label_mode="multiclass", nonfinite="clip", seed=0)
    assert d.report["duplicate_rows_dropped"] == 13
    assert d.report["duplicates_dropped"] == {"BENIGN": 3, "DDoS": 10}
    assert sum(d.report["split"]["rows"].values()) == 60 - 13
    kept = np.concatenate(list(d.indices.values()))
    assert len(np.unique(x[kept].view(np.uint32), axis=0)) == len(kept) - 1  # rows 0 and 5: labels differ
    kept_all = make_splits(table, label_mode="multiclass", nonfinite="clip", seed=0, drop_duplicates=False)
    assert sum(kept_all.report["split"]["rows"].values()) == 60
    assert "duplicates_dropped" not in kept_all.report
