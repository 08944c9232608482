"""Errors of the memberlist wire codec: every bad input from a Go peer is one of these.

All are ``RemoteError`` (bytes from the network were not acceptable) and ``ValueError``;
a caller counts the packet and drops it::

    SwimError
    `-- RemoteError
        `-- WireError                 memberlist bytes we do not accept
            |-- MsgpackError          malformed, truncated or too deep msgpack
            |   `-- Truncated         the input ends early (a stream: read more)
            |-- UnknownMessageType    a message type byte we do not know
            |-- ChecksumMismatch      a CRC-wrapped packet whose CRC does not match
            |-- LabelError            a label header truncated, empty or unexpected
            |-- CompressionError      unknown algorithm, bad LZW, over the size bound
            `-- DecryptError          no installed key opens it, or it is malformed
"""

from __future__ import annotations

from ...core.errors import RemoteError

__all__ = [
    "ChecksumMismatch",
    "CompressionError",
    "DecryptError",
    "LabelError",
    "MsgpackError",
    "Truncated",
    "UnknownMessageType",
    "WireError",
]


class WireError(RemoteError, ValueError):
    """Bytes in memberlist's wire format that are malformed, unsupported or too large."""


class MsgpackError(WireError):
    """A msgpack body is truncated, malformed, too deep, or has the wrong shape."""


class Truncated(MsgpackError):
    """The input ends before the message does (on a stream: more bytes may complete it)."""


class UnknownMessageType(WireError):
    """A message type byte we do not know (``type`` says which)."""

    def __init__(self, message_type: int) -> None:
        super().__init__(f"unknown memberlist message type {message_type}")
        self.type = message_type


class ChecksumMismatch(WireError):
    """A ``hasCrcMsg`` packet whose CRC-32 does not match its body."""


class LabelError(WireError):
    """A label header that is truncated or empty, or a label we do not accept."""


class CompressionError(WireError):
    """A compressed message with an unknown algorithm, bad LZW data, or over the bound."""


class DecryptError(WireError):
    """An encrypted payload that no installed key opens, or that is malformed."""
