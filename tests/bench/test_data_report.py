"""The data report's figures come from the loaders (the fast datasets; CIFAR is covered by its loader tests)."""

import pytest

from miamind.bench.data_report import _flows, _isbi, to_markdown
from miamind.data.cicids2017 import load_cicids2017


@pytest.mark.realdata
def test_report_parts_on_real_data(real_data_dir):
    isbi = _isbi(real_data_dir)
    assert isbi["train_slices"] == 30 and isbi["membrane_fraction"] == pytest.approx(0.2196, abs=1e-3)
    assert len(isbi["membrane_fraction_per_validation_fold"]) == 5
    cic = _flows(load_cicids2017, real_data_dir)
    kept = sum(cic["rows_read_per_label"].values()) - 7 - cic["duplicate_rows_dropped"]
    assert cic["duplicate_rows_dropped"] == 104  # exact duplicates, removed before the split
    assert sum(cic["split_rows_seed0"].values()) == kept
    assert cic["rows_dropped_nonfinite_per_label"] == {"BENIGN": 7}
    timings = {
        k: {"cold_s": 1.0, "cached_s": [0.1, 0.1]}
        for k in ("cifar10", "isbi2012", "cicids2017", "cicids2017_improved")
    }
    md = to_markdown({"data_root": "/d", "machine": {}, **timings}, "cmd")
    assert "`cmd`" in md and "| isbi2012 | 1.0 | 0.1, 0.1 |" in md
