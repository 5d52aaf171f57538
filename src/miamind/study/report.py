"""``miamind study report``: cells.csv, summary.md / summary.json and a forest plot of a study.

Only finished cells (``metrics.json`` present) contribute numbers; unfinished, failed, N/A and
GPU-only cells are listed with their state, so a partial study reports what it has and says what
is missing. A configuration is compared with its reference (normally the same network without
attention, or for a classical baseline the group's reference network) on the seeds/folds both
have finished; the family for Holm's correction is every comparison of the study on its group's
primary metric.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from .._atomic import atomic_open, atomic_path
from .._portable import RUNS_DIR, portable_path
from ..tasks.registry import LOWER_IS_BETTER
from .page import write_index_html
from .runner import CELL_FILE, _read_json, cell_status, gpu_available, rerun_command
from .spec import Cell, Study
from .stats import holm, paired, summarize, verdict

ALPHA = 0.05


def cell_metrics(metrics_json: dict[str, Any]) -> dict[str, float]:
    """Test metrics of a run, plus derived ones: ``dice_mean`` (mean of the per-class Dice)."""
    test = dict(metrics_json.get("test") or {})
    dice = [v for k, v in test.items() if k.startswith("dice_") and k != "dice_mean"]
    if dice:
        test["dice_mean"] = sum(dice) / len(dice)
    return test


def committed_rows(path: Path) -> dict[str, dict[str, str]]:
    """The finished cells of an earlier ``cells.csv`` (cell id -> row); {} when there is none."""
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {r["cell"]: r for r in csv.DictReader(f) if r.get("state") == "done"}


def _from_committed(cell: Cell, row: dict[str, str], run_dir: Path) -> dict[str, Any]:
    """A finished cell whose run folder is not here, as its committed ``cells.csv`` row holds it
    (metrics to the 6 digits written there)."""
    metrics = {k: float(row[k]) for k in cell.metrics if row.get(k) not in (None, "")}
    number = {k: (float(row[k]) if row.get(k) else None) for k in ("params", "wall_s")}
    return {
        "cell": cell,
        "state": "done",
        "reason": "",
        "run_dir": run_dir,
        "metrics": metrics,
        "params": None if number["params"] is None else int(number["params"]),
        "wall_s": number["wall_s"],
        "commit": row.get("commit", ""),
        "environment": row.get("environment", ""),
        "command": row.get("command", ""),
        "from_committed": True,
    }


def collect(
    study: Study, runs_dir: Path | str | None = None, committed: dict[str, dict[str, str]] | None = None
) -> list[dict[str, Any]]:
    """One record per cell: the cell, its state, metrics, parameters, wall seconds, commit, command.

    ``committed`` (from :func:`committed_rows`): a finished cell whose run folder is not under
    ``runs_dir`` keeps that row (same cell id, so the same configuration), so a report can be
    rewritten after part of its cells were rerun elsewhere or their folders were cleaned away.
    """
    gpu = gpu_available()
    committed = committed or {}
    rows = []
    for cell in study.cells:
        st = cell_status(study, cell, runs_dir, gpu=gpu)
        if st.state != "done" and cell.id in committed:
            rows.append(_from_committed(cell, committed[cell.id], st.run_dir))
            continue
        record = _read_json(st.run_dir / CELL_FILE) or {}
        m = _read_json(st.run_dir / "metrics.json") if st.state == "done" else None
        state = st.state
        if state in ("pending", "resume") and record.get("status") == "failed":
            state = "failed"
        rows.append(
            {
                "cell": cell,
                "state": state,
                "reason": st.reason,
                "run_dir": st.run_dir,
                "metrics": cell_metrics(m) if m else {},
                "params": (m or {}).get("parameters"),
                "wall_s": record.get("wall_s"),
                **_provenance(st.run_dir, record),
                "command": rerun_command(cell, st.run_dir, record, study.runs_root(runs_dir)),
            }
        )
    return rows


def _provenance(run_dir: Path, record: dict[str, Any]) -> dict[str, str]:
    """Commit and environment of the attempt that finished the cell, as its training process
    recorded them (``provenance.json``); older run folders: the runner's commit only."""
    from ..engine.provenance import read_provenance

    attempts = read_provenance(run_dir)
    if not attempts:
        return {"commit": record.get("commit", ""), "environment": ""}
    last = attempts[-1]
    threads = last.get("omp_num_threads") or last.get("torch_threads")
    libraries = f"torch {last.get('torch')}, lightning {last.get('lightning')}"
    environment = f"{libraries}, {last.get('device')}, {threads} threads"
    return {"commit": last.get("commit") or f"miamind {last.get('miamind')}", "environment": environment}


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.{digits}f}"
    return str(v)


def write_cells_csv(rows: list[dict[str, Any]], path: Path) -> None:
    metric_cols = list(dict.fromkeys(k for r in rows for k in r["cell"].metrics))
    cols = [
        "cell",
        "group",
        "task",
        "dataset",
        "label_mode",
        "model",
        "attention",
        "attention_kwargs",
        "sweep",
        "seed",
        "fold",
        "state",
        *metric_cols,
        "params",
        "wall_s",
        "commit",
        "environment",
        "command",
    ]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        c: Cell = r["cell"]
        row = {
            "cell": c.id,
            "group": c.group,
            "task": c.task,
            "dataset": c.sets.get("data.dataset", ""),
            "label_mode": c.sets.get("data.label_mode", ""),
            "model": c.model,
            "attention": c.attention,
            "attention_kwargs": json.dumps(c.attention_kwargs, sort_keys=True) if c.attention_kwargs else "",
            "sweep": json.dumps(c.sweep, sort_keys=True) if c.sweep else "",
            "seed": c.seed,
            "fold": "" if c.fold is None else c.fold,
            "state": r["state"] if r["state"] != "na" else f"N/A: {r['reason']}",
            "params": r["params"] if r["params"] is not None else "",
            "wall_s": r["wall_s"] if r["wall_s"] is not None else "",
            "commit": r["commit"],
            "environment": r["environment"],
            "command": r["command"],
        }
        for k in metric_cols:
            row[k] = _fmt(r["metrics"].get(k), 6) if k in r["metrics"] else ""
        w.writerow(row)
    with atomic_open(path, "w") as f:
        f.write(buf.getvalue())


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per configuration mean/sd/n of each metric; paired differences to the reference; Holm."""
    configs: dict[str, dict[str, Any]] = {}
    for r in rows:
        c: Cell = r["cell"]
        key = c.config_key()
        entry = configs.setdefault(
            f"{c.group}|{key}",
            {
                "group": c.group,
                "task": c.task,
                "label": c.label(),
                "model": c.model,
                "attention": c.attention,
                "attention_kwargs": c.attention_kwargs,
                "sweep": c.sweep,
                "set": c.sets,
                "metrics": list(c.metrics),
                "key": key,
                "reference_key": c.reference_key(),
                "states": defaultdict(int),
                "na_reason": c.na_reason,
                "requires": c.requires,
                "units": {},
            },
        )
        entry["states"][r["state"]] += 1
        if r["state"] == "done":
            entry["units"][(c.seed, c.fold)] = r["metrics"]
    by_key: dict[str, dict[str, Any]] = {}
    for entry in configs.values():
        by_key.setdefault(entry["key"], entry)

    out_configs = []
    comparisons = []
    for entry in configs.values():
        units = entry["units"]
        stats = {}
        for metric in entry["metrics"]:
            vals = [m[metric] for m in units.values() if metric in m and m[metric] is not None]
            vals = [v for v in vals if math.isfinite(v)]
            if vals:
                stats[metric] = summarize(vals).as_dict()
        per_class_f1 = {
            k[len("f1_per_class_") :]: summarize([m[k] for m in units.values() if k in m]).as_dict()
            for k in sorted({k for m in units.values() for k in m if k.startswith("f1_per_class_")})
        }
        # the entry without its bookkeeping, in the same key order
        out = {k: v for k, v in entry.items() if k not in ("key", "reference_key", "units")}
        out.update(states=dict(entry["states"]), stats=stats)
        if per_class_f1:
            out["f1_per_class"] = per_class_f1
        out_configs.append(out)
        ref = by_key.get(entry["reference_key"]) if entry["reference_key"] else None
        if ref is None or not units:
            continue
        shared = sorted(set(units) & set(ref["units"]), key=lambda u: (u[0], -1 if u[1] is None else u[1]))
        for i, metric in enumerate(entry["metrics"]):
            pairs = [
                (units[u][metric], ref["units"][u][metric])
                for u in shared
                if metric in units[u] and metric in ref["units"][u]
            ]
            pairs = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
            if not pairs:
                continue
            cmp = paired([a for a, _ in pairs], [b for _, b in pairs]).as_dict()
            cmp.update(
                {
                    "group": entry["group"],
                    "task": entry["task"],
                    "label": entry["label"],
                    "reference": ref["label"],
                    "metric": metric,
                    "primary": i == 0,
                    "higher_is_better": metric not in LOWER_IS_BETTER,
                    "units": [list(u) for u in shared],
                    "_test": (
                        entry["reference_key"],
                        metric,
                        tuple(shared),
                        tuple(round(a - b, 12) for a, b in pairs),
                    ),
                }
            )
            comparisons.append(cmp)
    return {"configs": out_configs, **holm_family(comparisons), "alpha": ALPHA}


def holm_family(comparisons: list[dict[str, Any]]) -> dict[str, Any]:
    """Holm's correction over the primary comparisons, each *test* counted once.

    Two rows are one test when they compare the same data: the same configuration against the same
    reference listed by two groups, or two configurations whose paired differences are equal unit
    by unit (timm's Gather-Excite with a global extent is SE, and gives SE's numbers on every seed).
    Every row gets its test's adjusted p; a repeat names the row it repeats (``same_test_as``).
    """
    primary = [cp for cp in comparisons if cp["primary"]]
    first: dict[Any, dict[str, Any]] = {}
    for cp in primary:
        original = first.setdefault(cp["_test"], cp)
        if original is not cp and original["label"] != cp["label"]:
            cp["same_test_as"] = original["label"]
    p_of_test = {key: cp["p_ttest"] for key, cp in first.items()}
    adjusted = dict(zip(p_of_test, holm(list(p_of_test.values())), strict=True))
    for cp in primary:
        cp["p_holm"] = adjusted[cp["_test"]]
        cp["significant"] = cp["p_holm"] is not None and cp["p_holm"] < ALPHA
    for cp in comparisons:
        del cp["_test"]
    return {"comparisons": comparisons, "family_size": sum(1 for p in p_of_test.values() if p is not None)}


def _md_row(cols: list[str]) -> str:
    """One Markdown table row; a group with no finished cell has no metric columns at all."""
    return "| " + " | ".join(cols) + " |"


def _mean_sd_n(s: dict[str, Any] | None) -> str:
    if s is None:
        return ""
    return f"{s['mean']:.4f}" + ("" if s["sd"] is None else f" ± {s['sd']:.4f}") + f" ({s['n']})"


_VERDICT_TEXT = {
    "not tested": "not tested (fewer than 2 pairs, or the same difference on every pair)",
    "no difference": "no significant difference",
}


def _verdict(c: dict[str, Any]) -> str:
    v = verdict(c)
    return _VERDICT_TEXT.get(v, v)


def write_summary_md(
    study: Study,
    summary: dict[str, Any],
    rows: list[dict[str, Any]],
    path: Path,
    runs_dir: Path | str | None = None,
    command: str | None = None,
) -> None:
    states = Counter(r["state"] for r in rows)
    runs_arg = f" --runs-dir {runs_dir}" if runs_dir is not None else ""
    command = command or f"miamind study report {portable_path(study.path)}{runs_arg}"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        f"# Study `{study.name}`",
        "",
        f"Written by `{command}` on {stamp}.",
        f"Cells: {len(rows)} ({', '.join(f'{k} {v}' for k, v in sorted(states.items()))}). "
        + (
            f"{kept} finished cells are taken from the earlier `cells.csv` of this folder (their run "
            "folders were not in the runs folder; metrics to 6 digits). "
            if (kept := sum(1 for r in rows if r.get("from_committed")))
            else ""
        )
        + "Rerun one cell with the `command` column of `cells.csv`; finish the study with "
        f"`miamind study run {portable_path(study.path)}{runs_arg}` (finished cells are skipped)"
        + (f"; {RUNS_DIR} is the runs folder." if RUNS_DIR in runs_arg else "."),
        "",
    ]
    if study.description:
        lines += [study.description.strip(), ""]
    if study.hypotheses:
        lines += ["## Hypotheses and test (fixed in the study file before any cell ran)", ""]
        lines += [f"- {' '.join(h.split())}" for h in study.hypotheses]
        lines.append("")
    if study.protocol:
        lines += ["## Protocol (fixed in the study file before any result)", ""]
        for task, text in study.protocol.items():
            lines += [f"- **{task}**: {' '.join(str(text).split())}"]
        lines.append("")
    lines += _mia_headline(summary)
    fam = summary["family_size"]
    lines += [
        "## Differences to the reference, paired by seed/fold",
        "",
        "Mean difference (configuration - reference) with its t-based 95% CI; p: paired t-test; "
        f"p_holm: Holm-corrected over the {fam} primary-metric tests of this study (a comparison that "
        "repeats another's data exactly is one test); "
        f"* marks p_holm < {ALPHA}. p_wilcoxon: signed-rank test (with 5 pairs it cannot go below 0.0625).",
        "",
    ]
    for group in dict.fromkeys(c["group"] for c in summary["configs"]):
        comps = [c for c in summary["comparisons"] if c["group"] == group and c["primary"]]
        if not comps:
            continue
        metric = comps[0]["metric"]
        lines += [
            f"### {group} ({metric}, vs {comps[0]['reference']})",
            "",
            "| configuration | n | mean diff | 95% CI | p | p_holm | p_wilcoxon | verdict |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in sorted(comps, key=lambda c: -c["mean_diff"] if c["higher_is_better"] else c["mean_diff"]):
            ci = "" if c["ci_low"] is None else f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"
            star = " *" if c.get("significant") else ""
            lines.append(
                f"| {c['label']} | {c['n']} | {c['mean_diff']:+.4f}{star} | {ci} | {_fmt(c['p_ttest'])} | "
                f"{_fmt(c.get('p_holm'))} | {_fmt(c['p_wilcoxon'])} | {_verdict(c)}"
                + (f" (same test as {c['same_test_as']}: counted once)" if c.get("same_test_as") else "")
                + " |"
            )
        lines.append("")
    lines += ["## Configurations (test metrics: mean ± sd over seeds/folds, n)", ""]
    for group in dict.fromkeys(c["group"] for c in summary["configs"]):
        confs = [c for c in summary["configs"] if c["group"] == group]
        metrics = list(dict.fromkeys(m for c in confs for m in c["stats"]))
        lines += [f"### {group}", "", _md_row(["configuration", *metrics, "cells"])]
        lines.append("|---|" + "---|" * len(metrics) + "---|")
        for c in confs:
            vals = [_mean_sd_n(c["stats"].get(m)) for m in metrics]
            if c["na_reason"]:
                cells = f"N/A: {c['na_reason']}"
            else:
                cells = ", ".join(f"{k} {v}" for k, v in sorted(c["states"].items()))
                if c["requires"]:
                    cells += f"; needs {c['requires']}"
            lines.append(_md_row([c["label"], *vals, cells]))
        lines.append("")
        with_f1 = [c for c in confs if c.get("f1_per_class")]
        if with_f1:
            classes = list(dict.fromkeys(k for c in with_f1 for k in c["f1_per_class"]))
            lines += [f"Per-class test F1 ({group}, mean over seeds):", ""]
            lines += ["| configuration | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
            for c in with_f1:
                vals = [
                    f"{c['f1_per_class'][k]['mean']:.3f}" if k in c["f1_per_class"] else "" for k in classes
                ]
                lines.append(f"| {c['label']} | " + " | ".join(vals) + " |")
            lines.append("")
    lines += ["Forest plot of the primary-metric differences: `forest.png`.", ""]
    with atomic_open(path, "w") as f:
        f.write("\n".join(lines))


def _mia_headline(summary: dict[str, Any]) -> list[str]:
    """Per group: where MIA-Mind (every ``mia*`` configuration) ranks and whether it beats ``none``."""
    out: list[str] = []
    for group in dict.fromkeys(c["group"] for c in summary["configs"]):
        confs = [c for c in summary["configs"] if c["group"] == group and c["stats"]]
        if not confs:
            continue
        metric = confs[0]["metrics"][0] if confs[0].get("metrics") else next(iter(confs[0]["stats"]))
        ranked = [c for c in confs if metric in c["stats"]]
        higher = metric not in LOWER_IS_BETTER
        ranked.sort(key=lambda c: -c["stats"][metric]["mean"] if higher else c["stats"][metric]["mean"])
        mias = [c for c in ranked if str(c["attention"]).startswith("mia")]
        if not mias:
            continue
        best = ranked[0]
        lines = [
            f"- **{group}** ({metric}, {'higher' if higher else 'lower'} is better; best: {best['label']} "
            f"{best['stats'][metric]['mean']:.4f}, n={best['stats'][metric]['n']}):"
        ]
        comps: dict[str, dict[str, Any]] = {}
        for c in summary["comparisons"]:
            if c["group"] == group and c["metric"] == metric:
                comps.setdefault(c["label"], c)
        for m in mias:
            cmp = comps.get(m["label"])
            text = f"{m['label']} ranks {ranked.index(m) + 1} of {len(ranked)} (mean {m['stats'][metric]['mean']:.4f})"
            if cmp is not None:
                ci = (
                    "" if cmp["ci_low"] is None else f", 95% CI [{cmp['ci_low']:+.4f}, {cmp['ci_high']:+.4f}]"
                )
                text += (
                    f"; vs {cmp['reference']}: {cmp['mean_diff']:+.4f}{ci}, n={cmp['n']}, "
                    f"Holm p {_fmt(cmp.get('p_holm')) or 'n/a'} -> {_verdict(cmp)}"
                )
            lines.append(f"  - {text}")
        out += lines
    if out:
        out = ["## MIA-Mind in one line per group", "", *out, ""]
    return out


def plot_forest(summary: dict[str, Any], path: Path) -> bool:
    """One panel per group: mean paired difference with its 95% CI per configuration; False if none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[dict]] = {}
    for c in summary["comparisons"]:
        if c["primary"]:
            groups.setdefault(c["group"], []).append(c)
    if not groups:
        return False
    heights = [max(1.2, 0.32 * len(v) + 0.8) for v in groups.values()]
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, sum(heights)), height_ratios=heights, squeeze=False)
    for ax, (group, comps) in zip(axes[:, 0], groups.items(), strict=True):
        comps = sorted(comps, key=lambda c: c["mean_diff"])
        ys = range(len(comps))
        for y, c in zip(ys, comps, strict=True):
            colour = "tab:red" if c.get("significant") else "tab:blue"
            if c["ci_low"] is not None:
                ax.plot([c["ci_low"], c["ci_high"]], [y, y], color=colour, lw=1.5)
            ax.plot([c["mean_diff"]], [y], "o", color=colour, ms=4)
        ax.axvline(0.0, color="k", lw=0.8)
        ax.set_yticks(list(ys))
        ax.set_yticklabels([f"{c['label']} (n={c['n']})" for c in comps], fontsize=7)
        ax.set_title(
            f"{group}: {comps[0]['metric']} - {comps[0]['reference']} (95% CI; red: Holm p < 0.05)",
            fontsize=8,
        )
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return True


def write_report(study: Study, runs_dir: Path | str | None = None, out: Path | str | None = None) -> Path:
    """Write results/study/NAME/{cells.csv, summary.md, summary.json, forest.png, index.html}; returns
    the folder."""
    out_dir = Path(out) if out is not None else Path("results") / "study" / study.name
    out_dir.mkdir(parents=True, exist_ok=True)
    # the command that writes this folder again (--out included when it is not the default), with
    # no path of this machine in it
    root = study.runs_root(runs_dir)
    runs_arg = portable_path(runs_dir, root) if runs_dir is not None else None
    command = (
        f"miamind study report {portable_path(study.path)}"
        + (f" --runs-dir {runs_arg}" if runs_arg is not None else "")
        + (f" --out {portable_path(out)}" if out is not None else "")
    )
    rows = collect(study, runs_dir, committed_rows(out_dir / "cells.csv"))
    write_cells_csv(rows, out_dir / "cells.csv")
    # compared per group listing: a run shared by two groups appears in both, with each group's reference
    row_of = {r["cell"].id: r for r in rows}
    summary = summarise([{**row_of[c.id], "cell": c} for c in study.members or study.cells])
    summary_out = {
        "study": study.name,
        "study_file": portable_path(study.path),
        "runs_dir": portable_path(root, root),
        "command": command,
        "cells": len(rows),
        "states": {s: sum(1 for r in rows if r["state"] == s) for s in sorted({r["state"] for r in rows})},
        **summary,
    }
    with atomic_open(out_dir / "summary.json", "w") as f:
        f.write(json.dumps(summary_out, indent=2, default=str) + "\n")
    write_summary_md(study, summary, rows, out_dir / "summary.md", runs_arg, command)
    (out_dir / "forest.png").unlink(missing_ok=True)
    plot_forest(summary, out_dir / "forest.png")
    write_index_html(
        out_dir, description=study.description, protocol=study.protocol, hypotheses=study.hypotheses
    )
    return out_dir
