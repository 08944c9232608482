"""What the outside world hands the engine: the typed inbox items.

The runtime and the simulator both queue these values and give each to
``Engine.handle(item, now)``, which routes it to the entry point that owns it. Network
inputs (a datagram, an incoming stream frame, the reply or failure of our own stream
request) and the local user's commands (join, update metadata, broadcast, leave) are all
plain frozen values: a driver never queues a closure, and a recorded inbox replays exactly.
A due timer needs no wrapper: the timer value the engine scheduled (``timers.py``) is
handed back as it is.
"""

from __future__ import annotations

import enum

import attrs

from .timers import Timer

__all__ = [
    "BroadcastCommand",
    "Command",
    "DatagramReceived",
    "Input",
    "JoinCommand",
    "LeaveCommand",
    "NetworkInput",
    "SendCommand",
    "StreamAnswered",
    "SetStateCommand",
    "StreamFailed",
    "StreamFailure",
    "StreamReceived",
    "UpdateMetaCommand",
]


class StreamFailure(enum.Enum):
    """Why one of our stream requests got no usable reply."""

    #: The peer's host answered that nothing listens at the address (TCP reset,
    #: ``ConnectionRefusedError``). For the stream ping of a probe that is an answer, not
    #: silence: the member's process is gone, so it is suspected at once.
    REFUSED = "connection refused"
    #: No reply by the request's deadline.
    TIMED_OUT = "timed out"
    #: The connection broke or a frame was malformed at the transport level.
    BROKEN = "connection failed"
    #: The peer refused our request (authentication, label, key: its error frame).
    REFUSED_BY_PEER = "refused by peer"
    #: The reply failed our own authentication.
    REPLY_UNAUTHENTICATED = "reply failed authentication"
    #: The reply could not be decoded.
    MALFORMED_REPLY = "malformed reply"
    #: The reply decoded to a message that does not answer the request.
    UNEXPECTED_REPLY = "unexpected reply"


@attrs.frozen(kw_only=True, slots=True)
class DatagramReceived:
    """A datagram (already authenticated by the runtime) from ``source``."""

    payload: bytes
    source: str


@attrs.frozen(kw_only=True, slots=True)
class StreamReceived:
    """An incoming stream frame from ``source``; the engine's reply names ``token``."""

    payload: bytes
    source: str
    token: int


@attrs.frozen(kw_only=True, slots=True)
class StreamAnswered:
    """The reply to our ``StreamRequest(token)``."""

    token: int
    payload: bytes


@attrs.frozen(kw_only=True, slots=True)
class StreamFailed:
    """Our ``StreamRequest(token)`` failed; ``detail`` says why in words (for join errors)."""

    token: int
    failure: StreamFailure
    detail: str = ""


@attrs.frozen(kw_only=True, slots=True)
class JoinCommand:
    """Join through these seed addresses."""

    seeds: tuple[str, ...]


@attrs.frozen(kw_only=True, slots=True)
class UpdateMetaCommand:
    """Announce new metadata."""

    meta: bytes


@attrs.frozen(kw_only=True, slots=True)
class SetStateCommand:
    """Write our state ``key`` (``value`` None: delete it)."""

    key: str
    value: bytes | None


@attrs.frozen(kw_only=True, slots=True)
class BroadcastCommand:
    """Gossip an application payload to every member."""

    payload: bytes


@attrs.frozen(kw_only=True, slots=True)
class SendCommand:
    """Send ``payload`` to the member named ``target``: in one datagram (best effort), or
    with ``reliable`` on a stream, answered by a ``DirectOutcome`` carrying ``ref``."""

    target: str
    payload: bytes
    reliable: bool
    ref: int = 0


@attrs.frozen(kw_only=True, slots=True)
class LeaveCommand:
    """Leave the cluster gracefully."""


NetworkInput = DatagramReceived | StreamReceived | StreamAnswered | StreamFailed | Timer
Command = (
    JoinCommand
    | UpdateMetaCommand
    | SetStateCommand
    | BroadcastCommand
    | SendCommand
    | LeaveCommand
)
Input = NetworkInput | Command
