"""How ./test.sh spreads the suite over its workers (tests/conftest.py: GROUPED)."""
from __future__ import annotations

import os

import pytest

from conftest import GROUPED


def test_grouped_modules_reach_pytest_xdist_as_groups(request):
    # A module in GROUPED shares an expensive module-scoped fixture (a Dask cluster, a browser, a
    # full render): split over two workers, each made its own. pytest 9.2 silently broke
    # --dist loadgroup (pytest-xdist#1386): requirements.txt keeps pytest below it.
    if os.environ.get("PYTEST_XDIST_WORKER") is None or request.config.getoption("dist", "no") != "no" \
            or not request.config.getvalue("loadgroup"):
        pytest.skip("not a --dist loadgroup worker (./test.sh runs one)")
    grouped = [item for item in request.session.items if item.path.name in GROUPED]
    if not grouped:
        pytest.skip("no grouped module in this run")
    assert all(item.nodeid.endswith(f"@{item.path.stem}") for item in grouped), \
        [item.nodeid for item in grouped if not item.nodeid.endswith(f"@{item.path.stem}")][:3]
