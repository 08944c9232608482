"""memberlist's wire format (protocol version 2+), bytes <-> typed values, sans I/O.

A packet is one message: a type byte then a msgpack body (see ``MessageType``). Wrappers
around a message, outermost first as memberlist reads a UDP packet: a label header
(``hasLabelMsg``, length byte, label), encryption (see ``_crypto``), a CRC wrapper
(``hasCrcMsg``, CRC-32 IEEE big-endian, message), compression (``compressMsg``, msgpack
``{Algo, Buf}``, LZW), a compound message (``compoundMsg``, count byte, big-endian
uint16 lengths, the parts). Over a stream: an optional label header, then a push-pull
message (``pushPullMsg``, a msgpack header, that many node states, the user state bytes),
possibly compressed or encrypted.

Every decoder here is bounded and raises only ``WireError`` subclasses; the field names,
their order and the msgpack forms are memberlist's (``net.go``, ``util.go``, ``label.go``).
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Callable, Sequence

import attrs

from . import _lzw
from ._msgpack import Value, pack_bool, pack_bytes, pack_int, pack_map, pack_uint, unpack
from .errors import (
    ChecksumMismatch,
    CompressionError,
    LabelError,
    MsgpackError,
    Truncated,
    UnknownMessageType,
    WireError,
)

__all__ = [
    "MAX_DECOMPRESSED_BYTES",
    "MAX_PUSH_STATE_BYTES",
    "MAX_PUSH_STATE_NODES",
    "Ack",
    "Alive",
    "Dead",
    "ErrorResponse",
    "IndirectPing",
    "Message",
    "MessageType",
    "Nack",
    "NodeState",
    "Ping",
    "PushNodeState",
    "PushPull",
    "Suspect",
    "UserMessage",
    "add_crc",
    "add_label",
    "compress",
    "decode_message",
    "decode_packet",
    "decode_push_pull",
    "decode_user_stream",
    "decompressed",
    "encode_message",
    "encode_user_stream",
    "stream_message_end",
    "encode_push_pull",
    "make_compound",
    "remove_label",
    "split_compound",
]

#: memberlist's bounds (net.go): the largest push-pull state, node count, decompressed size.
MAX_PUSH_STATE_BYTES = 20 * 1024 * 1024
MAX_PUSH_STATE_NODES = 1024 * 1024
MAX_DECOMPRESSED_BYTES = 2 * MAX_PUSH_STATE_BYTES
#: How deep wrappers may nest in one packet (compound in compressed in CRC ...).
MAX_NESTING = 4


class MessageType(enum.IntEnum):
    """memberlist's message type byte (``messageType`` in net.go)."""

    PING = 0
    INDIRECT_PING = 1
    ACK = 2
    SUSPECT = 3
    ALIVE = 4
    DEAD = 5
    PUSH_PULL = 6
    COMPOUND = 7
    USER = 8
    COMPRESS = 9
    ENCRYPT = 10
    NACK = 11
    HAS_CRC = 12
    ERR = 13
    HAS_LABEL = 244


class NodeState(enum.IntEnum):
    """memberlist's ``NodeStateType`` as sent in push-pull."""

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3


@attrs.frozen(kw_only=True)
class Ping:
    """``ping``: a direct probe. The source fields (for a direct reply) are optional."""

    seq_no: int
    node: str
    source_addr: bytes = b""
    source_port: int = 0
    source_node: str = ""


@attrs.frozen(kw_only=True)
class IndirectPing:
    """``indirectPingReq``: ask a peer to probe ``target``:``port`` (``node`` by name)."""

    seq_no: int
    target: bytes
    port: int
    node: str
    nack: bool = False
    source_addr: bytes = b""
    source_port: int = 0
    source_node: str = ""


@attrs.frozen(kw_only=True)
class Ack:
    """``ackResp``: the answer to a ping, with an optional payload."""

    seq_no: int
    payload: bytes = b""


@attrs.frozen(kw_only=True)
class Nack:
    """``nackResp``: an indirect prober did not hear the target in time."""

    seq_no: int


@attrs.frozen(kw_only=True)
class ErrorResponse:
    """``errResp``: sent on a stream when the peer refuses (for instance a bad label)."""

    error: str


@attrs.frozen(kw_only=True)
class Suspect:
    """``suspect``: ``sender`` suspects ``node`` at ``incarnation``."""

    incarnation: int
    node: str
    sender: str


@attrs.frozen(kw_only=True)
class Alive:
    """``alive``: ``node`` is alive at ``incarnation``, with its address, meta and the six
    version bytes (protocol min/max/cur, delegate min/max/cur)."""

    incarnation: int
    node: str
    addr: bytes
    port: int
    meta: bytes = b""
    vsn: bytes = b""


@attrs.frozen(kw_only=True)
class Dead:
    """``dead``: ``sender`` declares ``node`` dead (``sender == node`` is a graceful leave)."""

    incarnation: int
    node: str
    sender: str


@attrs.frozen(kw_only=True)
class UserMessage:
    """``userMsg``: bytes for the delegate (Serf's messages ride here)."""

    payload: bytes


Message = Ping | IndirectPing | Ack | Nack | ErrorResponse | Suspect | Alive | Dead | UserMessage


@attrs.frozen(kw_only=True)
class PushNodeState:
    """``pushNodeState``: one member as a push-pull exchange lists it."""

    name: str
    addr: bytes
    port: int
    meta: bytes
    incarnation: int
    state: int
    vsn: bytes


@attrs.frozen(kw_only=True)
class PushPull:
    """A push-pull message: ``join`` or anti-entropy, the node states, the user state."""

    join: bool
    nodes: tuple[PushNodeState, ...]
    user_state: bytes = b""


# --- fields ------------------------------------------------------------------------------


def _field(body: dict[bytes, Value], name: str) -> Value:
    return body.get(name.encode())


def _uint(body: dict[bytes, Value], name: str, bits: int) -> int:
    value = _field(body, name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise MsgpackError(f"field {name} is not an integer")
    if value < 0 or value >= 1 << bits:
        raise MsgpackError(f"field {name} out of range for uint{bits}: {value}")
    return value


def _int(body: dict[bytes, Value], name: str) -> int:
    value = _field(body, name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise MsgpackError(f"field {name} is not an integer")
    if not -(1 << 63) <= value < 1 << 63:
        raise MsgpackError(f"field {name} out of range for int64: {value}")
    return value


def _bytes(body: dict[bytes, Value], name: str) -> bytes:
    value = _field(body, name)
    if value is None:
        return b""
    if not isinstance(value, bytes):
        raise MsgpackError(f"field {name} is not a string")
    return value


def _str(body: dict[bytes, Value], name: str) -> str:
    try:
        return _bytes(body, name).decode()
    except UnicodeDecodeError as exc:
        raise MsgpackError(f"field {name} is not UTF-8") from exc


def _bool(body: dict[bytes, Value], name: str) -> bool:
    value = _field(body, name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MsgpackError(f"field {name} is not a boolean")
    return value


def _struct(buf: bytes, pos: int = 0) -> tuple[dict[bytes, Value], int]:
    value, end = unpack(buf, pos)
    if not isinstance(value, dict):
        raise MsgpackError("message body is not a msgpack map")
    return value, end


def _nil_if_empty(value: bytes) -> bytes:
    return pack_bytes(value if value else None)


# --- messages ----------------------------------------------------------------------------


def _source_fields(m: Ping | IndirectPing) -> list[tuple[str, bytes]]:
    fields: list[tuple[str, bytes]] = []
    if m.source_addr:
        fields.append(("SourceAddr", pack_bytes(m.source_addr)))
    if m.source_port:
        fields.append(("SourcePort", pack_uint(m.source_port)))
    if m.source_node:
        fields.append(("SourceNode", pack_bytes(m.source_node.encode())))
    return fields


def _encode_body(message: Message) -> tuple[MessageType, bytes]:
    if isinstance(message, Ping):
        fields = [("SeqNo", pack_uint(message.seq_no)), ("Node", pack_bytes(message.node.encode()))]
        return MessageType.PING, pack_map(fields + _source_fields(message))
    if isinstance(message, IndirectPing):
        fields = [
            ("SeqNo", pack_uint(message.seq_no)),
            ("Target", _nil_if_empty(message.target)),
            ("Port", pack_uint(message.port)),
            ("Node", pack_bytes(message.node.encode())),
            ("Nack", pack_bool(message.nack)),
        ]
        return MessageType.INDIRECT_PING, pack_map(fields + _source_fields(message))
    if isinstance(message, Ack):
        fields = [("SeqNo", pack_uint(message.seq_no)), ("Payload", _nil_if_empty(message.payload))]
        return MessageType.ACK, pack_map(fields)
    if isinstance(message, Nack):
        return MessageType.NACK, pack_map([("SeqNo", pack_uint(message.seq_no))])
    if isinstance(message, ErrorResponse):
        return MessageType.ERR, pack_map([("Error", pack_bytes(message.error.encode()))])
    if isinstance(message, (Suspect, Dead)):
        fields = [
            ("Incarnation", pack_uint(message.incarnation)),
            ("Node", pack_bytes(message.node.encode())),
            ("From", pack_bytes(message.sender.encode())),
        ]
        kind = MessageType.SUSPECT if isinstance(message, Suspect) else MessageType.DEAD
        return kind, pack_map(fields)
    if isinstance(message, Alive):
        fields = [
            ("Incarnation", pack_uint(message.incarnation)),
            ("Node", pack_bytes(message.node.encode())),
            ("Addr", _nil_if_empty(message.addr)),
            ("Port", pack_uint(message.port)),
            ("Meta", _nil_if_empty(message.meta)),
            ("Vsn", _nil_if_empty(message.vsn)),
        ]
        return MessageType.ALIVE, pack_map(fields)
    return MessageType.USER, message.payload


def encode_message(message: Message) -> bytes:
    """One message as memberlist sends it: the type byte and its body."""
    kind, body = _encode_body(message)
    return bytes((kind,)) + body


def _decode_body(kind: int, buf: bytes, pos: int) -> Message:
    if kind == MessageType.USER:
        return UserMessage(payload=buf[pos:])
    body, _ = _struct(buf, pos)
    if kind == MessageType.PING:
        return Ping(
            seq_no=_uint(body, "SeqNo", 32),
            node=_str(body, "Node"),
            source_addr=_bytes(body, "SourceAddr"),
            source_port=_uint(body, "SourcePort", 16),
            source_node=_str(body, "SourceNode"),
        )
    if kind == MessageType.INDIRECT_PING:
        return IndirectPing(
            seq_no=_uint(body, "SeqNo", 32),
            target=_bytes(body, "Target"),
            port=_uint(body, "Port", 16),
            node=_str(body, "Node"),
            nack=_bool(body, "Nack"),
            source_addr=_bytes(body, "SourceAddr"),
            source_port=_uint(body, "SourcePort", 16),
            source_node=_str(body, "SourceNode"),
        )
    if kind == MessageType.ACK:
        return Ack(seq_no=_uint(body, "SeqNo", 32), payload=_bytes(body, "Payload"))
    if kind == MessageType.NACK:
        return Nack(seq_no=_uint(body, "SeqNo", 32))
    if kind == MessageType.ERR:
        return ErrorResponse(error=_str(body, "Error"))
    if kind in (MessageType.SUSPECT, MessageType.DEAD):
        cls = Suspect if kind == MessageType.SUSPECT else Dead
        return cls(
            incarnation=_uint(body, "Incarnation", 32),
            node=_str(body, "Node"),
            sender=_str(body, "From"),
        )
    if kind == MessageType.ALIVE:
        return Alive(
            incarnation=_uint(body, "Incarnation", 32),
            node=_str(body, "Node"),
            addr=_bytes(body, "Addr"),
            port=_uint(body, "Port", 16),
            meta=_bytes(body, "Meta"),
            vsn=_bytes(body, "Vsn"),
        )
    raise UnknownMessageType(kind)


_SIMPLE_TYPES = frozenset(
    {
        MessageType.PING,
        MessageType.INDIRECT_PING,
        MessageType.ACK,
        MessageType.SUSPECT,
        MessageType.ALIVE,
        MessageType.DEAD,
        MessageType.USER,
        MessageType.NACK,
        MessageType.ERR,
    }
)


def decode_message(buf: bytes) -> Message:
    """One plain message (type byte + body); ``WireError`` if it is anything else."""
    if not buf:
        raise MsgpackError("empty message")
    if buf[0] not in _SIMPLE_TYPES:
        raise UnknownMessageType(buf[0])
    return _decode_body(buf[0], buf, 1)


# --- wrappers ----------------------------------------------------------------------------


def add_label(buf: bytes, label: str) -> bytes:
    """Prefix a packet or stream with memberlist's label header (no-op for ``""``)."""
    raw = label.encode()
    if not raw:
        return buf
    if len(raw) > 255:
        raise ValueError(f"label {label!r} is longer than 255 bytes")
    return bytes((MessageType.HAS_LABEL, len(raw))) + raw + buf


def remove_label(buf: bytes) -> tuple[bytes, str]:
    """Split a label header off ``buf``: ``(rest, label)``; ``""`` when there is none."""
    if not buf or buf[0] != MessageType.HAS_LABEL:
        return buf, ""
    if len(buf) < 2:
        raise LabelError("cannot decode label; packet has been truncated")
    size = buf[1]
    if size < 1:
        raise LabelError("label header cannot be empty when present")
    if len(buf) < 2 + size:
        raise LabelError("cannot decode label; packet has been truncated")
    try:
        label = buf[2 : 2 + size].decode()
    except UnicodeDecodeError as exc:
        raise LabelError("label is not UTF-8") from exc
    return buf[2 + size :], label


def add_crc(buf: bytes) -> bytes:
    """Wrap a packet in ``hasCrcMsg`` with its CRC-32 (IEEE), as memberlist does for
    protocol version 5 peers."""
    return bytes((MessageType.HAS_CRC,)) + struct.pack(">I", zlib.crc32(buf)) + buf


def make_compound(messages: Sequence[bytes]) -> bytes:
    """Up to 255 encoded messages, each at most 65,535 bytes, as one compound message."""
    if len(messages) > 255:
        raise ValueError("a compound message holds at most 255 messages")
    if any(len(m) > 0xFFFF for m in messages):
        raise ValueError("a message in a compound is at most 65535 bytes")
    head = bytes((MessageType.COMPOUND, len(messages)))
    return head + b"".join(struct.pack(">H", len(m)) for m in messages) + b"".join(messages)


def split_compound(body: bytes) -> tuple[list[bytes], int]:
    """The parts of a compound body (after the type byte) and how many were truncated."""
    if not body:
        raise WireError("missing compound length byte")
    count = body[0]
    if len(body) < 1 + 2 * count:
        raise WireError("truncated compound length slice")
    lengths = struct.unpack(f">{count}H", body[1 : 1 + 2 * count])
    pos = 1 + 2 * count
    parts: list[bytes] = []
    for index, length in enumerate(lengths):
        if len(body) - pos < length:
            return parts, count - index
        parts.append(body[pos : pos + length])
        pos += length
    return parts, 0


def compress(buf: bytes) -> bytes:
    """Wrap ``buf`` in ``compressMsg`` with LZW, as memberlist does when compression is on."""
    fields = [("Algo", pack_uint(0)), ("Buf", pack_bytes(_lzw.compress(buf)))]
    return bytes((MessageType.COMPRESS,)) + pack_map(fields)


def _decompress(buf: bytes, pos: int, limit: int) -> tuple[bytes, int]:
    body, end = _struct(buf, pos)
    algo = _uint(body, "Algo", 8)
    if algo != 0:
        raise CompressionError(f"cannot decompress unknown algorithm {algo}")
    plain = _lzw.decompress(_bytes(body, "Buf"), limit)
    if not plain:
        raise CompressionError("decompressed message is empty")
    return plain, end


def decode_packet(buf: bytes, *, limit: int = MAX_DECOMPRESSED_BYTES) -> tuple[list[Message], int]:
    """Every message in one (already label-stripped, decrypted) packet, unwrapping CRC,
    compression and compound messages; returns ``(messages, truncated)`` where
    ``truncated`` counts compound parts that were cut short (memberlist logs and skips
    them). Raises a ``WireError`` if any part is bad: the caller drops the packet."""
    out: list[Message] = []
    truncated = 0

    def visit(data: bytes, depth: int) -> None:
        nonlocal truncated
        if depth > MAX_NESTING:
            raise WireError("memberlist wrappers nested too deeply")
        if not data:
            raise MsgpackError("empty message")
        kind = data[0]
        if kind == MessageType.HAS_CRC:
            if len(data) < 5:
                raise ChecksumMismatch("CRC packet shorter than its header")
            expected = struct.unpack(">I", data[1:5])[0]
            if zlib.crc32(data[5:]) != expected:
                raise ChecksumMismatch("CRC-32 of the packet does not match")
            visit(data[5:], depth + 1)
        elif kind == MessageType.COMPOUND:
            parts, cut = split_compound(data[1:])
            truncated += cut
            for part in parts:
                visit(part, depth + 1)
        elif kind == MessageType.COMPRESS:
            plain, _ = _decompress(data, 1, limit)
            visit(plain, depth + 1)
        else:
            out.append(decode_message(data))

    visit(buf, 0)
    return out, truncated


# --- push-pull over a stream -------------------------------------------------------------


def _pack_node(node: PushNodeState) -> bytes:
    return pack_map(
        [
            ("Name", pack_bytes(node.name.encode())),
            ("Addr", _nil_if_empty(node.addr)),
            ("Port", pack_uint(node.port)),
            ("Meta", _nil_if_empty(node.meta)),
            ("Incarnation", pack_uint(node.incarnation)),
            ("State", pack_int(node.state)),
            ("Vsn", _nil_if_empty(node.vsn)),
        ]
    )


def encode_push_pull(message: PushPull) -> bytes:
    """A push-pull message as memberlist writes it on a stream (before any compression,
    encryption or label): type byte, header, node states, user state."""
    header = pack_map(
        [
            ("Nodes", pack_int(len(message.nodes))),
            ("UserStateLen", pack_int(len(message.user_state))),
            ("Join", pack_bool(message.join)),
        ]
    )
    nodes = b"".join(_pack_node(n) for n in message.nodes)
    return bytes((MessageType.PUSH_PULL,)) + header + nodes + message.user_state


def decode_push_pull(
    buf: bytes,
    *,
    max_nodes: int = MAX_PUSH_STATE_NODES,
    max_user_state: int = MAX_PUSH_STATE_BYTES,
    decompress_limit: int = MAX_DECOMPRESSED_BYTES,
) -> PushPull:
    """A whole (decrypted, label-stripped) push-pull stream payload, compressed or not."""
    if not buf:
        raise MsgpackError("empty stream")
    if buf[0] == MessageType.COMPRESS:
        buf, _ = _decompress(buf, 1, decompress_limit)
    if buf[0] != MessageType.PUSH_PULL:
        raise UnknownMessageType(buf[0])
    header, pos = _struct(buf, 1)
    count = _int(header, "Nodes")
    user_len = _int(header, "UserStateLen")
    if count < 0 or count > max_nodes:
        raise WireError(f"number of nodes in header ({count}) exceeds limit")
    if user_len < 0 or user_len > max_user_state:
        raise WireError(f"user state length ({user_len}) exceeds limit")
    nodes: list[PushNodeState] = []
    for _ in range(count):
        body, pos = _struct(buf, pos)
        nodes.append(
            PushNodeState(
                name=_str(body, "Name"),
                addr=_bytes(body, "Addr"),
                port=_uint(body, "Port", 16),
                meta=_bytes(body, "Meta"),
                incarnation=_uint(body, "Incarnation", 32),
                state=_int(body, "State"),
                vsn=_bytes(body, "Vsn"),
            )
        )
    if len(buf) - pos < user_len:
        raise Truncated(f"failed to read full user state ({len(buf) - pos} / {user_len})")
    return PushPull(
        join=_bool(header, "Join"), nodes=tuple(nodes), user_state=buf[pos : pos + user_len]
    )


def decompressed(buf: bytes, *, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """``buf`` itself, or what it holds if it is a ``compressMsg``."""
    if not buf:
        raise MsgpackError("empty message")
    if buf[0] != MessageType.COMPRESS:
        return buf
    plain, _ = _decompress(buf, 1, limit)
    return plain


def stream_message_end(buf: bytes) -> int:
    """Where the first plain (unencrypted) stream message in ``buf`` ends: a push-pull,
    ping, ack, user message or error response, compressed or not, as memberlist writes
    one on a stream without a length. ``Truncated`` if ``buf`` holds only part of it
    (read more), another ``WireError`` if it can never be one."""
    if not buf:
        raise Truncated("empty stream")
    kind = buf[0]
    if kind == MessageType.PUSH_PULL:
        decode_push_pull(buf)
        return len(buf)  # the last thing on the stream: nothing follows it
    if kind == MessageType.USER:
        header, pos = _struct(buf, 1)
        size = _int(header, "UserMsgLen")
        if size < 0 or size > MAX_PUSH_STATE_BYTES:
            raise WireError(f"user message length {size} is out of bounds")
        if len(buf) - pos < size:
            raise Truncated("user message truncated")
        return pos + size
    if kind in (
        MessageType.COMPRESS,
        MessageType.PING,
        MessageType.ACK,
        MessageType.NACK,
        MessageType.ERR,
    ):
        _, end = _struct(buf, 1)
        return end
    raise UnknownMessageType(kind)


def encode_user_stream(payload: bytes) -> bytes:
    """A ``userMsg`` as memberlist sends it on a stream: type, ``{UserMsgLen}``, payload."""
    return bytes((MessageType.USER,)) + pack_map([("UserMsgLen", pack_int(len(payload)))]) + payload


def decode_user_stream(buf: bytes) -> bytes:
    """The payload of a whole stream ``userMsg`` (see ``encode_user_stream``)."""
    if not buf:
        raise MsgpackError("empty message")
    if buf[0] != MessageType.USER:
        raise UnknownMessageType(buf[0])
    end = stream_message_end(buf)
    _, pos = _struct(buf, 1)
    return buf[pos:end]


#: A decoder the fuzz tests drive: every one raises only ``WireError``.
DECODERS: tuple[Callable[[bytes], object], ...] = (
    decode_message,
    decode_packet,
    decode_push_pull,
    remove_label,
    stream_message_end,
    decompressed,
    decode_user_stream,
)
