"""scripts/gpu_cells.sh, the prepared GPU run: its argument and input checks (the run itself needs a GPU)."""

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_cells.sh"


def _run(*args, env=None):
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)


def test_script_parses_and_wants_a_verb():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    r = _run()
    assert r.returncode == 2 and r.stderr.startswith("usage:")


def test_prepare_names_the_missing_file(tmp_path):
    r = _run("prepare", env={"PATH": "/usr/bin:/bin", "MIAMIND_DATA": str(tmp_path)})
    assert r.returncode == 2
    archive = tmp_path / "cifar10" / "cifar-10-images-jpeg-q75_YoongiKim.tar.gz"
    assert r.stderr.strip() == f"gpu_cells: {archive}: missing (set MIAMIND_DATA)"
