"""mkdocs hooks: the CLI reference and the repository files the pages link to.

- ``cli.md`` holds the marker ``<!-- miamind-cli -->``; it is replaced by the ``--help`` text of
  ``miamind`` and of every subcommand, taken from ``miamind.cli.build_parser()`` (and, for
  ``miamind bench NAME``, from that benchmark's own parser), so the page cannot drift from the code.
- README.md (published as ``readme.md``: ``README.md`` would take the place of ``index.md``),
  CHANGELOG.md, CONTRIBUTING.md, LICENSE, NOTICE and everything under ``results/`` are added to
  the site at their repository paths, so the links between them work there as in the repository.
  Pages under ``docs/`` link to them as ``../NAME`` (right in the repository); that prefix is
  dropped when the site is built. The README links to pages as ``docs/NAME.md``; on the site,
  where it sits beside them, that prefix is dropped too.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import re
import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
# The CLI page describes this checkout's code, whatever miamind the environment has installed.
sys.path.insert(0, str(ROOT / "src"))
CLI_MARKER = "<!-- miamind-cli -->"
# repository file -> site path
REPO_PAGES = {"README.md": "readme.md", "CHANGELOG.md": "CHANGELOG.md", "CONTRIBUTING.md": "CONTRIBUTING.md"}
PUBLISHED_FILES = ("LICENSE", "NOTICE")
PUBLISHED_DIRS = ("results",)
UP_LINK = re.compile(r"\]\(\.\./([^)]*)\)")
DOCS_LINK = re.compile(r"\]\(docs/([^)]*)\)")
# Sphinx roles in docstrings (:class:`X`) render as ":class:" followed by the code span; keep the span.
SPHINX_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc):(?=<code>)")


def on_files(files: Files, config) -> Files:
    for src, dest in REPO_PAGES.items():
        files.append(File.generated(config, dest, abs_src_path=str(ROOT / src)))
    for name in PUBLISHED_FILES:
        files.append(File.generated(config, name, abs_src_path=str(ROOT / name)))
    for folder in PUBLISHED_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file():
                files.append(
                    File.generated(config, path.relative_to(ROOT).as_posix(), abs_src_path=str(path))
                )
    return files


def _repo_link(match: re.Match) -> str:
    target = match.group(1)
    for src, dest in REPO_PAGES.items():
        if target == src or target.startswith(src + "#"):
            return f"]({dest}{target[len(src) :]})"
    return f"]({target})"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.generated_by is None:  # a page under docs/: its ../ links point at the repository
        markdown = UP_LINK.sub(_repo_link, markdown)
    elif page.file.src_uri == REPO_PAGES["README.md"]:  # the README beside the docs pages
        markdown = DOCS_LINK.sub(r"](\1)", markdown)
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    return markdown


def on_page_content(html: str, page, config, files) -> str:
    return SPHINX_ROLE.sub("", html)


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.items())
    return []


def _bench_help(name: str) -> str:
    from miamind.cli import BENCHMARKS

    module = importlib.import_module(f"miamind.bench.{BENCHMARKS[name][0]}")
    out = io.StringIO()
    # the benchmark's parser names itself after sys.argv[0]
    argv0, sys.argv[0] = sys.argv[0], f"miamind bench {name}"
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            module.main(["--help"])
    finally:
        sys.argv[0] = argv0
    return out.getvalue()


def _sections(parser: argparse.ArgumentParser, level: int) -> list[str]:
    name = parser.prog
    words = name.split()
    out = [f"{'#' * level} `{name}`", ""]
    if len(words) == 3 and words[1] == "bench":
        from miamind.cli import BENCHMARKS

        text = _bench_help(words[2])
        default = f"results/bench/{BENCHMARKS[words[2]][0]}.json"
        out += [f"The benchmark's own options; run as `{name}`, `--out` defaults to `{default}`.", ""]
    else:
        text = parser.format_help()
    out += ["```text", text.rstrip(), "```", ""]
    for _, child in _subparsers(parser):
        out += _sections(child, level + 1)
    return out


def cli_reference() -> str:
    from miamind.cli import build_parser

    # argparse wraps help text at $COLUMNS: fix it so the page does not depend on the terminal
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return "\n".join(_sections(build_parser(), 2))
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
