"""The Python examples of the README and the docs pages run as written (data examples only when real
data is present)."""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [
    (page, i, code)
    for page in PAGES
    for i, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S))
]


def test_readme_and_docs_have_examples():
    assert sum(page.name == "README.md" for page, _, _ in BLOCKS) >= 1
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize(
    "page, index, code", BLOCKS, ids=[f"{p.relative_to(ROOT)}-{i}" for p, i, _ in BLOCKS]
)
def test_example_runs(page, index, code):
    if "miamind.data" in code and not os.environ.get("MIAMIND_DATA"):
        pytest.skip(f"{page.name} data example needs real data: set MIAMIND_DATA")
    exec(compile(code, f"{page.name} python block {index}", "exec"), {"__name__": "__readme__"})
