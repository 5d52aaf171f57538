"""Shared fixtures. Real-data tests use ``real_data_dir`` and skip with a reason when it is absent."""

import os
from pathlib import Path

import pytest
import torch

# Under pytest-xdist (`make test` runs `-n auto`) the workers share the cores: each gets its share of
# threads, so that N workers do not each start a thread per core and contend for them.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _THREADS = max(1, (os.cpu_count() or 1) // _WORKERS)
    torch.set_num_threads(_THREADS)
    os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own decoded-array cache, so no test sees another's cached files."""
    monkeypatch.setenv("MIAMIND_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    env = os.environ.get("MIAMIND_DATA")
    if not env:
        pytest.skip(
            "real data not available: set MIAMIND_DATA to the folder holding cifar10/, isbi2012/, cicids2017/"
        )
    path = Path(env)
    if not path.is_dir():
        pytest.skip(f"real data not available: MIAMIND_DATA={env} is not a directory")
    return path


@pytest.fixture(scope="session")
def shared_cache_dir(tmp_path_factory) -> Path:
    """A cache shared by the real-data tests of one session, so a big decode happens once."""
    return tmp_path_factory.mktemp("shared_cache")
