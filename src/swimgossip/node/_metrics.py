"""``Node.metrics()``: one flat snapshot of what the engine, runtime and security layer count;
``metrics_text``: the same in the Prometheus text exposition format.

Engine counters (probes, suspicions, refutations, decode errors...), runtime counters
(packets and bytes in and out, send and receive errors, stream limits, callback errors,
timers run, late or dropped as stale), member counts by status, queue depths, event-loop
lag, the Lifeguard health score, and every security counter as ``auth_<name>``. Counters
a dashboard expects are present as 0 before they first count.

In Prometheus text every name starts ``swimgossip_``. A field is a counter unless it is in
``_GAUGES`` (a level that goes up and down); a counter's name ends in ``_total``, with its
unit before it (``swimgossip_packets_received_bytes_total``); lag is in ``_seconds``; the
four ``members_<status>`` fields are one gauge, ``swimgossip_members{status="alive"}``.
Each family has its ``# HELP`` and ``# TYPE`` lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs

from ..core.engine import Engine
from ..core.member import Status
from ._runtime import Runtime

__all__ = ["collect_metrics", "metrics_text"]

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


#: Gauge fields: Prometheus name (after ``swimgossip_``) and help. The rest are counters.
_GAUGES = {
    "health": ("health_score", "Lifeguard local health score; 0 is healthy"),
    "queue_depth": ("gossip_queue_depth", "Membership updates waiting to be piggybacked"),
    "user_queue_depth": ("user_queue_depth", "Application broadcasts waiting to be sent"),
    "events_pending": ("events_pending", "Events buffered for subscribers, not yet read"),
    "event_loop_lag": ("event_loop_lag_seconds", "How late the last timer ran"),
    "event_loop_lag_max": ("event_loop_lag_max_seconds", "The latest any timer ran"),
    "timers_pending": ("timers_pending", "Timers waiting in the runtime's heap"),
    "inbox_depth": ("inbox_depth", "Inputs waiting for the engine task"),
    "auth_replay_cache_entries": ("auth_replay_cache_entries", "Nonces the replay guard holds"),
}
#: Counter fields whose Prometheus name is not ``<field>_total``.
_COUNTER_NAMES = {
    "packets_in": "packets_received",
    "packets_out": "packets_sent",
    "bytes_in": "packets_received_bytes",
    "bytes_out": "packets_sent_bytes",
    "bytes_received": "datagrams_received_bytes",
    "bytes_sent": "datagrams_sent_bytes",
}
_COUNTER_HELP = {
    "packets_in": "Packets read from the socket, before authentication",
    "packets_out": "Packets written to the socket",
    "bytes_in": "Bytes of the packets read from the socket",
    "bytes_out": "Bytes of the packets written to the socket",
    "probes": "Probes started",
    "probes_failed": "Probes that got no ack, directly or indirectly",
    "suspicions": "Members this node began to suspect",
    "refutations": "Suspicions of this node that it refuted",
    "failures_declared": "Members this node declared failed",
    "auth_failures": "Packets and streams refused by the security layer",
    "packets_malformed": "Packets that did not decode, dropped",
    "memberlist_decrypt_failed": "memberlist packets and streams no installed key opens",
    "memberlist_label_mismatch": "memberlist packets and streams with another label",
    "delegate_errors": "memberlist delegate hooks that raised (logged; the node went on)",
}
_MEMBER_STATUSES = ("alive", "suspect", "dead", "left")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _escape(text: str, *, quote: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quote else text


def metrics_text(metrics: Mapping[str, float], *, labels: Mapping[str, str] | None = None) -> str:
    """``metrics`` (a ``Node.metrics()`` snapshot) in the Prometheus text exposition format
    (version 0.0.4), one family per field; see the module comment for the names.

    Args:
        labels: added to every sample (for example ``{"node": "n1"}``); names must be
            valid Prometheus label names.
    """
    base = "".join(f'{k}="{_escape(v, quote=True)}",' for k, v in (labels or {}).items())
    families: list[tuple[str, str, str, list[str]]] = []
    members = [f"members_{status}" for status in _MEMBER_STATUSES]
    if any(field in metrics for field in members):
        samples = [
            f'swimgossip_members{{{base}status="{status}"}} {_number(metrics.get(field, 0))}'
            for status, field in zip(_MEMBER_STATUSES, members, strict=True)
        ]
        families.append(("swimgossip_members", "gauge", "Members known, by status", samples))
    sample_labels = f"{{{base.rstrip(',')}}}" if base else ""
    for field, value in metrics.items():
        if field in members:
            continue
        if field in _GAUGES:
            name, help_text = _GAUGES[field]
            kind = "gauge"
        else:
            name = _COUNTER_NAMES.get(field, field) + "_total"
            help_text = _COUNTER_HELP.get(field, field.replace("_", " ").capitalize())
            kind = "counter"
        name = f"swimgossip_{name}"
        families.append((name, kind, help_text, [f"{name}{sample_labels} {_number(value)}"]))
    lines: list[str] = []
    for name, kind, help_text, samples in sorted(families):
        lines.append(f"# HELP {name} {_escape(help_text, quote=False)}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(samples)
    return "\n".join(lines) + "\n"
