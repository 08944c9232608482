"""The real thing: ``swimgossip agent`` processes, one per Linux network namespace.

One lab for the module (``netns_helpers.open_lab``: five namespaces on a bridge,
``10.213.0.1`` to ``.5``, nothing added to the host's namespace) runs five agents with the
local preset, all joined through ``n1``. Each test starts from a converged cluster (it
waits for every running agent to print every running agent alive), injects one fault and
asserts on the agents' JSON event lines only: ``kill -9``, a partition and random UDP
loss (nftables rules inside the namespaces), SIGSTOP / SIGCONT. Tests use whichever
agents are running, so they pass in any order; the kill test, last, leaves four.

Timings of ``Config.local()``: probe every 1 s (timeout 0.2 s), suspicion floor
``3 * max(1, log10 N)`` = 3 s for N = 5 and ceiling 6x, push-pull 15 s, reconnect 5 s. The
bounds below are a few times those, for a loaded CI machine; every wait is a poll with a
deadline, and the only sleeps are the fault schedules themselves.

Skipped (with the reason) unless root with ``ip`` and ``nft`` and namespaces allowed;
``.ci/run`` installs iproute2 and nftables.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from netns_helpers import Lab, open_lab, unavailable

SIZE = 5
#: Start five Python processes at once and let them join, on a slow machine.
JOIN_WITHIN = 60.0
#: Detection takes a probe round and the suspicion timeout (3 s floor, 18 s ceiling).
DETECT_WITHIN = 45.0
#: After a heal: reconnect (5 s) or push-pull (15 s), then refutations by gossip.
HEAL_WITHIN = 60.0

_why_not = unavailable()
pytestmark = [
    pytest.mark.real_network,
    pytest.mark.skipif(_why_not is not None, reason=f"real network: {_why_not}"),
]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """Five agents in five namespaces, shared by the module's tests."""
    with open_lab(SIZE) as lab:
        lab.start_cluster(JOIN_WITHIN, "--preset", "local")
        yield lab


@pytest.fixture
def members(lab: Lab) -> list[str]:
    """The running agents, once each sees exactly them alive (the test's starting point)."""
    lab.heal()
    lab.wait_converged(HEAL_WITHIN, "converged before the test")
    return lab.running()


def _assert_no_failed_verdict(lab: Lab, about: list[str], since: float) -> None:
    verdicts = lab.events("failed", about=about, since=since)
    assert verdicts == [], "failed verdicts about live members:\n" + "\n".join(
        str(v) for v in verdicts
    )


def test_agents_print_each_other_joined(lab: Lab) -> None:
    for observer in lab.names:
        for name in lab.names:
            joined = lab.agents[observer].expect_event("joined", name, 0)
            assert joined["address"] == lab.address(name) and joined["status"] == "alive"


def test_partition_2_3_each_side_fails_the_other_then_heals(lab: Lab, members: list[str]) -> None:
    since = time.time()
    left, right = members[:2], members[2:]
    lab.partition(left, right)

    def other_side_dead(observer: str, view: dict[str, str]) -> bool:
        others = right if observer in left else left
        return all(view.get(name) == "dead" for name in others)

    took = lab.wait_views(members, other_side_dead, DETECT_WITHIN, "each side sees the other dead")
    print(f"partition {left}|{right}: each side saw the other dead after {took:.1f} s")
    verdicts = {(v["observer"], v["member"]) for v in lab.events("failed", since=since)}
    crossing = {(a, b) for a in left for b in right} | {(b, a) for a in left for b in right}
    assert verdicts == crossing, "failed verdicts other than across the partition"
    assert lab.counters()["dropped"] > 0

    lab.heal()
    took = lab.wait_converged(HEAL_WITHIN, "one full view after the heal")
    print(f"healed: one full view after {took:.1f} s")


def test_20_percent_udp_loss_for_40_seconds_gives_no_false_failure(
    lab: Lab, members: list[str]
) -> None:
    since = time.time()
    lab.set_udp_loss(20)
    deadline = time.monotonic() + 40.0
    while time.monotonic() < deadline:
        time.sleep(1.0)
        assert lab.running() == members, "an agent exited under loss"
    counted = lab.counters()
    lab.heal()
    # A suspicion raised late in the window resolves now: refuted, or declared failed.
    lab.wait_converged(DETECT_WITHIN, "all alive after the loss")
    suspected = lab.events("suspected", since=since)
    print(f"20% loss: {counted} agent datagrams, {len(suspected)} suspected lines")
    _assert_no_failed_verdict(lab, members, since)
    # The rule really dropped about a fifth: 10% to 30% of some hundreds (5 sigma).
    assert counted["seen"] > 300, counted
    assert 0.1 < counted["dropped"] / counted["seen"] < 0.3, counted


def test_stalling_one_agent_3s_every_10s_gives_no_failed_verdict_about_the_others(
    lab: Lab, members: list[str]
) -> None:
    since = time.time()
    stalled = lab.agents[members[-1]]
    for _ in range(3):
        stalled.popen.send_signal(signal.SIGSTOP)
        try:
            time.sleep(3.0)
        finally:
            stalled.popen.send_signal(signal.SIGCONT)
        time.sleep(7.0)
    # The stalled agent itself: 3 s is the suspicion floor for N = 5, so it may have been
    # suspected and even declared failed; it must have refuted and be alive everywhere.
    lab.wait_converged(HEAL_WITHIN, "all alive after the stalls")
    about_stalled = [
        (v["observer"], v["event"])
        for event in ("suspected", "failed", "recovered")
        for v in lab.events(event, about=[stalled.member], since=since)
    ]
    print(f"stalls of {stalled.member}, what the others printed about it: {about_stalled}")
    _assert_no_failed_verdict(lab, members[:-1], since)


def test_survivors_report_a_kill_9(lab: Lab, members: list[str]) -> None:
    since = time.time()
    victim, survivors = members[-1], members[:-1]
    lab.agents[victim].popen.send_signal(signal.SIGKILL)
    took = lab.wait_views(
        survivors, lambda _, view: view.get(victim) == "dead", DETECT_WITHIN, f"{victim} dead"
    )
    print(f"kill -9 {victim}: every survivor printed it failed after {took:.1f} s")
    observers = {v["observer"] for v in lab.events("failed", about=[victim], since=since)}
    assert observers == set(survivors)
    _assert_no_failed_verdict(lab, survivors, since)
