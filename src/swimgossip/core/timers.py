"""Timers are values carrying what they guard.

The engine asks for a timer with a ``ScheduleTimer`` output; the runtime hands the same
value back to ``Engine.handle_timer`` when it is due. A timer whose guard no longer holds
(the probe was answered, the suspicion refuted, the node left) does nothing when it fires,
so nothing is ever cancelled.
"""

from __future__ import annotations

import typing

import attrs

__all__ = [
    "GossipTick",
    "IndirectProbeTimeout",
    "ProbeDeadline",
    "ProbeTick",
    "ProbeTimeout",
    "PushPullTick",
    "ReapTick",
    "ReconnectTick",
    "StateReapTick",
    "StateSyncTick",
    "SuspicionTimeout",
    "TIMER_TYPES",
    "Timer",
]


@attrs.frozen(kw_only=True)
class ProbeTick:
    """Start the next probe of the round-robin cycle."""


@attrs.frozen(kw_only=True)
class ProbeTimeout:
    """The direct ping ``seq`` got no ack in time: go indirect."""

    seq: int


@attrs.frozen(kw_only=True)
class ProbeDeadline:
    """End of the probe period of ``seq``: no ack at all means suspect."""

    seq: int


@attrs.frozen(kw_only=True)
class IndirectProbeTimeout:
    """We ping ``seq`` for someone else; no ack in time means nack the requester."""

    seq: int


@attrs.frozen(kw_only=True)
class GossipTick:
    """Send pending broadcasts to a few random members."""


@attrs.frozen(kw_only=True)
class PushPullTick:
    """Exchange full state with one random member; ``settle`` marks the one-off exchange
    a few probe periods after a join (the periodic chain is not rescheduled by it)."""

    settle: bool = False


@attrs.frozen(kw_only=True)
class SuspicionTimeout:
    """Declare ``name`` failed if still suspect at ``incarnation`` under ``token``."""

    name: str
    incarnation: int
    token: int


@attrs.frozen(kw_only=True)
class ReapTick:
    """Remove dead and left members held longer than the reap timeout."""


@attrs.frozen(kw_only=True)
class StateSyncTick:
    """Time for the periodic state exchange (digests first) with one random member."""


@attrs.frozen(kw_only=True)
class StateReapTick:
    """Time to reap the tombstones older than their grace (armed while any is held)."""


@attrs.frozen(kw_only=True)
class ReconnectTick:
    """Try a full-state exchange with one failed member, to merge healed partitions."""


Timer = (
    ProbeTick
    | ProbeTimeout
    | ProbeDeadline
    | IndirectProbeTimeout
    | GossipTick
    | PushPullTick
    | SuspicionTimeout
    | ReapTick
    | ReconnectTick
    | StateSyncTick
    | StateReapTick
)

#: Every timer class (a driver tells a due timer from other inputs by its type).
TIMER_TYPES: frozenset[type] = frozenset(typing.get_args(Timer))
