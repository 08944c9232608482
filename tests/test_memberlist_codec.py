"""The memberlist wire codec (net/memberlist): byte vectors built by hand from memberlist's
Go sources (net.go field order, util.go's ``codec.MsgpackHandle{}``, label.go, Go's
compress/lzw), round-trips, bounds, and a fuzz test that only ``WireError`` escapes.
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimgossip.core.errors import RemoteError
from swimgossip.net.memberlist import (
    Ack,
    Alive,
    ChecksumMismatch,
    CompressionError,
    Dead,
    ErrorResponse,
    IndirectPing,
    LabelError,
    MsgpackError,
    Nack,
    Ping,
    PushNodeState,
    PushPull,
    Suspect,
    UnknownMessageType,
    UserMessage,
    WireError,
    _lzw,
    _msgpack,
    add_crc,
    add_label,
    compress,
    decode_message,
    decode_packet,
    decode_push_pull,
    encode_message,
    encode_push_pull,
    make_compound,
    remove_label,
    split_compound,
)
from swimgossip.net.memberlist.codec import DECODERS


def s(text: str) -> bytes:
    """A go-msgpack raw string (fixstr) as MsgpackHandle{} writes field names and values."""
    raw = text.encode()
    assert len(raw) < 32
    return bytes((0xA0 | len(raw),)) + raw


# --- byte vectors from the Go sources ----------------------------------------------------

PING = b"\x00" + b"\x82" + s("SeqNo") + b"\x05" + s("Node") + s("b")
PING_WITH_SOURCE = (
    b"\x00\x85"
    + s("SeqNo")
    + b"\xcd\x01\x00"
    + s("Node")
    + s("b")
    + s("SourceAddr")
    + b"\xa4\x7f\x00\x00\x01"
    + s("SourcePort")
    + b"\xcd\x1f\x0a"
    + s("SourceNode")
    + s("a")
)
INDIRECT = (
    b"\x01\x85"
    + s("SeqNo")
    + b"\xce\x00\x01\x00\x00"
    + s("Target")
    + b"\xa4\x0a\x00\x00\x02"
    + s("Port")
    + b"\xcd\x1f\x0a"
    + s("Node")
    + s("c")
    + s("Nack")
    + b"\xc3"
)
ACK_NIL = b"\x02\x82" + s("SeqNo") + b"\x07" + s("Payload") + b"\xc0"
NACK = b"\x0b\x81" + s("SeqNo") + b"\xcc\xff"
SUSPECT = b"\x03\x83" + s("Incarnation") + b"\x03" + s("Node") + s("b") + s("From") + s("a")
DEAD = b"\x05\x83" + s("Incarnation") + b"\x04" + s("Node") + s("b") + s("From") + s("b")
ALIVE = (
    b"\x04\x86"
    + s("Incarnation")
    + b"\x01"
    + s("Node")
    + s("b")
    + s("Addr")
    + b"\xa4\x7f\x00\x00\x01"
    + s("Port")
    + b"\xcd\x1f\x0a"
    + s("Meta")
    + b"\xa3\xff\x80\x00"
    + s("Vsn")
    + b"\xa6\x01\x05\x02\x02\x05\x04"
)
ERR = b"\x0d\x81" + s("Error") + s("bad label")

VECTORS = [
    (PING, Ping(seq_no=5, node="b")),
    (
        PING_WITH_SOURCE,
        Ping(seq_no=256, node="b", source_addr=b"\x7f\0\0\1", source_port=7946, source_node="a"),
    ),
    (
        INDIRECT,
        IndirectPing(seq_no=65536, target=b"\x0a\0\0\2", port=7946, node="c", nack=True),
    ),
    (ACK_NIL, Ack(seq_no=7)),
    (NACK, Nack(seq_no=255)),
    (SUSPECT, Suspect(incarnation=3, node="b", sender="a")),
    (DEAD, Dead(incarnation=4, node="b", sender="b")),
    (
        ALIVE,
        Alive(
            incarnation=1,
            node="b",
            addr=b"\x7f\0\0\1",
            port=7946,
            meta=b"\xff\x80\x00",
            vsn=bytes([1, 5, 2, 2, 5, 4]),
        ),
    ),
    (ERR, ErrorResponse(error="bad label")),
    (b"\x08hello", UserMessage(payload=b"hello")),
]


@pytest.mark.parametrize(("wire", "message"), VECTORS)
def test_messages_encode_to_and_decode_from_memberlists_bytes(wire: bytes, message: object) -> None:
    assert decode_message(wire) == message
    assert encode_message(message) == wire  # type: ignore[arg-type]


def test_the_reader_accepts_the_other_msgpack_forms_go_peers_may_use() -> None:
    # str8 and bin8 for strings and bytes, uint32 for a small number, map16 for the body
    wire = (
        b"\x00\xde\x00\x02" + b"\xd9\x05SeqNo" + b"\xce\x00\x00\x00\x05" + s("Node") + b"\xc4\x01b"
    )
    assert decode_message(wire) == Ping(seq_no=5, node="b")


def test_unknown_fields_are_ignored_and_missing_ones_are_zero() -> None:
    wire = b"\x02\x82" + s("SeqNo") + b"\x09" + s("Future") + b"\x93\x01\x02\x03"
    assert decode_message(wire) == Ack(seq_no=9, payload=b"")


def test_a_compound_message_is_count_lengths_then_parts() -> None:
    wire = make_compound([PING, NACK])
    assert wire == b"\x07\x02" + struct.pack(">HH", len(PING), len(NACK)) + PING + NACK
    assert decode_packet(wire) == ([Ping(seq_no=5, node="b"), Nack(seq_no=255)], 0)


def test_a_truncated_compound_keeps_whole_parts_and_counts_the_rest() -> None:
    wire = make_compound([PING, NACK, ACK_NIL])[: -len(ACK_NIL) - 1]
    messages, truncated = decode_packet(wire)
    assert messages == [Ping(seq_no=5, node="b")]
    assert truncated == 2
    with pytest.raises(WireError):
        split_compound(b"\x02\x00")


def test_the_crc_wrapper_is_crc32_ieee_big_endian() -> None:
    # the standard CRC-32 check value: crc32(b"123456789") == 0xCBF43926
    assert add_crc(b"123456789") == b"\x0c\xcb\xf4\x39\x26123456789"
    assert decode_packet(add_crc(PING)) == ([Ping(seq_no=5, node="b")], 0)
    broken = bytearray(add_crc(PING))
    broken[-1] ^= 1
    with pytest.raises(ChecksumMismatch):
        decode_packet(bytes(broken))


def test_labels_are_type_244_a_length_byte_and_the_label() -> None:
    assert add_label(PING, "prod") == b"\xf4\x04prod" + PING
    assert add_label(PING, "") == PING
    assert remove_label(b"\xf4\x04prod" + PING) == (PING, "prod")
    assert remove_label(PING) == (PING, "")
    for bad in (b"\xf4", b"\xf4\x00rest", b"\xf4\x05prod"):
        with pytest.raises(LabelError):
            remove_label(bad)
    with pytest.raises(ValueError, match="longer than 255"):
        add_label(PING, "x" * 256)


def test_lzw_is_gos_lsb_litwidth_8_format() -> None:
    # clear (256), 'a' (97), eof (257): three 9-bit codes packed least significant first
    bits = 256 | 97 << 9 | 257 << 18
    assert _lzw.compress(b"a") == bits.to_bytes(4, "little")
    # "aaa": clear, 'a', 258 (= "aa", the code being defined: Go's KwKwK case), eof
    bits = 256 | 97 << 9 | 258 << 18 | 257 << 27
    assert _lzw.compress(b"aaa") == bits.to_bytes(5, "little")
    assert _lzw.decompress(bits.to_bytes(5, "little"), 100) == b"aaa"


def test_compressed_messages_are_algo_and_buf_in_msgpack() -> None:
    wire = compress(PING)
    body = _lzw.compress(PING)
    assert wire == b"\x09\x82" + s("Algo") + b"\x00" + s("Buf") + _msgpack.pack_bytes(body)
    assert decode_packet(wire) == ([Ping(seq_no=5, node="b")], 0)


def test_decompression_is_bounded_and_unknown_algorithms_refused() -> None:
    big = compress(b"\x08" + b"x" * 10_000)
    with pytest.raises(CompressionError, match="limit"):
        decode_packet(big, limit=1000)
    unknown = b"\x09\x82" + s("Algo") + b"\x01" + s("Buf") + s("")
    with pytest.raises(CompressionError, match="unknown algorithm 1"):
        decode_packet(unknown)
    with pytest.raises(CompressionError):
        _lzw.decompress(b"\x00\xff\xff", 100)


NODE = PushNodeState(
    name="b",
    addr=b"\x7f\0\0\1",
    port=7946,
    meta=b"",
    incarnation=2,
    state=3,
    vsn=bytes([1, 5, 2, 2, 5, 4]),
)


def test_push_pull_is_header_node_states_then_user_state() -> None:
    header = b"\x83" + s("Nodes") + b"\x01" + s("UserStateLen") + b"\x03" + s("Join") + b"\xc3"
    node = (
        b"\x87"
        + s("Name")
        + s("b")
        + s("Addr")
        + b"\xa4\x7f\x00\x00\x01"
        + s("Port")
        + b"\xcd\x1f\x0a"
        + s("Meta")
        + b"\xc0"
        + s("Incarnation")
        + b"\x02"
        + s("State")
        + b"\x03"
        + s("Vsn")
        + b"\xa6\x01\x05\x02\x02\x05\x04"
    )
    wire = b"\x06" + header + node + b"usr"
    message = PushPull(join=True, nodes=(NODE,), user_state=b"usr")
    assert encode_push_pull(message) == wire
    assert decode_push_pull(wire) == message
    assert decode_push_pull(compress(wire)) == message


def test_go_signed_ints_use_signed_msgpack_forms() -> None:
    # pushPullHeader.Nodes is a Go int: 200 is written int16 (0xd1), not uint8 (0xcc)
    assert _msgpack.pack_int(200) == b"\xd1\x00\xc8"
    assert _msgpack.pack_uint(200) == b"\xcc\xc8"
    assert _msgpack.pack_int(-1) == b"\xff"


def test_push_pull_bounds_are_checked_before_reading() -> None:
    wire = encode_push_pull(PushPull(join=False, nodes=(NODE, NODE), user_state=b"abc"))
    with pytest.raises(WireError, match="exceeds limit"):
        decode_push_pull(wire, max_nodes=1)
    with pytest.raises(WireError, match="exceeds limit"):
        decode_push_pull(wire, max_user_state=2)
    with pytest.raises(WireError, match="full user state"):
        decode_push_pull(wire[:-1])


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (b"", MsgpackError),
        (b"\x0e\x80", UnknownMessageType),
        (b"\x06\x80", UnknownMessageType),  # a push-pull is not a packet message
        (b"\x00\x81" + s("SeqNo"), MsgpackError),  # truncated
        (b"\x00\x81" + s("SeqNo") + b"\xcf" + b"\xff" * 8, MsgpackError),  # not a uint32
        (b"\x00\x81" + s("Node") + b"\x05", MsgpackError),  # a number where a string goes
        (b"\x00\x91\x05", MsgpackError),  # an array body
        (b"\x00\xdd\xff\xff\xff\xff", MsgpackError),  # 4 billion items announced
        (b"\x00\xc7\x01\x01\x00", MsgpackError),  # ext types are not memberlist's
        (b"\x00" + b"\x91" * 20 + b"\x00", MsgpackError),  # too deep
    ],
)
def test_bad_messages_raise_typed_errors(wire: bytes, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        decode_packet(wire)
    assert isinstance(info.value, RemoteError)
    assert isinstance(info.value, ValueError)


def test_an_unknown_type_says_which() -> None:
    with pytest.raises(UnknownMessageType) as info:
        decode_message(b"\x63")
    assert info.value.type == 0x63
    assert "99" in str(info.value)


def test_wrappers_cannot_nest_without_bound() -> None:
    wire = PING
    for _ in range(6):
        wire = add_crc(wire)
    with pytest.raises(WireError, match="nested too deeply"):
        decode_packet(wire)


# --- hypothesis --------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
u16 = st.integers(0, 2**16 - 1)
names = st.text(max_size=40)
blobs = st.binary(max_size=300)

messages = st.one_of(
    st.builds(Ping, seq_no=u32, node=names, source_addr=blobs, source_port=u16, source_node=names),
    st.builds(
        IndirectPing,
        seq_no=u32,
        target=blobs,
        port=u16,
        node=names,
        nack=st.booleans(),
        source_addr=blobs,
        source_port=u16,
        source_node=names,
    ),
    st.builds(Ack, seq_no=u32, payload=blobs),
    st.builds(Nack, seq_no=u32),
    st.builds(ErrorResponse, error=names),
    st.builds(Suspect, incarnation=u32, node=names, sender=names),
    st.builds(Dead, incarnation=u32, node=names, sender=names),
    st.builds(
        Alive,
        incarnation=u32,
        node=names,
        addr=blobs,
        port=u16,
        meta=blobs,
        vsn=st.binary(max_size=6),
    ),
    st.builds(UserMessage, payload=blobs),
)


@given(st.lists(messages, min_size=1, max_size=8), st.booleans(), st.booleans())
def test_any_packet_round_trips(batch: list[object], crc: bool, squeeze: bool) -> None:
    wire = make_compound([encode_message(m) for m in batch])  # type: ignore[arg-type]
    if squeeze:
        wire = compress(wire)
    if crc:
        wire = add_crc(wire)
    assert decode_packet(wire) == (batch, 0)


nodes = st.builds(
    PushNodeState,
    name=names,
    addr=blobs,
    port=u16,
    meta=blobs,
    incarnation=u32,
    state=st.integers(0, 3),
    vsn=st.binary(max_size=6),
)


@given(
    st.builds(
        PushPull,
        join=st.booleans(),
        nodes=st.lists(nodes, max_size=20).map(tuple),
        user_state=blobs,
    )
)
def test_any_push_pull_round_trips(message: PushPull) -> None:
    assert decode_push_pull(encode_push_pull(message)) == message


@given(st.binary(max_size=3000))
def test_lzw_round_trips(data: bytes) -> None:
    assert _lzw.decompress(_lzw.compress(data), len(data)) == data


def test_lzw_round_trips_past_the_code_table_reset() -> None:
    # 4096 codes fill quickly with varied input: the writer sends a clear code mid-stream
    data = bytes((i * 7919 + i // 3) % 251 for i in range(60_000))
    packed = _lzw.compress(data)
    assert _lzw.decompress(packed, len(data)) == data


def _only_wire_errors(data: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(WireError):
            decode(data)


@given(st.binary(max_size=400))
def test_fuzz_arbitrary_bytes_raise_only_wire_errors(data: bytes) -> None:
    _only_wire_errors(data)


@given(st.lists(messages, min_size=1, max_size=4), st.data())
def test_fuzz_mutated_packets_raise_only_wire_errors(
    batch: list[object], data: st.DataObject
) -> None:
    wire = bytearray(add_crc(compress(make_compound([encode_message(m) for m in batch]))))  # type: ignore[arg-type]
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(wire) - 1))
        wire[index] = data.draw(st.integers(0, 255))
    _only_wire_errors(bytes(wire))
    _only_wire_errors(bytes(wire[5:]))  # past the CRC: the compressed body itself
