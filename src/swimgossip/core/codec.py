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

The field checks are written once, in the rule table of ``_codec_rules.py``. The per-type
decoders and row builders used here are generated from it into ``_codec_generated.py``
(checked in: nothing is built while this module loads). A decoder that refuses a row asks
the table which field broke which rule, and that is the ``DecodeError``'s message; the
table itself is loaded only then, so importing the codec does not pay for it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgpack

from ._codec_generated import DECODERS, ROWS, decode_member_sync, decode_push_pull
from .digest import is_digest_size
from .errors import DecodeError
from .member import Member
from .messages import MAX_NAME_LENGTH, MemberSync, Message, PushPull, StateSync

__all__ = [
    "CARRIES_DIGESTS",
    "CARRIES_STATE",
    "MAX_DATAGRAM_MESSAGES",
    "NAME",
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

#: The wire's name and what it carries (``wire.Wire``: this module is the default wire).
NAME = "swimgossip"
CARRIES_STATE = True
CARRIES_DIGESTS = True
#: Protocol version; the first byte of every packet and stream frame.
VERSION = 1
#: Largest datagram the decoder looks at (the largest UDP payload).
MAX_DATAGRAM_SIZE = 65_507
#: Largest stream frame (a push-pull of ~20,000 members with small metadata).
MAX_STREAM_SIZE = 32 * 1024 * 1024
#: Longest byte string (metadata, user payload).
MAX_BYTES_LENGTH = 64 * 1024
#: Most messages in one datagram, most members in one push-pull.
MAX_DATAGRAM_MESSAGES = 1024
MAX_STREAM_MEMBERS = 100_000

_VERSION_BYTE = bytes([VERSION])
#: Decoders of messages with member rows (stream only; they take the receiver's table).
_KEYED = (decode_push_pull, decode_member_sync)
_PACKER = msgpack.Packer(use_bin_type=True)


def array_header(count: int) -> bytes:
    """The msgpack header of an array of ``count`` elements."""
    if count < 16:
        return bytes([0x90 | count])
    if count < 0x10000:
        return b"\xdc" + struct.pack(">H", count)
    return b"\xdd" + struct.pack(">I", count)


def encode_message(message: Message) -> bytes:
    """Encode one message as a msgpack array ``[type, fields...]`` (no version byte)."""
    packed: bytes = _PACKER.pack(ROWS[type(message)](message))
    return packed


def join_packet(encoded: Sequence[bytes]) -> bytes:
    """Build a packet from messages already encoded with :func:`encode_message`."""
    return _VERSION_BYTE + array_header(len(encoded)) + b"".join(encoded)


def encode_packet(messages: Iterable[Message]) -> bytes:
    """Encode a compound packet: the version byte, then an array of messages."""
    # msgpack is concatenative: packing the list of rows in one call gives the same bytes
    # as join_packet over encode_message, with one C call instead of one per message.
    rows = ROWS
    packed: bytes = _PACKER.pack([rows[type(m)](m) for m in messages])
    return _VERSION_BYTE + packed


def encode_stream(message: Message) -> bytes:
    """Encode one stream frame payload (a push-pull or a stream ping/ack)."""
    return join_packet([encode_message(message)])


def _build(row: object) -> Message:
    if type(row) is not list or not row:
        raise DecodeError("a message must be a non-empty array")
    decoder = DECODERS.get(row[0]) if type(row[0]) is int else None
    if decoder is None:
        raise DecodeError(f"unknown message type {row[0]!r}")
    return decoder(row)


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
    decoders = DECODERS
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
        if decoder in _KEYED:
            push_pull = True  # refused once every message is known to be well formed
        append(decoder(row))
    if push_pull:
        raise DecodeError("push-pull is only valid on a stream")
    return messages


def decode_stream(data: bytes, known: Mapping[str, Member] | None = None) -> Message:
    """Decode a stream frame payload holding exactly one message.

    Args:
        data: the frame payload.
        known: the receiver's member table by name, if it wants a push-pull's rows that
            equal what it holds to decode as those very values (not checked or built
            again: a converged peer's state then costs one comparison per row).
    Raises:
        DecodeError: for any malformed input, and only that.
    """
    body = _unpack(data, max_size=MAX_STREAM_SIZE, max_array=MAX_STREAM_MEMBERS)
    if len(body) != 1:
        raise DecodeError("a stream frame holds exactly one message")
    row = body[0]
    if known is not None and type(row) is list and row and type(row[0]) is int:
        decoder = DECODERS.get(row[0])
        if decoder is decode_push_pull:
            message: Message = decode_push_pull(row, known)
        elif decoder is decode_member_sync:
            message = decode_member_sync(row, known)
        else:
            message = _build(row)
    else:
        message = _build(row)
    if type(message) is PushPull and len(message.suspected_by) not in (0, len(message.members)):
        raise DecodeError("suspected_by must be empty or one entry per member")
    if type(message) is StateSync and len(message.owners) != len(message.versions):
        raise DecodeError("a state digest needs one version per owner")
    if type(message) is MemberSync:
        if len(message.suspected_by) not in (0, len(message.members)):
            raise DecodeError("suspected_by must be empty or one entry per member")
        if message.push and message.digest:
            raise DecodeError("a member push carries no digest")
        if not message.push and not is_digest_size(len(message.digest)):
            raise DecodeError(
                f"a member digest of {len(message.digest)} bytes is not 1 to 1024 buckets "
                "(a power of two) of 8 bytes"
            )
    return message
