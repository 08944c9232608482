"""``Node.metrics()``: one flat snapshot of what the engine, runtime and security layer count.

Engine counters (probes, suspicions, refutations, decode errors...), runtime counters
(packets and bytes in and out, send and receive errors, stream limits, callback errors,
timers run, late or dropped as stale), member counts by status, queue depths, event-loop
lag, the Lifeguard health score, and every security counter as ``auth_<name>``. Counters
a dashboard expects are present as 0 before they first count.
"""

from __future__ import annotations

import attrs

from ..core.engine import Engine
from ..core.member import Status
from ._runtime import Runtime

__all__ = ["collect_metrics"]

#: Counters present in ``metrics()`` even before they first count something.
_ALWAYS_REPORTED = (
    "packets_in",
    "packets_out",
    "bytes_in",
    "bytes_out",
    "auth_failures",
    "send_errors",
    "receive_errors",
    "packets_dropped_busy",
    "callback_errors",
    "probes",
    "probes_failed",
    "probes_refused",
    "suspicions",
    "refutations",
    "accusations_answered",
    "failures_declared",
    "packets_malformed",
    "streams_malformed",
    "timers_run",
    "timers_late",
    "timers_dropped_stale",
    "lag_penalties",
    "indirect_probes",
    "nacks_sent",
    "nacks_received",
    "streams_timed_out",
    "streams_oversized",
    "streams_refused_busy",
    "streams_dropped",
    "streams_refused_by_peer",
    "name_conflicts",
    "first_contacts",
)


def collect_metrics(engine: Engine, runtime: Runtime) -> dict[str, float]:
    """The metrics snapshot of the node driven by ``runtime``."""
    values: dict[str, float] = dict(engine.counters)
    values.update(runtime.counters)
    statuses = [m.status for m in engine.members()]
    security = runtime.security_stats()
    values.update(
        health=engine.health,
        members_alive=statuses.count(Status.ALIVE),
        members_suspect=statuses.count(Status.SUSPECT),
        members_dead=statuses.count(Status.DEAD),
        members_left=statuses.count(Status.LEFT),
        members_refused_full=engine.members_refused_full,
        queue_depth=engine.gossip_queue_depth,
        user_queue_depth=engine.user_queue_depth,
        events_published=runtime.hub.published,
        events_pending=runtime.hub.pending,
        messages_dropped=runtime.hub.messages_dropped,
        event_loop_lag=runtime.lag_last,
        event_loop_lag_max=runtime.lag_max,
        timers_pending=runtime.timers_pending(),
        inbox_depth=runtime.inbox_depth(),
    )
    values.update(
        (f"auth_{field.name}", getattr(security, field.name))
        for field in attrs.fields(type(security))
    )
    for always in _ALWAYS_REPORTED:
        values.setdefault(always, 0)
    return values
