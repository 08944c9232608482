"""Tests of the wire codec: round trips, exact sizes, fuzzing, and every refusal.

The decoders' contract is that any input either decodes or raises ``DecodeError``; the
fuzz tests feed random and mutated bytes and fail on any other exception.
"""

from __future__ import annotations

import ast
import re
import tracemalloc
from pathlib import Path
from typing import Any

import attrs
import msgpack
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from swimgossip.core import _codec_generated, _codec_rules, codec
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
    Dead,
    DirectMessage,
    Left,
    MemberSync,
    Message,
    Nack,
    Ping,
    PingReq,
    PushPull,
    StateDelta,
    StateSync,
    Suspect,
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
01 92 93 01 2a a6 6e 6f 64 65 2d 62 96 05 a6 6e
6f 64 65 2d 61 ad 31 30 2e 30 2e 30 2e 31 3a 37
39 34 36 03 c4 04 64 63 3d 31 00
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


# --- the rule table -----------------------------------------------------------------------
#
# _codec_rules.RECORDS is the one statement of what a field must be; the decoders in
# _codec_generated.py are generated from it, and a refused row is explained from it. The
# tests below check that (1) the checked-in module is what the table generates, (2) the
# fast check and the explanation agree on any row, and (3) an independent, hand-written
# statement of the rules (from docs/protocol.md) is enforced rule by rule, so a rule dropped
# from the table (or from the generated module) fails a test.


def test_generated_decoders_are_up_to_date_with_the_rule_table() -> None:
    checked_in = Path(_codec_rules.GENERATED).read_text(encoding="utf-8")
    # Compared as syntax trees: the checked-in file is ruff-formatted, render() is not.
    assert ast.dump(ast.parse(checked_in)) == ast.dump(ast.parse(_codec_rules.render())), (
        "regenerate: python -c 'from swimgossip.core import _codec_rules; _codec_rules.main()'"
    )


def test_the_codec_uses_the_generated_decoders() -> None:
    assert codec.DECODERS is _codec_generated.DECODERS
    assert codec.ROWS is _codec_generated.ROWS
    assert sorted(_codec_generated.DECODERS) == sorted(MESSAGE_TYPES)
    assert set(_codec_generated.ROWS) == set(MESSAGE_TYPES.values())


# Hand-written, apart from the table: the kind of every field of every message.
EXPECTED_KINDS: dict[type[Message], dict[str, str]] = {
    Ping: {"seq": "uint64", "target": "name"},
    Ack: {"seq": "uint64"},
    Nack: {"seq": "uint64"},
    PingReq: {"seq": "uint64", "target": "name", "target_address": "name", "nack": "bool"},
    Alive: {
        "name": "name",
        "address": "name",
        "incarnation": "uint64",
        "meta": "bytes",
        "boot": "uint64",
    },
    Suspect: {"name": "name", "incarnation": "uint64", "source": "name"},
    Dead: {"name": "name", "incarnation": "uint64", "source": "name"},
    Left: {"name": "name", "incarnation": "uint64"},
    UserMessage: {"source": "name", "id": "uint64", "payload": "bytes"},
    PushPull: {"source": "name", "join": "bool", "members": "members", "suspected_by": "names"},
    DirectMessage: {"source": "name", "target": "name", "id": "uint64", "payload": "bytes"},
    StateDelta: {
        "owner": "name",
        "key": "name",
        "version": "uint64",
        "value": "bytes",
        "deleted": "bool",
    },
    StateSync: {
        "source": "name",
        "push": "bool",
        "owners": "names",
        "versions": "versions",
        "deltas": "deltas",
    },
    MemberSync: {
        "source": "name",
        "push": "bool",
        "digest": "bytes",
        "members": "members",
        "suspected_by": "names",
    },
}
EXPECTED_MEMBER_COLUMNS = {
    "name": "name",
    "address": "name",
    "status": "status",
    "incarnation": "uint64",
    "meta": "bytes",
    "boot": "uint64",
}

U64_RULE = f"0 <= value <= {U64_MAX}"
MEMBER_ROW = ["a", "addr", 0, 1, b"", 7]
# Per kind, values that each break one rule of that kind, and the rule they break. A rule
# dropped from the table lets its witness through; a rule added to the table without a
# witness here fails test_every_rule_of_the_table_has_a_witness.
WITNESSES: dict[str, list[tuple[Any, str]]] = {
    "uint64": [
        (-1, U64_RULE),
        (-(1 << 63), U64_RULE),
        (True, "type int"),
        (7.0, "type int"),
        ("7", "type int"),
        (None, "type int"),
    ],
    "name": [
        ("x" * (MAX_NAME_LENGTH + 1), f"length <= {MAX_NAME_LENGTH}"),
        (b"x", "type str"),
        (7, "type str"),
        (None, "type str"),
    ],
    "bytes": [("meta", "type bytes"), (None, "type bytes"), ([], "type bytes")],
    "bool": [(1, "type bool"), (0, "type bool"), (None, "type bool")],
    "status": [
        (4, "0 <= value <= 3"),
        (-1, "0 <= value <= 3"),
        (True, "type int"),
        ("alive", "type int"),
    ],
    "names": [
        ("a", "type list"),
        (None, "type list"),
        (["x" * (MAX_NAME_LENGTH + 1)], f"length <= {MAX_NAME_LENGTH}"),
        (["ok", 1], "type str"),
    ],
    "members": [
        ("members", "type list"),
        ({}, "type list"),
        (["a"], "type list"),  # a row that is not an array
        ([MEMBER_ROW[:5]], "length == 6"),
        ([[*MEMBER_ROW, 9]], "length == 6"),
    ],
    "versions": [
        ("a", "type list"),
        (b"\x01", "type list"),
        ([1, -1], f"0 <= value <= {2**64 - 1}"),
        ([1, "x"], "type int"),
    ],
    "deltas": [
        ("d", "type list"),
        (None, "type list"),
        (["a"], "type list"),
        ([["a", "k", 3, b"v"]], "length == 5"),
    ],
}


def valid_row(cls: type[Message]) -> list[Any]:
    """The msgpack array of a small valid message of class ``cls``."""
    examples: dict[type[Message], Message] = {
        Ping: Ping(seq=7, target="b"),
        Ack: Ack(seq=7),
        Nack: Nack(seq=7),
        PingReq: PingReq(seq=7, target="t", target_address="addr", nack=True),
        Alive: Alive(name="a", address="addr", incarnation=1, meta=b"m"),
        Suspect: Suspect(name="a", incarnation=1, source="s"),
        Dead: Dead(name="a", incarnation=1, source="s"),
        Left: Left(name="a", incarnation=1),
        UserMessage: UserMessage(source="s", id=1, payload=b"p"),
        PushPull: PushPull(
            source="s",
            join=False,
            members=(Member(name="a", address="addr", status=Status.ALIVE, incarnation=1),),
            suspected_by=("",),
        ),
        DirectMessage: DirectMessage(source="s", target="t", id=1, payload=b"p"),
        StateDelta: StateDelta(owner="a", key="k", version=3, value=b"v", deleted=False),
        StateSync: StateSync(
            source="s",
            push=False,
            owners=("a",),
            versions=(3,),
            deltas=(StateDelta(owner="a", key="k", version=3, value=b"v", deleted=False),),
        ),
        MemberSync: MemberSync(
            source="s",
            push=False,
            digest=bytes(8),
            members=(Member(name="a", address="addr", status=Status.ALIVE, incarnation=1),),
            suspected_by=("",),
        ),
    }
    row: list[Any] = msgpack.unpackb(encode_message(examples[cls]), raw=False)
    return row


def witness_cases() -> list[Any]:
    """Every (class, where, row, rule) of a row that breaks exactly one rule."""
    cases = []
    for cls, kinds in EXPECTED_KINDS.items():
        name = cls.__name__
        base = valid_row(cls)
        decoder = _codec_generated.DECODERS[MESSAGE_TYPES_BY_CLASS[cls]]
        decoder(list(base))  # the base row itself is accepted
        for index, (field, kind) in enumerate(kinds.items(), start=1):
            for value, rule in WITNESSES[kind]:
                row = list(base)
                row[index] = value
                where = f"{name}.{field}"
                if kind in ("names", "versions") and type(value) is list:
                    where += f"[{len(value) - 1}]"
                elif kind in ("members", "deltas") and type(value) is list:
                    where += "[0]"
                cases.append(pytest.param(cls, kind, where, row, rule, id=f"{where}:{rule}"))
        # The array itself: one field too many or too few.
        for row in ([*base, 0], base[:-1]):
            rule = f"length == {len(base)}"
            cases.append(pytest.param(cls, "message", name, row, rule, id=f"{name}:{len(row)}"))
    for column, kind in EXPECTED_MEMBER_COLUMNS.items():
        index = list(EXPECTED_MEMBER_COLUMNS).index(column)
        for value, rule in WITNESSES[kind]:
            member_row = list(MEMBER_ROW)
            member_row[index] = value
            row = [*valid_row(PushPull)[:3], [MEMBER_ROW, member_row], []]
            where = f"PushPull.members[1].{column}"
            cases.append(pytest.param(PushPull, kind, where, row, rule, id=f"{where}:{rule}"))
    return cases


MESSAGE_TYPES_BY_CLASS = {cls: type_id for type_id, cls in MESSAGE_TYPES.items()}
WITNESS_CASES = witness_cases()


def test_the_rule_table_states_every_field_as_documented() -> None:
    for cls, expected in EXPECTED_KINDS.items():
        record = _codec_rules.RECORDS[cls]
        assert record.type_id == MESSAGE_TYPES_BY_CLASS[cls]
        assert [f.name for f in record.fields] == [f.name for f in attrs.fields(cls)]
        assert {f.name: f.kind.name for f in record.fields} == expected
    assert set(_codec_rules.RECORDS) == set(EXPECTED_KINDS)
    members = _codec_rules.RECORDS[PushPull].fields[2].kind.rows
    assert members is not None
    assert {f.name: f.kind.name for f in members.fields} == EXPECTED_MEMBER_COLUMNS


@pytest.mark.parametrize(("cls", "kind", "where", "row", "rule"), WITNESS_CASES)
def test_each_rule_is_enforced_and_named(
    cls: type[Message], kind: str, where: str, row: list[Any], rule: str
) -> None:
    # Through the generated fast path, and through the public decoders.
    with pytest.raises(DecodeError) as refused:
        _codec_generated.DECODERS[MESSAGE_TYPES_BY_CLASS[cls]](row)
    assert str(refused.value).startswith(f"{where}: expected {rule}, got ")
    with pytest.raises(DecodeError, match=re.escape(f"{where}: expected {rule}")):
        decode_stream(raw_packet(row))


# Values for the agreement test: valid ones per kind (hand-written, like EXPECTED_KINDS),
# near misses at every limit, and anything else msgpack can produce.
_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 63), max_value=U64_MAX),
    st.sampled_from([-1, 4, U64_MAX, -(1 << 63)]),
    st.floats(allow_nan=False),
    st.text(max_size=2),
    st.text(min_size=MAX_NAME_LENGTH - 1, max_size=MAX_NAME_LENGTH + 2),
    st.binary(max_size=2),
    st.lists(st.integers(0, 3), max_size=6),
)
_VALID: dict[str, st.SearchStrategy[Any]] = {
    "uint64": st.integers(min_value=0, max_value=U64_MAX),
    "name": st.text(max_size=2) | st.text(min_size=MAX_NAME_LENGTH, max_size=MAX_NAME_LENGTH),
    "bytes": st.binary(max_size=2),
    "bool": st.booleans(),
    "status": st.integers(min_value=0, max_value=3),
}


def _values(kind: str, junk: bool) -> st.SearchStrategy[Any]:
    """Values of ``kind``: valid ones, or (``junk``) anything, often near a limit."""
    if kind == "names":
        valid = st.lists((_VALID["name"] | _JUNK) if junk else _VALID["name"], max_size=3)
    elif kind == "versions":
        valid = st.lists((_VALID["uint64"] | _JUNK) if junk else _VALID["uint64"], max_size=3)
    elif kind in ("members", "deltas"):
        kinds = (
            EXPECTED_MEMBER_COLUMNS if kind == "members" else EXPECTED_KINDS[StateDelta]
        ).values()
        columns = [(_VALID[k] | _JUNK) if junk else _VALID[k] for k in kinds]
        rows = st.tuples(*columns).map(list)
        if junk:
            rows = rows | st.lists(_VALID["name"], max_size=6) | _JUNK
        valid = st.lists(rows, max_size=3)
    else:
        valid = _VALID[kind]
    return (valid | _JUNK) if junk else valid


@st.composite
def _rows(draw: st.DrawFn, cls: type[Message]) -> list[Any]:
    """A message array of class ``cls``, often with broken fields or a wrong length."""
    kinds = list(EXPECTED_KINDS[cls].values())
    junk = draw(st.sets(st.sampled_from(range(len(kinds))), max_size=3))
    row = [MESSAGE_TYPES_BY_CLASS[cls]]
    row += [draw(_values(kind, index in junk)) for index, kind in enumerate(kinds)]
    change = draw(st.sampled_from(["none"] * 8 + ["add", "drop"]))
    if change == "add":
        row.append(draw(_JUNK))
    elif change == "drop":
        row.pop()
    return row


@pytest.mark.parametrize("cls", list(MESSAGE_TYPES.values()), ids=lambda c: c.__name__)
@given(data=st.data())
def test_fast_check_and_explanation_agree(cls: type[Message], data: st.DataObject) -> None:
    row = data.draw(_rows(cls))
    broken = _codec_rules.violation(_codec_rules.RECORDS[cls], row)
    decoder = _codec_generated.DECODERS[MESSAGE_TYPES_BY_CLASS[cls]]
    try:
        message = decoder(row)
    except DecodeError as exc:
        event("refused")
        # Refused exactly when the explanation finds a broken rule, and says which.
        assert broken is not None, f"fast path refused {row!r}, the rules accept it"
        assert str(exc) == broken
        assert re.fullmatch(rf"{cls.__name__}(\.\w+(\[\d+\])?)*: expected .+, got .+", broken)
    else:
        event("accepted")
        assert broken is None, f"fast path accepted {row!r}, but {broken}"
        assert type(message) is cls
        # What was accepted is what the message encodes to (ints and flags keep their type).
        assert msgpack.unpackb(encode_message(message), raw=False) == row


def _kinds(kind: _codec_rules.Kind) -> list[_codec_rules.Kind]:
    """``kind`` and every kind inside it (list items, member columns)."""
    found = [kind]
    if kind.items is not None:
        found += _kinds(kind.items)
    if kind.rows is not None:
        for column in kind.rows.fields:
            found += _kinds(column.kind)
    return found


def _table_kinds() -> list[_codec_rules.Kind]:
    every = (
        kind
        for record in _codec_rules.RECORDS.values()
        for field in record.fields
        for kind in _kinds(field.kind)
    )
    return list({id(kind): kind for kind in every}.values())


def test_every_rule_of_the_table_has_a_witness() -> None:
    in_table = {("message", str(r)) for x in _codec_rules.RECORDS.values() for r in x.shape}
    for kind in _table_kinds():
        in_table |= {(kind.name, str(rule)) for rule in kind.rules}
        if kind.rows is not None:
            in_table |= {(kind.name, str(rule)) for rule in kind.rows.shape}
    witnessed = {(case.values[1], case.values[4]) for case in WITNESS_CASES}
    missing = in_table - witnessed
    assert not missing, f"rules without a witness in WITNESSES: {sorted(missing)}"


def _without(kind: _codec_rules.Kind, old: _codec_rules.Kind, new: _codec_rules.Kind) -> Any:
    """``kind`` with every use of ``old`` inside it replaced by ``new``."""
    if kind is old:
        return new
    items = None if kind.items is None else _without(kind.items, old, new)
    rows = kind.rows
    if rows is not None:
        fields = tuple(attrs.evolve(f, kind=_without(f.kind, old, new)) for f in rows.fields)
        rows = attrs.evolve(rows, fields=fields)
    return attrs.evolve(kind, items=items, rows=rows)


def _mutants() -> list[Any]:
    """One rule table per rule of a kind, with that rule dropped."""
    mutants = []
    for kind in _table_kinds():
        for rule in kind.rules:
            weaker = attrs.evolve(kind, rules=tuple(r for r in kind.rules if r is not rule))
            records = {
                cls: attrs.evolve(
                    record,
                    fields=tuple(
                        attrs.evolve(f, kind=_without(f.kind, kind, weaker)) for f in record.fields
                    ),
                )
                for cls, record in _codec_rules.RECORDS.items()
            }
            mutants.append(pytest.param(records, id=f"{kind.name}-without-{rule}"))
    return mutants


@pytest.mark.parametrize("records", _mutants())
def test_dropping_any_rule_from_the_table_lets_a_witness_through(records: Any) -> None:
    # Generate the decoders of the weakened table (as _codec_rules.main() would) and run
    # every witness through them: at least one must now be accepted, or fail with an
    # exception other than DecodeError (a dropped type rule lets `<=` meet a str). Either
    # way test_each_rule_is_enforced_and_named would fail on that table.
    namespace: dict[str, Any] = {"__name__": "mutant", "__package__": "swimgossip.core"}
    exec(compile(_codec_rules.render(records), "<mutant>", "exec"), namespace)
    noticed = []
    for case in WITNESS_CASES:
        cls, _, where, row, rule = case.values
        try:
            namespace["DECODERS"][MESSAGE_TYPES_BY_CLASS[cls]](row)
        except DecodeError:
            continue
        except Exception as exc:
            noticed.append(f"{where}: {rule} ({type(exc).__name__})")
        else:
            noticed.append(f"{where}: {rule} (accepted)")
    assert noticed, "no witness notices the dropped rule"


# --- push-pull rows the receiver holds (issue 16) ------------------------------------------


def _held_state() -> tuple[dict[str, Member], PushPull]:
    held = {
        f"n{i}": Member(
            name=f"n{i}", address=f"10.0.0.{i}:7946", status=Status(i % 4), incarnation=i
        )
        for i in range(6)
    }
    state = PushPull(source="n9", join=False, members=tuple(held.values()), suspected_by=())
    return held, state


def test_push_pull_rows_equal_to_held_ones_decode_as_the_held_values() -> None:
    held, state = _held_state()
    newer = attrs.evolve(held["n2"], incarnation=99)
    stranger = Member(name="x", address="10.0.0.99:7946", status=Status.ALIVE, incarnation=1)
    sent = attrs.evolve(state, members=(*state.members[:2], newer, *state.members[3:], stranger))
    decoded = decode_stream(encode_stream(sent), held)
    assert decoded == sent == decode_stream(encode_stream(sent))
    assert isinstance(decoded, PushPull)
    same = [member is held.get(member.name) for member in decoded.members]
    assert same == [True, True, False, True, True, True, False]


@pytest.mark.parametrize(
    ("column", "value"),
    [(2, True), (3, 2.0), (3, True), (4, "")],
    ids=["status-bool", "incarnation-float", "incarnation-bool", "meta-str"],
)
def test_a_row_equal_to_a_held_one_only_by_loose_equality_is_still_refused(
    column: int, value: Any
) -> None:
    # True == 1 and 2.0 == 2 in Python: the bulk comparison must not let them through.
    held, state = _held_state()
    rows = [list(_codec_generated.MEMBER_FIELDS(m)) for m in state.members]
    rows = [[cell.value if isinstance(cell, Status) else cell for cell in row] for row in rows]
    rows[1 if column == 2 else 2][column] = value  # n1 is SUSPECT (1), n2 at incarnation 2
    frame = raw_packet([10, "n9", False, rows, []])
    with pytest.raises(DecodeError):
        decode_stream(frame)
    with pytest.raises(DecodeError):
        decode_stream(frame, held)


def test_a_malformed_row_among_held_ones_is_refused() -> None:
    held, state = _held_state()
    rows: list[Any] = [list(_codec_generated.MEMBER_FIELDS(m)) for m in state.members]
    rows.append(["x" * (MAX_NAME_LENGTH + 1), "10.0.0.1:1", 0, 0, b"", 0])
    with pytest.raises(DecodeError, match="name"):
        decode_stream(raw_packet([10, "n9", False, rows, []]), held)
    rows[-1] = ["n1", "10.0.0.1:7946", 1]  # a short row
    with pytest.raises(DecodeError):
        decode_stream(raw_packet([10, "n9", False, rows, []]), held)
