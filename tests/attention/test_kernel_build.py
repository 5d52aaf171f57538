"""Where a C++ compiler exists, the kernel builds: its tests skip only where it cannot, never because
its source stopped compiling."""

from __future__ import annotations

import os
import shutil
import warnings

import pytest

from miamind.attention.kernel import kernel


def test_the_kernel_builds_where_there_is_a_compiler():
    if os.environ.get("MIAMIND_KERNEL", "1") == "0":
        pytest.skip("MIAMIND_KERNEL=0 turns the kernel off")
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        pytest.skip(f"no C++ compiler ({compiler})")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the build's failure warning becomes the error that fails this
        assert kernel() is not None
