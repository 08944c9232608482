"""The CI guard (tests/ci_guard.py): with CI=true a skipped real-network test fails the
run with its reason; elsewhere it stays a skip; unmarked skips are never touched."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SUITE = """
import pytest

@pytest.mark.real_network
def test_needs_netns():
    pytest.skip("no nft: nftables is not installed")

def test_ordinary_skip():
    pytest.skip("not relevant here")
"""


@pytest.mark.parametrize(("ci", "failed", "skipped"), [("true", 1, 1), ("", 0, 2)])
def test_a_skipped_real_network_test_fails_only_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, failed: int, skipped: int
) -> None:
    monkeypatch.setenv("CI", ci)
    pytester.makeconftest('pytest_plugins = ["ci_guard"]')
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("-p", "no:trio", "-p", "no:swimgossip")
    result.assert_outcomes(failed=failed, skipped=skipped)
    if failed:
        result.stdout.fnmatch_lines(["*real-network test*skipped*no nft: nftables*"])
