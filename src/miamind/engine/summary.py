"""The one-line-per-run summary table printed after ``train`` / ``evaluate`` (Markdown)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..tasks.registry import get_task


def headline(task: str, metrics: Mapping[str, float]) -> dict[str, str]:
    """The task's headline metrics (the registry's ``headline``), formatted to 4 decimals."""
    return {k: f"{metrics[k]:.4f}" for k in get_task(task).headline if k in metrics}


def summary_row(m: Mapping[str, Any]) -> dict[str, str]:
    """One table row of a ``metrics.json``."""
    return {
        "task": m["task"],
        "model": m["model"],
        "attention": str(m["attention"]),
        "epochs": str(m["epochs"]),
        "params": f"{m['parameters']:,}",
        "train_s": f"{m['fit_seconds_this_attempt']:.0f}",
        "img_per_s": "" if m["train_samples_per_s"] is None else f"{m['train_samples_per_s']:.0f}",
        "eval_ckpt": m["evaluated_checkpoint"],
        "test": ", ".join(f"{k} {v}" for k, v in headline(m["task"], m["test"]).items()),
    }


def format_table(rows: Sequence[Mapping[str, str]]) -> str:
    """A Markdown table (readable in a terminal and pasteable into results/)."""
    if not rows:
        return ""
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}

    def line(vals):
        return "| " + " | ".join(str(v).ljust(widths[c]) for c, v in zip(cols, vals, strict=True)) + " |"

    out = [line(cols), "|" + "|".join("-" * (widths[c] + 2) for c in cols) + "|"]
    out += [line([r.get(c, "") for c in cols]) for r in rows]
    return "\n".join(out)
