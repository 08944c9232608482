"""The failure detector: ping, ping-req with nacks, stream fallback, and the probe verdict.

``Detector`` is the one owner of the probe in flight and of the pings we relay for others
(ping-req), and of the timers that guard them. One probe per period (``ProbeTick``): ping
the next member of the shuffled round robin, piggybacking gossip and, when we hold it
suspect, that suspicion (Lifeguard's buddy system, so the suspect can refute at once; our
acks to a suspect's pings carry it too). No ack by the probe timeout: ask
``indirect_checks`` random alive members to ping it (ping-req; each answers a nack if the
target stays silent) and ping it over the stream transport too, so UDP-only loss does not
raise suspicions. No ack by the end of the period: suspect it. A helper nacks after
``Config.relay_timeout``, a fraction of the gap between our ping-req and our verdict, so
its nack arrives before the verdict in every preset. A stream ping refused by the
member's host (nothing listens there, or a firewall rejects the stream) is noted, not
acted on at once: the probe stays open for the indirect path, and if no ack came by the
end of the period the member is suspected without counting the refusal against our own
health. Our own health score rises by the nacks we expected and did not get (a failed
probe with no helpers counts 1): if even the helpers cannot answer us, the fault is likely
ours, and we slow down.

The verdict itself is a claim handed to ``Membership.suspect``; the detector never touches
the member table.
"""

from __future__ import annotations

import attrs

from ._effects import Effects
from ._membership import Membership
from .awareness import Awareness
from .config import Config
from .inputs import StreamFailure
from .messages import Ack, Message, Nack, Ping, PingReq, Suspect
from .outputs import StreamPurpose, StreamReply
from .timers import IndirectProbeTimeout, ProbeDeadline, ProbeTick, ProbeTimeout

__all__ = ["MAX_RELAYS", "Detector", "Probe", "Relay"]

#: Most ping-req relays served at once; more are refused (a flood cannot grow memory).
MAX_RELAYS = 1024


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
    #: The member's host refused our stream ping: its silence is not our fault.
    refused: bool = False


@attrs.frozen(slots=True)
class Relay:
    """A ping we send on someone else's behalf (ping-req)."""

    requester: str
    seq: int
    nack: bool


class Detector:
    """Probing and answering probes.

    Args:
        name: our member name (pings for another name are not ours to answer).
        config: protocol tunables.
        effects: where sends, timers and streams go.
        membership: who to probe, and where a failed probe's suspicion goes.
        awareness: our health score; it scales our probe interval and timeout.
    """

    def __init__(
        self,
        *,
        name: str,
        config: Config,
        effects: Effects,
        membership: Membership,
        awareness: Awareness,
    ) -> None:
        self.name = name
        self.config = config
        self.effects = effects
        self.membership = membership
        self.awareness = awareness
        self._probe: Probe | None = None
        self._relays: dict[int, Relay] = {}

    def is_stale(self, timer: ProbeTimeout | ProbeDeadline | IndirectProbeTimeout) -> bool:
        """Whether ``timer`` would do nothing: its probe was answered or its relay acked."""
        if type(timer) is IndirectProbeTimeout:
            return timer.seq not in self._relays
        probe = self._probe
        return probe is None or probe.seq != timer.seq

    # ------------------------------------------------------------------ answering

    def on_ping(self, ping: Ping, source: str, now: float) -> None:
        """Ack a ping addressed to us (with the buddy suspicion of the pinger, if any)."""
        if ping.target != self.name:
            self.effects.counters["pings_for_other_name"] += 1
            return
        reply: list[Message] = [Ack(seq=ping.seq)]
        buddy = self.membership.buddy_suspicion(source)
        if buddy is not None:
            reply.append(buddy)
        self.effects.send(source, reply)

    def on_stream_ping(self, ping: Ping, token: int, now: float) -> bool:
        """Answer a ping that came over a stream; False if it is not for us."""
        if ping.target != self.name:
            return False
        self.effects.output(
            StreamReply(token=token, payload=self.effects.wire.encode_stream(Ack(seq=ping.seq)))
        )
        return True

    def on_ack(self, ack: Ack, source: str, now: float) -> None:
        """An ack: the end of our probe, or of a ping we relay (passed on to the requester)."""
        probe = self._probe
        if probe is not None and probe.seq == ack.seq:
            self._probe = None
            self.awareness.apply_delta(-1)
            self.effects.counters["probes_succeeded"] += 1
            return
        relay = self._relays.pop(ack.seq, None)
        if relay is not None:
            self.effects.send(relay.requester, [Ack(seq=relay.seq)])
            return
        self.effects.counters["acks_stale"] += 1

    def on_nack(self, nack: Nack, source: str, now: float) -> None:
        """A helper could not reach our probe's target either."""
        self.effects.counters["nacks_received"] += 1
        if self._probe is not None and self._probe.seq == nack.seq:
            self._probe.nacks += 1

    def on_ping_req(self, request: PingReq, source: str, now: float) -> None:
        """Ping ``request.target`` for ``source``; nack it if no ack comes in time."""
        if len(self._relays) >= MAX_RELAYS:
            self.effects.counters["ping_reqs_refused"] += 1
            return
        seq = self.effects.next_seq()
        self._relays[seq] = Relay(requester=source, seq=request.seq, nack=request.nack)
        self.effects.send(request.target_address, [Ping(seq=seq, target=request.target)])
        self.effects.schedule(now + self.config.relay_timeout, IndirectProbeTimeout(seq=seq))

    def on_relay_timeout(self, timer: IndirectProbeTimeout, now: float) -> None:
        """The ping we relay got no ack in time: nack the requester if it asked for one."""
        relay = self._relays.pop(timer.seq, None)
        if relay is not None and relay.nack:
            self.effects.counters["nacks_sent"] += 1
            self.effects.send(relay.requester, [Nack(seq=relay.seq)])

    # ------------------------------------------------------------------ probing

    def on_probe_tick(self, timer: ProbeTick, now: float) -> None:
        """Start the next probe (and end the previous one, if it got no verdict yet)."""
        if self.membership.leaving:
            return
        if self._probe is not None:  # the previous period ended without a verdict yet
            self._probe_failed(now)
        cfg = self.config
        self.effects.schedule(now + self.awareness.scale(cfg.probe_interval), ProbeTick())
        membership = self.membership
        name = membership.cycle.next(membership.is_probeable)
        if name is None:
            self._reconnect_ping()
            return
        target = membership.get(name)
        assert target is not None
        seq = self.effects.next_seq()
        self._probe = Probe(
            seq=seq,
            target=name,
            address=target.address,
            incarnation=target.incarnation,
            started=now,
            ends=now + self.awareness.scale(cfg.probe_interval),
        )
        primary: list[Message] = [Ping(seq=seq, target=name)]
        suspicion = membership.suspicion_of(name)
        if suspicion is not None:  # buddy system: tell the suspect at once
            primary.append(Suspect(name=name, incarnation=target.incarnation, source=suspicion.by))
        self.effects.counters["probes"] += 1
        self.effects.send(target.address, primary)
        self.effects.schedule(now + self.awareness.scale(cfg.probe_timeout), ProbeTimeout(seq=seq))
        self._reconnect_ping()

    def _reconnect_ping(self) -> None:
        """Now and then ping a failed member: if it answers, the partition that hid it has
        healed, and its ack is a first contact (``Sync.contact``)."""
        target = self.membership.reconnect_ping_target()
        if target is not None:
            name, address = target
            self.effects.counters["reconnect_pings"] += 1
            self.effects.send(address, [Ping(seq=self.effects.next_seq(), target=name)])

    def on_probe_timeout(self, timer: ProbeTimeout, now: float) -> None:
        """The direct ping went unanswered: go indirect, and over a stream."""
        probe = self._probe
        if probe is None or probe.seq != timer.seq:
            return
        membership = self.membership
        helpers = membership.cycle.sample(
            self.config.indirect_checks,
            lambda n: n != probe.target and membership.is_alive(n),
        )
        for helper in helpers:
            member = membership.get(helper)
            assert member is not None
            request = PingReq(
                seq=probe.seq, target=probe.target, target_address=probe.address, nack=True
            )
            self.effects.send(member.address, [request])
        probe.expected_nacks = len(helpers)
        self.effects.counters["indirect_probes"] += len(helpers)
        # The verdict is due just before the next probe starts. It is only scheduled now,
        # when the direct ping went unanswered: an answered probe costs no more wake-ups.
        deadline = probe.started + (probe.ends - probe.started) * 0.999
        self.effects.schedule(deadline, ProbeDeadline(seq=probe.seq))
        if self.config.stream_fallback:
            self.effects.stream(
                StreamPurpose.PING,
                probe.address,
                self.effects.wire.encode_stream(Ping(seq=probe.seq, target=probe.target)),
                seq=probe.seq,
                deadline=probe.ends,
            )

    def on_probe_deadline(self, timer: ProbeDeadline, now: float) -> None:
        """End of the probe period with no ack at all: the probe failed."""
        if self._probe is not None and self._probe.seq == timer.seq:
            self._probe_failed(now)

    def stream_ping_answered(self, seq: int, reply: Message, now: float) -> None:
        """The stream ping of probe ``seq`` was answered with ``reply``."""
        if type(reply) is Ack and reply.seq == seq:
            self.effects.counters["stream_probes_succeeded"] += 1
            self.on_ack(reply, "", now)

    def stream_ping_failed(self, seq: int, failure: StreamFailure, now: float) -> None:
        """The stream ping of probe ``seq`` failed. Refused by the member's host means
        nothing listens there (or a firewall rejects streams while datagrams pass): the
        probe stays open, since an indirect ack may still come, and if none does the
        verdict at the end of the period does not count against our own health."""
        probe = self._probe
        if failure is not StreamFailure.REFUSED or probe is None or probe.seq != seq:
            return
        self.effects.counters["probes_refused"] += 1
        probe.refused = True

    def _probe_failed(self, now: float) -> None:
        probe = self._probe
        assert probe is not None
        self._probe = None
        self.effects.counters["probes_failed"] += 1
        if not probe.refused:  # silence: count the nacks we expected and did not get
            missing = max(probe.expected_nacks - probe.nacks, 0) if probe.expected_nacks else 1
            self.awareness.apply_delta(missing)
        target = self.membership.get(probe.target)
        if target is None or target.status.is_gone:
            return
        # Alive: suspect it. Already suspect: our own failed probe is an independent
        # confirmation of someone else's suspicion. The claim is about the incarnation we
        # probed: if the member refuted (or restarted) meanwhile, it changes nothing.
        self.membership.suspect(probe.target, probe.incarnation, now)
