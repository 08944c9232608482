"""``StateChanged`` in the ordered event stream (issue 13): ``subscribe(state=True)`` on
nodes over the in-memory network in virtual time (``autojump_clock``).

Membership and state events share one ``seq`` and one order; a slow subscriber's
``EventsLost`` is followed by a snapshot that gives each member's keys after its
``MemberJoined``; no ``StateChanged`` is emitted for a member once it is reaped."""

from __future__ import annotations

import trio

from swimgossip import (
    Config,
    EventsLost,
    FullEvent,
    MemberFailed,
    MemberJoined,
    NodeEvent,
    StateChanged,
)
from swimgossip.core.codec import encode_packet
from swimgossip.core.messages import StateDelta
from swimgossip.testing import open_cluster

CONFIG = Config.local(state_sync_interval=0.5, reap_timeout=20.0, state_tombstone_grace=8.0)


def index_of(events: list[FullEvent], kind: type, member: str, key: str | None = None) -> int:
    """Where the first event of ``kind`` about ``member`` (and ``key``) is in ``events``."""
    for i, event in enumerate(events):
        if type(event) is not kind or isinstance(event, EventsLost):
            continue
        name = event.member if isinstance(event, StateChanged) else event.member.name
        if name == member and (key is None or getattr(event, "key", None) == key):
            return i
    raise AssertionError(f"no {kind.__name__} of {member} {key or ''} in {events}")


async def test_state_events_share_the_order_and_seq_of_membership_events(
    autojump_clock: object,
) -> None:
    async with open_cluster(2, seed=5, config=CONFIG) as cluster:
        n0 = cluster.node("n0")
        seen: list[FullEvent] = []
        plain: list[NodeEvent] = []
        with trio.fail_after(60):
            async with n0.subscribe(state=True) as events, n0.subscribe() as membership:
                await n0.set_state("role", b"seed")
                late = await cluster.start("late", join=[])
                await late.set_state("shards", b"1,4,7")  # written before it joins
                await late.join([n0.address])
                while n0.state("late") != {"shards": b"1,4,7"}:
                    seen.append(await events.receive())
                await late.update_meta(b"v2")
                await late.set_state("shards", b"2")
                while n0.state("late") != {"shards": b"2"} or not any(
                    type(e).__name__ == "MemberUpdated" for e in seen
                ):
                    seen.append(await events.receive())
                while membership.buffered:
                    plain.append(await membership.receive())
    assert index_of(seen, StateChanged, "n0", "role") == 0  # our own write, first
    joined = index_of(seen, MemberJoined, "late")
    assert joined < index_of(seen, StateChanged, "late", "shards")
    seqs = [e.seq for e in seen if not isinstance(e, EventsLost)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and 0 not in seqs
    # The same counter: a membership-only subscriber sees the same seqs, minus the state.
    member_seqs = [e.seq for e in seen if not isinstance(e, StateChanged | EventsLost)]
    assert [e.seq for e in plain if not isinstance(e, EventsLost)] == member_seqs
    assert not any(isinstance(e, StateChanged) for e in plain)
    changes = [e for e in seen if isinstance(e, StateChanged) and e.member == "late"]
    assert [e.value for e in changes] == [b"1,4,7", b"2"]
    assert changes[0].version < changes[1].version == n0.state_version("late")


async def test_events_lost_is_followed_by_a_snapshot_with_state(autojump_clock: object) -> None:
    async with open_cluster(3, seed=6, config=CONFIG) as cluster:
        n0, n1 = cluster.node("n0"), cluster.node("n1")
        with trio.fail_after(60):
            async with (
                n0.subscribe(state=True, buffer=2) as slow,
                n0.subscribe(state=True) as events,
            ):
                for i in range(4):
                    await n1.set_state(f"k{i}", b"%d" % i)
                await n1.delete_state("k3")
                await n0.set_state("mine", b"x")
                while n0.state("n1") != {"k0": b"0", "k1": b"1", "k2": b"2"}:
                    await events.receive()
                lost = await slow.receive()
                snapshot = [await slow.receive() for _ in range(slow.buffered)]
            async with n0.subscribe(snapshot=True, state=True) as fresh:
                initial = [await fresh.receive() for _ in range(fresh.buffered)]
    assert (
        isinstance(lost, EventsLost) and lost.count >= 5
    )  # k3 set may be superseded by its delete
    expected: list[tuple[str, str, bytes | None]] = [
        ("joined", "n0", None),
        ("state", "mine", b"x"),
        ("joined", "n1", None),
        ("state", "k0", b"0"),
        ("state", "k1", b"1"),
        ("state", "k2", b"2"),  # k3 was deleted: not in a snapshot
        ("joined", "n2", None),
    ]

    def shape(events: list[FullEvent]) -> list[tuple[str, str, bytes | None]]:
        out: list[tuple[str, str, bytes | None]] = []
        for event in events:
            if isinstance(event, StateChanged):
                assert event.snapshot and event.seq == 0
                out.append(("state", event.key, event.value))
            else:
                assert isinstance(event, MemberJoined) and event.snapshot
                out.append(("joined", event.member.name, None))
        return out

    assert shape(snapshot) == expected
    assert shape(initial) == expected
    versions = {e.key: e.version for e in snapshot if isinstance(e, StateChanged)}
    assert max(v for k, v in versions.items() if k != "mine") < n0.state_version("n1")  # k3


async def test_no_state_event_for_a_member_after_it_is_reaped(autojump_clock: object) -> None:
    async with open_cluster(3, seed=7, config=CONFIG) as cluster:
        n0, n2 = cluster.node("n0"), cluster.node("n2")
        seen: list[FullEvent] = []
        with trio.fail_after(120):
            async with n0.subscribe(state=True) as events:
                await n2.set_state("role", b"doomed")
                while n0.state("n2") != {"role": b"doomed"}:
                    seen.append(await events.receive())
                await cluster.crash("n2")
                while not any(isinstance(e, MemberFailed) for e in seen):
                    seen.append(await events.receive())
                # Readable until it is reaped.
                assert n0.state("n2") == {"role": b"doomed"}
                await trio.sleep(CONFIG.reap_timeout + 5)  # virtual time: past the reap
                assert n0.member("n2") is None
                reaped_at = len(seen)
                while events.buffered:
                    seen.append(await events.receive())
                # A late delta of n2's (gossip still in flight elsewhere) is refused.
                before = n0.metrics().get("state_unknown_owner", 0)
                stray = cluster.network.transport("stray")
                late = StateDelta(
                    owner="n2", key="role", version=2**62, value=b"zombie", deleted=False
                )
                await stray.send_datagram(n0.address, encode_packet([late]))
                while n0.metrics().get("state_unknown_owner", 0) == before:
                    await trio.sleep(0.1)
                while events.buffered:
                    seen.append(await events.receive())
    assert n0.state("n2") == {}
    after = seen[reaped_at:]
    assert not any(isinstance(e, StateChanged) and e.member == "n2" for e in after), after


async def test_a_restarted_member_supersedes_its_old_keys_everywhere(
    autojump_clock: object,
) -> None:
    async with open_cluster(3, seed=8, config=CONFIG) as cluster:
        n0 = cluster.node("n0")
        seen: list[FullEvent] = []
        with trio.fail_after(120):
            async with n0.subscribe(state=True) as events:
                await cluster.node("n2").set_state("old", b"first run")
                while n0.state("n2") != {"old": b"first run"}:
                    seen.append(await events.receive())
                again = await cluster.restart("n2")
                await again.set_state("new", b"second run")
                while n0.state("n2") != {"new": b"second run"} or not any(
                    isinstance(e, MemberJoined) and e.restarted for e in seen
                ):
                    seen.append(await events.receive())
            assert cluster.node("n1").state("n2") == again.state("n2") == {"new": b"second run"}
    about_n2 = [(e.key, e.value) for e in seen if isinstance(e, StateChanged) and e.member == "n2"]
    assert about_n2[0] == ("old", b"first run")
    assert ("old", None) in about_n2 and ("new", b"second run") in about_n2
