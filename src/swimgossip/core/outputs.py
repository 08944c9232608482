"""What the engine asks of the outside world.

Every engine entry point returns a list of these values, in order. The runtime (or the
simulator) sends datagrams, schedules timers, runs stream exchanges and publishes events;
the engine itself does none of it. Each output is its own class, so a driver dispatches on
``type(output)`` with a table and no catch-all branch: a membership event arrives wrapped
in ``PublishEvent``.
"""

from __future__ import annotations

import enum

import attrs

from .events import Event
from .inputs import StreamFailure
from .member import Member
from .timers import Timer

__all__ = [
    "DirectDelivery",
    "DirectOutcome",
    "JoinOutcome",
    "LeaveComplete",
    "Output",
    "PublishEvent",
    "ScheduleTimer",
    "SendDatagram",
    "StreamPurpose",
    "StreamReply",
    "StreamRequest",
    "UserDelivery",
]


@attrs.frozen(kw_only=True)
class SendDatagram:
    """Send ``payload`` (an unsigned packet) to ``address`` over the datagram transport."""

    address: str
    payload: bytes


@attrs.frozen(kw_only=True)
class ScheduleTimer:
    """Call ``Engine.handle_timer(timer, now)`` once ``now >= at``."""

    at: float
    timer: Timer


class StreamPurpose(enum.Enum):
    """Why a stream exchange is made (for the runtime's logs and metrics)."""

    PING = "ping"
    PUSH_PULL = "push_pull"
    JOIN = "join"
    RECONNECT = "reconnect"
    #: A reliable direct message (``Engine.send(..., reliable=True)``).
    DIRECT = "direct"
    #: An application broadcast too large for a datagram, sent to one member.
    BROADCAST = "broadcast"
    #: The state exchange (``StateSync``: digests, then the missing deltas).
    STATE = "state"


@attrs.frozen(kw_only=True)
class StreamRequest:
    """Open a stream to ``address``, send ``payload``, read one reply frame by ``deadline``.

    Report the result with ``Engine.stream_reply(token, reply, now)`` or
    ``Engine.stream_failed(token, failure, now)`` (or the ``StreamAnswered`` /
    ``StreamFailed`` inputs).
    """

    token: int
    address: str
    payload: bytes
    purpose: StreamPurpose
    deadline: float


@attrs.frozen(kw_only=True)
class StreamReply:
    """Send ``payload`` as the reply on the incoming stream the runtime called ``token``."""

    token: int
    payload: bytes


@attrs.frozen(kw_only=True)
class JoinOutcome:
    """Result of a join exchange with a seed: ``ok`` and, when not, why (``failure``, and
    ``reason`` in words)."""

    address: str
    ok: bool
    failure: StreamFailure | None = None
    reason: str = ""
    #: The live member the seed holds under our name at another address, when that is
    #: why the join was refused (a name conflict); None otherwise.
    conflict: Member | None = None


@attrs.frozen(kw_only=True)
class LeaveComplete:
    """Our leave message has been transmitted; the runtime may stop."""


@attrs.frozen(kw_only=True)
class UserDelivery:
    """An application broadcast from ``source`` arrived (delivered once per message)."""

    source: str
    payload: bytes


@attrs.frozen(kw_only=True)
class DirectDelivery:
    """A direct message for us arrived from member ``source`` (``reliable``: it came on a
    stream and its sender is told it was delivered)."""

    source: str
    payload: bytes
    reliable: bool


@attrs.frozen(kw_only=True)
class DirectOutcome:
    """Result of the reliable send the caller numbered ``ref``: ``ok``, or why not."""

    ref: int
    ok: bool
    reason: str = ""


@attrs.frozen(kw_only=True)
class PublishEvent:
    """Publish a membership or state event (already numbered with the engine's ``seq``)."""

    event: Event


Output = (
    SendDatagram
    | ScheduleTimer
    | StreamRequest
    | StreamReply
    | JoinOutcome
    | LeaveComplete
    | UserDelivery
    | PublishEvent
    | DirectDelivery
    | DirectOutcome
)
