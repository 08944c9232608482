"""Tests of the wire codec: round trips, exact sizes, fuzzing, and every refusal.

The decoders' contract is that any input either decodes or raises ``DecodeError``; the
fuzz tests feed random and mutated bytes and fail on any other exception.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimgossip.core.codec import (
    MAX_DATAGRAM_SIZE,
    MAX_NAME_LENGTH,
    MAX_STREAM_SIZE,
    VERSION,
    array_header,
    decode_packet,
    decode_stream,
    encode_message,
    encode_packet,
    encode_stream,
    join_packet,
)
from swimgossip.core.errors import DecodeError
from swimgossip.core.member import Member, Status
from swimgossip.core.messages import (
    MESSAGE_TYPES,
    Ack,
    Alive,
    Message,
    Ping,
    PingReq,
    PushPull,
    UserMessage,
)
from swimgossip.testing import strategies

V = bytes([VERSION])
U64_MAX = (1 << 64) - 1


def raw_packet(*rows: Any) -> bytes:
    """A packet built by hand: the version byte, then msgpack of the given message rows."""
    return V + msgpack.packb(list(rows), use_bin_type=True)


def decodes_or_refuses(data: bytes) -> None:
    """Both decoders must return messages or raise DecodeError, nothing else."""
    try:
        decoded = decode_packet(data)
    except DecodeError:
        pass
    else:
        assert decoded
        assert all(type(m) in MESSAGE_TYPES.values() and type(m) is not PushPull for m in decoded)
    try:
        message = decode_stream(data)
    except DecodeError:
        pass
    else:
        assert type(message) in MESSAGE_TYPES.values()


# --- round trips -------------------------------------------------------------------------


def test_every_message_type_has_a_strategy() -> None:
    for cls in MESSAGE_TYPES.values():
        strategies.messages_of_type(cls)


@pytest.mark.parametrize("cls", list(MESSAGE_TYPES.values()), ids=lambda c: c.__name__)
@given(data=st.data())
def test_stream_round_trip_of_each_type(cls: type[Message], data: st.DataObject) -> None:
    message = data.draw(strategies.messages_of_type(cls))
    decoded = decode_stream(encode_stream(message))
    assert decoded == message
    assert type(decoded) is cls


@given(strategies.compound_messages())
def test_compound_packet_round_trip(messages: list[Message]) -> None:
    packet = encode_packet(messages)
    assert len(packet) <= MAX_DATAGRAM_SIZE
    assert decode_packet(packet) == messages


@given(strategies.messages())
def test_stream_round_trip_of_any_message(message: Message) -> None:
    assert decode_stream(encode_stream(message)) == message


def test_round_trip_at_the_limits() -> None:
    longest = "\U0001f600" * MAX_NAME_LENGTH  # 256 characters, 1024 bytes of UTF-8
    messages: list[Message] = [
        Ping(seq=U64_MAX, target=longest),
        Ack(seq=0),
        PingReq(seq=U64_MAX, target="", target_address=longest, nack=True),
        Alive(name=longest, address=longest, incarnation=U64_MAX, meta=b"\x00" * 512),
    ]
    assert decode_packet(encode_packet(messages)) == messages
    members = tuple(
        Member(name=f"n{i}", address="a", status=status, incarnation=i, meta=b"m")
        for i, status in enumerate(Status)
    )
    push_pull = PushPull(source=longest, join=False, members=members)
    assert decode_stream(encode_stream(push_pull)) == push_pull


@given(st.lists(strategies.datagram_messages(), max_size=40))
def test_packet_size_is_exact(messages: list[Message]) -> None:
    encoded = [encode_message(m) for m in messages]
    packet = encode_packet(messages)
    assert packet == join_packet(encoded)
    assert len(packet) == len(V) + len(array_header(len(messages))) + sum(map(len, encoded))


@pytest.mark.parametrize("count", [1, 15, 16, 300])
def test_packet_size_is_exact_across_header_forms(count: int) -> None:
    messages = [Ack(seq=i) for i in range(count)]
    expected = 1 + len(array_header(count)) + sum(len(encode_message(m)) for m in messages)
    packet = encode_packet(messages)
    assert len(packet) == expected
    assert decode_packet(packet) == messages


@pytest.mark.parametrize("count", [0, 15, 16, 65535, 65536])
def test_array_header_matches_msgpack(count: int) -> None:
    packed = msgpack.packb([None] * count)
    header = array_header(count)
    # Everything after the header is `count` nil bytes (0xc0).
    assert packed == header + b"\xc0" * count
    assert len(header) == {0: 1, 15: 1, 16: 3, 65535: 3, 65536: 5}[count]


# --- fuzzing -----------------------------------------------------------------------------


@given(st.binary(max_size=512))
def test_random_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    decodes_or_refuses(data)


@given(st.binary(max_size=512))
def test_random_bytes_after_version_byte(data: bytes) -> None:
    decodes_or_refuses(V + data)


_mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(min_value=0), st.just(0)),
    st.tuples(st.just("insert"), st.integers(min_value=0), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(min_value=0), st.just(0)),
)


def mutate(data: bytes, mutations: list[tuple[str, int, int]], tail: bytes) -> bytes:
    buffer = bytearray(data)
    for kind, position, value in mutations:
        index = position % (len(buffer) + 1)
        if kind == "flip" and index < len(buffer):
            buffer[index] ^= value
        elif kind == "truncate":
            del buffer[index:]
        elif kind == "insert":
            buffer.insert(index, value)
        elif kind == "delete" and index < len(buffer):
            del buffer[index]
    return bytes(buffer) + tail


@given(
    st.one_of(
        strategies.compound_messages().map(encode_packet),
        strategies.messages().map(encode_stream),
    ),
    st.lists(_mutations, min_size=1, max_size=6),
    st.binary(max_size=16),
)
def test_mutated_packets_decode_or_raise_decode_error(
    packet: bytes, mutations: list[tuple[str, int, int]], tail: bytes
) -> None:
    decodes_or_refuses(mutate(packet, mutations, tail))


@given(strategies.compound_messages(), st.binary(min_size=1, max_size=32))
def test_appended_garbage_is_refused(messages: list[Message], garbage: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_packet(encode_packet(messages) + garbage)


# --- specific refusals -------------------------------------------------------------------

PING_ROW = [1, 7, "node-b"]
ACK_ROW = [2, 7]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(V, id="version-only"),
        pytest.param(b"\x00" + raw_packet(ACK_ROW)[1:], id="version-0"),
        pytest.param(b"\x02" + raw_packet(ACK_ROW)[1:], id="version-2"),
        pytest.param(b"\xa1" + raw_packet(ACK_ROW)[1:], id="signed-marker-not-stripped"),
        pytest.param(V + b"\x90", id="no-messages"),
        pytest.param(V + b"\xc0", id="body-not-an-array"),
        pytest.param(V + msgpack.packb({"type": 2, "seq": 7}), id="map-body"),
        pytest.param(raw_packet({2: 7}), id="map-message"),
        pytest.param(raw_packet([2]), id="ack-without-seq"),
        pytest.param(raw_packet([]), id="empty-message"),
        pytest.param(raw_packet(7), id="message-not-an-array"),
        pytest.param(raw_packet([0, 7]), id="type-0"),
        pytest.param(raw_packet([11, 7]), id="type-11"),
        pytest.param(raw_packet([255, 7]), id="type-255"),
        pytest.param(raw_packet([-1, 7]), id="type-negative"),
        pytest.param(raw_packet(["ping", 7, "x"]), id="type-str"),
        pytest.param(raw_packet([True, 7]), id="type-bool"),
        pytest.param(raw_packet([1.0, 7, "x"]), id="type-float"),
        pytest.param(raw_packet([*ACK_ROW, 8]), id="too-many-fields"),
        pytest.param(raw_packet([1, 7]), id="too-few-fields"),
        pytest.param(raw_packet([4, 7, "t", "addr"]), id="pingreq-missing-nack"),
        pytest.param(raw_packet([2, -1]), id="negative-seq"),
        pytest.param(raw_packet([2, -(1 << 63)]), id="int64-min-seq"),
        pytest.param(raw_packet([2, True]), id="bool-seq"),
        pytest.param(raw_packet([2, 7.0]), id="float-seq"),
        pytest.param(raw_packet([2, float(1 << 64)]), id="float-above-u64"),
        pytest.param(raw_packet([2, "7"]), id="str-seq"),
        pytest.param(raw_packet([2, None]), id="nil-seq"),
        pytest.param(raw_packet([1, 7, b"node-b"]), id="bytes-for-str"),
        pytest.param(raw_packet([5, "a", "addr", 1, "meta"]), id="str-for-bytes"),
        pytest.param(raw_packet([4, 7, "t", "addr", 1]), id="int-for-bool"),
        pytest.param(raw_packet([1, 7, "x" * (MAX_NAME_LENGTH + 1)]), id="str-257-chars"),
        pytest.param(raw_packet([1, 7, "x" * 5000]), id="str-over-byte-cap"),
        pytest.param(raw_packet([1, 7, "\u00e9" * (MAX_NAME_LENGTH + 1)]), id="str-257-2byte"),
        pytest.param(V + b"\x91\x93\x01\x07\xa2\xff\xfe", id="invalid-utf8"),
        pytest.param(V + b"\x91\x92\x02\xd6\xff" + b"\x00" * 4, id="timestamp-ext"),
        pytest.param(V + b"\x91\x92\x02\xc7\x01\x05\x00", id="ext8"),
        pytest.param(raw_packet(ACK_ROW) + b"\xc0", id="trailing-byte"),
        pytest.param(raw_packet(ACK_ROW)[:-1], id="truncated"),
        pytest.param(V + b"\xdc\x00\x02" + msgpack.packb(ACK_ROW), id="count-exceeds-data"),
    ],
)
def test_refused_datagrams(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_packet(data)
    with pytest.raises(DecodeError):
        decode_stream(data)


def test_largest_u64_is_accepted() -> None:
    data = raw_packet([2, U64_MAX])
    assert data[-9] == 0xCF  # msgpack's uint64: the widest integer on the wire
    assert decode_packet(data) == [Ack(seq=U64_MAX)]


def test_integer_above_u64_cannot_be_encoded() -> None:
    # msgpack has no wider integer than uint64, so such a value never reaches the decoder.
    with pytest.raises(OverflowError):
        encode_message(Ack(seq=U64_MAX + 1))


def test_name_of_exactly_max_length_is_accepted() -> None:
    data = raw_packet([1, 7, "x" * MAX_NAME_LENGTH])
    assert decode_packet(data) == [Ping(seq=7, target="x" * MAX_NAME_LENGTH)]


def test_oversized_datagram_is_refused() -> None:
    body = msgpack.packb([[9, "src", 1, b"\x00" * MAX_DATAGRAM_SIZE]], use_bin_type=True)
    data = V + body
    assert len(data) > MAX_DATAGRAM_SIZE
    with pytest.raises(DecodeError, match="exceeds"):
        decode_packet(data)
    # The same bytes are a valid stream frame: only the size cap refused them.
    assert decode_stream(data) == UserMessage(source="src", id=1, payload=bytes(MAX_DATAGRAM_SIZE))


def test_datagram_of_exactly_max_size_is_accepted() -> None:
    overhead = len(raw_packet([9, "src", 1, b"\x00" * 256])) - 256  # bin16 header
    data = raw_packet([9, "src", 1, b"\x00" * (MAX_DATAGRAM_SIZE - overhead)])
    assert len(data) == MAX_DATAGRAM_SIZE
    assert len(decode_packet(data)) == 1
    with pytest.raises(DecodeError, match="exceeds"):
        decode_packet(raw_packet([9, "src", 1, b"\x00" * (MAX_DATAGRAM_SIZE - overhead + 1)]))


def test_oversized_stream_is_refused() -> None:
    with pytest.raises(DecodeError, match="exceeds"):
        decode_stream(V + bytes(MAX_STREAM_SIZE))


def test_push_pull_inside_a_datagram_is_refused() -> None:
    push_pull = PushPull(source="a", join=True, members=())
    packet = encode_packet([Ack(seq=1), push_pull])
    with pytest.raises(DecodeError, match="stream"):
        decode_packet(packet)
    assert decode_stream(encode_stream(push_pull)) == push_pull


def test_stream_with_two_messages_is_refused() -> None:
    data = encode_packet([Ack(seq=1), Ack(seq=2)])
    assert decode_packet(data) == [Ack(seq=1), Ack(seq=2)]
    with pytest.raises(DecodeError, match="exactly one"):
        decode_stream(data)


def test_empty_packet_is_refused() -> None:
    # The engine never sends a packet without a message; the decoder refuses one.
    with pytest.raises(DecodeError):
        decode_packet(encode_packet([]))


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(["a", "addr", 0, 1], id="four-fields"),
        pytest.param(["a", "addr", 0, 1, b"", 9], id="six-fields"),
        pytest.param(["a", "addr", 4, 1, b""], id="status-4"),
        pytest.param(["a", "addr", -1, 1, b""], id="status-negative"),
        pytest.param(["a", "addr", True, 1, b""], id="status-bool"),
        pytest.param(["a", "addr", "alive", 1, b""], id="status-str"),
        pytest.param(["a", "addr", 0, -1, b""], id="negative-incarnation"),
        pytest.param(["a", "addr", 0, 1, "meta"], id="str-meta"),
        pytest.param([1, "addr", 0, 1, b""], id="int-name"),
        pytest.param(["a", "x" * (MAX_NAME_LENGTH + 1), 0, 1, b""], id="long-address"),
        pytest.param("a", id="row-not-an-array"),
    ],
)
def test_refused_member_rows(row: Any) -> None:
    with pytest.raises(DecodeError):
        decode_stream(raw_packet([10, "src", False, [row]]))


def test_refused_member_list_types() -> None:
    with pytest.raises(DecodeError):
        decode_stream(raw_packet([10, "src", False, "members"]))
    with pytest.raises(DecodeError):
        decode_stream(raw_packet([10, "src", 0, []]))  # int for the join flag


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(V + b"\xdd\xff\xff\xff\xff", id="outer-array32"),
        pytest.param(V + b"\x91\xdd\xff\xff\xff\xff", id="message-array32"),
        pytest.param(V + b"\x91\x94\x0a\xa1s\xc2\xdd\xff\xff\xff\xff", id="members-array32"),
        pytest.param(V + b"\x91\x93\x09\xa1s\xc6\xff\xff\xff\xff", id="bin32"),
        pytest.param(V + b"\x91\x93\x01\x07\xdb\xff\xff\xff\xff", id="str32"),
    ],
)
def test_huge_length_headers_fail_fast_without_allocating(data: bytes) -> None:
    tracemalloc.start()
    try:
        for decode in (decode_packet, decode_stream):
            with pytest.raises(DecodeError):
                decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize("depth", [1_000, 60_000, 100_000])
def test_deeply_nested_arrays_are_refused(depth: int) -> None:
    data = V + b"\x91" * depth
    if len(data) <= MAX_DATAGRAM_SIZE:
        with pytest.raises(DecodeError):
            decode_packet(data)
    with pytest.raises(DecodeError):
        decode_stream(data)


# --- the documentation's worked example ---------------------------------------------------

EXAMPLE_HEX = """
01 92 93 01 2a a6 6e 6f 64 65 2d 62 95 05 a6 6e
6f 64 65 2d 61 ad 31 30 2e 30 2e 30 2e 31 3a 37
39 34 36 03 c4 04 64 63 3d 31
"""


def test_worked_example_of_docs_protocol_md() -> None:
    packet = encode_packet(
        [
            Ping(seq=42, target="node-b"),
            Alive(name="node-a", address="10.0.0.1:7946", incarnation=3, meta=b"dc=1"),
        ]
    )
    assert packet == bytes.fromhex(EXAMPLE_HEX)
    docs = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
    if docs.exists():
        assert EXAMPLE_HEX.strip() in docs.read_text(encoding="utf-8")
