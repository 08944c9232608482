"""Bytes <-> messages. Versioned, compact, bounded; the only place that parses the wire.

A packet is one version byte followed by a msgpack array of messages; each message is a
msgpack array ``[type, field, ...]`` with the fields in the order of its class (see
docs/protocol.md for every byte). Piggybacking is therefore just concatenation: the
broadcast queue stores each gossip message already encoded, the engine prefixes an array
header, and the size of a packet is known exactly before it is built.

Decoding trusts nothing: the input length is checked first, msgpack's own limits refuse any
string, byte string or array longer than the caps before allocating it, maps and extension
types are refused, and every field is type- and range-checked. Every failure is one
``DecodeError``; no other exception escapes ``decode_packet``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import msgpack

from .errors import DecodeError
from .member import Member, Status
from .messages import MESSAGE_TYPES, Message, PushPull

__all__ = [
    "MAX_DATAGRAM_SIZE",
    "MAX_NAME_LENGTH",
    "MAX_STREAM_SIZE",
    "VERSION",
    "array_header",
    "decode_packet",
    "decode_stream",
    "encode_message",
    "encode_packet",
    "encode_stream",
    "join_packet",
]

#: Protocol version; the first byte of every packet and stream frame.
VERSION = 1
#: Largest datagram the decoder looks at (the largest UDP payload).
MAX_DATAGRAM_SIZE = 65_507
#: Largest stream frame (a push-pull of ~20,000 members with small metadata).
MAX_STREAM_SIZE = 32 * 1024 * 1024
#: Longest member name or address, in characters.
MAX_NAME_LENGTH = 256
#: Longest byte string (metadata, user payload).
MAX_BYTES_LENGTH = 64 * 1024
#: Most messages in one datagram, most members in one push-pull.
MAX_DATAGRAM_MESSAGES = 1024
MAX_STREAM_MEMBERS = 100_000

_U64 = (1 << 64) - 1
_STATUSES = tuple(Status)
_MEMBER_SETTERS = tuple(
    Member.__dict__[name].__set__ for name in ("name", "address", "status", "incarnation", "meta")
)
_VERSION_BYTE = bytes([VERSION])

# Field kinds: "u" unsigned 64-bit int, "s" bounded str, "b" bounded bytes, "?" bool,
# "m" list of member states, "L" list of short strings (push-pull only).
_FIELD_KINDS: dict[type[Any], tuple[tuple[str, str], ...]] = {}
_TYPE_IDS: dict[type[Any], int] = {}
for _type_id, _cls in MESSAGE_TYPES.items():
    _TYPE_IDS[_cls] = _type_id
_KIND_BY_NAME = {
    "seq": "u",
    "incarnation": "u",
    "id": "u",
    "target": "s",
    "target_address": "s",
    "name": "s",
    "address": "s",
    "source": "s",
    "meta": "b",
    "payload": "b",
    "nack": "?",
    "join": "?",
    "members": "m",
    "suspected_by": "L",
}
for _cls in MESSAGE_TYPES.values():
    _FIELD_KINDS[_cls] = tuple(
        (field.name, _KIND_BY_NAME[field.name]) for field in attrs.fields(_cls)
    )


def array_header(count: int) -> bytes:
    """The msgpack header of an array of ``count`` elements."""
    if count < 16:
        return bytes([0x90 | count])
    if count < 0x10000:
        return b"\xdc" + struct.pack(">H", count)
    return b"\xdd" + struct.pack(">I", count)


def _member_row(member: Member) -> list[Any]:
    return [member.name, member.address, int(member.status), member.incarnation, member.meta]


def encode_message(message: Message) -> bytes:
    """Encode one message as a msgpack array ``[type, fields...]`` (no version byte)."""
    return _PACKER.pack(_ROWS[type(message)](message))  # type: ignore[no-any-return]


def join_packet(encoded: Sequence[bytes]) -> bytes:
    """Build a packet from messages already encoded with :func:`encode_message`."""
    return _VERSION_BYTE + array_header(len(encoded)) + b"".join(encoded)


def encode_packet(messages: Iterable[Message]) -> bytes:
    """Encode a compound packet: the version byte, then an array of messages."""
    # msgpack is concatenative: packing the list of rows in one call gives the same bytes
    # as join_packet over encode_message, with one C call instead of one per message.
    rows = _ROWS
    packed: bytes = _PACKER.pack([rows[type(m)](m) for m in messages])
    return _VERSION_BYTE + packed


def encode_stream(message: Message) -> bytes:
    """Encode one stream frame payload (a push-pull or a stream ping/ack)."""
    return join_packet([encode_message(message)])


def _check(value: Any, kind: str) -> Any:
    if kind == "L":  # a list of short strings
        if type(value) is not list or any(
            type(item) is not str or len(item) > MAX_NAME_LENGTH for item in value
        ):
            raise DecodeError("expected a list of short strings")
        return tuple(value)
    if kind == "u":
        if type(value) is not int or not 0 <= value <= _U64:
            raise DecodeError(f"expected an unsigned integer, got {type(value).__name__}")
        return value
    if kind == "s":
        if type(value) is not str or len(value) > MAX_NAME_LENGTH:
            raise DecodeError("expected a short string")
        return value
    if kind == "b":
        if type(value) is not bytes:
            raise DecodeError(f"expected bytes, got {type(value).__name__}")
        return value
    if kind == "?":
        if type(value) is not bool:
            raise DecodeError(f"expected a bool, got {type(value).__name__}")
        return value
    # "m": member rows (the bulk of a push-pull: checked inline, it is the hot path)
    if type(value) is not list:
        raise DecodeError("expected a list of members")
    members = []
    statuses = _STATUSES
    new = object.__new__
    set_name, set_address, set_status, set_incarnation, set_meta = _MEMBER_SETTERS
    for row in value:
        if type(row) is not list or len(row) != 5:
            raise DecodeError("a member row must have 5 fields")
        name, address, status, incarnation, meta = row
        if (
            type(name) is not str
            or len(name) > MAX_NAME_LENGTH
            or type(address) is not str
            or len(address) > MAX_NAME_LENGTH
            or type(status) is not int
            or not 0 <= status <= 3
            or type(incarnation) is not int
            or not 0 <= incarnation <= _U64
            or type(meta) is not bytes
        ):
            raise DecodeError("malformed member row")
        member = new(Member)  # checked above: fill the slots, skip attrs' __init__
        set_name(member, name)
        set_address(member, address)
        set_status(member, statuses[status])
        set_incarnation(member, incarnation)
        set_meta(member, meta)
        members.append(member)
    return tuple(members)


def _build(row: Any) -> Message:
    if type(row) is not list or not row:
        raise DecodeError("a message must be a non-empty array")
    decoder = _DECODERS.get(row[0]) if type(row[0]) is int else None
    if decoder is None:
        raise DecodeError(f"unknown message type {row[0]!r}")
    message: Message = decoder(row)
    return message


def _explain(row: list[Any], kinds: tuple[tuple[str, str], ...]) -> None:
    """Raise the ``DecodeError`` of the first bad field of ``row`` (the slow path)."""
    for value, (_, kind) in zip(row[1:], kinds, strict=True):
        _check(value, kind)
    raise DecodeError("malformed message")  # not reached: some field failed its check


# Per message class, a row builder (the list ``[type, fields...]`` that msgpack packs) and
# a decoder specialised to its fields, generated once from the field kinds above: the
# generic loop cost more than msgpack itself. The decoder checks every plain field in one
# boolean expression (limits inlined as constants) and only on failure walks the fields
# again to say which one is wrong.
_FAST_CHECKS = {
    "u": f"type({{v}}) is int and 0 <= {{v}} <= {_U64}",
    "s": f"type({{v}}) is str and len({{v}}) <= {MAX_NAME_LENGTH}",
    "b": "type({v}) is bytes",
    "?": "type({v}) is bool",
}


def _make_codec(
    type_id: int, cls: type[Any]
) -> tuple[Callable[[Any], list[Any]], Callable[[list[Any]], Any]]:
    kinds = _FIELD_KINDS[cls]
    names = [name for name, _ in kinds]
    values = ", ".join(f"m.{name}" if kind != "m" else f"_rows(m.{name})" for name, kind in kinds)
    fast = " and ".join(
        _FAST_CHECKS[kind].format(v=name) for name, kind in kinds if kind in _FAST_CHECKS
    )
    checks = f"if not ({fast}):\n        _explain(row, _kinds)" if fast else "pass"
    # Lists (push-pull only) are checked and converted after the plain fields; on a bad
    # plain field _explain checks every field in order, so the first bad one is reported.
    converts = "".join(
        f"\n    {name} = _check({name}, {kind!r})" for name, kind in kinds if kind in "mL"
    )
    # The values are checked above, so the instance is filled through its slots instead of
    # running attrs' frozen __init__ again (five times faster; the messages have no
    # validators or converters to skip).
    setters = "\n    ".join(f"_set_{name}(message, {name})" for name in names)
    unpack = ", ".join(["_", *names]) + ("," if not names else "")
    source = f"""
def row(m):
    return [{type_id}, {values}]

def decode(row):
    if len(row) != {len(kinds) + 1}:
        raise DecodeError("{cls.__name__} needs {len(kinds)} fields, got %d" % (len(row) - 1))
    {unpack} = row
    {checks}{converts}
    message = _new(_cls)
    {setters}
    return message
"""
    scope: dict[str, Any] = {
        "_rows": _rows,
        "_check": _check,
        "_explain": _explain,
        "_kinds": kinds,
        "_cls": cls,
        "_new": object.__new__,
        **{f"_set_{name}": cls.__dict__[name].__set__ for name in names},
        "DecodeError": DecodeError,
    }
    exec(source, scope)
    return scope["row"], scope["decode"]


_PACKER = msgpack.Packer(use_bin_type=True)


def _rows(members: tuple[Member, ...]) -> list[list[Any]]:
    return [_member_row(m) for m in members]


_ROWS: dict[type[Any], Callable[[Any], list[Any]]] = {}
_DECODERS: dict[int, Callable[[list[Any]], Any]] = {}
for _type_id, _cls in MESSAGE_TYPES.items():
    _ROWS[_cls], _DECODERS[_type_id] = _make_codec(_type_id, _cls)
_PUSH_PULL_DECODER = _DECODERS[_TYPE_IDS[PushPull]]


def _unpack(data: bytes, *, max_size: int, max_array: int) -> list[Any]:
    if len(data) < 2:
        raise DecodeError("packet too short")
    if len(data) > max_size:
        raise DecodeError(f"packet of {len(data)} bytes exceeds {max_size}")
    if data[0] != VERSION:
        raise DecodeError(f"unsupported protocol version {data[0]}")
    try:
        body = msgpack.unpackb(
            memoryview(data)[1:],
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=MAX_NAME_LENGTH * 4,
            max_bin_len=MAX_BYTES_LENGTH,
            max_array_len=max_array,
            max_map_len=0,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises many types; all mean "malformed"
        raise DecodeError(f"malformed msgpack: {type(exc).__name__}") from None
    if type(body) is not list or not body:
        raise DecodeError("a packet must be a non-empty array of messages")
    return body


def decode_packet(data: bytes) -> list[Message]:
    """Decode a datagram into its messages.

    Raises:
        DecodeError: for any malformed input, and only that.
    """
    body = _unpack(data, max_size=MAX_DATAGRAM_SIZE, max_array=MAX_DATAGRAM_MESSAGES)
    # _build inlined: this loop runs for every message of every datagram.
    decoders = _DECODERS
    messages: list[Message] = []
    append = messages.append
    push_pull = False
    for row in body:
        if type(row) is not list or not row:
            raise DecodeError("a message must be a non-empty array")
        type_id = row[0]
        decoder = decoders.get(type_id) if type(type_id) is int else None
        if decoder is None:
            raise DecodeError(f"unknown message type {type_id!r}")
        if decoder is _PUSH_PULL_DECODER:
            push_pull = True  # refused once every message is known to be well formed
        append(decoder(row))
    if push_pull:
        raise DecodeError("push-pull is only valid on a stream")
    return messages


def decode_stream(data: bytes) -> Message:
    """Decode a stream frame payload holding exactly one message.

    Raises:
        DecodeError: for any malformed input, and only that.
    """
    body = _unpack(data, max_size=MAX_STREAM_SIZE, max_array=MAX_STREAM_MEMBERS)
    if len(body) != 1:
        raise DecodeError("a stream frame holds exactly one message")
    message = _build(body[0])
    if type(message) is PushPull and len(message.suspected_by) not in (0, len(message.members)):
        raise DecodeError("suspected_by must be empty or one entry per member")
    return message
