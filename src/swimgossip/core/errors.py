"""The core's small error tree.

``SwimError`` is the root. ``LocalError`` means the caller asked for something the
protocol forbids (bad config, oversized metadata); ``RemoteError`` means bytes from the
network were not acceptable. Remote errors never escape the engine's receive path: they are
counted and dropped there. They are raised only by the pure decoding functions, so that
tests and fuzzers can see exactly why an input was refused.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DecodeError",
    "EmptyRing",
    "LocalError",
    "MessageTooLarge",
    "MetadataTooLarge",
    "NotRunning",
    "RemoteError",
    "StateLimitExceeded",
    "SwimError",
    "UnknownMember",
]


class SwimError(Exception):
    """Base class of every error swimgossip raises on purpose."""


class LocalError(SwimError):
    """The local caller asked for something that cannot be done."""


class RemoteError(SwimError):
    """Bytes received from the network were malformed, forged or otherwise refused."""


class ConfigError(LocalError, ValueError):
    """A configuration value is invalid. ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class MetadataTooLarge(LocalError, ValueError):
    """Member metadata exceeds ``Config.meta_max_size``; nothing was sent."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"metadata is {size} bytes, the limit is {limit} bytes")
        self.size = size
        self.limit = limit


class WireUnsupported(LocalError, ValueError):
    """The node's wire has no counterpart for this message (memberlist mode has no state
    deltas, application broadcasts or direct messages): nothing was sent."""

    def __init__(self, message: str, wire: str) -> None:
        super().__init__(f"{wire} wire cannot carry {message}")
        self.message = message
        self.wire = wire


class MessageTooLarge(LocalError, ValueError):
    """An application broadcast cannot fit in one datagram; nothing was sent."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message is {size} bytes, the limit is {limit} bytes")
        self.size = size
        self.limit = limit


class StateLimitExceeded(LocalError, ValueError):
    """A ``set_state`` or ``delete_state`` would break one of the state limits
    (``Config.state_*``): ``limit`` names the field; nothing was changed."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(f"{limit}: {message}")
        self.limit = limit


class EmptyRing(LocalError, LookupError):
    """A ``swimgossip.ring.Ring`` has no member to own a key."""


class UnknownMember(LocalError, LookupError):
    """A direct send names a member this node does not hold alive (unknown, failed or
    left); nothing was sent. ``name`` is the member asked for."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"cannot send to {name!r}: {why}")
        self.name = name


class NotRunning(LocalError, RuntimeError):
    """The node has left (or is leaving) and cannot perform the request."""


class DecodeError(RemoteError, ValueError):
    """A packet or stream frame could not be decoded. Raised only by the codec."""
