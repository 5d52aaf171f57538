"""MindSpore backend tests: skipped as a whole, with the install hint, when MindSpore is missing.

Fixtures shared by every test module in this folder:

- ``ms_mode``: parametrised over PYNATIVE and GRAPH; sets the global execution mode for the test
  and restores PYNATIVE afterwards (``mindspore.set_context`` is process-wide, so a GRAPH test must
  not leak its mode into the next test).

Every test runs in a scratch working directory: a GRAPH-mode compile error (which some tests
provoke on purpose) makes MindSpore write ``rank_0/om/analyze_fail.ir`` into the current directory.
"""

import pytest

ms = pytest.importorskip(
    "mindspore", reason="MindSpore backend not installed: pip install miamind[mindspore]"
)

_MODES = {"pynative": ms.PYNATIVE_MODE, "graph": ms.GRAPH_MODE}


@pytest.fixture(params=sorted(_MODES))
def ms_mode(request):
    """The MindSpore execution mode name ("graph" / "pynative"), set for the duration of the test."""
    ms.set_context(mode=_MODES[request.param])
    try:
        yield request.param
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture(scope="session")
def _scratch_cwd(tmp_path_factory):
    return tmp_path_factory.mktemp("mindspore_cwd")


@pytest.fixture(autouse=True)
def _pynative_in_scratch_dir(_scratch_cwd, monkeypatch):
    """Every test starts in PYNATIVE mode, whatever ran before it, in a scratch directory."""
    monkeypatch.chdir(_scratch_cwd)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    yield
