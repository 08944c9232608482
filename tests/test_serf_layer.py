"""SerfLayer, Serf's rules sans I/O: Lamport clocks, intents (left, not failed), user
events (de-duplicated, too old, before the join), queries (acks, filters), relays,
push-pull state, transmit-limited broadcasts, and malformed input counted, not raised."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimgossip.core.member import Member, Status
from swimgossip.net.serf import (
    JoinIntent,
    LamportClock,
    LeaveIntent,
    Query,
    QueryFilter,
    QueryReceived,
    QueryResponse,
    Relay,
    SendTo,
    SerfLayer,
    SerfMemberStatus,
    SerfPushPull,
    UserEvent,
    UserEventReceived,
    decode_serf_message,
    decode_serf_push_pull,
    encode_filter,
    encode_serf_message,
    encode_serf_push_pull,
)
from swimgossip.net.serf.layer import _log10_ceil
from test_serf_messages import GO_EVENT, GO_PUSH_PULL, GO_QUERY

OVERHEAD = 3
ROOM = 1400


def member(name: str, status: Status = Status.ALIVE) -> Member:
    return Member(name=name, address="127.0.0.1:7946", status=status, incarnation=1)


def layer_with(*others: str, name: str = "py1") -> SerfLayer:
    layer = SerfLayer(name, tags={"role": "web"})
    for other in others:
        layer.notify_join(member(other))
    return layer


def sent(layer: SerfLayer) -> list[object]:
    return [decode_serf_message(p) for p in layer.get_broadcasts(OVERHEAD, ROOM)]


def test_lamport_clock_witness_moves_past_newer_times_only() -> None:
    clock = LamportClock()
    clock.witness(5)
    assert clock.time() == 6
    clock.witness(3)
    assert clock.time() == 6
    clock.witness(6)
    assert clock.time() == 7
    assert clock.increment() == 8


@pytest.mark.parametrize(("n", "expected"), [(1, 0), (2, 1), (10, 1), (11, 2), (100, 2), (101, 3)])
def test_log10_ceil_is_exact(n: int, expected: int) -> None:
    assert _log10_ceil(n) == expected


def test_join_broadcasts_a_join_intent_and_leave_a_later_leave_intent() -> None:
    layer = layer_with("go1")
    layer.join()
    assert sent(layer) == [JoinIntent(ltime=1, node="py1")]
    assert layer.clock.time() == 2
    layer.leave()
    assert not layer.leave_sent
    assert sent(layer) == [LeaveIntent(ltime=2, node="py1"), JoinIntent(ltime=1, node="py1")]
    assert layer.status_of("py1") is SerfMemberStatus.LEAVING
    for _ in range(10):
        layer.get_broadcasts(OVERHEAD, ROOM)
    assert layer.leave_sent


def test_a_leave_without_a_join_of_ours_still_beats_our_status_time() -> None:
    layer = layer_with("go1")  # the first node: the others joined us, we sent no join
    layer.leave()
    assert sent(layer) == [LeaveIntent(ltime=1, node="py1")]  # > 0, our time at the others
    assert layer.status_of("py1") is SerfMemberStatus.LEAVING


def test_leave_with_nobody_alive_is_sent_at_once() -> None:
    layer = layer_with()
    layer.leave()
    assert layer.leave_sent
    assert sent(layer) == []


def test_a_broadcast_is_sent_transmit_limit_times() -> None:
    layer = layer_with("go1", "go2")  # 3 members: 4 * ceil(log10(4)) = 4 transmits
    layer.join()
    counts = [len(layer.get_broadcasts(OVERHEAD, ROOM)) for _ in range(6)]
    assert counts == [1, 1, 1, 1, 0, 0]


def test_broadcasts_respect_the_byte_limit() -> None:
    layer = layer_with("go1")
    layer.user_event("a", b"x" * 100)
    layer.user_event("b", b"y" * 100)
    one = layer.get_broadcasts(OVERHEAD, 150)
    assert len(one) == 1
    assert decode_serf_message(one[0]).name == "b"  # type: ignore[union-attr]  # newest first


def test_a_leave_intent_makes_a_member_left_not_failed() -> None:
    layer = layer_with("go1", "go2")
    layer.notify_message(encode_serf_message(LeaveIntent(ltime=3, node="go1")))
    assert layer.status_of("go1") is SerfMemberStatus.LEAVING
    assert sent(layer) == [LeaveIntent(ltime=3, node="go1")]  # re-broadcast
    layer.notify_leave(member("go1", Status.DEAD))
    layer.notify_leave(member("go2", Status.DEAD))
    assert layer.status_of("go1") is SerfMemberStatus.LEFT
    assert layer.status_of("go2") is SerfMemberStatus.FAILED
    assert layer.clock.time() == 4


def test_an_old_intent_is_ignored_and_not_rebroadcast() -> None:
    layer = layer_with("go1")
    layer.notify_message(encode_serf_message(JoinIntent(ltime=5, node="go1")))
    layer.get_broadcasts(OVERHEAD, ROOM)
    layer.notify_message(encode_serf_message(LeaveIntent(ltime=5, node="go1")))
    assert layer.status_of("go1") is SerfMemberStatus.ALIVE
    assert all(
        decode_serf_message(p) != LeaveIntent(ltime=5, node="go1")
        for p in layer.get_broadcasts(OVERHEAD, ROOM)
    )


def test_a_later_join_intent_brings_a_leaving_member_back() -> None:
    layer = layer_with("go1")
    layer.notify_message(encode_serf_message(LeaveIntent(ltime=3, node="go1")))
    layer.notify_message(encode_serf_message(JoinIntent(ltime=4, node="go1")))
    assert layer.status_of("go1") is SerfMemberStatus.ALIVE


def test_a_left_member_that_comes_back_is_alive() -> None:
    layer = layer_with("go1")
    layer.notify_leave(member("go1", Status.LEFT))
    assert layer.status_of("go1") is SerfMemberStatus.LEFT
    layer.notify_join(member("go1"))
    assert layer.status_of("go1") is SerfMemberStatus.ALIVE


def test_an_intent_about_an_unknown_member_applies_when_it_joins() -> None:
    layer = layer_with()
    layer.notify_message(encode_serf_message(LeaveIntent(ltime=7, node="go9")))
    layer.notify_join(member("go9"))
    assert layer.status_of("go9") is SerfMemberStatus.LEAVING


def test_intents_about_unknown_members_are_bounded() -> None:
    layer = SerfLayer("py1", max_intents=3)
    for index in range(10):
        layer.notify_message(encode_serf_message(JoinIntent(ltime=1, node=f"n{index}")))
    assert len(layer._intents) == 3


def test_an_old_leave_of_ours_is_refuted_with_a_newer_join() -> None:
    layer = layer_with("go1")
    layer.notify_message(encode_serf_message(LeaveIntent(ltime=9, node="py1")))
    assert layer.status_of("py1") is SerfMemberStatus.ALIVE
    assert sent(layer) == [JoinIntent(ltime=10, node="py1")]


def test_a_user_event_is_delivered_once() -> None:
    layer = layer_with("go1")
    layer.notify_message(GO_EVENT)
    layer.notify_message(GO_EVENT)
    other = encode_serf_message(UserEvent(ltime=1, name="deploy", payload=b"v2"))
    layer.notify_message(other)
    assert layer.drain() == [
        UserEventReceived(ltime=1, name="deploy", payload=b"v1.2", coalesce=True),
        UserEventReceived(ltime=1, name="deploy", payload=b"v2"),
    ]
    assert len(layer.get_broadcasts(OVERHEAD, ROOM)) == 2
    assert layer.event_clock.time() == 2


def test_an_event_older_than_the_buffer_is_dropped() -> None:
    layer = SerfLayer("py1", event_buffer=4)
    layer.event_clock.witness(99)
    layer.notify_message(encode_serf_message(UserEvent(ltime=50, name="old")))
    layer.notify_message(encode_serf_message(UserEvent(ltime=97, name="new")))
    assert [e.name for e in layer.drain() if isinstance(e, UserEventReceived)] == ["new"]


def test_our_own_event_is_broadcast_not_delivered_and_not_taken_back() -> None:
    layer = layer_with("go1")
    layer.user_event("deploy", b"x")
    (raw,) = layer.get_broadcasts(OVERHEAD, ROOM)
    assert decode_serf_message(raw) == UserEvent(ltime=1, name="deploy", payload=b"x")
    layer.notify_message(raw)  # our own event gossiped back
    assert layer.drain() == []
    with pytest.raises(ValueError, match="9216"):
        layer.user_event("big", b"x" * 9300)


def test_the_join_push_pull_of_a_go_agent_sets_clocks_and_ignores_old_events() -> None:
    layer = layer_with("go1")
    state = SerfPushPull(
        ltime=5,
        status_ltimes=(("go1", 2), ("gone", 3)),
        left_members=("gone",),
        event_ltime=8,
        events=(),
        query_ltime=2,
    )
    old = encode_serf_push_pull(state)
    layer.begin_join()
    layer.merge_remote_state(old, True)
    assert (layer.clock.time(), layer.event_clock.time(), layer.query_clock.time()) == (5, 8, 2)
    layer.notify_message(encode_serf_message(UserEvent(ltime=6, name="before")))
    layer.join()
    layer.notify_message(encode_serf_message(UserEvent(ltime=8, name="after")))
    assert [e.name for e in layer.drain() if isinstance(e, UserEventReceived)] == ["after"]
    layer.notify_join(member("gone"))
    assert layer.status_of("gone") is SerfMemberStatus.LEAVING
    layer.merge_remote_state(GO_PUSH_PULL, False)
    assert layer.messages_dropped == 0


def test_a_peer_joining_us_does_not_hide_events_from_us() -> None:
    layer = layer_with("go1")  # not joining: a Go agent joins us
    layer.merge_remote_state(encode_serf_push_pull(SerfPushPull(ltime=1, event_ltime=9)), True)
    layer.notify_message(encode_serf_message(UserEvent(ltime=5, name="in-flight")))
    assert [e.name for e in layer.drain() if isinstance(e, UserEventReceived)] == ["in-flight"]


def test_push_pull_state_carries_what_another_layer_needs() -> None:
    a = layer_with("go1", name="a")
    a.notify_message(GO_EVENT)
    a.notify_message(encode_serf_message(LeaveIntent(ltime=4, node="go1")))
    a.notify_leave(member("go1", Status.DEAD))
    state = decode_serf_push_pull(a.local_state(False))
    assert state.left_members == ("go1",)
    assert dict(state.status_ltimes) == {"a": 0, "go1": 4}
    assert [e.events for e in state.events] == [(("deploy", b"v1.2"),)]
    b = SerfLayer("b", replay_old_events=True)
    b.merge_remote_state(a.local_state(False), True)
    assert b.drain() == [UserEventReceived(ltime=1, name="deploy", payload=b"v1.2")]


def test_a_query_asking_for_acks_is_acked_to_its_source_and_delivered() -> None:
    layer = layer_with("go1")
    layer.notify_message(GO_QUERY)
    ack, received = layer.drain()
    assert isinstance(ack, SendTo)
    assert ack.address == "127.0.0.1:53949"
    assert decode_serf_message(ack.payload) == QueryResponse(
        ltime=1, id=890413407, sender="py1", flags=1
    )
    assert isinstance(received, QueryReceived)
    reply = layer.respond(received.query, b"web-1")
    assert decode_serf_message(reply.payload) == QueryResponse(
        ltime=1, id=890413407, sender="py1", payload=b"web-1"
    )
    layer.notify_message(GO_QUERY)  # seen: no second ack, no re-broadcast
    assert layer.drain() == []
    assert len(layer.get_broadcasts(OVERHEAD, ROOM)) == 1


def query(**fields: object) -> bytes:
    base: dict[str, object] = dict(
        ltime=1, id=1, addr=b"\x7f\0\0\1", port=7946, source_node="go1", flags=1, name="q"
    )
    base.update(fields)
    return encode_serf_message(Query(**base))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("filters", "selected"),
    [
        ((QueryFilter(kind=0, nodes=("py1", "x")),), True),
        ((QueryFilter(kind=0, nodes=("x",)),), False),
        ((QueryFilter(kind=1, tag="role", expr="^web$"),), True),
        ((QueryFilter(kind=1, tag="role", expr="^w.*"),), True),
        ((QueryFilter(kind=1, tag="role", expr="db"),), False),
        ((QueryFilter(kind=1, tag="role", expr="(w+)+$"),), False),  # not run: backtracking
    ],
)
def test_query_filters_select_this_node_or_not(
    filters: tuple[QueryFilter, ...], selected: bool
) -> None:
    layer = layer_with("go1")
    layer.notify_message(query(filters=tuple(encode_filter(f) for f in filters)))
    assert bool(layer.drain()) is selected
    assert len(layer.get_broadcasts(OVERHEAD, ROOM)) == 1  # re-broadcast either way


def test_internal_queries_are_acked_not_delivered_and_no_broadcast_is_kept() -> None:
    layer = layer_with("go1")
    layer.notify_message(query(name="_serf_ping", flags=3))
    (ack,) = layer.drain()
    assert isinstance(ack, SendTo)
    assert layer.get_broadcasts(OVERHEAD, ROOM) == []


def test_only_query_responses_are_relayed() -> None:
    layer = layer_with("go1")
    inner = encode_serf_message(QueryResponse(ltime=1, id=2, sender="go2"))
    relay = Relay(
        dest_addr=bytes(10) + b"\xff\xff\x0a\0\0\1", dest_port=7, dest_name="go1", message=inner
    )
    layer.notify_message(encode_serf_message(relay))
    assert layer.drain() == [SendTo(address="10.0.0.1:7", payload=inner, node="go1")]
    event = encode_serf_message(UserEvent(ltime=1, name="x"))
    layer.notify_message(
        encode_serf_message(
            Relay(dest_addr=b"\x7f\0\0\1", dest_port=7, dest_name="go1", message=event)
        )
    )
    assert layer.drain() == []
    assert layer.messages_dropped == 1


def test_tags_are_the_meta() -> None:
    layer = SerfLayer("py1", tags={"role": "web"})
    assert layer.node_meta(512) == b"\xff\x81\xa4role\xa3web"
    assert layer.set_tags({"role": "db"}) == layer.node_meta(512) == b"\xff\x81\xa4role\xa2db"
    with pytest.raises(ValueError, match="512"):
        layer.set_tags({"k": "v" * 600})
    assert layer.tags == {"role": "db"}


@given(st.binary(max_size=120))
def test_malformed_input_is_counted_and_dropped_never_raised(data: bytes) -> None:
    layer = layer_with("go1")
    layer.notify_message(data)
    layer.merge_remote_state(data, False)
    assert layer.messages_in + layer.messages_dropped >= (1 if data else 0)
    assert layer.messages_dropped == 0 or layer.last_error is not None


def test_departed_members_are_bounded_oldest_forgotten() -> None:
    layer = SerfLayer("py1", max_departed=2)
    for name in ("a", "b", "c"):
        layer.notify_join(member(name))
        layer.notify_leave(member(name, Status.DEAD))
    assert [layer.status_of(n) for n in ("a", "b", "c")] == [
        SerfMemberStatus.NONE,
        SerfMemberStatus.FAILED,
        SerfMemberStatus.FAILED,
    ]
    layer.notify_join(member("b"))  # back: no longer departed
    layer.notify_join(member("d"))
    layer.notify_leave(member("d", Status.LEFT))
    assert layer.status_of("b") is SerfMemberStatus.ALIVE
    assert layer.status_of("d") is SerfMemberStatus.LEFT
    assert layer.status_of("c") is SerfMemberStatus.FAILED


@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_gossiped_events_reach_every_layer_exactly_once(seed: int, count: int) -> None:
    import random

    rng = random.Random(seed)
    names = [f"n{i}" for i in range(6)]
    layers = {name: SerfLayer(name) for name in names}
    for layer in layers.values():
        for other in names:
            if other != layer.name:
                layer.notify_join(member(other))
    for index in range(count):
        layers[names[index % 3]].user_event(f"e{index}", bytes([index]))
    received: dict[str, list[str]] = {name: [] for name in names}
    # Gossip rounds: each layer sends its broadcasts to every peer in a random order, and
    # again to a random one (a duplicate). Delivery to all is then certain (with 2 random
    # peers a message can die out within its retransmit limit: gossip alone is not
    # reliable, Serf repairs that by push-pull), so what is tested is the layer's own
    # rule: each event is handed up exactly once, whatever the order and duplicates.
    for _ in range(60):
        for name, layer in layers.items():
            payloads = layer.get_broadcasts(OVERHEAD, ROOM)
            peers = rng.sample([n for n in names if n != name], len(names) - 1)
            for peer in [*peers, rng.choice(peers)]:
                for payload in payloads:
                    layers[peer].notify_message(payload)
        for name, layer in layers.items():
            received[name] += [e.name for e in layer.drain() if isinstance(e, UserEventReceived)]
    for index in range(count):
        origin = names[index % 3]
        for name in names:
            assert received[name].count(f"e{index}") == (0 if name == origin else 1)
