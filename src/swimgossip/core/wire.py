"""The wire seam: how the engine turns its messages into bytes and back, as a value.

The engine never names a byte format: it asks its ``Wire`` (``Engine(wire=...)``) to
encode each message for piggybacking, to join encoded messages into one datagram, to
encode a stream payload, and to decode datagrams and stream payloads. Our own format
(``codec.py``) is the default and fits this protocol as a module, with no indirection on
the hot path beyond one attribute read. hashicorp/memberlist's format is another
implementation, outside the core (``swimgossip.net.memberlist.MemberlistWire``).

The budget arithmetic of ``Effects.send`` holds for any wire whose ``join_packet`` adds at
most ``PACKET_HEADER`` (4) bytes to the sum of the lengths of what ``encode_message``
returned: a wire with per-message framing (memberlist's compound lengths) puts that framing
into ``encode_message``'s result, so each piggybacked message is measured with its cost.

A wire refuses a message it has no counterpart for with ``WireUnsupported`` (a
``LocalError``), raised by ``encode_message`` / ``encode_stream``; its decoders raise only
``DecodeError`` (or a subclass of ``RemoteError`` that the engine counts the same way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from .member import Member
from .messages import Message

__all__ = ["Wire"]


class Wire(Protocol):
    """A byte format for the engine's messages (``codec`` is ours)."""

    #: The most messages ``join_packet`` takes for one datagram.
    MAX_DATAGRAM_MESSAGES: int
    #: Its name, for errors ("swimgossip", "memberlist").
    NAME: str
    #: Whether it carries member state (``StateDelta``, ``StateSync``): without it the
    #: engine runs no state exchange and ``set_state`` raises ``WireUnsupported``.
    CARRIES_STATE: bool
    #: Whether it carries the digest-first push-pull (``MemberSync``): without it every
    #: push-pull sends the whole table (memberlist's is Go's full push-pull).
    CARRIES_DIGESTS: bool

    def encode_message(self, message: Message, /) -> bytes:
        """One message, ready to be joined into a datagram (with any per-message framing)."""
        ...

    def join_packet(self, encoded: Sequence[bytes], /) -> bytes:
        """The datagram carrying ``encoded`` (at least one, each from ``encode_message``)."""
        ...

    def encode_stream(self, message: Message, /) -> bytes:
        """One stream payload holding ``message``."""
        ...

    def decode_packet(self, data: bytes, /) -> list[Message]:
        """Every message of a datagram the engine handles."""
        ...

    def decode_stream(self, data: bytes, known: Mapping[str, Member] | None = None, /) -> Message:
        """The one message of a stream payload; ``known`` is the receiver's table by name,
        which a wire may use to return held rows as they are (``codec`` does)."""
        ...
