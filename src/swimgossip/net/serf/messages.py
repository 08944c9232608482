"""Serf's messages (hashicorp/serf ``serf/messages.go``), bytes <-> typed values, sans I/O.

Serf rides on memberlist: its messages travel as the body of memberlist ``userMsg`` s
(gossiped broadcasts, or sent to one address), its push-pull state as the user state of
memberlist's push-pull, and its tags as the member's meta. Each message is one Serf type
byte (``SerfMessageType``) then a msgpack struct encoded as go-msgpack's
``MsgpackHandle{}`` does (maps keyed by field name; strings and byte slices in the raw
family; ``LamportTime`` a ``uint64``; ``time.Duration`` an ``int64`` of nanoseconds).
Decoding is as lenient as Go's (unknown fields ignored, missing ones zero) and as strict
as ours: anything malformed, truncated or of the wrong shape raises ``SerfError``, a
``WireError`` the caller counts and drops.

Tags (``encode_serf_tags`` / ``decode_serf_tags``): the magic byte 255 then a msgpack map
of string to string; meta without the magic byte is Serf's protocol-2 form, the whole meta
being the ``role`` tag.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping

import attrs

from ...core.tags import decode_tags, encode_tags
from ..memberlist._msgpack import (
    Value,
    pack_array,
    pack_bool,
    pack_bytes,
    pack_int,
    pack_map,
    pack_uint,
    unpack,
)
from ..memberlist.codec import _bool, _bytes, _int, _str, _struct, _uint
from ..memberlist.errors import MsgpackError, WireError

__all__ = [
    "MAX_TAGS_BYTES",
    "QUERY_FLAG_ACK",
    "QUERY_FLAG_NO_BROADCAST",
    "TAG_MAGIC_BYTE",
    "EventsAt",
    "JoinIntent",
    "LeaveIntent",
    "Query",
    "QueryFilter",
    "QueryResponse",
    "Relay",
    "SerfError",
    "SerfMessage",
    "SerfMessageType",
    "SerfPushPull",
    "UnknownSerfMessage",
    "UserEvent",
    "decode_filter",
    "decode_serf_message",
    "decode_serf_push_pull",
    "decode_serf_tags",
    "encode_filter",
    "encode_serf_message",
    "encode_serf_push_pull",
    "encode_serf_tags",
    "our_meta_to_serf",
    "serf_meta_to_ours",
]

#: The first byte of meta holding msgpack-encoded tags (``tagMagicByte``).
TAG_MAGIC_BYTE = 255
#: memberlist's ``MetaMaxSize``: encoded tags must fit.
MAX_TAGS_BYTES = 512

#: Query flags (``queryFlagAck``, ``queryFlagNoBroadcast``).
QUERY_FLAG_ACK = 1
QUERY_FLAG_NO_BROADCAST = 2


class SerfError(WireError):
    """A Serf message, push-pull state or tag map that is malformed or of the wrong shape."""


class UnknownSerfMessage(SerfError):
    """A Serf message type byte that is not gossiped as a message (``type`` says which)."""

    def __init__(self, message_type: int) -> None:
        super().__init__(f"unknown serf message type {message_type}")
        self.type = message_type


class SerfMessageType(enum.IntEnum):
    """Serf's message type byte (``messageType`` in messages.go)."""

    LEAVE = 0
    JOIN = 1
    PUSH_PULL = 2
    USER_EVENT = 3
    QUERY = 4
    QUERY_RESPONSE = 5
    CONFLICT_RESPONSE = 6
    KEY_REQUEST = 7
    KEY_RESPONSE = 8
    RELAY = 9


@attrs.frozen(kw_only=True)
class JoinIntent:
    """``messageJoin``: ``node`` joined at Lamport time ``ltime`` (or refutes a leave)."""

    ltime: int
    node: str


@attrs.frozen(kw_only=True)
class LeaveIntent:
    """``messageLeave``: ``node`` intends to leave at ``ltime`` (``prune``: also erase it;
    a field Serf 0.9.4 does not send and ignores)."""

    ltime: int
    node: str
    prune: bool = False


@attrs.frozen(kw_only=True)
class UserEvent:
    """``messageUserEvent``: a named event with a payload at the event clock's ``ltime``
    (``coalesce``: Serf's ``CC``, the receiver may coalesce events of one name)."""

    ltime: int
    name: str
    payload: bytes = b""
    coalesce: bool = False


@attrs.frozen(kw_only=True)
class QueryFilter:
    """One query filter: ``kind`` 0 lists node names (``nodes``), 1 a tag regex."""

    kind: int
    nodes: tuple[str, ...] = ()
    tag: str = ""
    expr: str = ""


@attrs.frozen(kw_only=True)
class Query:
    """``messageQuery``: a query to answer at ``addr``:``port`` (``source_node``) within
    ``timeout_ns``; ``filters`` are the raw encoded filters (see ``decode_filter``)."""

    ltime: int
    id: int
    addr: bytes
    port: int
    source_node: str
    filters: tuple[bytes, ...] = ()
    flags: int = 0
    relay_factor: int = 0
    timeout_ns: int = 0
    name: str = ""
    payload: bytes = b""

    @property
    def wants_ack(self) -> bool:
        """The querier asked every member that processes it for an ack."""
        return bool(self.flags & QUERY_FLAG_ACK)

    @property
    def no_broadcast(self) -> bool:
        """The query must not be re-broadcast."""
        return bool(self.flags & QUERY_FLAG_NO_BROADCAST)


@attrs.frozen(kw_only=True)
class QueryResponse:
    """``messageQueryResponse``: ``sender`` (Go's ``From``) answers or acks a query."""

    ltime: int
    id: int
    sender: str
    flags: int = 0
    payload: bytes = b""


@attrs.frozen(kw_only=True)
class Relay:
    """``messageRelayType``: forward ``message`` (a whole Serf message, type byte first)
    to ``dest_addr``:``dest_port`` (member ``dest_name``)."""

    dest_addr: bytes
    dest_port: int
    dest_name: str
    message: bytes
    dest_zone: str = ""


SerfMessage = JoinIntent | LeaveIntent | UserEvent | Query | QueryResponse | Relay


@attrs.frozen(kw_only=True)
class EventsAt:
    """``userEvents``: the user events (name, payload) seen at one event Lamport time."""

    ltime: int
    events: tuple[tuple[str, bytes], ...]


@attrs.frozen(kw_only=True)
class SerfPushPull:
    """``messagePushPull``: Serf's user state in a memberlist push-pull."""

    ltime: int
    status_ltimes: tuple[tuple[str, int], ...] = ()
    left_members: tuple[str, ...] = ()
    event_ltime: int = 0
    events: tuple[EventsAt, ...] = ()
    query_ltime: int = 0


# --- encoding ----------------------------------------------------------------------------


def _text(value: str) -> bytes:
    return pack_bytes(value.encode())


def _body(message: SerfMessage) -> tuple[SerfMessageType, bytes]:
    if isinstance(message, JoinIntent):
        fields = [("LTime", pack_uint(message.ltime)), ("Node", _text(message.node))]
        return SerfMessageType.JOIN, pack_map(fields)
    if isinstance(message, LeaveIntent):
        fields = [
            ("LTime", pack_uint(message.ltime)),
            ("Node", _text(message.node)),
            ("Prune", pack_bool(message.prune)),
        ]
        return SerfMessageType.LEAVE, pack_map(fields)
    if isinstance(message, UserEvent):
        fields = [
            ("LTime", pack_uint(message.ltime)),
            ("Name", _text(message.name)),
            ("Payload", pack_bytes(message.payload)),
            ("CC", pack_bool(message.coalesce)),
        ]
        return SerfMessageType.USER_EVENT, pack_map(fields)
    if isinstance(message, Query):
        fields = [
            ("LTime", pack_uint(message.ltime)),
            ("ID", pack_uint(message.id)),
            ("Addr", pack_bytes(message.addr)),
            ("Port", pack_uint(message.port)),
            ("SourceNode", _text(message.source_node)),
            ("Filters", pack_array([pack_bytes(f) for f in message.filters])),
            ("Flags", pack_uint(message.flags)),
            ("RelayFactor", pack_uint(message.relay_factor)),
            ("Timeout", pack_int(message.timeout_ns)),
            ("Name", _text(message.name)),
            ("Payload", pack_bytes(message.payload)),
        ]
        return SerfMessageType.QUERY, pack_map(fields)
    if isinstance(message, QueryResponse):
        fields = [
            ("LTime", pack_uint(message.ltime)),
            ("ID", pack_uint(message.id)),
            ("From", _text(message.sender)),
            ("Flags", pack_uint(message.flags)),
            ("Payload", pack_bytes(message.payload)),
        ]
        return SerfMessageType.QUERY_RESPONSE, pack_map(fields)
    header = pack_map(
        [
            (
                "DestAddr",
                pack_map(
                    [
                        ("IP", pack_bytes(message.dest_addr)),
                        ("Port", pack_int(message.dest_port)),
                        ("Zone", _text(message.dest_zone)),
                    ]
                ),
            ),
            ("DestName", _text(message.dest_name)),
        ]
    )
    return SerfMessageType.RELAY, header + message.message


def encode_serf_message(message: SerfMessage) -> bytes:
    """One Serf message as Serf puts it in a ``userMsg``: its type byte, then its body."""
    kind, body = _body(message)
    return bytes((kind,)) + body


def _events_at(value: Value) -> EventsAt | None:
    if value is None:
        return None  # Serf sends its whole ring buffer: empty slots are nil
    if not isinstance(value, dict):
        raise SerfError("push-pull event slot is not a map")
    raw = value.get(b"Events")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise SerfError("push-pull Events is not a list")
    events = []
    for item in raw:
        if not isinstance(item, dict):
            raise SerfError("push-pull user event is not a map")
        events.append((_str(item, "Name"), _bytes(item, "Payload")))
    return EventsAt(ltime=_uint(value, "LTime", 64), events=tuple(events))


def encode_serf_push_pull(state: SerfPushPull) -> bytes:
    """Serf's push-pull user state: the type byte 2, then ``messagePushPull``."""
    events = [
        pack_map(
            [
                ("LTime", pack_uint(slot.ltime)),
                (
                    "Events",
                    pack_array(
                        [
                            pack_map([("Name", _text(name)), ("Payload", pack_bytes(payload))])
                            for name, payload in slot.events
                        ]
                    ),
                ),
            ]
        )
        for slot in state.events
    ]
    body = pack_map(
        [
            ("LTime", pack_uint(state.ltime)),
            ("StatusLTimes", pack_map([(n, pack_uint(t)) for n, t in state.status_ltimes])),
            ("LeftMembers", pack_array([_text(n) for n in state.left_members])),
            ("EventLTime", pack_uint(state.event_ltime)),
            ("Events", pack_array(events)),
            ("QueryLTime", pack_uint(state.query_ltime)),
        ]
    )
    return bytes((SerfMessageType.PUSH_PULL,)) + body


def _decode_push_pull(buf: bytes) -> SerfPushPull:
    if not buf or buf[0] != SerfMessageType.PUSH_PULL:
        raise SerfError(f"serf push-pull state has a bad type prefix: {buf[:1].hex() or 'none'}")
    body, _ = _struct(buf, 1)
    times = body.get(b"StatusLTimes") or {}
    left = body.get(b"LeftMembers") or []
    slots = body.get(b"Events") or []
    if not isinstance(times, dict) or not isinstance(left, list) or not isinstance(slots, list):
        raise SerfError("serf push-pull fields have the wrong shape")
    status_ltimes = tuple((_name(k), _ltime(v)) for k, v in times.items())
    left_members = tuple(_name(n) for n in left)
    events = tuple(e for e in (_events_at(s) for s in slots) if e is not None)
    return SerfPushPull(
        ltime=_uint(body, "LTime", 64),
        status_ltimes=status_ltimes,
        left_members=left_members,
        event_ltime=_uint(body, "EventLTime", 64),
        events=events,
        query_ltime=_uint(body, "QueryLTime", 64),
    )


def _ltime(value: Value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise SerfError("a Lamport time is not a uint64")
    return value


def _name(value: Value) -> str:
    if not isinstance(value, bytes):
        raise SerfError("a member name is not a string")
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise SerfError("a member name is not UTF-8") from None


def _filters(body: dict[bytes, Value]) -> tuple[bytes, ...]:
    raw = body.get(b"Filters") or []
    if not isinstance(raw, list) or not all(isinstance(f, bytes) for f in raw):
        raise SerfError("query Filters is not a list of byte strings")
    return tuple(f for f in raw if isinstance(f, bytes))


def _relay(buf: bytes) -> Relay:
    header, end = _struct(buf, 1)
    dest = header.get(b"DestAddr") or {}
    if not isinstance(dest, dict):
        raise SerfError("relay DestAddr is not a map")
    port = _int(dest, "Port")
    if not 0 <= port <= 0xFFFF:
        raise SerfError(f"relay port out of range: {port}")
    if end >= len(buf):
        raise SerfError("relay carries no message")
    return Relay(
        dest_addr=_bytes(dest, "IP"),
        dest_port=port,
        dest_zone=_str(dest, "Zone"),
        dest_name=_str(header, "DestName"),
        message=buf[end:],
    )


def _decode(buf: bytes) -> SerfMessage:
    if not buf:
        raise SerfError("empty serf message")
    kind = buf[0]
    if kind == SerfMessageType.RELAY:
        return _relay(buf)
    if kind not in _BODIES:
        raise UnknownSerfMessage(kind)
    body, _ = _struct(buf, 1)
    return _BODIES[kind](body)


_BODIES: dict[int, Callable[[dict[bytes, Value]], SerfMessage]] = {
    SerfMessageType.JOIN: lambda b: JoinIntent(ltime=_uint(b, "LTime", 64), node=_str(b, "Node")),
    SerfMessageType.LEAVE: lambda b: LeaveIntent(
        ltime=_uint(b, "LTime", 64), node=_str(b, "Node"), prune=_bool(b, "Prune")
    ),
    SerfMessageType.USER_EVENT: lambda b: UserEvent(
        ltime=_uint(b, "LTime", 64),
        name=_str(b, "Name"),
        payload=_bytes(b, "Payload"),
        coalesce=_bool(b, "CC"),
    ),
    SerfMessageType.QUERY: lambda b: Query(
        ltime=_uint(b, "LTime", 64),
        id=_uint(b, "ID", 32),
        addr=_bytes(b, "Addr"),
        port=_uint(b, "Port", 16),
        source_node=_str(b, "SourceNode"),
        filters=_filters(b),
        flags=_uint(b, "Flags", 32),
        relay_factor=_uint(b, "RelayFactor", 8),
        timeout_ns=_int(b, "Timeout"),
        name=_str(b, "Name"),
        payload=_bytes(b, "Payload"),
    ),
    SerfMessageType.QUERY_RESPONSE: lambda b: QueryResponse(
        ltime=_uint(b, "LTime", 64),
        id=_uint(b, "ID", 32),
        sender=_str(b, "From"),
        flags=_uint(b, "Flags", 32),
        payload=_bytes(b, "Payload"),
    ),
}


def _typed(decode: Callable[[bytes], object], what: str, buf: bytes) -> object:
    try:
        return decode(buf)
    except SerfError:
        raise
    except MsgpackError as exc:
        raise SerfError(f"malformed serf {what}: {exc}") from exc


def decode_serf_message(buf: bytes) -> SerfMessage:
    """One Serf message from a ``userMsg`` body (type byte first).

    Raises:
        UnknownSerfMessage: a type byte Serf does not gossip as a message (push-pull, key
            and conflict payloads ride elsewhere) or does not define.
        SerfError: the body is malformed, truncated or of the wrong shape.
    """
    out = _typed(_decode, "message", buf)
    assert isinstance(out, (JoinIntent, LeaveIntent, UserEvent, Query, QueryResponse, Relay))
    return out


def decode_serf_push_pull(buf: bytes) -> SerfPushPull:
    """Serf's push-pull user state (type byte 2 first); ``SerfError`` if malformed."""
    out = _typed(_decode_push_pull, "push-pull state", buf)
    assert isinstance(out, SerfPushPull)
    return out


# --- query filters -----------------------------------------------------------------------


def decode_filter(raw: bytes) -> QueryFilter:
    """One query filter (its filter type byte first); ``SerfError`` if malformed."""

    def decode(buf: bytes) -> QueryFilter:
        if not buf:
            raise SerfError("empty query filter")
        value, _ = unpack(buf, 1)
        if buf[0] == 0:
            if not isinstance(value, list):
                raise SerfError("node filter is not a list")
            return QueryFilter(kind=0, nodes=tuple(_name(n) for n in value))
        if buf[0] == 1:
            if not isinstance(value, dict):
                raise SerfError("tag filter is not a map")
            return QueryFilter(kind=1, tag=_str(value, "Tag"), expr=_str(value, "Expr"))
        raise SerfError(f"unknown query filter type {buf[0]}")

    out = _typed(decode, "query filter", raw)
    assert isinstance(out, QueryFilter)
    return out


def encode_filter(query_filter: QueryFilter) -> bytes:
    """A query filter as Serf encodes it (``encodeFilter``)."""
    if query_filter.kind == 0:
        return b"\x00" + pack_array([_text(n) for n in query_filter.nodes])
    fields = [("Tag", _text(query_filter.tag)), ("Expr", _text(query_filter.expr))]
    return b"\x01" + pack_map(fields)


# --- tags --------------------------------------------------------------------------------


def encode_serf_tags(tags: Mapping[str, str]) -> bytes:
    """Serf's meta for ``tags``: byte 255 then a msgpack map, keys sorted.

    Raises:
        ValueError: a key or value is not a ``str``, or the encoding exceeds 512 bytes
            (memberlist's ``MetaMaxSize``).
    """
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"serf tags are str to str, got {key!r}: {value!r}")
    body = pack_map([(k, _text(tags[k])) for k in sorted(tags)])
    meta = bytes((TAG_MAGIC_BYTE,)) + body
    if len(meta) > MAX_TAGS_BYTES:
        raise ValueError(f"encoded tags are {len(meta)} bytes, over the {MAX_TAGS_BYTES} limit")
    return meta


def decode_serf_tags(meta: bytes) -> dict[str, str]:
    """The tags in a Serf member's meta, as Serf reads them: without the magic byte the
    whole meta is the ``role`` tag (Serf's protocol 2), so empty meta is ``{"role": ""}``.

    Raises:
        SerfError: the msgpack map is malformed or holds something other than strings.
    """
    if not meta or meta[0] != TAG_MAGIC_BYTE:
        return {"role": meta.decode(errors="replace")}

    def decode(buf: bytes) -> dict[str, str]:
        value, _ = unpack(buf, 1)
        if not isinstance(value, dict):
            raise SerfError("serf tags are not a msgpack map")
        out: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(item, bytes):
                raise SerfError("a serf tag value is not a string")
            try:
                out[key.decode()] = item.decode()
            except UnicodeDecodeError:
                raise SerfError("a serf tag is not UTF-8") from None
        return out

    out = _typed(decode, "tags", meta)
    assert isinstance(out, dict)
    return out


def serf_meta_to_ours(meta: bytes) -> bytes:
    """A Serf member's meta as our tags' meta (``swimgossip.encode_tags``), so that
    ``Member.tags`` reads Go members' tags: Serf's tag map, or the legacy role-only meta as
    ``{"role": ...}``; empty meta has no tags. Keys our tags cannot hold (empty, or with
    ``=``) are dropped; meta that is not a valid tag map becomes empty. Never raises."""
    if not meta:
        return b""
    try:
        tags = decode_serf_tags(meta)
    except SerfError:
        return b""
    return encode_tags({k: v for k, v in tags.items() if k and "=" not in k})


def our_meta_to_serf(meta: bytes) -> bytes:
    """Our tags' meta (JSON, or empty) as Serf's meta (byte 255 + msgpack map).

    Raises:
        ValueError: the tags do not fit memberlist's 512 bytes.
    """
    return encode_serf_tags(decode_tags(meta))


#: The decoders the fuzz tests drive: each raises only ``WireError`` (``SerfError``).
DECODERS: tuple[Callable[[bytes], object], ...] = (
    decode_serf_message,
    decode_serf_push_pull,
    decode_serf_tags,
    decode_filter,
)
