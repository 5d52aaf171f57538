"""The README's Python examples run as written (data examples only when real data is present)."""

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index):
    code = BLOCKS[index]
    if "miamind.data" in code:
        if not os.environ.get("MIAMIND_DATA"):
            pytest.skip("README data example needs real data: set MIAMIND_DATA")
    exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": "__readme__"})
