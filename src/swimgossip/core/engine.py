"""The protocol engine: one node's SWIM + Lifeguard state machine, sans I/O.

Every entry point takes ``now`` (seconds on any monotonic clock) and returns the list of
outputs it produced (``outputs.py``): datagrams to send, timers to schedule, stream
exchanges to run, membership events to publish. Randomness comes from the injected
``random.Random``; nothing here reads a clock, touches a socket or calls user code, so the
same seed and inputs always give the same outputs.

How one protocol period works (``ProbeTick``):

1. pick the next member in shuffled round-robin order and ping it, piggybacking gossip (and,
   if we hold it suspect, that suspicion: Lifeguard's buddy system);
2. no ack by the probe timeout: ask ``indirect_checks`` random members to ping it for us
   (ping-req, they nack if they get nothing) and, in parallel, ping it over a stream;
3. no ack by the end of the period: suspect it. Missing nacks and failed probes raise our
   local health score (``awareness.py``), which stretches our own interval and timeout.

A suspicion becomes a failure after a timeout that shrinks with independent confirmations
(``suspicion.py``); the suspect refutes by raising its incarnation. Membership changes go
through the member table (``table.py``), which alone applies the precedence rules; the
engine turns accepted changes into gossip, timers and events. Full-state exchange, join,
reconnect and leave live in ``sync.py``.
"""

from __future__ import annotations

import random
from collections import Counter, OrderedDict
from collections.abc import Hashable

import attrs

from . import codec
from .awareness import Awareness
from .broadcast import BroadcastQueue, retransmit_limit
from .claims import ClaimsMixin
from .config import Config
from .detector import DetectorMixin, Probe, Relay
from .errors import DecodeError, MetadataTooLarge, NotRunning
from .events import (
    MemberEvent,
    MemberJoined,
    MemberUpdated,
)
from .member import Member, Status
from .messages import (
    Ack,
    Alive,
    Dead,
    Left,
    Message,
    Nack,
    Ping,
    PingReq,
    Suspect,
    UserMessage,
    alive_claim,
)
from .outputs import (
    LeaveComplete,
    Output,
    ScheduleTimer,
    SendDatagram,
    StreamPurpose,
    StreamRequest,
)
from .probe import ProbeCycle
from .suspicion import (
    Suspicion,
)
from .sync import SyncMixin
from .table import MemberTable
from .timers import (
    GossipTick,
    IndirectProbeTimeout,
    ProbeDeadline,
    ProbeTick,
    ProbeTimeout,
    PushPullTick,
    SuspicionTimeout,
    Timer,
)
from .usermessages import MAX_USER_QUEUE, UserMessagesMixin

__all__ = ["Engine"]


#: Packet header room: version byte plus the largest array header we use.
_PACKET_HEADER = 4


class Engine(DetectorMixin, ClaimsMixin, SyncMixin, UserMessagesMixin):
    """One node of the cluster.

    Args:
        name: this member's unique name.
        address: where others reach us (opaque to the core; "host:port" in the runtime).
        config: protocol tunables.
        rng: the only source of randomness.
        meta: initial metadata (at most ``config.meta_max_size`` bytes).
        envelope_overhead: bytes the runtime adds to each datagram (signing), taken from
            the UDP payload budget.

    Raises:
        MetadataTooLarge: if ``meta`` is over the limit.
    """

    def __init__(
        self,
        *,
        name: str,
        address: str,
        config: Config,
        rng: random.Random,
        meta: bytes = b"",
        envelope_overhead: int = 0,
    ) -> None:
        if len(meta) > config.meta_max_size:
            raise MetadataTooLarge(len(meta), config.meta_max_size)
        self.name = name
        self.address = address
        self.config = config
        self.rng = rng
        self.awareness = Awareness(config.awareness_max_multiplier)
        self.table = MemberTable(local_name=name, max_members=config.max_members)
        self.cycle = ProbeCycle(rng)
        self.broadcasts = BroadcastQueue(max_items=config.max_members + 16)
        self.user_broadcasts = BroadcastQueue(max_items=MAX_USER_QUEUE)
        self._seen_user: OrderedDict[tuple[str, int], None] = OrderedDict()
        self.counters: Counter[str] = Counter()
        self.leaving = False
        self._budget = config.udp_payload_size - envelope_overhead - _PACKET_HEADER
        self._out: list[Output] = []
        self._suspicions: dict[str, Suspicion] = {}
        self._probe: Probe | None = None
        self._relays: dict[int, Relay] = {}
        self._streams: dict[int, tuple[StreamPurpose, str, int]] = {}
        self._reconnect: dict[str, tuple[str, float]] = {}
        #: When we last sent our alive claim straight to each address that accused us.
        self._answered_accusers: dict[str, float] = {}
        self._seq = 0
        self._event_seq = 0
        #: The ``now`` of the entry point being run (for timers armed deep inside it).
        self._now = 0.0
        self._gossip_armed = False
        self._reap_armed = False
        self._reconnect_armed = False
        #: The one-off push-pull a few probe periods after a join is armed (once per engine).
        self._settle_armed: bool = False
        self._token = 0
        self._leave_target = 0
        self.table.store(
            Member(name=name, address=address, status=Status.ALIVE, incarnation=0, meta=meta),
            0.0,
        )

    # ------------------------------------------------------------------ basics

    @property
    def incarnation(self) -> int:
        """Our own incarnation number."""
        return self.local_member.incarnation

    @property
    def local_member(self) -> Member:
        """What we announce about ourselves."""
        member = self.table.get(self.name)
        assert member is not None
        return member

    def members(self) -> list[Member]:
        """Snapshot of every member we know, ourselves included, sorted by name."""
        return sorted(self.table, key=lambda m: m.name)

    def member(self, name: str) -> Member | None:
        """What we hold about ``name``, or None."""
        return self.table.get(name)

    def install_view(self, members: dict[str, Member], probe_order: list[str]) -> None:
        """Start from a converged view instead of joining (large simulations).

        ``members`` must hold every member alive, ourselves included (values are shared,
        not copied); ``probe_order`` is the initial probe order of the others.
        """
        self.table.install(members)
        self.cycle.install([name for name in probe_order if name != self.name])

    def _flush(self) -> list[Output]:
        self._arm_upkeep()
        out, self._out = self._out, []
        return out

    def _emit(self, event: MemberEvent) -> None:
        self._event_seq += 1
        self._out.append(attrs.evolve(event, seq=self._event_seq))

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _next_token(self) -> int:
        self._token += 1
        return self._token

    def _schedule(self, at: float, timer: Timer) -> None:
        self._out.append(ScheduleTimer(at=at, timer=timer))

    def _stream(
        self,
        purpose: StreamPurpose,
        address: str,
        payload: bytes,
        now: float,
        seq: int = 0,
        deadline: float | None = None,
    ) -> int:
        token = self._next_token()
        self._streams[token] = (purpose, address, seq)
        self._out.append(
            StreamRequest(
                token=token,
                address=address,
                payload=payload,
                purpose=purpose,
                deadline=now + self.config.stream_timeout if deadline is None else deadline,
            )
        )
        self.counters[f"stream_{purpose.value}_sent"] += 1
        return token

    def _send(self, address: str, primary: list[Message]) -> bool:
        """Send ``primary`` messages to ``address`` with as much gossip as fits.

        Without primary messages, sends only if there is gossip; returns whether it sent.
        """
        encoded = [codec.encode_message(m) for m in primary]
        room = self._budget - sum(len(e) for e in encoded)
        limit = retransmit_limit(self.config.retransmit_mult, self.table.active_count)
        if self.user_broadcasts:  # half the room at most, so neither kind starves the other
            count = codec.MAX_DATAGRAM_MESSAGES // 2
            user = self.user_broadcasts.take(room // 2, limit, max_count=count)
            room -= sum(len(e) for e in user)
            encoded += user
        count = codec.MAX_DATAGRAM_MESSAGES - len(encoded)
        encoded += self.broadcasts.take(room, limit, max_count=count)
        if not encoded:
            return False
        payload = codec.join_packet(encoded)
        self.counters["datagrams_sent"] += 1
        self.counters["bytes_sent"] += len(payload)
        self._out.append(SendDatagram(address=address, payload=payload))
        return True

    def _gossip(self, key: Hashable, message: Message) -> None:
        self.broadcasts.push(key, codec.encode_message(message))
        self._arm_gossip()

    def _arm_gossip(self) -> None:
        """Make sure a gossip round is due. Rounds run only while something waits to be
        gossiped, so an idle node wakes for its probes alone."""
        if not self._gossip_armed:
            self._gossip_armed = True
            # At a random phase, as a free-running ticker would be: news waits half a
            # gossip interval on average, not a whole one, at every hop.
            delay = self.rng.uniform(0, self.config.gossip_interval)
            self._schedule(self._now + delay, GossipTick())

    def _is_probeable(self, name: str) -> bool:
        member = self.table.get(name)
        return member is not None and not member.status.is_gone

    # ------------------------------------------------------------------ lifecycle

    def start(self, now: float) -> list[Output]:
        """Begin protocol periods. Timers start at random phases so nodes do not align."""
        self._now = now
        self._emit(MemberJoined(member=self.local_member))
        cfg = self.config
        self._schedule(now + self.rng.uniform(0, cfg.probe_interval), ProbeTick())
        self._schedule(now + self.rng.uniform(0, cfg.push_pull_interval), PushPullTick())
        return self._flush()

    def update_meta(self, meta: bytes, now: float) -> list[Output]:
        """Announce new metadata: raises our incarnation and gossips alive.

        Raises:
            MetadataTooLarge: over ``config.meta_max_size``; nothing is sent.
            NotRunning: after leave.
        """
        self._now = now
        if len(meta) > self.config.meta_max_size:
            raise MetadataTooLarge(len(meta), self.config.meta_max_size)
        if self.leaving:
            raise NotRunning("cannot update metadata after leaving")
        previous = self.local_member
        self._announce_self(
            attrs.evolve(previous, incarnation=previous.incarnation + 1, meta=meta), now
        )
        self._emit(MemberUpdated(member=self.local_member, previous=previous))
        return self._flush()

    def _announce_self(self, member: Member, now: float) -> None:
        self.table.store(member, now)
        self._gossip(member.name, alive_claim(member))

    def leave(self, now: float) -> list[Output]:
        """Leave gracefully: gossip "left" at our incarnation, then stop probing.

        ``LeaveComplete`` is output once the message went out (at once when alone).
        """
        self._now = now
        if self.leaving:
            return []
        self.leaving = True
        me = self.local_member
        self.table.store(attrs.evolve(me, status=Status.LEFT), now)
        self._gossip(self.name, Left(name=self.name, incarnation=me.incarnation))
        peers = self.table.active_count
        self._leave_target = min(
            retransmit_limit(self.config.retransmit_mult, peers + 1), max(peers, 0)
        )
        self._gossip_round(now)
        self._check_leave_complete()
        return self._flush()

    def note_local_lag(self) -> None:
        """The runtime saw this process run late (timers fired late, a blocked loop):
        count it against our health, as Lifeguard counts a missed nack."""
        self.awareness.apply_delta(1)
        self.counters["lag_penalties"] += 1

    def _check_leave_complete(self) -> None:
        if not self.leaving or self._leave_target < 0:
            return
        sent = self.broadcasts.transmits(self.name)
        if sent is None or sent >= self._leave_target:
            self._leave_target = -1
            self._out.append(LeaveComplete())

    # ------------------------------------------------------------------ datagrams

    def receive(self, payload: bytes, source: str, now: float) -> list[Output]:
        """Handle one datagram (already authenticated by the runtime) from ``source``.

        Malformed input is counted (``counters["packets_malformed"]``) and dropped.
        """
        self._now = now
        try:
            messages = codec.decode_packet(payload)
        except DecodeError:
            self.counters["packets_malformed"] += 1
            return []
        self.counters["datagrams_received"] += 1
        self.counters["bytes_received"] += len(payload)
        for message in messages:
            self._dispatch(message, source, now)
        return self._flush()

    def _dispatch(self, message: Message, source: str, now: float) -> None:
        kind = type(message)
        if kind is Ping:
            self._on_ping(message, source)  # type: ignore[arg-type]
        elif kind is Ack:
            self._on_ack(message.seq, now)  # type: ignore[union-attr]
        elif kind is Nack:
            self._on_nack(message)  # type: ignore[arg-type]
        elif kind is PingReq:
            self._on_ping_req(message, source, now)  # type: ignore[arg-type]
        elif kind is Alive:
            self.on_alive(message, now)  # type: ignore[arg-type]
        elif kind is Suspect:
            self.on_suspect(message, now, source)  # type: ignore[arg-type]
        elif kind is Dead:
            self.on_dead(message, now, source)  # type: ignore[arg-type]
        elif kind is Left:
            self.on_left(message, now)  # type: ignore[arg-type]
        elif kind is UserMessage:
            self._on_user_message(message)  # type: ignore[arg-type]
        else:
            self.counters["messages_unexpected"] += 1

    # ------------------------------------------------------------------ timers

    def is_stale(self, timer: Timer) -> bool:
        """Whether ``timer`` would do nothing if it fired now: its probe was answered, its
        relayed ping acked, or its suspicion moved on. A runtime may drop such a timer
        instead of waking up for it (an answered probe then costs no wake-up at all);
        firing it anyway is harmless."""
        kind = type(timer)
        if kind is ProbeTimeout or kind is ProbeDeadline:
            probe = self._probe
            return probe is None or probe.seq != timer.seq  # type: ignore[union-attr]
        if kind is IndirectProbeTimeout:
            return timer.seq not in self._relays  # type: ignore[union-attr]
        if kind is SuspicionTimeout:
            suspicion = self._suspicions.get(timer.name)  # type: ignore[union-attr]
            return suspicion is None or suspicion.token != timer.token  # type: ignore[union-attr]
        return False

    def handle_timer(self, timer: Timer, now: float) -> list[Output]:
        """Run a timer the engine scheduled earlier. Stale timers do nothing."""
        self._now = now
        kind = type(timer)
        if kind is ProbeTick:
            self._probe_tick(now)
        elif kind is ProbeTimeout:
            self._probe_timeout(timer.seq, now)  # type: ignore[union-attr]
        elif kind is ProbeDeadline:
            if self._probe is not None and self._probe.seq == timer.seq:  # type: ignore[union-attr]
                self._probe_failed(now)
        elif kind is IndirectProbeTimeout:
            relay = self._relays.pop(timer.seq, None)  # type: ignore[union-attr]
            if relay is not None and relay.nack:
                self.counters["nacks_sent"] += 1
                self._send(relay.requester, [Nack(seq=relay.seq)])
        elif kind is SuspicionTimeout:
            self._suspicion_timeout(timer, now)  # type: ignore[arg-type]
        elif kind is GossipTick:
            self._gossip_armed = False
            self._gossip_round(now)
            self._check_leave_complete()
            if self.broadcasts or self.user_broadcasts:  # more to send: keep the cadence
                self._gossip_armed = True
                self._schedule(now + self.config.gossip_interval, GossipTick())
        else:
            self._handle_sync_timer(timer, now)
        return self._flush()

    def _gossip_round(self, now: float) -> None:
        if not self.broadcasts and not self.user_broadcasts:
            return
        horizon = now - self.config.gossip_to_the_dead_time

        def wanted(name: str) -> bool:
            member = self.table.get(name)
            if member is None:
                return False
            if member.status == Status.DEAD:
                return self.table.changed_at(name) >= horizon
            return member.status != Status.LEFT

        for name in self.cycle.sample(self.config.gossip_nodes, wanted):
            member = self.table.get(name)
            assert member is not None
            if not self._send(member.address, []):
                break
