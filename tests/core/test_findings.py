"""The protocol review's findings (issue 15), each reproduced against the sans-IO engine.

One section per finding: the nack timing (1), claims about members that are gone (2), two
live processes under one name (3, and the join refusal of issue 17), a stream ping refused
while the indirect path still works (4), gossip that cannot fit a datagram (5), the
reconnect horizon (6), and the side notes (the piggyback queue's cost per datagram, the
bounded memory of failed members). Every test is synchronous, seeded and explicit.
"""

from __future__ import annotations

import random

import pytest
from wire import Wire, address_of, make_engine, messages_in, of_type

from swimgossip.core.codec import encode_packet, encode_stream
from swimgossip.core.config import Config, check_member_name
from swimgossip.core.engine import Engine
from swimgossip.core.errors import ConfigError
from swimgossip.core.events import (
    MemberConflict,
    MemberFailed,
    MemberJoined,
    MemberRecovered,
    MemberSuspected,
    MemberUpdated,
)
from swimgossip.core.inputs import StreamFailure
from swimgossip.core.member import Member, Status
from swimgossip.core.messages import Ack, Alive, Dead, Left, PushPull, Suspect
from swimgossip.core.outputs import JoinOutcome, StreamReply, StreamRequest
from swimgossip.core.timers import GossipTick, ProbeDeadline, ProbeTick, ProbeTimeout

A, B, C, D = (address_of(name) for name in "abcd")
TWIN = "10.0.0.250:7946"


def alive(name: str, address: str, incarnation: int, meta: bytes = b"") -> bytes:
    return encode_packet([Alive(name=name, address=address, incarnation=incarnation, meta=meta)])


# ---------------------------------------------------------------- 1. nack timing


@pytest.mark.parametrize("preset", ["lan", "wan", "local", "fast"])
def test_relay_nacks_reach_the_prober_before_its_verdict(preset: str) -> None:
    """Every helper of a probe of a silent member nacks in time: a healthy prober whose
    helpers all answer keeps its health score at 0 (Lifeguard's nack signal)."""
    config = getattr(Config, preset)()
    wire = Wire.converged("a", "b", "c", "d", config=config)
    wire.fire("a", ProbeTick(), 0.0)
    silent = lambda datagram, now: datagram.address == B  # noqa: E731
    wire.run_until(config.probe_interval * 0.9999, drop=silent)
    assert wire["a"].counters["nacks_received"] == min(config.indirect_checks, 2)
    assert wire["a"].counters["probes_failed"] == 1
    assert wire["a"].health == 0
    assert wire["a"].member("b").status is Status.SUSPECT


def test_relay_timeout_leaves_room_for_the_nack_in_every_preset() -> None:
    for make in (Config.lan, Config.wan, Config.local, Config.fast):
        config = make()
        assert config.relay_timeout < config.probe_interval - config.probe_timeout
        assert config.relay_timeout <= config.probe_timeout


# ---------------------------------------------------------------- 2. gone members


@pytest.mark.parametrize(
    "gone", [Dead(name="b", incarnation=1, source="c"), Left(name="b", incarnation=0)]
)
def test_a_suspicion_never_revives_a_gone_member_and_its_return_is_a_join(gone: object) -> None:
    wire = Wire.converged("a", "b", "c")
    a = wire["a"]
    a.receive(encode_packet([gone]), C, 0.0)  # type: ignore[list-item]
    held = a.member("b").status
    out = a.receive(encode_packet([Suspect(name="b", incarnation=3, source="c")]), C, 1.0)
    assert a.member("b").status is held  # still gone: memberlist ignores such suspicions
    assert not of_type(out, MemberSuspected)
    out = a.receive(alive("b", B, 4), B, 2.0)
    assert of_type(out, MemberJoined) and not of_type(out, MemberRecovered)


def test_a_merged_remote_dead_does_not_revive_a_member_we_hold_dead() -> None:
    wire = Wire.converged("a", "b", "c")
    a = wire["a"]
    a.receive(encode_packet([Dead(name="b", incarnation=1, source="c")]), C, 0.0)
    remote = Member(name="b", address=B, status=Status.DEAD, incarnation=5)
    state = PushPull(source="c", join=False, members=(remote,), suspected_by=())
    a.receive_stream(encode_stream(state), C, 1, 1.0)
    assert a.member("b").status is Status.DEAD


def test_a_suspicion_of_a_member_we_hold_left_is_answered_with_the_left_claim() -> None:
    """A member that missed every gossiped copy of a "left" suspects the silent member;
    whoever sends it that suspicion and knows better answers it directly, so the member
    hears "left", not a failure (once per probe interval per address)."""
    wire = Wire.converged("a", "b", "c")
    a = wire["a"]
    a.receive(encode_packet([Left(name="b", incarnation=0)]), B, 0.0)
    wire.take()
    out = a.receive(encode_packet([Suspect(name="b", incarnation=0, source="c")]), C, 1.0)
    assert messages_in(out, C)[0] == Left(name="b", incarnation=0)
    out = a.receive(encode_packet([Suspect(name="b", incarnation=0, source="c")]), C, 1.5)
    assert messages_in(out, C) == []  # rate-limited
    assert a.counters["stale_claims_corrected"] == 1


# ---------------------------------------------------------------- 3. name conflicts


def twin_wire(config: Config | None = None) -> tuple[Wire, Engine]:
    """a, b, c converged, and a second process calling itself "b" at ``TWIN``."""
    wire = Wire.converged("a", "b", "c", config=config)
    twin = Engine(name="b", address=TWIN, config=config or Config.lan(), rng=random.Random(9))
    wire.engines["twin"] = twin
    wire.log["twin"] = []
    return wire, twin


def join_through(twin: Engine, seed: Engine, now: float) -> tuple[list, list]:
    """Run ``twin``'s join exchange with ``seed``; returns (seed outputs, twin outputs)."""
    (request,) = of_type(twin.join([seed.address], now), StreamRequest)
    seed_out = seed.receive_stream(request.payload, twin.address, 1, now)
    (reply,) = of_type(seed_out, StreamReply)
    return seed_out, twin.stream_reply(request.token, reply.payload, now)


def test_a_join_under_a_live_members_name_is_refused_and_says_so() -> None:
    wire, twin = twin_wire()
    seed_out, twin_out = join_through(twin, wire["a"], 1.0)
    (outcome,) = of_type(twin_out, JoinOutcome)
    assert not outcome.ok
    assert outcome.conflict is not None and outcome.conflict.address == B
    assert "name 'b' is held by a live member at " + B in outcome.reason
    # The seed keeps the live member and reports the conflict.
    assert wire["a"].member("b").address == B
    (conflict,) = of_type(seed_out, MemberConflict)
    assert conflict.member.address == B and conflict.address == TWIN
    assert wire["a"].counters["name_conflicts"] == 1
    # The refused joiner does not announce itself.
    assert twin.gossip_queue_depth == 0


def test_two_live_processes_under_one_name_fight_no_incarnation_war() -> None:
    wire, twin = twin_wire()
    a, b = wire["a"], wire["b"]
    events_at_a: list = []
    for step in range(20):
        now = 1.0 + step
        # The twin's claim reaches both the observer and the real b, and back.
        events_at_a += a.receive(alive("b", TWIN, twin.incarnation), TWIN, now)
        b.receive(alive("b", TWIN, twin.incarnation), TWIN, now)
        twin.receive(alive("b", B, b.incarnation), B, now)
    assert b.incarnation == 0 and twin.incarnation == 0
    assert b.health == 0 and twin.health == 0
    assert a.member("b").address == B
    assert not of_type(events_at_a, MemberUpdated)
    assert len(of_type(events_at_a, MemberConflict)) == 1  # once per conflicting claim
    assert a.counters["name_conflicts"] == 20
    assert b.counters["name_conflicts"] == 20 and b.counters["refutations"] == 0


def test_the_name_of_a_left_or_long_dead_member_can_be_taken_at_a_new_address() -> None:
    config = Config.lan(dead_reclaim_time=10.0)
    wire, _twin = twin_wire(config)
    a = wire["a"]
    a.receive(encode_packet([Dead(name="b", incarnation=1, source="c")]), C, 0.0)
    # Dead for less than the reclaim time: still refused.
    out = a.receive(alive("b", TWIN, 2), TWIN, 5.0)
    assert of_type(out, MemberConflict) and a.member("b").address == B
    out = a.receive(alive("b", TWIN, 2), TWIN, 10.0)
    (joined,) = of_type(out, MemberJoined)
    assert joined.member.address == TWIN
    a.receive(encode_packet([Left(name="c", incarnation=0)]), C, 11.0)
    out = a.receive(alive("c", "10.0.0.251:7946", 1), TWIN, 11.0)
    assert of_type(out, MemberJoined)


def test_a_suspect_coming_back_at_a_new_address_is_a_conflict_not_a_recovery() -> None:
    wire = Wire.converged("a", "b", "c")
    a = wire["a"]
    a.receive(encode_packet([Suspect(name="b", incarnation=0, source="c")]), C, 0.0)
    out = a.receive(alive("b", TWIN, 1), TWIN, 1.0)
    assert not of_type(out, MemberRecovered) and of_type(out, MemberConflict)
    assert a.member("b").status is Status.SUSPECT and a.member("b").address == B
    out = a.receive(alive("b", B, 1), B, 1.5)  # the real b refutes from its own address
    assert of_type(out, MemberRecovered)


@pytest.mark.parametrize("name", ["", "x" * 257, "tab\there", "new\nline", "\x00"])
def test_invalid_member_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="name"):
        check_member_name(name)
    with pytest.raises(ValueError, match="name"):
        Engine(name=name, address=A, config=Config.lan(), rng=random.Random(0))


def test_valid_member_names_pass() -> None:
    for name in ["a", "node-1.example", "ünïcode", "x" * 256]:
        check_member_name(name)


# ---------------------------------------------------------------- 4. refused stream ping


def test_a_refused_stream_ping_leaves_the_probe_open_for_the_indirect_ack() -> None:
    wire = Wire.converged("a", "b", "c", "d", config=Config.lan(indirect_checks=2))
    a = wire["a"]
    wire.fire("a", ProbeTick(), 0.0)
    (ping,) = wire.take()
    seq = ping.messages[0].seq  # type: ignore[attr-defined]
    (request,) = of_type(wire.fire("a", ProbeTimeout(seq=seq), 0.5), StreamRequest)
    wire.take()
    out = a.stream_failed(request.token, StreamFailure.REFUSED, 0.51)  # TCP REJECT
    assert not of_type(out, MemberSuspected)
    a.receive(encode_packet([Ack(seq=seq)]), C, 0.55)  # a helper's relayed ack
    assert a.counters["probes_succeeded"] == 1
    assert wire.fire("a", ProbeDeadline(seq=seq), 0.999) == []
    assert a.member("b").status is Status.ALIVE


def test_a_refused_stream_ping_with_no_ack_suspects_at_the_deadline_without_penalty() -> None:
    wire = Wire.converged("a", "b", "c", "d", config=Config.lan(indirect_checks=2))
    a = wire["a"]
    wire.fire("a", ProbeTick(), 0.0)
    (ping,) = wire.take()
    seq = ping.messages[0].seq  # type: ignore[attr-defined]
    (request,) = of_type(wire.fire("a", ProbeTimeout(seq=seq), 0.5), StreamRequest)
    wire.take()
    a.stream_failed(request.token, StreamFailure.REFUSED, 0.51)
    (suspected,) = of_type(wire.fire("a", ProbeDeadline(seq=seq), 0.999), MemberSuspected)
    assert suspected.member.name == "b"
    assert a.counters["probes_refused"] == 1
    assert a.health == 0  # nothing listens at b: not our fault, no nack counted missing


# ---------------------------------------------------------------- 5. gossip too large


def test_config_refuses_metadata_that_cannot_fit_a_datagram() -> None:
    with pytest.raises(ConfigError, match="udp_payload_size"):
        Config.lan(udp_payload_size=600, meta_max_size=600)


def test_engine_refuses_a_name_and_address_whose_alive_claim_cannot_fit() -> None:
    config = Config.lan(udp_payload_size=700, meta_max_size=512)
    with pytest.raises(ConfigError, match="udp_payload_size"):
        Engine(
            name="n" * 200,
            address="h" * 200,
            config=config,
            rng=random.Random(0),
            envelope_overhead=60,
        )


def test_gossip_that_cannot_fit_a_datagram_is_never_queued() -> None:
    wire = Wire.converged("a", "b", config=Config.lan(udp_payload_size=600, meta_max_size=64))
    a = wire["a"]
    big = b"m" * 1000  # another member, configured with a larger limit
    out = a.receive(alive("b", B, 1, big), B, 0.0)
    assert a.member("b").meta == big  # accepted (push-pull carries it)
    assert a.gossip_queue_depth == 0
    assert a.counters["gossip_too_large"] == 1
    assert not [o for o in out if type(getattr(o, "timer", None)) is GossipTick]


# ---------------------------------------------------------------- 6. and side notes


def test_failed_members_remembered_for_reconnect_are_bounded_in_count() -> None:
    from swimgossip.core._membership import MAX_RECONNECT_CANDIDATES

    names = [f"m{i}" for i in range(MAX_RECONNECT_CANDIDATES + 50)]
    a = make_engine("a")
    view = {
        n: Member(name=n, address=f"h{n}", status=Status.ALIVE, incarnation=0)
        for n in ["a", *names]
    }
    a.install_view(view, names)
    for i, name in enumerate(names):
        a.receive(encode_packet([Dead(name=name, incarnation=1, source="x")]), "x", float(i))
    assert a._membership.failed_count == MAX_RECONNECT_CANDIDATES


# ---------------------------------------------------------------- broadcasts exactly once


def user_message(wire: Wire, sender: str, payload: bytes, now: float) -> bytes:
    """Broadcast ``payload`` from ``sender``; the packet of its UserMessage (taken off the
    sender's queue: newest first, and retired)."""
    from swimgossip.core.codec import join_packet

    wire[sender].broadcast(payload, now)
    (encoded,) = wire[sender]._effects.user_broadcasts.take(1400, limit=1, max_count=1)
    return join_packet([encoded])


def deliveries(outputs: list) -> list[bytes]:
    from swimgossip.core.outputs import UserDelivery

    return [o.payload for o in of_type(outputs, UserDelivery)]


def test_a_duplicated_broadcast_is_delivered_once() -> None:
    wire = Wire.converged("a", "b")
    packet = user_message(wire, "a", b"hello", 0.0)
    assert deliveries(wire["b"].receive(packet, A, 0.1)) == [b"hello"]
    for step in range(5):  # network duplication, copies relayed by others
        assert deliveries(wire["b"].receive(packet, C, 0.2 + step)) == []
    assert wire["b"].counters["user_broadcasts_duplicate"] == 5


def test_broadcasts_stay_exactly_once_long_after_the_old_seen_set_would_overflow() -> None:
    """20,000 broadcasts of one sender (the old memory forgot after 8,192): every copy of
    every one of them, arriving again at the end, is refused; nothing is delivered twice."""
    wire = Wire.converged("a", "b")
    b = wire["b"]
    packets = []
    for number in range(20_000):
        packet = user_message(wire, "a", number.to_bytes(4, "big"), float(number))
        packets.append(packet)
        assert deliveries(b.receive(packet, A, float(number))) == [number.to_bytes(4, "big")]
    redelivered = [p for p in packets if deliveries(b.receive(p, A, 30_000.0))]
    assert redelivered == []
    assert b.counters["user_broadcasts_received"] == 20_000


def test_a_first_copy_far_behind_its_senders_newest_is_refused_not_delivered_twice() -> None:
    from swimgossip.core._broadcasts import SEEN_WINDOW

    wire = Wire.converged("a", "b")
    b = wire["b"]
    packets = [user_message(wire, "a", b"%d" % n, 0.0) for n in range(SEEN_WINDOW + 2)]
    assert deliveries(b.receive(packets[-1], A, 1.0)) == [b"%d" % (SEEN_WINDOW + 1)]
    assert deliveries(b.receive(packets[0], A, 1.0)) == []  # too old to tell: at most once
    assert b.counters["user_broadcasts_too_old"] == 1
    assert deliveries(b.receive(packets[2], A, 1.0)) == [b"2"]  # inside the window
    assert deliveries(b.receive(packets[2], A, 1.0)) == []


# ---------------------------------------------------------------- first contact after a cut


def test_a_datagram_from_a_failed_member_triggers_a_state_exchange_at_once() -> None:
    from swimgossip.core.outputs import StreamPurpose

    wire = Wire.converged("a", "b", "c")
    a = wire["a"]
    a.receive(encode_packet([Dead(name="b", incarnation=1, source="c")]), C, 0.0)
    out = a.receive(encode_packet([Ack(seq=999)]), B, 5.0)  # the cut healed
    (request,) = of_type(out, StreamRequest)
    assert request.purpose is StreamPurpose.RECONNECT and request.address == B
    assert of_type(a.receive(encode_packet([Ack(seq=998)]), B, 5.5), StreamRequest) == []
    assert of_type(a.receive(encode_packet([Ack(seq=997)]), B, 6.1), StreamRequest)
    assert of_type(a.receive(encode_packet([Ack(seq=996)]), C, 6.1), StreamRequest) == []


def test_failed_members_get_a_reconnect_ping_now_and_then() -> None:
    from swimgossip.core.messages import Ping

    wire = Wire.converged("a", "b", "c")
    a = wire["a"]
    a.receive(encode_packet([Dead(name="b", incarnation=1, source="c")]), C, 0.0)
    wire.take()
    pings_to_b = 0
    for step in range(10):
        wire.fire("a", ProbeTick(), 1.0 + step)
        pings_to_b += sum(
            type(m) is Ping and m.target == "b"
            for d in wire.take()
            if d.address == B
            for m in d.messages
        )
    # With 2 active members, gossip_nodes / N >= 1: one reconnect ping every period.
    assert pings_to_b == 10 == a.counters["reconnect_pings"]


def test_another_members_verdict_about_a_live_member_is_only_a_suspicion_to_us() -> None:
    """After a partition heals, each side's "dead" about the other reaches members that
    reach them fine: it must not fail them at once. A dead claim at the incarnation we
    hold live is a suspicion credited to its source; the member refutes in time."""
    wire = Wire.converged("a", "b", "c")
    a = wire["a"]
    out = a.receive(encode_packet([Dead(name="b", incarnation=0, source="c")]), C, 0.0)
    assert not of_type(out, MemberFailed)
    (suspected,) = of_type(out, MemberSuspected)
    assert suspected.by == "c" and a.member("b").status is Status.SUSPECT
    out = a.receive(alive("b", B, 1), B, 0.5)  # b heard it too and refutes
    assert of_type(out, MemberRecovered) and a.member("b").status is Status.ALIVE
