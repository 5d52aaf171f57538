"""Shared fixtures. Real-data tests use ``real_data_dir`` and skip with a reason when it is absent."""

import os
from pathlib import Path

import pytest


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
