"""The engine on memberlist's wire (net/memberlist/_wire.py, _transport.py), sans I/O:
Go-shaped packets in, memberlist bytes out, the delegate's hooks, and bad input from a Go
peer (unknown type, newer protocol version, oversized or forged frames) counted and
dropped with a log line, never a crash."""

from __future__ import annotations

import contextlib
import logging
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swimgossip.core import messages as core
from swimgossip.core.config import Config
from swimgossip.core.engine import Engine
from swimgossip.core.errors import DecodeError, WireUnsupported
from swimgossip.core.events import MemberJoined
from swimgossip.core.member import Member
from swimgossip.core.outputs import (
    PublishEvent,
    ScheduleTimer,
    SendDatagram,
    StreamReply,
    StreamRequest,
)
from swimgossip.core.timers import PushPullTick
from swimgossip.net import memberlist as ml
from swimgossip.net.memberlist._transport import open_packet, read_stream_message, seal_packet
from swimgossip.net.memberlist._wire import MemberlistWire
from swimgossip.net.memberlist.errors import (
    DecryptError,
    LabelError,
    Truncated,
    UnknownMessageType,
    WireError,
)

LOCAL = b"\x7f\x00\x00\x01"
GO_VSN = bytes((1, 5, 2, 2, 5, 5))
KEY = bytes(range(16))


class Recorder(ml.NoDelegate):
    """Remembers every hook call; offers ``pending`` as broadcasts."""

    def __init__(self) -> None:
        super().__init__(b"tags")
        self.calls: list[tuple[str, object]] = []
        self.pending: list[bytes] = []

    def notify_message(self, payload: bytes) -> None:
        self.calls.append(("message", payload))

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        out, self.pending = self.pending, []
        return out

    def local_state(self, join: bool) -> bytes:
        self.calls.append(("local_state", join))
        return b"serf-state"

    def merge_remote_state(self, state: bytes, join: bool) -> None:
        self.calls.append(("merge", (state, join)))

    def notify_join(self, member: Member) -> None:
        self.calls.append(("join", member.name))


def make_engine(delegate: ml.Delegate | None = None) -> tuple[Engine, MemberlistWire]:
    wire = MemberlistWire(budget=1400 - 4, delegate=delegate)
    engine = Engine(
        name="py1",
        address="127.0.0.1:7000",
        config=Config.local(),
        rng=random.Random(1),
        wire=wire,
    )
    engine.start(0.0)
    return engine, wire


def go_alive(name: str = "go1", incarnation: int = 1, vsn: bytes = GO_VSN) -> ml.Alive:
    return ml.Alive(incarnation=incarnation, node=name, addr=LOCAL, port=7001, meta=b"", vsn=vsn)


def sends(outputs: list[object]) -> list[SendDatagram]:
    return [o for o in outputs if isinstance(o, SendDatagram)]


def test_a_go_ping_in_a_crc_compound_is_acked_in_memberlist_bytes() -> None:
    engine, _ = make_engine()
    ping = ml.encode_message(
        ml.Ping(seq_no=41, node="py1", source_addr=LOCAL, source_port=7001, source_node="go1")
    )
    packet = ml.add_crc(ml.make_compound([ping, ml.encode_message(go_alive())]))
    outputs = engine.receive(packet, "127.0.0.1:7001", 1.0)
    (ack,) = [s for s in sends(outputs) if s.address == "127.0.0.1:7001"]
    messages, truncated = ml.decode_packet(ack.payload)
    assert truncated == 0
    assert ml.Ack(seq_no=41) in messages
    assert engine.member("go1") is not None


def test_our_alive_carries_incarnation_plus_one_and_each_members_own_versions() -> None:
    engine, wire = make_engine()
    engine.receive(ml.encode_message(go_alive(incarnation=7)), "127.0.0.1:7001", 1.0)
    member = engine.member("go1")
    assert member is not None and member.incarnation == 6  # ours = memberlist's - 1
    again = ml.decode_message(
        wire.encode_message(
            core.Alive(name="go1", address="127.0.0.1:7001", incarnation=6, meta=b"")
        )[2:]
    )
    assert isinstance(again, ml.Alive)
    assert (again.incarnation, again.vsn) == (7, GO_VSN)  # a Go node would refute ours
    me = ml.decode_message(
        wire.encode_message(
            core.Alive(name="py1", address="127.0.0.1:7000", incarnation=0, meta=b"")
        )[2:]
    )
    assert isinstance(me, ml.Alive) and (me.incarnation, me.vsn) == (1, ml.DEFAULT_VSN)


def test_user_messages_go_to_the_delegate_and_its_broadcasts_ride_along() -> None:
    delegate = Recorder()
    engine, wire = make_engine(delegate)
    user = bytes((ml.MessageType.USER,)) + b"\x01serf-event"
    ping = ml.encode_message(ml.Ping(seq_no=1, node="py1"))
    delegate.pending = [b"\x02serf-intent"]
    outputs = engine.receive(ml.make_compound([user, ping]), "127.0.0.1:7001", 1.0)
    assert ("message", b"\x01serf-event") in delegate.calls
    (ack,) = sends(outputs)
    messages, _ = ml.decode_packet(ack.payload)
    assert ml.UserMessage(payload=b"\x02serf-intent") in messages
    assert ml.Ack(seq_no=1) in messages
    assert wire.counters["memberlist_user_messages_in"] == 1
    assert wire.counters["memberlist_user_messages_out"] == 1


def test_push_pull_carries_and_merges_the_delegates_user_state() -> None:
    delegate = Recorder()
    engine, _ = make_engine(delegate)
    theirs = ml.PushPull(
        join=True,
        nodes=(
            ml.PushNodeState(
                name="go1", addr=LOCAL, port=7001, meta=b"", incarnation=1, state=0, vsn=GO_VSN
            ),
        ),
        user_state=b"go-state",
    )
    outputs = engine.receive_stream(ml.encode_push_pull(theirs), "127.0.0.1:7001", 5, 1.0)
    (reply,) = [o for o in outputs if isinstance(o, StreamReply)]
    ours = ml.decode_push_pull(reply.payload)
    assert ours.user_state == b"serf-state"
    assert {n.name for n in ours.nodes} == {"py1", "go1"}
    assert ("merge", (b"go-state", True)) in delegate.calls
    joined = [o.event for o in outputs if isinstance(o, PublishEvent)]
    assert any(isinstance(e, MemberJoined) and e.member.name == "go1" for e in joined)


def test_the_periodic_push_pull_stays_gos_full_push_pull() -> None:
    """memberlist's wire has no digest exchange (``CARRIES_DIGESTS`` False): the periodic
    push-pull sends the whole table, as Go does."""
    engine, _ = make_engine()
    theirs = ml.PushPull(
        join=False,
        nodes=(
            ml.PushNodeState(
                name="go1", addr=LOCAL, port=7001, meta=b"", incarnation=1, state=0, vsn=GO_VSN
            ),
        ),
        user_state=b"",
    )
    engine.receive_stream(ml.encode_push_pull(theirs), "127.0.0.1:7001", 5, 1.0)
    outputs = engine.handle_timer(PushPullTick(), 2.0)
    (request,) = [o for o in outputs if isinstance(o, StreamRequest)]
    assert {n.name for n in ml.decode_push_pull(request.payload).nodes} == {"py1", "go1"}


def test_memberlists_tcp_fallback_ping_is_answered_on_the_stream() -> None:
    engine, wire = make_engine()
    ping = ml.compress(ml.encode_message(ml.Ping(seq_no=77, node="py1")))  # Go compresses
    outputs = engine.receive_stream(ping, "127.0.0.1:7001", 9, 1.0)
    (reply,) = [o for o in outputs if isinstance(o, StreamReply)]
    assert reply.token == 9
    assert ml.decode_message(reply.payload) == ml.Ack(seq_no=77)
    # and ours: a stream ping is memberlist's ping, its answer an ackResp
    assert ml.decode_message(wire.encode_stream(core.Ping(seq=5, target="go1"))) == ml.Ping(
        seq_no=5, node="go1"
    )
    assert wire.decode_stream(ml.encode_message(ml.Ack(seq_no=5))) == core.Ack(seq=5)


def test_a_go_indirect_ping_is_relayed_and_nacked_when_the_target_is_silent() -> None:
    engine, _ = make_engine()
    request = ml.IndirectPing(seq_no=300, target=LOCAL, port=7002, node="go2", nack=True)
    outputs = engine.receive(ml.encode_message(request), "127.0.0.1:7001", 1.0)
    (relayed,) = [s for s in sends(outputs) if s.address == "127.0.0.1:7002"]
    (ping,) = [m for m in ml.decode_packet(relayed.payload)[0] if isinstance(m, ml.Ping)]
    assert ping.node == "go2"
    timers = sorted((o for o in outputs if isinstance(o, ScheduleTimer)), key=lambda t: t.at)
    nacks: list[ml.Message] = []
    for timer in timers:  # the target never answers: the relay's timeout fires
        for send in sends(engine.handle_timer(timer.timer, timer.at)):
            if send.address == "127.0.0.1:7001":
                nacks += ml.decode_packet(send.payload)[0]
    assert ml.Nack(seq_no=300) in nacks
    # had it answered, the requester would get the ack under its own sequence number
    engine2, _ = make_engine()
    outputs = engine2.receive(ml.encode_message(request), "127.0.0.1:7001", 1.0)
    (relayed,) = [s for s in sends(outputs) if s.address == "127.0.0.1:7002"]
    (ping,) = [m for m in ml.decode_packet(relayed.payload)[0] if isinstance(m, ml.Ping)]
    answer = ml.encode_message(ml.Ack(seq_no=ping.seq_no))
    outputs = engine2.receive(answer, "127.0.0.1:7002", 1.1)
    (to_requester,) = [s for s in sends(outputs) if s.address == "127.0.0.1:7001"]
    assert ml.Ack(seq_no=300) in ml.decode_packet(to_requester.payload)[0]


def test_what_memberlist_cannot_carry_is_refused_with_a_clear_error() -> None:
    engine, wire = make_engine()
    with pytest.raises(WireUnsupported, match="memberlist wire cannot carry member state"):
        engine.set_state("k", b"v", 1.0)
    with pytest.raises(WireUnsupported, match="UserMessage"):
        engine.broadcast(b"hello", 1.0)
    with pytest.raises(WireUnsupported):
        wire.encode_stream(core.Nack(seq=1))


@pytest.mark.parametrize(
    ("packet", "why"),
    [
        (b"\x63\x80", "unknown memberlist message type 99"),
        (ml.encode_message(go_alive(vsn=bytes((6, 7, 6, 2, 5, 5)))), "protocol version 6"),
        (ml.add_crc(ml.encode_message(go_alive()))[:-1] + b"\x00", "CRC"),
        (b"\x07\x02\x00\x05", "truncated compound"),
        (bytes((ml.MessageType.COMPRESS,)) + b"\x82\xa4Algo\x05\xa3Buf\xc4\x00", "algorithm"),
    ],
)
def test_bad_go_input_is_counted_and_dropped_with_a_log_line(
    packet: bytes, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine, _ = make_engine()
    with caplog.at_level(logging.DEBUG, logger="swimgossip"):
        assert engine.receive(packet, "127.0.0.1:7001", 1.0) == []
    assert engine.counters["packets_malformed"] == 1
    assert why in caplog.text
    # and the node goes on: a good ping is still answered
    ping = ml.encode_message(ml.Ping(seq_no=2, node="py1"))
    assert sends(engine.receive(ping, "127.0.0.1:7001", 2.0))


def test_a_stream_announcing_too_much_or_of_unknown_type_is_refused() -> None:
    ring = ml.MemberlistKeyring([KEY])
    oversized = bytes((ml.MessageType.ENCRYPT,)) + struct.pack(">I", 1 << 31) + b"x"
    with pytest.raises(WireError, match="larger than limit"):
        read_stream_message(oversized, label="", keyring=ring)
    header = b"\x83\xa5Nodes\xce\x7f\xff\xff\xff\xacUserStateLen\x00\xa4Join\xc2"
    with pytest.raises(WireError, match="exceeds limit"):
        read_stream_message(b"\x06" + header, label="", keyring=None)
    with pytest.raises(UnknownMessageType):
        read_stream_message(b"\x63", label="", keyring=None)
    engine, _ = make_engine()
    assert engine.receive_stream(b"\x05\x80", "127.0.0.1:7001", 3, 1.0) == []
    assert engine.counters["streams_malformed"] == 1


def test_streams_are_read_until_whole_and_checked_for_label_and_key() -> None:
    push = ml.encode_push_pull(ml.PushPull(join=False, nodes=(), user_state=b"abc"))
    whole = ml.add_label(push, "blue")
    for cut in range(len(whole)):
        with pytest.raises(Truncated):
            read_stream_message(whole[:cut], label="blue", keyring=None)
    assert read_stream_message(whole, label="blue", keyring=None) == push
    with pytest.raises(LabelError):
        read_stream_message(ml.add_label(push, "red"), label="blue", keyring=None)
    ring = ml.MemberlistKeyring([KEY])
    sealed = ml.encrypt_stream(KEY, push, "blue")
    assert read_stream_message(sealed, label="blue", keyring=ring, answer=True) == push
    with pytest.raises(DecryptError, match="key we do not hold"):
        other = ml.MemberlistKeyring([bytes(16)])
        read_stream_message(sealed, label="blue", keyring=other, answer=True)
    with pytest.raises(DecryptError, match="not encrypted"):
        read_stream_message(push, label="", keyring=ring, answer=True)


def test_packets_are_sealed_and_opened_with_label_and_key() -> None:
    ring = ml.MemberlistKeyring([KEY])
    packet = seal_packet(b"\x02\x80", label="blue", keyring=ring)
    assert packet.startswith(bytes((ml.MessageType.HAS_LABEL, 4)) + b"blue")
    assert open_packet(packet, label="blue", keyring=ring) == b"\x02\x80"
    with pytest.raises(LabelError):
        open_packet(packet, label="", keyring=ring)
    with pytest.raises(DecryptError, match="a key we do not hold"):
        open_packet(packet, label="blue", keyring=ml.MemberlistKeyring([bytes(16)]))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_the_wire_decoders_raise_only_decode_error(data: bytes) -> None:
    wire = MemberlistWire(budget=1396)
    for decode in (wire.decode_packet, wire.decode_stream):
        with contextlib.suppress(DecodeError):
            decode(data)
    for answer in (False, True):
        with contextlib.suppress(WireError):
            read_stream_message(data, label="", keyring=None, answer=answer)
