"""Serf's messages, push-pull state, query filters and tags: bytes a Go ``serf agent``
(0.9.4) sent, our encodings of the same values, round trips, and malformed input raising
only the typed ``SerfError`` (a ``WireError``)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimgossip.net.memberlist import WireError
from swimgossip.net.serf import (
    EventsAt,
    JoinIntent,
    LeaveIntent,
    Query,
    QueryFilter,
    QueryResponse,
    Relay,
    SerfError,
    SerfMessage,
    SerfPushPull,
    UnknownSerfMessage,
    UserEvent,
    decode_filter,
    decode_serf_message,
    decode_serf_push_pull,
    decode_serf_tags,
    encode_filter,
    encode_serf_message,
    encode_serf_push_pull,
    encode_serf_tags,
    our_meta_to_serf,
    serf_meta_to_ours,
)
from swimgossip.net.serf.messages import DECODERS

# Captured from `serf agent` 0.9.4 on 127.0.0.1 (userMsg bodies; see test_serf_wire.py).
GO_JOIN = bytes.fromhex("0182a54c54696d6501a44e6f6465a3676f31")
GO_LEAVE = bytes.fromhex("0083a54c54696d6502a44e6f6465a3676f31a55072756e65c2")
GO_EVENT = bytes.fromhex(
    "0384a24343c3a54c54696d6501a44e616d65a66465706c6f79a75061796c6f6164a476312e32"
)
GO_QUERY = bytes.fromhex(
    "048ba441646472a47f000001a746696c74657273c0a5466c61677301a24944ce3512a15fa54c54696d65"
    "01a44e616d65a677686f616d69a75061796c6f6164a178a4506f7274cdd2bdab52656c6179466163746f"
    "7200aa536f757263654e6f6465a3676f31a754696d656f7574ce3b9aca00"
)
# Serf sends its whole 512-slot event ring in a push-pull: empty slots are nil.
GO_PUSH_PULL = (
    bytes.fromhex("0286aa4576656e744c54696d6501a64576656e7473dc0200")
    + b"\xc0" * 512
    + bytes.fromhex(
        "a54c54696d6501ab4c6566744d656d6265727390aa51756572794c54696d6501ac5374617475734c54"
        "696d657381a3676f3100"
    )
)
GO_TAGS = b"\xff\x81\xa4role\xa3web"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (GO_JOIN, JoinIntent(ltime=1, node="go1")),
        (GO_LEAVE, LeaveIntent(ltime=2, node="go1", prune=False)),
        (GO_EVENT, UserEvent(ltime=1, name="deploy", payload=b"v1.2", coalesce=True)),
        (
            GO_QUERY,
            Query(
                ltime=1,
                id=890413407,
                addr=b"\x7f\0\0\1",
                port=53949,
                source_node="go1",
                flags=1,
                timeout_ns=1_000_000_000,
                name="whoami",
                payload=b"x",
            ),
        ),
    ],
)
def test_messages_a_go_agent_sent_decode_and_re_encode(raw: bytes, expected: SerfMessage) -> None:
    assert decode_serf_message(raw) == expected
    ours = encode_serf_message(expected)
    assert ours[0] == raw[0]
    assert decode_serf_message(ours) == expected


def test_a_go_agents_push_pull_state_decodes() -> None:
    state = decode_serf_push_pull(GO_PUSH_PULL)
    assert state == SerfPushPull(ltime=1, status_ltimes=(("go1", 0),), event_ltime=1, query_ltime=1)
    assert decode_serf_push_pull(encode_serf_push_pull(state)) == state


def test_query_flags() -> None:
    query = decode_serf_message(GO_QUERY)
    assert isinstance(query, Query)
    assert query.wants_ack and not query.no_broadcast


def test_join_intent_bytes_are_exactly_a_map_of_two_fields() -> None:
    assert encode_serf_message(JoinIntent(ltime=1, node="go1")) == (
        b"\x01\x82\xa5LTime\x01\xa4Node\xa3go1"
    )


def test_tags_as_serf_encodes_them() -> None:
    assert decode_serf_tags(GO_TAGS) == {"role": "web"}
    assert encode_serf_tags({"role": "web"}) == GO_TAGS
    assert encode_serf_tags({"z": "1", "a": "2"}) == b"\xff\x82\xa1a\xa12\xa1z\xa11"
    assert encode_serf_tags({}) == b"\xff\x80"


def test_meta_without_the_magic_byte_is_the_role_tag() -> None:
    assert decode_serf_tags(b"web") == {"role": "web"}
    assert decode_serf_tags(b"") == {"role": ""}


def test_tags_over_512_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="512"):
        encode_serf_tags({"k": "v" * 600})
    with pytest.raises(ValueError, match="str"):
        encode_serf_tags({"k": 1})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "meta",
    [b"\xff", b"\xff\x81\xa1a\x01", b"\xff\x91\xa1a", b"\xff\x81\xa1a\xa2\xff\xfe", b"\xff\xc1"],
)
def test_malformed_tags_raise_serf_error(meta: bytes) -> None:
    with pytest.raises(SerfError):
        decode_serf_tags(meta)


def test_filters_round_trip() -> None:
    nodes = QueryFilter(kind=0, nodes=("a", "b"))
    tag = QueryFilter(kind=1, tag="role", expr="^web$")
    assert decode_filter(encode_filter(nodes)) == nodes
    assert decode_filter(encode_filter(tag)) == tag
    with pytest.raises(SerfError, match="filter type"):
        decode_filter(b"\x07\x90")


def test_relay_carries_a_whole_message() -> None:
    inner = encode_serf_message(QueryResponse(ltime=3, id=9, sender="py1", flags=1))
    relay = Relay(dest_addr=b"\x7f\0\0\1", dest_port=7946, dest_name="go1", message=inner)
    assert decode_serf_message(encode_serf_message(relay)) == relay


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", SerfError),
        (b"\x02\x80", UnknownSerfMessage),  # push-pull state is not a message
        (b"\x07\x80", UnknownSerfMessage),  # key request: a query payload
        (b"\xc8\x80", UnknownSerfMessage),
        (b"\x01", SerfError),  # no body
        (b"\x01\x91\x01", SerfError),  # body not a map
        (b"\x01\x81\xa5LTime\xff", SerfError),  # negative Lamport time
        (b"\x01\x81\xa4Node\x05", SerfError),  # name not a string
        (b"\x03\x81\xa2CC\x01", SerfError),  # CC not a bool
        (b"\x04\x81\xa7Filters\x91\x01", SerfError),  # a filter not bytes
        (b"\x04\x81\xa2ID\xcf\x00\x00\x00\x01\x00\x00\x00\x00", SerfError),  # ID over uint32
        (b"\x09\x80", SerfError),  # relay without a message
        (b"\x09\x81\xa8DestAddr\x81\xa4Port\xce\x00\x01\x00\x00\x05", SerfError),
    ],
)
def test_malformed_messages_raise_the_typed_error(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_serf_message(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x01\x80",
        b"\x02",
        b"\x02\x81\xacStatusLTimes\x91\x01",
        b"\x02\x81\xacStatusLTimes\x81\xa1a\xa1b",
        b"\x02\x81\xa6Events\x91\x05",
        b"\x02\x81\xa6Events\x91\x81\xa6Events\x91\x01",
        b"\x02\x81\xabLeftMembers\x91\x01",
    ],
)
def test_malformed_push_pull_state_raises_the_typed_error(raw: bytes) -> None:
    with pytest.raises(SerfError):
        decode_serf_push_pull(raw)


def test_every_truncation_of_go_bytes_is_refused_or_decodes() -> None:
    for golden in (GO_JOIN, GO_LEAVE, GO_EVENT, GO_QUERY):
        for end in range(len(golden)):
            with pytest.raises(SerfError):
                decode_serf_message(golden[:end])
    with pytest.raises(SerfError):
        decode_serf_push_pull(GO_PUSH_PULL[:-1])


names = st.text(max_size=20)
ltimes = st.integers(0, 2**64 - 1)
blobs = st.binary(max_size=40)
messages = st.one_of(
    st.builds(JoinIntent, ltime=ltimes, node=names),
    st.builds(LeaveIntent, ltime=ltimes, node=names, prune=st.booleans()),
    st.builds(UserEvent, ltime=ltimes, name=names, payload=blobs, coalesce=st.booleans()),
    st.builds(
        Query,
        ltime=ltimes,
        id=st.integers(0, 2**32 - 1),
        addr=st.sampled_from([b"\x7f\0\0\1", bytes(16)]),
        port=st.integers(0, 65535),
        source_node=names,
        filters=st.lists(blobs, max_size=3).map(tuple),
        flags=st.integers(0, 3),
        relay_factor=st.integers(0, 255),
        timeout_ns=st.integers(-(2**63), 2**63 - 1),
        name=names,
        payload=blobs,
    ),
    st.builds(
        QueryResponse,
        ltime=ltimes,
        id=st.integers(0, 2**32 - 1),
        sender=names,
        flags=st.integers(0, 3),
        payload=blobs,
    ),
)


@given(messages)
def test_messages_round_trip(message: SerfMessage) -> None:
    assert decode_serf_message(encode_serf_message(message)) == message


@given(
    st.builds(
        SerfPushPull,
        ltime=ltimes,
        status_ltimes=st.dictionaries(names, ltimes, max_size=5).map(lambda d: tuple(d.items())),
        left_members=st.lists(names, max_size=3).map(tuple),
        event_ltime=ltimes,
        events=st.lists(
            st.builds(
                EventsAt,
                ltime=ltimes,
                events=st.lists(st.tuples(names, blobs), max_size=3).map(tuple),
            ),
            max_size=3,
        ).map(tuple),
        query_ltime=ltimes,
    )
)
def test_push_pull_state_round_trips(state: SerfPushPull) -> None:
    assert decode_serf_push_pull(encode_serf_push_pull(state)) == state


@given(st.dictionaries(names, names, max_size=8))
def test_tags_round_trip(tags: dict[str, str]) -> None:
    try:
        meta = encode_serf_tags(tags)
    except ValueError:
        return  # over 512 bytes
    assert decode_serf_tags(meta) == tags


@given(st.binary(max_size=200))
def test_garbage_raises_only_the_typed_error(data: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(WireError):
            decode(data)


@given(messages, st.integers(0, 10_000), st.integers(1, 255))
def test_a_flipped_byte_raises_only_the_typed_error(
    message: SerfMessage, where: int, mask: int
) -> None:
    raw = bytearray(encode_serf_message(message))
    raw[where % len(raw)] ^= mask
    with contextlib.suppress(WireError):
        decode_serf_message(bytes(raw))


def test_meta_translates_between_serf_tags_and_ours() -> None:
    assert serf_meta_to_ours(GO_TAGS) == b'{"role":"web"}'
    assert serf_meta_to_ours(b"db") == b'{"role":"db"}'
    assert serf_meta_to_ours(b"") == b""
    assert serf_meta_to_ours(b"\xff\x81\xa1a\x01") == b""  # malformed: no tags
    assert serf_meta_to_ours(encode_serf_tags({"a=b": "1", "": "2", "k": "v"})) == b'{"k":"v"}'
    assert our_meta_to_serf(b'{"role":"web"}') == GO_TAGS
    assert our_meta_to_serf(b"") == b"\xff\x80"
    assert our_meta_to_serf(b"raw bytes") == b"\xff\x80"


@given(st.dictionaries(st.text(min_size=1).filter(lambda k: "=" not in k), names, max_size=6))
def test_tags_survive_the_trip_through_serf_meta(tags: dict[str, str]) -> None:
    try:
        serf = encode_serf_tags(tags)
    except ValueError:
        return
    assert json.loads(serf_meta_to_ours(serf) or b"{}") == tags
    assert our_meta_to_serf(serf_meta_to_ours(serf)) == serf
