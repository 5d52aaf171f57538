"""The PyTorch vs MindSpore latency script runs end to end (--quick) and writes every cell."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("mindspore", reason="MindSpore backend not installed: pip install miamind[mindspore]")

from miamind.bench.framework import BACKENDS, MODES, WORKLOADS  # noqa: E402


@pytest.mark.slow  # ~20 s: a fresh process imports both frameworks and compiles 8 functions
def test_quick_run_writes_every_cell(tmp_path):
    out = tmp_path / "bench" / "framework.json"
    # compile backend "eager": the test checks the script; inductor's C++ compile adds ~30 s here
    cmd = [
        sys.executable,
        "-m",
        "miamind.bench.framework",
        "--quick",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--compile-backend",
        "eager",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["command"].startswith("python -m miamind.bench.framework --quick")
    assert result["settings"]["quick"] and result["settings"]["repeats"] == 3
    assert {"cpu", "logical_cores", "torch", "mindspore", "threads"} <= set(result["machine"])
    cells = {(r["workload"], r["mode"], r["backend"]): r for r in result["results"]}
    assert set(cells) == {(w, m, b) for w in WORKLOADS for m in MODES for b in BACKENDS}
    for key, r in cells.items():
        assert r["repeats"] == 3 and 0 < r["min_ms"] <= r["median_ms"] <= r["max_ms"], key
        assert r["ratio_vs_torch_eager"] == pytest.approx(
            r["median_ms"] / cells[(key[0], key[1], "torch_eager")]["median_ms"]
        ), key
    # the four backends compute the same function on the same weights
    for workload, diffs in result["inference_max_abs_diff_vs_torch_eager"].items():
        assert set(diffs) == set(BACKENDS) and max(diffs.values()) < 1e-4, workload
    md = out.with_suffix(".md").read_text()
    assert "| mia |" in md and "| fastnet |" in md and "ms_graph" in md
