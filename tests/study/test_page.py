"""A study's index.html: every configuration of summary.json is on it with its cells, nothing is
fetched at view time, and text from the results cannot inject markup."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from miamind.study.page import render_index_html

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "results" / "study").glob("*/index.html"))


class _Page(HTMLParser):
    """Collects the configuration labels (first cell of each sortable table's body rows), the
    groups (h3 code), and every src/href."""

    def __init__(self):
        super().__init__()
        self.groups: list[str] = []
        self.labels: dict[str, list[str]] = {}
        self.links: list[str] = []
        self._stack: list[str] = []
        self._in_summary = False
        self._in_h3 = False
        self._depth_sortable = 0
        self._row_first_cell = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.links += [a[k] for k in ("src", "href") if k in a]
        if tag == "h3":
            self._in_h3 = True
        if tag == "summary":
            self._in_summary = True

    def handle_endtag(self, tag):
        if tag == "h3":
            self._in_h3 = False
        if tag == "summary":
            self._in_summary = False

    def handle_data(self, data):
        if self._in_h3 and data.strip() and data.strip() != "Group":
            self.groups.append(data.strip())
            self.labels[data.strip()] = []
        elif self._in_summary and self.groups and data.strip():
            self.labels[self.groups[-1]].append(data.strip())


def test_there_is_a_page_for_every_committed_study():
    reports = sorted(p.parent for p in (ROOT / "results" / "study").glob("*/summary.json"))
    assert [p.parent for p in PAGES] == reports


@pytest.mark.parametrize("page", PAGES, ids=[p.parent.name for p in PAGES])
def test_the_page_lists_every_configuration_of_summary_json(page):
    summary = json.loads((page.parent / "summary.json").read_text())
    parsed = _Page()
    parsed.feed(page.read_text())
    want: dict[str, list[str]] = {}
    for c in summary["configs"]:
        want.setdefault(c["group"], []).append(c["label"])
    have = {
        g: [x for x in labels if not x.endswith("differences in secondary metrics")]
        for g, labels in parsed.labels.items()
    }
    # a configuration without finished cells has no <details>; it is listed all the same
    for group, labels in want.items():
        assert group in have, group
        listed = set(have[group])
        text = page.read_text()
        for label in labels:
            assert label in listed or f'<td data-sort="{label}">{label}' in text, (group, label)
    assert set(have) == set(want)


@pytest.mark.parametrize("page", PAGES, ids=[p.parent.name for p in PAGES])
def test_the_page_fetches_nothing(page):
    parsed = _Page()
    parsed.feed(page.read_text())
    assert parsed.links and all(link.startswith("data:") for link in parsed.links), parsed.links


def test_text_from_the_results_is_escaped(tmp_path):
    summary = {
        "study": "<b>x</b>",
        "study_file": "s.yaml",
        "command": "miamind study report s.yaml",
        "cells": 1,
        "states": {"done": 1},
        "family_size": 0,
        "alpha": 0.05,
        "configs": [
            {
                "group": "g",
                "task": "t",
                "label": "<script>alert(1)</script>",
                "model": "m",
                "attention": "a",
                "attention_kwargs": {},
                "sweep": {},
                "metrics": ["acc"],
                "stats": {"acc": {"mean": 0.5, "sd": None, "n": 1}},
                "na_reason": None,
            }
        ],
        "comparisons": [],
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "cells.csv").write_text(
        "cell,group,model,attention,attention_kwargs,sweep,seed,fold,state,acc\n"
    )
    html = render_index_html(tmp_path, description="d & e", protocol={"t": "<i>p</i>"}, hypotheses=["h < 1"])
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "d &amp; e" in html and "&lt;i&gt;p&lt;/i&gt;" in html and "h &lt; 1" in html
