"""The nemesis soak (swimgossip.testing.nemesis) on a few seeds, bounded: two virtual
minutes of random partitions, one-way cuts, loss bursts, pauses and crash-restarts each,
then quiet. ``make soak`` runs the long version; a failure names its seed."""

from __future__ import annotations

import pytest

from swimgossip.testing.nemesis import nemesis_schedule, run_nemesis


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_invariants_hold_through_a_random_fault_schedule(
    seed: int, autojump_clock: object
) -> None:
    report = await run_nemesis(seed, duration=120.0)
    assert report.ok, f"seed={seed}: {report.violations}"
    assert sum(report.faults.values()) >= 3, report.faults
    assert report.quiet_missed <= report.quiet_expected // 10, report


def test_schedules_are_seeded_and_bounded() -> None:
    names = [f"n{i}" for i in range(6)]
    assert nemesis_schedule(names, seed=5, duration=120) == nemesis_schedule(
        names, seed=5, duration=120
    )
    assert nemesis_schedule(names, seed=5, duration=120) != nemesis_schedule(
        names, seed=6, duration=120
    )
    for start, fault in nemesis_schedule(names, seed=5, duration=120):
        assert 0 <= start < 120 and start + fault.duration <= 120
