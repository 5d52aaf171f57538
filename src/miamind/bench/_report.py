"""What every benchmark writes: ``OUT.json`` (the result) and ``OUT.md`` (its table), atomically."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def torch_machine(**extra: Any) -> dict[str, Any]:
    """CPU model, cores, memory, Python and torch versions (plus ``extra``), for a result's header."""
    import torch

    from .csv_memory import machine

    info = machine()
    info["torch"] = torch.__version__
    info.update(extra)
    return info


def md_head(title: str, command: str, intro: str, *rest: str) -> list[str]:
    """A result table's first lines: ``# title``, the command, ``intro``, then ``rest`` (table header)."""
    return [f"# {title}", "", f"Command: `{command}`", "", intro, "", *rest]


def save_bench(
    out: Path,
    command: str,
    settings: dict[str, Any],
    rows: list[dict[str, Any]],
    to_markdown: Callable[[dict[str, Any]], str],
    portable: bool = True,
) -> dict[str, Any]:
    """Write a benchmark's result (command, time, machine, settings with torch's thread count, rows)
    to ``out`` and its table beside it; return the result. ``portable``: absolute paths in ``command``
    made portable."""
    import time

    import torch

    from .._portable import portable_text

    result = {
        "command": portable_text(command) if portable else command,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": torch_machine(),
        "settings": {**settings, "threads": torch.get_num_threads()},
        "results": rows,
    }
    write_report(out, result, to_markdown(result))
    return result


def write_report(out: Path, result: dict[str, Any], markdown: str) -> None:
    """Write ``result`` to ``out`` (JSON) and ``markdown`` beside it (``.md``); print the table."""
    from .._atomic import atomic_open

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(out, "w") as f:
        f.write(json.dumps(result, indent=2) + "\n")
    with atomic_open(out.with_suffix(".md"), "w") as f:
        f.write(markdown)
    print(markdown)
