"""Shared figure plumbing: atomic PNG writing, no pyplot, matplotlib imported lazily."""

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

from miamind import viz
from miamind.viz._figure import display_range, new_figure, save_png


def _figure():
    fig = new_figure((3, 2))
    ax = fig.subplots()
    ax.imshow(np.random.default_rng(0).random((20, 30)))
    return fig


def test_save_png_creates_parents_and_replaces(tmp_path, png_check):
    out = tmp_path / "a" / "b" / "plot.png"
    save_png(_figure(), out)
    png_check(out, min_width=250, min_height=150)
    first = out.read_bytes()
    fig = new_figure((3, 2))
    fig.subplots().plot([0, 1], [1, 0])
    save_png(fig, out)
    assert out.read_bytes() != first


def test_failed_save_keeps_previous_file_and_leaves_no_temp(tmp_path):
    out = tmp_path / "plot.png"
    out.write_bytes(b"previous")
    fig = _figure()

    def broken_savefig(handle, **kwargs):
        handle.write(b"\x89PNG partial")
        raise RuntimeError("disk full")

    fig.savefig = broken_savefig
    with pytest.raises(RuntimeError, match="disk full"):
        save_png(fig, out)
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]


def test_display_range():
    inside = np.array([[0.0, 0.5], [0.25, 1.0]])
    assert np.array_equal(display_range(inside), inside)
    scaled = display_range(np.array([[-2.0, 0.0], [2.0, 6.0]]))
    assert scaled.min() == 0.0 and scaled.max() == 1.0 and scaled[0, 1] == 0.25
    assert np.array_equal(display_range(np.full((2, 2), 3.0)), np.zeros((2, 2)))


def _module_level_imports(tree: ast.Module):
    """Import statements executed at import time: those outside function bodies."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def test_viz_modules_import_matplotlib_only_inside_functions():
    # Static rather than a subprocess `import miamind.viz`: the same guarantee for our modules,
    # without paying a fresh torch import in the test suite.
    files = sorted(Path(viz.__file__).parent.glob("*.py"))
    assert len(files) >= 6
    for path in files:
        for node in _module_level_imports(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert not any(n.split(".")[0] == "matplotlib" for n in names), f"{path.name}:{node.lineno}"


def test_plots_leave_no_pyplot_figures(tmp_path):
    plt = sys.modules.get("matplotlib.pyplot")
    before = plt.get_fignums() if plt else None
    save_png(_figure(), tmp_path / "p.png")
    plt = sys.modules.get("matplotlib.pyplot")
    if before is None:
        assert plt is None, "plotting imported pyplot (global figure registry, possibly a GUI backend)"
    else:
        assert plt.get_fignums() == before
