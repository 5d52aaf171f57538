"""``index.html`` of a study's report folder: one self-contained page to browse the results.

Read from what :func:`miamind.study.report.write_report` wrote just before (``summary.json``,
``cells.csv``, ``forest.png``) plus the study file's description, protocol and hypotheses, so the page
shows nothing the report does not hold. Per task: the protocol, a table of configurations (mean and
sd of each metric over seeds or folds; click a header to sort, open a configuration for its cells)
and the paired comparisons with their confidence intervals and Holm p-values; then the forest plot.
No network at view time: styles, script and the picture are inside the file.
"""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Iterable, Mapping
from html import escape
from pathlib import Path
from typing import Any

from .._atomic import atomic_open
from .stats import verdict

__all__ = ["render_index_html", "write_index_html"]

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}code{background:#f4f4f4;padding:0 .2em}
table{border-collapse:collapse;margin:.6em 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right;vertical-align:top;white-space:nowrap}
td:first-child{white-space:normal;max-width:28em}
th{background:#f0f0f0;cursor:pointer;user-select:none}th.sorted-asc::after{content:" \\25B2"}
th.sorted-desc::after{content:" \\25BC"}td:first-child,th:first-child{text-align:left}
tr.ref td{background:#f6f9ff}details table{font-size:.9em}summary{cursor:pointer}
.better{color:#080}.worse{color:#b00}.muted{color:#777}p.protocol{max-width:60em}
img{max-width:100%}
"""

# Sorts a table's rows by the clicked column (numbers as numbers, "mean ± sd" by its mean).
_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = !th.classList.contains("sorted-asc");
      table.querySelectorAll("thead th").forEach(function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
      th.classList.add(asc ? "sorted-asc" : "sorted-desc");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var v = row.cells[col].getAttribute("data-sort");
        var n = parseFloat(v);
        return isNaN(n) ? v : n;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x !== typeof y) { return typeof x === "number" ? -1 : 1; }
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _num(v: Any, digits: int = 4) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def _td(text: str, sort: Any = None, cls: str = "") -> str:
    sort_attr = "" if sort is None else f' data-sort="{escape(str(sort))}"'
    cls_attr = f' class="{cls}"' if cls else ""
    return f"<td{sort_attr}{cls_attr}>{text}</td>"


def _config_table(
    configs: list[dict[str, Any]], cells: Mapping[tuple[str, str], list[dict[str, str]]], references: set[str]
) -> str:
    metrics: list[str] = []
    for c in configs:
        metrics += [m for m in c["metrics"] if m not in metrics]
    head = "".join(f"<th>{escape(h)}</th>" for h in ["configuration", "n", *metrics])
    body = []
    for c in configs:
        key = (c["group"], c["label"])
        n = max((s["n"] for s in c["stats"].values()), default=0)
        label = escape(c["label"])
        if c.get("na_reason"):
            label += f' <span class="muted" title="{escape(str(c["na_reason"]))}">N/A (hover for why)</span>'
        detail = _cells_detail(cells.get(key, []), metrics)
        tds = [_td(f"<details><summary>{label}</summary>{detail}</details>" if detail else label, c["label"])]
        tds.append(_td(str(n), n))
        for m in metrics:
            s = c["stats"].get(m)
            if s is None or s.get("mean") is None:
                tds.append(_td("", ""))
            else:
                sd = "" if s.get("sd") is None else f" ± {_num(s['sd'])}"
                tds.append(_td(f"{_num(s['mean'])}{sd}", s["mean"]))
        cls = ' class="ref"' if c["label"] in references else ""
        body.append(f"<tr{cls}>{''.join(tds)}</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _cells_detail(rows: list[dict[str, str]], metrics: list[str]) -> str:
    if not rows:
        return ""
    unit = "fold" if any(r.get("fold") for r in rows) else "seed"
    head = "".join(f"<th>{escape(h)}</th>" for h in [unit, "state", *metrics, "cell"])
    body = []
    for r in rows:
        tds = [_td(escape(r.get(unit) or ""), r.get(unit)), _td(escape(r.get("state", "")))]
        tds += [_td(escape(r.get(m, "")), r.get(m)) for m in metrics]
        tds.append(_td(f"<code>{escape(r['cell'])}</code>"))
        body.append(f"<tr>{''.join(tds)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _verdict(c: Mapping[str, Any]) -> tuple[str, str]:
    """(text, CSS class) of a comparison's :func:`~miamind.study.stats.verdict`."""
    v = verdict(c)
    if v in ("better", "worse"):
        return v, v
    return ("not tested" if v == "not tested" else "no significant difference"), "muted"


def _comparison_table(comparisons: Iterable[Mapping[str, Any]]) -> str:
    cols = ["configuration", "vs", "metric", "n", "mean diff", "95% CI", "p (t)", "p Holm", "verdict"]
    head = "".join(f"<th>{escape(h)}</th>" for h in cols)
    body = []
    for c in comparisons:
        verdict, cls = _verdict(c)
        ci = "" if c.get("ci_low") is None else f"[{_num(c['ci_low'])}, {_num(c['ci_high'])}]"
        metric = escape(c["metric"])
        tds = [
            _td(escape(c["label"]), c["label"]),
            _td(escape(c["reference"]), c["reference"]),
            _td(metric, c["metric"]),
            _td(str(c["n"]), c["n"]),
            _td(_num(c.get("mean_diff")), c.get("mean_diff")),
            _td(ci, c.get("ci_low")),
            _td(_num(c.get("p_ttest"), 3), c.get("p_ttest")),
            _td(_num(c.get("p_holm"), 3), c.get("p_holm")),
            _td(verdict, verdict, cls),
        ]
        body.append(f"<tr>{''.join(tds)}</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def write_index_html(
    out_dir: Path, *, description: str, protocol: Mapping[str, Any], hypotheses: Iterable[str]
) -> Path:
    """Write ``out_dir/index.html`` from the report files in ``out_dir``; returns its path."""
    path = out_dir / "index.html"
    with atomic_open(path, "w") as f:
        f.write(render_index_html(out_dir, description=description, protocol=protocol, hypotheses=hypotheses))
    return path


def render_index_html(
    out_dir: Path, *, description: str, protocol: Mapping[str, Any], hypotheses: Iterable[str]
) -> str:
    """The text of ``out_dir/index.html`` (see the module docstring)."""
    summary = json.loads((out_dir / "summary.json").read_text())
    with open(out_dir / "cells.csv", newline="") as f:
        cell_rows = list(csv.DictReader(f))

    def config(c: Mapping[str, Any], kwargs: Any, sweep: Any) -> tuple[str, ...]:
        """A configuration as summary.json and cells.csv both name it."""
        canonical = (json.dumps(v or {}, sort_keys=True) for v in (kwargs, sweep))
        return (c["group"], c["model"], c["attention"], *canonical)

    label_of = {config(c, c["attention_kwargs"], c["sweep"]): c["label"] for c in summary["configs"]}
    cells: dict[tuple[str, str], list[dict[str, str]]] = {}
    for r in cell_rows:
        kwargs, sweep = (json.loads(r[k]) if r[k] else {} for k in ("attention_kwargs", "sweep"))
        label = label_of.get(config(r, kwargs, sweep))
        if label is not None:
            cells.setdefault((r["group"], label), []).append(r)

    name = escape(summary["study"])
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Study {name}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Study <code>{name}</code></h1>",
        f"<p>{escape(description)}</p>",
        f"<p>{summary['cells']} cells ("
        + ", ".join(f"{n} {escape(s)}" for s, n in summary["states"].items())
        + f"); Holm over {summary['family_size']} primary comparisons, alpha {summary['alpha']}. "
        f"Written by <code>{escape(summary['command'])}</code> from <code>{escape(summary['study_file'])}</code>; "
        "every cell's rerun command is in <code>cells.csv</code>.</p>",
    ]
    hypotheses = list(hypotheses)
    if hypotheses:
        parts.append("<h2>Hypotheses, stated before the cells ran</h2><ol>")
        parts += [f"<li>{escape(h)}</li>" for h in hypotheses]
        parts.append("</ol>")
    tasks = list(dict.fromkeys(c["task"] for c in summary["configs"]))
    for task in tasks:
        parts.append(f'<h2 id="{escape(task)}">{escape(task)}</h2>')
        if task in protocol:
            parts.append(f'<p class="protocol">{escape(str(protocol[task]))}</p>')
        for group in dict.fromkeys(c["group"] for c in summary["configs"] if c["task"] == task):
            configs = [c for c in summary["configs"] if c["group"] == group]
            parts.append(f"<h3>Group <code>{escape(group)}</code></h3>")
            comparisons = [c for c in summary["comparisons"] if c["group"] == group]
            parts.append(_config_table(configs, cells, {c["reference"] for c in comparisons}))
            primary = [c for c in comparisons if c.get("primary")]
            secondary = [c for c in comparisons if not c.get("primary")]
            if primary:
                parts.append("<h4>Paired differences to the reference (primary metric)</h4>")
                parts.append(_comparison_table(primary))
            if secondary:
                parts.append(
                    f"<details><summary>{len(secondary)} differences in secondary metrics "
                    "(descriptive: not in the Holm family, not tested)</summary>"
                    f"{_comparison_table(secondary)}</details>"
                )
    forest = out_dir / "forest.png"
    if forest.is_file():
        data = base64.b64encode(forest.read_bytes()).decode("ascii")
        parts.append("<h2>Forest plot of the primary-metric differences</h2>")
        parts.append(f'<img alt="forest plot" src="data:image/png;base64,{data}">')
    parts.append(f"<script>{_SCRIPT}</script></body></html>\n")
    return "\n".join(parts)
