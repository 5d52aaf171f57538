"""Committed results, study files and docs hold no path of the machine that produced them (commands
there name run folders as "$RUNS_DIR"/CELL and the data as $MIAMIND_DATA, so anyone can rerun them),
and nothing the project ships or records names a tracker's issue numbers."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# an absolute path under a usual home, scratch or temp root (URLs' "//host/..." do not match)
MACHINE_PATH = re.compile(r"(?<![\w.$:/~-])/(home|root|work|tmp|mnt|scratch|Users|private|var/folders)/")
SCANNED = ["results", "studies", "docs", "README.md", "CHANGELOG.md", "CONTRIBUTING.md"]
TEXT = {".md", ".json", ".csv", ".yaml", ".yml", ".txt", ".html", ".py"}


def _files():
    for name in SCANNED:
        path = ROOT / name
        yield from ([path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in TEXT))


def test_no_machine_path_in_committed_results_studies_or_docs():
    found = []
    for path in _files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not found, "machine paths:\n" + "\n".join(found)


def test_the_pattern_finds_what_it_is_for():
    assert MACHINE_PATH.search("--out /work/runs/study/x") and MACHINE_PATH.search('"/home/me/data"')
    assert not MACHINE_PATH.search("https://example.org/home/x") and not MACHINE_PATH.search('"$RUNS_DIR"/x')


# The project speaks of itself only: no tracker references ("issue 11", "Issue 10, item 6") in what
# it ships or records; the tracker's numbers mean nothing to a reader of the repository.
TRACKER_REF = re.compile(r"\b[Ii]ssues? \d+\b")
SOURCES = ["src", "scripts", "tests", "Makefile", "pyproject.toml"]


def test_no_tracker_reference_in_code_results_or_docs():
    files = list(_files())
    for name in SOURCES:
        path = ROOT / name
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in TEXT)
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}"
        for path in files
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if TRACKER_REF.search(line)
    ]
    assert not found, "tracker references:\n" + "\n".join(found)
