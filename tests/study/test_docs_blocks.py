"""The README's and docs' study numbers are generated from results/: the committed blocks must equal
what ``miamind study docs`` writes, and the generator must notice a hand edit."""

from pathlib import Path

import pytest

from miamind.cli import main
from miamind.study.docs_blocks import BLOCKS, render, sync_docs

ROOT = Path(__file__).resolve().parents[2]


def test_committed_blocks_equal_what_the_results_give():
    assert sync_docs(ROOT, check=True) == [], "run `miamind study docs` and commit the result"


def test_every_block_is_used_somewhere():
    text = "".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    assert {name for name in BLOCKS if f"<!-- generated: {name} -->" not in text} == set()


def test_a_hand_edited_number_is_found_and_rewritten(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "results").symlink_to(ROOT / "results")
    good = render("x\n<!-- generated: grid-flow-notes -->\n<!-- end generated -->\ny\n", ROOT / "results")
    (tmp_path / "README.md").write_text(good.replace("macro-F1", "macro-F1 (edited)", 1))
    assert main(["study", "docs", "--root", str(tmp_path), "--check"]) == 1
    assert main(["study", "docs", "--root", str(tmp_path)]) == 0
    assert (tmp_path / "README.md").read_text() == good


def test_an_unknown_or_unclosed_block_is_an_error():
    with pytest.raises(ValueError, match="unknown generated block 'nope'"):
        render("<!-- generated: nope -->\n<!-- end generated -->\n", ROOT / "results", "F.md")
    with pytest.raises(ValueError, match="has no"):
        render("<!-- generated: confirm -->\nno end\n", ROOT / "results", "F.md")
