"""A pytest plugin: in CI (``CI=true``), a skipped real-network test fails the run.

Tests that need the real network (network namespaces, nftables, IPv6 loopback) carry the
``real_network`` marker and skip, with the reason, where the machine cannot run them. On a
developer's machine that is fine; in CI it would let a green run hide that the real-network
suite never ran. So when ``CI`` is ``true`` this plugin turns such a skip into a failure
that keeps the reason (``.ci/run`` installs iproute2 and nftables first, and fails loudly
if it cannot). Loaded by ``tests/conftest.py``.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

__all__ = ["in_ci"]


def in_ci() -> bool:
    """Whether the suite runs in CI (``CI=true``, as .ci/run sets)."""
    return os.environ.get("CI", "").lower() == "true"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "real_network: needs the real network (netns, nftables, IPv6 loopback); "
        "skipped where unavailable, a failure in CI (CI=true)",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[Any]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not (report.skipped and in_ci() and item.get_closest_marker("real_network")):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"CI=true and the real-network test {item.nodeid} was skipped: {reason}. "
        "In CI the real-network suite must run: install iproute2 and nftables and run as "
        "root (.ci/run does), and give the machine an IPv6 loopback (::1)."
    )
