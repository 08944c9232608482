"""The failure detector: ping, ping-req with nacks, stream fallback, and the probe verdict.

One probe per period (``ProbeTick``): ping the next member of the shuffled round robin,
piggybacking gossip and, when we hold it suspect, that suspicion (Lifeguard's buddy
system, so the suspect can refute at once; our acks to a suspect's pings carry it too).
No ack by the probe timeout: ask ``indirect_checks`` random alive members to ping it
(ping-req; each answers a nack if the target stays silent) and ping it over the stream
transport too, so UDP-only loss does not raise suspicions. No ack by the end of the
period: suspect it. A stream ping refused by the member's host (nothing listens there
any more: the process is gone) suspects it at once, half a period earlier. Our own
health score rises by the nacks we expected and did not get (a failed probe with no
helpers counts 1): if even the helpers cannot answer us, the fault is likely ours, and we
slow down.

This module is a mixin of ``Engine``; its methods are engine methods.
"""

# Methods are typed with `self: Engine` (the class they are mixed into); mypy calls
# that an "erased self type" [misc], which is what a mixin means here.
# mypy: disable-error-code="misc"

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from . import codec
from .member import Status
from .messages import Ack, Message, Nack, Ping, PingReq, Suspect
from .outputs import StreamPurpose
from .timers import IndirectProbeTimeout, ProbeDeadline, ProbeTick, ProbeTimeout

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["DetectorMixin", "MAX_RELAYS"]

#: Most ping-req relays served at once; more are refused (a flood cannot grow memory).
MAX_RELAYS = 1024
#: Acks carry a suspicion of the pinger only while we hold at most this many suspicions.
MAX_ACK_BUDDY_SCAN = 32


@attrs.define(eq=False, slots=True)
class Probe:
    """The probe in flight: its sequence number, target and what came back so far."""

    seq: int
    target: str
    address: str
    incarnation: int
    started: float
    ends: float
    expected_nacks: int = 0
    nacks: int = 0


@attrs.frozen(slots=True)
class Relay:
    """A ping we send on someone else's behalf (ping-req)."""

    requester: str
    seq: int
    nack: bool


class DetectorMixin:
    """Probing and answering probes."""

    def _on_ping(self: Engine, ping: Ping, source: str) -> None:
        if ping.target != self.name:
            self.counters["pings_for_other_name"] += 1
            return
        reply: list[Message] = [Ack(seq=ping.seq)]
        # The buddy system both ways: a member we hold suspect that pings us learns of it
        # in our ack, so it can refute at once. A scan, so bounded: with many suspicions at
        # once (a partition) pings stay cheap and our own probes still carry them.
        suspicions = self._suspicions if len(self._suspicions) <= MAX_ACK_BUDDY_SCAN else {}
        for name, suspicion in suspicions.items():
            member = self.table.get(name)
            if member is not None and member.address == source:
                incarnation, by = member.incarnation, suspicion.by
                reply.append(Suspect(name=name, incarnation=incarnation, source=by))
                break
        self._send(source, reply)

    def _on_ack(self: Engine, seq: int, now: float) -> None:
        probe = self._probe
        if probe is not None and probe.seq == seq:
            self._probe = None
            self.awareness.apply_delta(-1)
            self.counters["probes_succeeded"] += 1
            return
        relay = self._relays.pop(seq, None)
        if relay is not None:
            self._send(relay.requester, [Ack(seq=relay.seq)])
            return
        self.counters["acks_stale"] += 1

    def _on_nack(self: Engine, nack: Nack) -> None:
        self.counters["nacks_received"] += 1
        if self._probe is not None and self._probe.seq == nack.seq:
            self._probe.nacks += 1

    def _on_ping_req(self: Engine, request: PingReq, source: str, now: float) -> None:
        if len(self._relays) >= MAX_RELAYS:
            self.counters["ping_reqs_refused"] += 1
            return
        seq = self._next_seq()
        self._relays[seq] = Relay(requester=source, seq=request.seq, nack=request.nack)
        self._send(request.target_address, [Ping(seq=seq, target=request.target)])
        self._schedule(now + self.config.probe_timeout, IndirectProbeTimeout(seq=seq))

    def _probe_tick(self: Engine, now: float) -> None:
        if self.leaving:
            return
        if self._probe is not None:  # the previous period ended without a verdict yet
            self._probe_failed(now)
        cfg = self.config
        self._schedule(now + self.awareness.scale(cfg.probe_interval), ProbeTick())
        name = self.cycle.next(self._is_probeable)
        if name is None:
            return
        target = self.table.get(name)
        assert target is not None
        seq = self._next_seq()
        self._probe = Probe(
            seq=seq,
            target=name,
            address=target.address,
            incarnation=target.incarnation,
            started=now,
            ends=now + self.awareness.scale(cfg.probe_interval),
        )
        primary: list[Message] = [Ping(seq=seq, target=name)]
        suspicion = self._suspicions.get(name)
        if suspicion is not None:  # buddy system: tell the suspect at once
            primary.append(Suspect(name=name, incarnation=target.incarnation, source=suspicion.by))
        self.counters["probes"] += 1
        self._send(target.address, primary)
        self._schedule(now + self.awareness.scale(cfg.probe_timeout), ProbeTimeout(seq=seq))

    def _probe_timeout(self: Engine, seq: int, now: float) -> None:
        probe = self._probe
        if probe is None or probe.seq != seq:
            return
        helpers = self.cycle.sample(
            self.config.indirect_checks,
            lambda n: n != probe.target and self._is_alive(n),
        )
        for helper in helpers:
            member = self.table.get(helper)
            assert member is not None
            request = PingReq(seq=seq, target=probe.target, target_address=probe.address, nack=True)
            self._send(member.address, [request])
        probe.expected_nacks = len(helpers)
        self.counters["indirect_probes"] += len(helpers)
        # The verdict is due just before the next probe starts. It is only scheduled now,
        # when the direct ping went unanswered: an answered probe costs no more wake-ups.
        self._schedule(probe.started + (probe.ends - probe.started) * 0.999, ProbeDeadline(seq=seq))
        if self.config.stream_fallback:
            self._stream(
                StreamPurpose.PING,
                probe.address,
                codec.encode_stream(Ping(seq=seq, target=probe.target)),
                now,
                seq=seq,
                deadline=probe.ends,
            )

    def _is_alive(self: Engine, name: str) -> bool:
        member = self.table.get(name)
        return member is not None and member.status == Status.ALIVE

    def _probe_refused(self: Engine, seq: int, now: float) -> None:
        """The stream ping of probe ``seq`` was refused: the member's host says nothing
        listens there any more. Suspect it now rather than at the end of the period (and
        without counting it against our own health: the fault is not ours)."""
        probe = self._probe
        if probe is None or probe.seq != seq:
            return
        self.counters["probes_refused"] += 1
        self._probe_failed(now, refused=True)

    def _probe_failed(self: Engine, now: float, *, refused: bool = False) -> None:
        probe = self._probe
        assert probe is not None
        self._probe = None
        self.counters["probes_failed"] += 1
        if not refused:  # silence: count the nacks we expected and did not get
            missing = max(probe.expected_nacks - probe.nacks, 0) if probe.expected_nacks else 1
            self.awareness.apply_delta(missing)
        target = self.table.get(probe.target)
        if target is None or target.status.is_gone:
            return
        # Alive: suspect it. Already suspect: our own failed probe is an independent
        # confirmation of someone else's suspicion (a no-op if the suspicion is ours). The
        # claim is about the incarnation we probed: if the member refuted (or restarted)
        # meanwhile, it is stale and changes nothing.
        self.on_suspect(
            Suspect(name=probe.target, incarnation=probe.incarnation, source=self.name), now
        )
