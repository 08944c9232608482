"""Tests of member state (``core/_state.py``): versions, deltas, tombstones, limits, the
digest-first exchange, restarts, and convergence in the simulator.

Everything is sans-IO with explicit ``now``: two engines that know each other from an
installed view, datagrams and streams handed over by hand.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire import address_of, messages_in, of_type

from swimgossip.core.codec import decode_stream, encode_packet
from swimgossip.core.config import Config
from swimgossip.core.engine import Engine
from swimgossip.core.errors import NotRunning, StateLimitExceeded
from swimgossip.core.events import StateChanged
from swimgossip.core.member import Member, Status
from swimgossip.core.messages import Ack, Ping, StateDelta, StateSync
from swimgossip.core.outputs import StreamPurpose, StreamReply, StreamRequest
from swimgossip.core.timers import ProbeTick, StateReapTick, StateSyncTick
from swimgossip.testing.simulator import Simulation

EPOCH = 1_700_000_000_000_000  # a wall clock in microseconds


def engine(name: str, config: Config | None = None, epoch: int = EPOCH) -> Engine:
    return Engine(
        name=name,
        address=address_of(name),
        config=config or Config.lan(),
        rng=random.Random(name),
        state_epoch=epoch,
    )


def pair(config: Config | None = None) -> tuple[Engine, Engine]:
    """Two started engines that hold each other alive."""
    a, b = engine("a", config), engine("b", config)
    view = {
        e.name: Member(name=e.name, address=e.address, status=Status.ALIVE, incarnation=0)
        for e in (a, b)
    }
    for e in (a, b):
        e.install_view(view, [n for n in view if n != e.name])
        e.start(0.0)
    return a, b


def deltas_in(outputs: list) -> list[StateDelta]:  # type: ignore[type-arg]
    return [m for m in messages_in(outputs) if type(m) is StateDelta]


def exchange(a: Engine, b: Engine, now: float) -> tuple[StateSync, StateSync | None]:
    """Run a's state exchange with b to the end; returns b's reply and a's push (if any)."""
    out = a.handle_timer(StateSyncTick(), now)
    (request,) = [r for r in of_type(out, StreamRequest) if r.purpose is StreamPurpose.STATE]
    served = b.receive_stream(request.payload, a.address, 900, now)
    (reply,) = of_type(served, StreamReply)
    answer = decode_stream(reply.payload)
    assert type(answer) is StateSync
    after = a.stream_reply(request.token, reply.payload, now)
    pushes = [r for r in of_type(after, StreamRequest) if r.purpose is StreamPurpose.STATE]
    if not pushes:
        return answer, None
    (push,) = pushes
    acked = b.receive_stream(push.payload, a.address, 901, now)
    (ack,) = of_type(acked, StreamReply)
    assert decode_stream(ack.payload) == Ack(seq=0)
    a.stream_reply(push.token, ack.payload, now)
    message = decode_stream(push.payload)
    assert type(message) is StateSync
    return answer, message


def test_writes_get_rising_versions_events_in_order_and_a_gossiped_delta() -> None:
    a, _ = pair()
    out = a.set_state("role", b"db", 1.0)
    (event,) = of_type(out, StateChanged)
    assert event.member == "a" and event.key == "role" and event.value == b"db"
    assert event.version > EPOCH  # above the floor the driver passed
    second = of_type(a.set_state("role", b"cache", 1.0), StateChanged)[0]
    assert second.version == event.version + 1  # same instant: the counter, +1
    assert second.seq == event.seq + 1
    later = of_type(a.set_state("role", b"web", 2.0), StateChanged)[0]
    assert later.version >= EPOCH + 2_000_000  # follows the clock (hybrid logical clock)
    assert a.state("a") == {"role": b"web"}
    assert a.state_version("a") == later.version
    sent = deltas_in(a.handle_timer(_gossip(), 2.1))
    assert sent == [
        StateDelta(owner="a", key="role", version=later.version, value=b"web", deleted=False)
    ]


def _gossip():  # type: ignore[no-untyped-def]
    from swimgossip.core.timers import GossipTick

    return GossipTick()


def test_a_delta_is_applied_once_and_an_older_one_is_ignored() -> None:
    a, b = pair()
    new = StateDelta(owner="a", key="k", version=EPOCH + 5, value=b"new", deleted=False)
    old = StateDelta(owner="a", key="k", version=EPOCH + 4, value=b"old", deleted=False)
    out = b.receive(encode_packet([new]), a.address, 1.0)
    assert of_type(out, StateChanged) == [
        StateChanged(member="a", key="k", value=b"new", version=EPOCH + 5, seq=2)
    ]
    assert of_type(b.receive(encode_packet([old, new]), a.address, 1.0), StateChanged) == []
    assert b.state("a") == {"k": b"new"}
    assert b.counters["state_duplicates"] == 2


def test_delete_is_a_tombstone_reaped_only_after_the_grace() -> None:
    config = Config.lan(state_tombstone_grace=100.0)
    a, b = pair(config)
    a.set_state("k", b"v", 1.0)
    out = a.delete_state("k", 2.0)
    (event,) = of_type(out, StateChanged)
    assert event.value is None
    assert a.state("a") == {}
    assert a.delete_state("k", 3.0) == []  # nothing held: nothing happens
    b.receive(encode_packet(deltas_in(a.handle_timer(_gossip(), 2.1))), a.address, 2.2)
    assert b.state("a") == {}
    assert b.counters["state_applied"] == 1  # the tombstone (the set was replaced unsent)
    # Before the grace the tombstone stays (an old value arriving late stays refused).
    late = StateDelta(owner="a", key="k", version=event.version - 1, value=b"v", deleted=False)
    b.handle_timer(StateReapTick(), 100.0)
    b.receive(encode_packet([late]), a.address, 100.0)
    assert b.state("a") == {}
    b.handle_timer(StateReapTick(), 102.3)
    assert b.counters["state_tombstones_reaped"] == 1


def test_local_limits_raise_typed_errors_and_change_nothing() -> None:
    config = Config.lan(
        state_value_max=10, state_keys_max=2, state_bytes_max=15, state_tombstones_max=1
    )
    a, _ = pair(config)
    with pytest.raises(StateLimitExceeded) as too_big:
        a.set_state("k", bytes(11), 1.0)
    assert too_big.value.limit == "state_value_max"
    a.set_state("k1", bytes(10), 1.0)
    with pytest.raises(StateLimitExceeded) as too_many_bytes:
        a.set_state("k2", bytes(6), 1.0)
    assert too_many_bytes.value.limit == "state_bytes_max"
    a.set_state("k2", bytes(5), 1.0)
    with pytest.raises(StateLimitExceeded) as too_many_keys:
        a.set_state("k3", b"", 1.0)
    assert too_many_keys.value.limit == "state_keys_max"
    a.delete_state("k1", 1.0)
    with pytest.raises(StateLimitExceeded) as tombstones:
        a.delete_state("k2", 1.0)
    assert tombstones.value.limit == "state_tombstones_max"
    assert a.state("a") == {"k2": bytes(5)}
    with pytest.raises(ValueError):
        a.set_state("", b"", 1.0)
    with pytest.raises(TypeError):
        a.set_state("k2", "text", 1.0)  # type: ignore[arg-type]


def test_remote_deltas_over_the_limits_are_counted_and_dropped() -> None:
    config = Config.lan(state_value_max=10, state_keys_max=2, state_bytes_max=15)
    _, b = pair(config)
    deltas = [
        StateDelta(owner="a", key="big", version=EPOCH + 1, value=bytes(11), deleted=False),
        StateDelta(owner="a", key="k1", version=EPOCH + 2, value=bytes(10), deleted=False),
        StateDelta(owner="a", key="k2", version=EPOCH + 3, value=bytes(6), deleted=False),
        StateDelta(owner="a", key="k3", version=EPOCH + 4, value=b"", deleted=False),
        StateDelta(owner="a", key="k4", version=EPOCH + 5, value=b"", deleted=False),
        StateDelta(owner="zz", key="k", version=EPOCH + 6, value=b"", deleted=False),
    ]
    b.receive(encode_packet(deltas), address_of("a"), 1.0)
    assert b.state("a") == {"k1": bytes(10), "k3": b""}
    assert b.counters["state_refused"] == 3
    assert b.counters["state_unknown_owner"] == 1
    assert b.state("zz") == {}


def test_the_exchange_moves_missing_deltas_then_only_digests() -> None:
    a, b = pair()
    for i in range(20):
        a.set_state(f"a{i}", b"x" * 50, 1.0)
        b.set_state(f"b{i}", b"y" * 50, 1.0)
    answer, push = exchange(a, b, 2.0)
    assert len(answer.deltas) == 20 and {d.owner for d in answer.deltas} == {"b"}
    assert push is not None and len(push.deltas) == 20
    assert a.state("b") == b.state("b") and b.state("a") == a.state("a")
    # Converged: the next exchanges carry digests, no value, and no push.
    for now in (3.0, 4.0):
        answer, push = exchange(a, b, now)
        assert answer.deltas == () and push is None
        assert dict(zip(answer.owners, answer.versions, strict=True)) == b.state_digest()
    # b's first exchange leaves b out of its digest (a restart check): its own keys come
    # back, as duplicates; then digests only.
    answer, push = exchange(b, a, 5.0)
    assert {d.owner for d in answer.deltas} == {"b"} and push is None
    assert b.counters["state_superseded"] == 0
    answer, push = exchange(b, a, 6.0)
    assert answer.deltas == () and push is None


def test_deltas_heard_by_gossip_do_not_hide_a_lost_one_from_the_exchange() -> None:
    a, b = pair()
    lost = of_type(a.set_state("lost", b"1", 1.0), StateChanged)[0]
    a.set_state("heard", b"2", 1.0)
    heard = StateDelta(owner="a", key="heard", version=lost.version + 1, value=b"2", deleted=False)
    b.receive(encode_packet([heard]), a.address, 1.0)  # "lost" never arrives
    answer, _ = exchange(b, a, 2.0)
    assert [d.key for d in answer.deltas] == ["lost", "heard"]
    assert b.state("a") == {"heard": b"2", "lost": b"1"}


def test_a_restarted_member_does_not_reuse_versions() -> None:
    a, b = pair()
    first = of_type(a.set_state("k", b"old", 1.0), StateChanged)[0]
    for _ in range(1000):  # many writes in one instant push the counter ahead of the clock
        a.set_state("k", b"old", 1.0)
    b.receive(encode_packet(deltas_in(a.handle_timer(_gossip(), 1.1))), a.address, 1.2)
    held = b.state_version("a")
    assert held == first.version + 1000
    # The restart: a new engine, its floor the wall clock 0.5 ms later (fewer
    # microseconds than writes), learns its old version from b and writes above it.
    again = engine("a", epoch=EPOCH + 500)
    view = {
        n: Member(name=n, address=address_of(n), status=Status.ALIVE, incarnation=0) for n in "ab"
    }
    again.install_view(view, ["b"])
    again.start(0.0)
    exchange(again, b, 0.5)
    new = of_type(again.set_state("k", b"new", 0.5), StateChanged)[0]
    assert new.version > held
    b.receive(encode_packet(deltas_in(again.handle_timer(_gossip(), 0.6))), again.address, 0.7)
    assert b.state("a") == {"k": b"new"}


def test_a_restarted_member_supersedes_the_keys_of_its_previous_run() -> None:
    a, b = pair()
    a.set_state("kept", b"1", 1.0)
    a.set_state("dropped", b"2", 1.0)
    a.set_state("gone", b"3", 1.0)
    a.delete_state("gone", 1.0)
    exchange(b, a, 2.0)
    assert b.state("a") == {"kept": b"1", "dropped": b"2"}
    # The new run writes "kept" only, before its first exchange.
    again = engine("a", epoch=EPOCH + 10_000_000)
    view = {
        n: Member(name=n, address=address_of(n), status=Status.ALIVE, incarnation=0) for n in "ab"
    }
    again.install_view(view, ["b"])
    again.start(0.0)
    again.set_state("kept", b"new", 0.1)
    answer, push = exchange(again, b, 0.5)  # our name left out of the digest: b sends ours
    assert {d.key for d in answer.deltas if d.owner == "a"} == {"kept", "dropped", "gone"}
    assert again.counters["state_superseded"] == 1  # "dropped"; "kept" is newer, "gone" gone
    assert again.state("a") == {"kept": b"new"}
    assert push is not None and {d.key for d in push.deltas} == {"kept", "dropped"}
    assert b.state("a") == again.state("a") == {"kept": b"new"}
    answer, push = exchange(again, b, 1.0)  # from now on, digests only
    assert answer.deltas == () and push is None


def test_no_state_changes_after_leave() -> None:
    a, _ = pair()
    a.leave(1.0)
    with pytest.raises(NotRunning):
        a.set_state("k", b"v", 1.0)


@settings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(0, 3))
def test_any_order_duplication_and_loss_of_deltas_converges_after_an_exchange(
    shuffle: random.Random, copies: int
) -> None:
    a, b = pair()
    sent: list[StateDelta] = []
    for i in range(12):
        out = (
            a.set_state(f"k{i % 5}", bytes([i]), float(i))
            if i % 4
            else a.delete_state(f"k{(i // 4) % 5}", float(i))
        )
        sent += [
            StateDelta(
                owner="a",
                key=e.key,
                version=e.version,
                value=e.value or b"",
                deleted=e.value is None,
            )
            for e in of_type(out, StateChanged)
        ]
    arriving = [d for d in sent * (copies + 1) if shuffle.random() < 0.6]
    shuffle.shuffle(arriving)
    for delta in arriving:
        b.receive(encode_packet([delta]), a.address, 20.0)
    exchange(b, a, 21.0)
    assert b.state("a") == a.state("a")
    assert b.state_version("a") == a.state_version("a")


@pytest.mark.parametrize("seed", [1, 2])
def test_state_converges_in_the_simulator_under_loss(seed: int) -> None:
    sim = Simulation(config=Config.lan(), seed=seed)
    sim.add_cluster(12, prejoined=True)
    sim.run_for(1.0)
    sim.set_loss(0.2)
    for i, name in enumerate(sorted(sim.nodes)):
        sim.set_state(name, "role", f"r{i}".encode())
    sim.delete_state("n0", "role")
    sim.set_state("n1", "big", bytes(4000))  # over a datagram: the exchange carries it
    sim.run_for(60.0)
    expected = {name: sim.nodes[name].engine.state(name) for name in sim.nodes}
    assert expected["n0"] == {} and len(expected["n1"]["big"]) == 4000
    for node in sim.nodes.values():
        held = {name: node.engine.state(name) for name in sim.nodes}
        assert held == expected, f"seed {seed}: {node.name} differs"
    changed = [e for _, observer, e in sim.state_events if observer == "n5" and e.member == "n0"]
    assert [e.value for e in changed][-1] is None


@pytest.mark.parametrize("seed", [3, 4])
def test_a_partition_with_writes_on_both_sides_heals_to_the_newest_versions(seed: int) -> None:
    sim = Simulation(config=Config.lan(), seed=seed)
    sim.add_cluster(10, prejoined=True)
    names = sorted(sim.nodes)
    left, right = names[:5], names[5:]
    sim.run_for(1.0)
    for name in names:
        sim.set_state(name, "role", b"before")
        sim.set_state(name, "extra", b"x")
    sim.run_for(30.0)
    before = {name: sim.nodes[name].engine.state_version(name) for name in names}
    assert all(sim.nodes[r].engine.state_version(w) == before[w] for w in names for r in names)
    sim.partition(left, right)
    for name in names:  # both sides write while cut off from each other
        sim.set_state(name, "role", f"during {name}".encode())
    sim.delete_state(left[0], "extra")
    sim.delete_state(right[0], "extra")
    sim.run_for(30.0)
    # The cut held: each side has the other's old versions only.
    assert sim.nodes[right[1]].engine.state(left[0])["role"] == b"before"
    assert sim.nodes[left[1]].engine.state(right[0])["role"] == b"before"
    assert sim.nodes[left[1]].engine.state(left[2])["role"] == f"during {left[2]}".encode()
    sim.heal()
    sim.run_for(120.0)
    for writer in names:
        mine = sim.nodes[writer].engine.state(writer)
        assert mine["role"] == f"during {writer}".encode()
        assert ("extra" in mine) is (writer not in (left[0], right[0]))
        version = sim.nodes[writer].engine.state_version(writer)
        assert version > before[writer]
        for reader in names:
            held = sim.nodes[reader].engine
            assert held.state(writer) == mine, f"seed {seed}: {reader} holds old {writer}"
            assert held.state_version(writer) == version


def test_a_cluster_without_state_stops_its_exchanges_after_the_first() -> None:
    sim = Simulation(config=Config.lan(), seed=5)
    sim.add_cluster(12, prejoined=True)
    sim.run_for(30.0)  # every member's first exchange (the restart check) is done
    first = {name: node.engine.counters["state_exchanges"] for name, node in sim.nodes.items()}
    assert all(count >= 1 for count in first.values())
    assert all(node.engine.counters["state_sync_paused"] == 1 for node in sim.nodes.values())
    sim.run_for(120.0)
    for name, node in sim.nodes.items():
        assert node.engine.counters["state_exchanges"] == first[name], name
        assert node.engine.counters["state_sync_paused"] == 1, name


def test_members_that_hold_nothing_learn_state_written_later_by_the_exchange() -> None:
    # Every member has stopped its own exchanges (it holds nothing); then n1 writes a value
    # too large to gossip: only n1's exchanges (and then those of whoever holds it) carry it.
    sim = Simulation(config=Config.lan(), seed=6)
    sim.add_cluster(10, prejoined=True)
    sim.run_for(30.0)
    assert all(node.engine.counters["state_sync_paused"] == 1 for node in sim.nodes.values())
    sim.set_state("n1", "big", bytes(4000))
    sim.run_for(120.0)
    for node in sim.nodes.values():
        assert node.engine.state("n1") == {"big": bytes(4000)}, node.name
    # Holding state, every member exchanges again.
    assert all(node.engine.counters["state_exchanges"] >= 3 for node in sim.nodes.values())


@pytest.mark.parametrize("seed", [7, 8])
def test_state_crosses_a_healed_partition_to_a_side_that_holds_none(seed: int) -> None:
    sim = Simulation(config=Config.lan(), seed=seed)
    sim.add_cluster(10, prejoined=True)
    names = sorted(sim.nodes)
    left, right = names[:5], names[5:]
    sim.run_for(30.0)  # first exchanges done: no member holds state, none exchanges
    sim.partition(left, right)
    for name in left:
        sim.set_state(name, "role", f"left {name}".encode())
    sim.set_state(left[0], "big", bytes(4000))  # not gossiped: the exchange carries it
    sim.run_for(30.0)
    assert all(sim.nodes[r].engine.state(left[0]) == {} for r in right)
    sim.heal()
    sim.run_for(120.0)
    for writer in left:
        mine = sim.nodes[writer].engine.state(writer)
        for reader in names:
            assert sim.nodes[reader].engine.state(writer) == mine, f"{reader} lacks {writer}"


def test_a_late_joiner_learns_the_state_held_by_the_cluster() -> None:
    sim = Simulation(config=Config.lan(), seed=9)
    sim.add_cluster(8, prejoined=True)
    sim.run_for(1.0)
    for name in sorted(sim.nodes):
        sim.set_state(name, "role", name.encode())
    sim.set_state("n2", "big", bytes(4000))
    sim.run_for(30.0)
    joiner = sim.add_node("late", join=["n0"])
    sim.run_for(60.0)
    for name in [n for n in sim.nodes if n != "late"]:
        assert joiner.engine.state(name) == sim.nodes[name].engine.state(name), name


def test_state_exchanges_leave_the_probe_order_alone() -> None:
    # The exchange draws its partner from the probe cycle's population (``sample``), which
    # must neither advance nor reorder the cycle: with a state tick before every probe,
    # one pass still probes each member once, in order. (16 members: ``sample``'s path for
    # large populations; the heal-time tail of tests/test_partitions.py is not from here.)
    names = [chr(ord("a") + i) for i in range(16)]
    view = {
        n: Member(name=n, address=address_of(n), status=Status.ALIVE, incarnation=0) for n in names
    }
    me = engine("a")
    order = names[1:]
    random.Random(3).shuffle(order)
    me.install_view(view, list(order))
    me.start(0.0)
    probed = []
    for period in range(len(order)):
        now = 1.0 + period
        me.handle_timer(StateSyncTick(), now - 0.5)
        pings = of_type(messages_in(me.handle_timer(ProbeTick(), now)), Ping)
        probed += [ping.target for ping in pings]
    assert me.counters["state_exchanges"] == len(order)
    assert probed == order
