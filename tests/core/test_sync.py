"""Tests of full-state sync: join, push-pull merge rules, reaping and reconnect.

Streams are run by hand: the requester's ``StreamRequest`` payload is given to the other
engine's ``receive_stream`` and its ``StreamReply`` back to ``stream_reply``; timers are
fired explicitly in time order.
"""

from __future__ import annotations

import pytest
from wire import MAX_TIMERS_PER_RUN, Wire, address_of, make_engine, messages_in, of_type

from swimgossip.core.codec import decode_stream, encode_packet, encode_stream
from swimgossip.core.config import Config
from swimgossip.core.engine import Engine
from swimgossip.core.errors import NotRunning
from swimgossip.core.events import (
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberSuspected,
)
from swimgossip.core.inputs import StreamFailure
from swimgossip.core.member import Member, Status
from swimgossip.core.messages import Ack, Alive, Dead, Left, MemberSync, Ping, PushPull, Suspect
from swimgossip.core.outputs import (
    JoinOutcome,
    LeaveComplete,
    Output,
    ScheduleTimer,
    StreamPurpose,
    StreamReply,
    StreamRequest,
)
from swimgossip.core.timers import GossipTick, PushPullTick, ReapTick, ReconnectTick, Timer

A, B, C = (address_of(name) for name in "abc")


def member(name: str, status: Status = Status.ALIVE, incarnation: int = 0, boot: int = 0) -> Member:
    return Member(
        name=name, address=address_of(name), status=status, incarnation=incarnation, boot=boot
    )


def push_pull(source: str, *members: Member) -> bytes:
    return encode_stream(PushPull(source=source, join=False, members=members))


def exchange(requester: Engine, request: StreamRequest, responder: Engine, now: float) -> tuple:
    """Run one stream exchange; return the responder's and the requester's outputs."""
    served = responder.receive_stream(request.payload, requester.address, 500, now)
    (reply,) = of_type(served, StreamReply)
    assert reply.token == 500
    return served, requester.stream_reply(request.token, reply.payload, now)


# ---------------------------------------------------------------- join


def test_join_exchanges_full_state_with_the_seed() -> None:
    a, b = make_engine("a", seed=1), make_engine("b", seed=2)
    a.start(0.0)
    b.start(0.0)
    (request,) = of_type(a.join([B], 1.0), StreamRequest)
    assert request.purpose is StreamPurpose.JOIN and request.address == B
    assert request.deadline == 1.0 + a.config.stream_timeout
    me_a, me_b = member("a", boot=a.boot), member("b", boot=b.boot)
    assert decode_stream(request.payload) == PushPull(source="a", join=True, members=(me_a,))

    served, joined = exchange(a, request, b, 1.1)
    (b_saw,) = of_type(served, MemberJoined)
    assert b_saw.member == me_a
    (reply,) = of_type(served, StreamReply)
    state = decode_stream(reply.payload)
    assert type(state) is PushPull and state.source == "b" and not state.join
    assert set(state.members) == {me_a, me_b}

    (a_saw,) = of_type(joined, MemberJoined)
    assert a_saw.member == me_b
    assert of_type(joined, JoinOutcome) == [JoinOutcome(address=B, ok=True)]
    assert a.members() == b.members() == [me_a, me_b]


def test_join_learns_the_seeds_whole_view() -> None:
    wire = Wire.converged("b", "c")
    a = make_engine("a")
    (request,) = of_type(a.join([B], 1.0), StreamRequest)
    _, joined = exchange(a, request, wire["b"], 1.1)
    assert sorted(e.member.name for e in of_type(joined, MemberJoined)) == ["b", "c"]
    assert [m.name for m in a.members()] == ["a", "b", "c"]


def test_a_joined_node_gossips_its_own_arrival_to_the_members_it_learned() -> None:
    wire = Wire.converged("b", "c")
    a = make_engine("a")
    a.start(0.0)
    assert not a.gossip_queue_depth  # alone: nothing to tell anyone, and no gossip round armed
    (request,) = of_type(a.join([B], 1.0), StreamRequest)
    exchange(a, request, wire["b"], 1.1)
    # c hears of a from a itself, not only from b's gossip (which may miss members b
    # learns of later, as in a join storm).
    outputs = a.handle_timer(GossipTick(), 1.2)
    own = Alive(name="a", address=A, incarnation=0, meta=b"", boot=a.boot)
    assert own in messages_in(outputs, C) and own in messages_in(outputs, B)


def test_a_joined_node_exchanges_state_once_more_soon_after() -> None:
    wire = Wire.converged("b", "c")
    a = make_engine("a")
    a.start(0.0)
    requests = of_type(a.join([B, C], 1.0), StreamRequest)
    _, first = exchange(a, requests[0], wire["b"], 1.1)
    _, second = exchange(a, requests[1], wire["c"], 1.1)
    settles = [
        o for o in of_type(first + second, ScheduleTimer) if o.timer == PushPullTick(settle=True)
    ]
    assert len(settles) == 1  # one per engine, however many seeds answered
    (settle,) = settles
    assert 1.1 + 2.0 <= settle.at <= 1.1 + 4.0  # two to four probe periods later
    outputs = a.handle_timer(settle.timer, settle.at)
    (request,) = of_type(outputs, StreamRequest)
    assert request.purpose is StreamPurpose.PUSH_PULL and request.address in (B, C)
    # A one-off: the periodic push-pull chain is not doubled by it.
    assert [o for o in of_type(outputs, ScheduleTimer) if type(o.timer) is PushPullTick] == []


def test_join_with_several_seeds_gives_one_outcome_each() -> None:
    a = make_engine("a")
    requests = of_type(a.join([B, C], 1.0), StreamRequest)
    assert [r.address for r in requests] == [B, C]
    assert len({r.token for r in requests}) == 2
    first = a.stream_failed(requests[0].token, StreamFailure.REFUSED, 2.0)
    assert first == [
        JoinOutcome(address=B, ok=False, failure=StreamFailure.REFUSED, reason="connection refused")
    ]
    second = a.stream_reply(requests[1].token, push_pull("c", member("c")), 2.0)
    assert of_type(second, JoinOutcome) == [JoinOutcome(address=C, ok=True)]


def test_failed_join_stream_reports_the_reason_once() -> None:
    a = make_engine("a")
    (request,) = of_type(a.join([B], 1.0), StreamRequest)
    outputs = a.stream_failed(request.token, StreamFailure.TIMED_OUT, 11.0)
    assert outputs == [
        JoinOutcome(address=B, ok=False, failure=StreamFailure.TIMED_OUT, reason="timed out")
    ]
    assert a.stream_failed(request.token, StreamFailure.TIMED_OUT, 11.0) == []  # already settled
    assert a.stream_reply(request.token, push_pull("b", member("b")), 11.0) == []
    assert a.counters["stream_join_failed"] == 1


@pytest.mark.parametrize(
    ("reply", "failure", "reason"),
    [
        (b"\x01\xc1", StreamFailure.MALFORMED_REPLY, "malformed reply"),
        (encode_stream(Ack(seq=1)), StreamFailure.UNEXPECTED_REPLY, "unexpected reply"),
    ],
)
def test_bad_join_reply_is_a_failed_join(reply: bytes, failure: StreamFailure, reason: str) -> None:
    a = make_engine("a")
    (request,) = of_type(a.join([B], 1.0), StreamRequest)
    assert a.stream_reply(request.token, reply, 1.5) == [
        JoinOutcome(address=B, ok=False, failure=failure, reason=reason)
    ]
    assert [m.name for m in a.members()] == ["a"]


def test_join_reply_during_leave_keeps_our_left_queued() -> None:
    # A join reply that arrives between leave() and LeaveComplete must not announce us
    # alive again: the queue replaces by key, so an "alive" would overwrite our "left".
    names = "abcdef"
    wire = Wire.converged(*names)
    a = wire["a"]
    (request,) = of_type(a.join([address_of("x")], 1.0), StreamRequest)
    left = wire.absorb("a", a.leave(1.1))
    assert LeaveComplete() not in left  # five peers: the first round does not finish it
    state = push_pull("x", member("x"), *(member(n) for n in names))
    a.stream_reply(request.token, state, 1.2)
    assert a.leaving and a.local_member.status is Status.LEFT
    outputs = a.handle_timer(GossipTick(), 1.3)
    about_us = [m for m in messages_in(outputs) if getattr(m, "name", None) == "a"]
    assert about_us and all(m == Left(name="a", incarnation=0) for m in about_us)
    assert LeaveComplete() in outputs


def test_join_after_leave_raises() -> None:
    a = make_engine("a")
    a.leave(1.0)
    with pytest.raises(NotRunning):
        a.join([B], 2.0)


# ---------------------------------------------------------------- merge rules


def test_merged_suspicion_is_credited_to_its_originator_not_the_relay() -> None:
    wire = Wire.converged("a", "b", "c", "d")
    a = wire["a"]
    suspect_b = member("b", Status.SUSPECT)
    state = PushPull(
        source="c",
        join=False,
        members=(suspect_b, member("c"), member("d")),
        suspected_by=("d", "", ""),
    )
    outputs = a.receive_stream(encode_stream(state), C, 1, 1.0)
    (suspected,) = of_type(outputs, MemberSuspected)
    assert suspected.by == "d"
    # d's own gossip of the same suspicion is then no confirmation: it is the same evidence.
    later = a.receive(encode_packet([Suspect(name="b", incarnation=0, source="d")]), "d:1", 2.0)
    assert not any(type(o) is ScheduleTimer for o in later)


def test_a_state_with_misaligned_suspected_by_is_refused() -> None:
    state = PushPull(source="c", join=False, members=(member("b"),), suspected_by=("x", "y"))
    a = make_engine("a")
    assert a.receive_stream(encode_stream(state), C, 1, 1.0) == []
    assert a.counters["streams_malformed"] == 1


@pytest.mark.parametrize("status", [Status.DEAD, Status.SUSPECT])
def test_remote_dead_or_suspect_only_makes_us_suspect(status: Status) -> None:
    wire = Wire.converged("a", "b", "c")
    a = wire["a"]
    outputs = a.receive_stream(push_pull("c", member("b", status)), C, 1, 1.0)
    (suspected,) = of_type(outputs, MemberSuspected)
    # Without suspected_by in the state, the sender is credited with the suspicion.
    assert suspected.member.name == "b" and suspected.by == "c"
    assert of_type(outputs, MemberFailed) == []
    assert a.member("b").status is Status.SUSPECT


def test_remote_left_applies() -> None:
    wire = Wire.converged("a", "b", "c")
    a = wire["a"]
    outputs = a.receive_stream(push_pull("c", member("b", Status.LEFT)), C, 1, 1.0)
    (left,) = of_type(outputs, MemberLeft)
    assert left.member == member("b", Status.LEFT)
    assert a.member("b").status is Status.LEFT


def test_remote_state_older_than_ours_changes_nothing() -> None:
    wire = Wire.converged("a", "b", "c")
    a = wire["a"]
    a.receive_stream(push_pull("b", member("b", incarnation=2)), B, 1, 1.0)
    outputs = a.receive_stream(push_pull("c", member("b", Status.DEAD, 1)), C, 2, 2.0)
    assert [type(o) for o in outputs] == [StreamReply]
    assert a.member("b") == member("b", incarnation=2)


def test_remote_dead_about_a_stranger_is_not_adopted() -> None:
    a = make_engine("a")
    outputs = a.receive_stream(push_pull("c", member("z", Status.DEAD)), C, 1, 1.0)
    assert [type(o) for o in outputs] == [StreamReply]
    assert a.member("z") is None


@pytest.mark.parametrize("status", [Status.DEAD, Status.SUSPECT, Status.LEFT])
def test_remote_state_holding_us_gone_makes_us_refute(status: Status) -> None:
    wire = Wire.converged("a", "b")
    a = wire["a"]
    a.receive_stream(push_pull("b", member("a", status)), B, 1, 1.0)
    assert a.incarnation == 1 and a.local_member.status is Status.ALIVE
    assert a.counters["refutations"] == 1
    outputs = a.handle_timer(GossipTick(), 1.1)
    (alive,) = [m for m in messages_in(outputs) if type(m) is Alive]
    assert alive == Alive(name="a", address=A, incarnation=1, meta=b"")


def test_push_pull_reply_merges_like_a_request() -> None:
    wire = Wire.converged("a", "b")
    a = wire["a"]
    (request,) = of_type(wire.fire("a", PushPullTick(), 1.0), StreamRequest)
    reply = MemberSync(source="b", push=False, digest=bytes(8), members=(member("b"), member("c")))
    outputs = a.stream_reply(request.token, encode_stream(reply), 1.1)
    assert [e.member.name for e in of_type(outputs, MemberJoined)] == ["c"]
    assert of_type(outputs, JoinOutcome) == []


def test_stream_ping_for_us_is_acked_and_for_another_name_is_not() -> None:
    b = make_engine("b")
    (reply,) = b.receive_stream(encode_stream(Ping(seq=9, target="b")), A, 4, 1.0)
    assert reply == StreamReply(token=4, payload=encode_stream(Ack(seq=9)))
    assert b.receive_stream(encode_stream(Ping(seq=9, target="x")), A, 5, 1.0) == []
    assert b.counters["streams_unexpected"] == 1


# ---------------------------------------------------------------- push-pull tick


def test_push_pull_tick_syncs_with_an_alive_member() -> None:
    wire = Wire.converged("a", "b", "c")
    a = wire["a"]
    a.receive_stream(push_pull("b", member("c", Status.LEFT)), B, 1, 0.5)
    for step in range(5):
        outputs = wire.fire("a", PushPullTick(), 1.0 + step)
        (request,) = of_type(outputs, StreamRequest)
        assert request.purpose is StreamPurpose.PUSH_PULL and request.address == B
        state = decode_stream(request.payload)
        assert type(state) is MemberSync and state.source == "a" and not state.push
        assert state.digest == a._membership.table.digest.folded(1) and state.members == ()
        assert ScheduleTimer(at=1.0 + step + 30.0, timer=PushPullTick()) in outputs


def test_push_pull_tick_alone_or_after_leave_sends_nothing() -> None:
    a = make_engine("a")
    assert of_type(a.handle_timer(PushPullTick(), 1.0), StreamRequest) == []
    wire = Wire.converged("a", "b")
    wire["a"].leave(1.0)
    assert wire.fire("a", PushPullTick(), 2.0) == []


# ---------------------------------------------------------------- reaping and reconnect


class TimerChains:
    """Follow an engine's ``ReapTick`` and ``ReconnectTick`` chains in time order."""

    def __init__(self, engine: Engine, started: list[Output]) -> None:
        self.engine = engine
        self.pending: list[tuple[float, int, Timer]] = []
        self.order = 0
        self.absorb(started)

    def absorb(self, outputs: list[Output]) -> list[Output]:
        """Follow the upkeep timers among ``outputs`` (the engine arms them on demand)."""
        for output in of_type(outputs, ScheduleTimer):
            if type(output.timer) in (ReapTick, ReconnectTick):
                self.order += 1
                self.pending.append((output.at, self.order, output.timer))
        return outputs

    def run(self, end: float) -> list[tuple[float, Output]]:
        """Fire every chained timer due by ``end``; return each output with its time."""
        produced: list[tuple[float, Output]] = []
        for _ in range(MAX_TIMERS_PER_RUN):
            self.pending.sort()
            if not self.pending or self.pending[0][0] > end:
                return produced
            at, _, timer = self.pending.pop(0)
            for output in self.absorb(self.engine.handle_timer(timer, at)):
                produced.append((at, output))
        raise AssertionError(f"run({end}): {MAX_TIMERS_PER_RUN} timers fired before the end")


def failed_b(config: Config) -> tuple[Engine, TimerChains]:
    """Engine a, started at 0, that hears at t=10 that b was declared dead (at an
    incarnation newer than a holds: a verdict about a member a holds live at the same
    incarnation is only a suspicion to a)."""
    wire = Wire.converged("a", "b", config=config)
    a = wire["a"]
    chains = TimerChains(a, a.start(0.0))
    assert of_type([o for _, o in chains.run(10.0)], StreamRequest) == []
    dead = Dead(name="b", incarnation=1, source="c")
    (failed,) = of_type(chains.absorb(a.receive(encode_packet([dead]), C, 10.0)), MemberFailed)
    assert failed.by == "c" and failed.confirmations == 0
    return a, chains


def test_dead_member_is_reaped_after_reap_timeout_and_may_join_again() -> None:
    config = Config.local()  # reap_timeout 120 s, reap tick every 1.25 s
    a, chains = failed_b(config)
    chains.run(10.0 + 119.0)
    assert a.member("b").status is Status.DEAD
    chains.run(10.0 + 122.0)
    assert a.member("b") is None
    assert [m.name for m in a.members()] == ["a"]
    assert a.counters["members_reaped"] == 1

    alive = Alive(name="b", address=B, incarnation=0, meta=b"")
    (joined,) = of_type(a.receive(encode_packet([alive]), B, 200.0), MemberJoined)
    assert joined.member == member("b")


def test_left_member_is_reaped_too_but_never_reconnected() -> None:
    config = Config.local()
    wire = Wire.converged("a", "b", config=config)
    a = wire["a"]
    chains = TimerChains(a, a.start(0.0))
    chains.run(10.0)
    chains.absorb(a.receive_stream(push_pull("b", member("b", Status.LEFT)), B, 1, 10.0))
    produced = chains.run(200.0)
    assert a.member("b") is None
    assert of_type([o for _, o in produced], StreamRequest) == []


def test_failed_member_is_retried_until_reconnect_timeout() -> None:
    config = Config.local(reconnect_timeout=60.0)  # retry every 5 s, reap tick 1.25 s
    _, chains = failed_b(config)
    produced = chains.run(200.0)
    retries = [(at, o) for at, o in produced if type(o) is StreamRequest]
    assert retries
    for _, request in retries:
        assert request.purpose is StreamPurpose.RECONNECT and request.address == B
        state = decode_stream(request.payload)
        assert type(state) is PushPull and state.source == "a" and not state.join
    times = [at for at, _ in retries]
    assert min(times) > 10.0
    # Forgotten once reconnect_timeout passed (at the granularity of the reap tick).
    assert max(times) <= 10.0 + 60.0 + 1.25
    assert len(retries) >= 60 // 5 - 1


def test_reconnect_stops_once_the_member_is_back() -> None:
    config = Config.local()
    a, _ = failed_b(config)
    (request,) = of_type(a.handle_timer(ReconnectTick(), 15.0), StreamRequest)
    assert request.purpose is StreamPurpose.RECONNECT
    outputs = a.stream_reply(request.token, push_pull("b", member("b", incarnation=2)), 15.1)
    assert of_type(outputs, MemberJoined)[0].member.incarnation == 2
    assert of_type(a.handle_timer(ReconnectTick(), 20.0), StreamRequest) == []


def test_reconnect_reaches_a_failed_member_even_after_it_was_reaped() -> None:
    config = Config.local()  # reap after 120 s, reconnect for 3600 s
    a, chains = failed_b(config)
    chains.run(200.0)
    assert a.member("b") is None
    (request,) = of_type(a.handle_timer(ReconnectTick(), 201.0), StreamRequest)
    assert request.address == B
