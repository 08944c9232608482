"""The protocol engine: one node's SWIM + Lifeguard state machine, sans I/O.

Every entry point takes ``now`` (seconds on any monotonic clock) and returns the list of
outputs it produced (``outputs.py``): datagrams to send, timers to schedule, stream
exchanges to run, membership events to publish. Randomness comes from the injected
``random.Random``; nothing here reads a clock, touches a socket or calls user code, so the
same seed and inputs always give the same outputs. A driver may also queue the typed
inputs of ``inputs.py`` and hand each to ``handle``.

``Engine`` is a small facade over parts, each the one owner of its state:

- ``Effects`` (``_effects.py``): the outputs being gathered, ``now``, sequence numbers and
  tokens, the stream requests in flight, the datagram budget and both piggyback queues;
- ``Membership`` (``_membership.py``): the member table, probe cycle, suspicions, failed
  members, accuser memory, our own leave, and every claim rule and merge;
- ``Detector`` (``_detector.py``): the probe in flight, relayed pings and their timers;
- ``Sync`` (``_sync.py``): join, push-pull, reconnect and the upkeep timers;
- ``UserBroadcasts`` (``_broadcasts.py``): application broadcasts, delivered once each;
- ``DirectMessages`` (``_direct.py``): payloads for one member, by datagram or stream;
- ``MemberState`` (``_state.py``): every member's versioned key-value state.

The engine decodes what arrives and routes each message, stream frame and timer through a
dispatch table to the part that owns it; a new message type is one row and one handler.
Imports go one way: effects <- membership <- detector, sync; broadcasts <- effects.

How one protocol period works (``ProbeTick``, see the detector): ping the next member of
the shuffled round robin; no ack by the probe timeout: ping-req ``indirect_checks``
helpers and ping over a stream; no ack by the end of the period: suspect it. A suspicion
becomes a failure after a Lifeguard timeout that shrinks with independent confirmations;
the suspect refutes by raising its incarnation.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from . import codec
from ._broadcasts import UserBroadcasts
from ._detector import Detector
from ._direct import DirectMessages
from ._effects import PACKET_HEADER, Effects
from ._membership import Membership
from ._state import MemberState
from ._sync import Sync
from .awareness import Awareness
from .config import Config, check_member_name
from .digest import TableDigest
from .errors import ConfigError, DecodeError, NotRunning
from .events import MemberJoined, StateChanged
from .inputs import (
    BroadcastCommand,
    DatagramReceived,
    Input,
    JoinCommand,
    LeaveCommand,
    SendCommand,
    SetStateCommand,
    StreamAnswered,
    StreamFailed,
    StreamFailure,
    StreamReceived,
    UpdateMetaCommand,
)
from .member import Member
from .messages import (
    Ack,
    Alive,
    Dead,
    DirectMessage,
    Left,
    MemberSync,
    Message,
    Nack,
    Ping,
    PingReq,
    PushPull,
    StateDelta,
    StateSync,
    Suspect,
    UserMessage,
)
from .outputs import Output, StreamPurpose
from .timers import (
    GossipTick,
    IndirectProbeTimeout,
    ProbeDeadline,
    ProbeTick,
    ProbeTimeout,
    PushPullTick,
    ReapTick,
    ReconnectTick,
    StateReapTick,
    StateSyncTick,
    SuspicionTimeout,
    Timer,
)
from .wire import Wire

__all__ = ["Engine"]


def _boot_id(rng: random.Random) -> int:
    """This process start's boot id (``Member.boot``): 64 bits derived from the injected
    RNG without drawing from it, so every later draw (probe order, ids) is what it was."""
    probe = random.Random(0)  # seeded, so nothing reads OS entropy; replaced below
    probe.setstate(rng.getstate())
    return probe.getrandbits(64) ^ 0x9E3779B97F4A7C15 or 1


#: A handler of one message type: (message, source address, now).
_MessageHandler = Callable[[Any, str, float], None]
#: A handler of one incoming stream message type: (message, token, now) -> answered.
_StreamHandler = Callable[[Any, int, float], bool]
#: A handler of one timer type: (timer, now).
_TimerHandler = Callable[[Any, float], None]


class Engine:
    """One node of the cluster.

    Args:
        name: this member's unique name.
        address: where others reach us (opaque to the core; "host:port" in the runtime).
        config: protocol tunables.
        rng: the only source of randomness.
        meta: initial metadata (at most ``config.meta_max_size`` bytes).
        envelope_overhead: bytes the runtime adds to each datagram (signing), taken from
            the UDP payload budget.
        state_epoch: the floor of our state versions: the wall clock in microseconds at
            start, so a restarted process never reuses a version (``_state.py``).
        wire: the byte format of datagrams and streams (``wire.py``); our ``codec`` by
            default, ``swimgossip.net.memberlist.MemberlistWire`` for memberlist's.

    Raises:
        ConfigError: ``name`` is empty, too long or not printable (``check_member_name``),
            or our alive claim with metadata of ``config.meta_max_size`` bytes cannot fit
            in a datagram (then we could never announce ourselves or refute).
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
        state_epoch: int = 0,
        wire: Wire = codec,
    ) -> None:
        check_member_name(name)
        budget = config.udp_payload_size - envelope_overhead - PACKET_HEADER
        largest = Alive(
            name=name, address=address, incarnation=2**63, meta=bytes(config.meta_max_size)
        )
        largest_size = len(wire.encode_message(largest))
        if largest_size > budget:
            raise ConfigError(
                "udp_payload_size",
                f"{config.udp_payload_size} bytes cannot carry this member's alive claim with "
                f"{config.meta_max_size} bytes of metadata ({largest_size}"
                f" bytes, {budget} left after headers and signing): raise it, or lower "
                "meta_max_size",
            )
        self._decode_packet = wire.decode_packet
        self.name = name
        self.address = address
        self.config = config
        self._rng = rng
        self._awareness = Awareness(config.awareness_max_multiplier)
        self._effects = effects = Effects(
            config=config,
            rng=rng,
            budget=budget,
            wire=wire,
            cluster_size=lambda: self._membership.active_count,
        )
        self._membership = membership = Membership(
            name=name,
            address=address,
            meta=meta,
            boot=_boot_id(rng),
            config=config,
            rng=rng,
            effects=effects,
            awareness=self._awareness,
        )
        self._detector = detector = Detector(
            name=name,
            config=config,
            effects=effects,
            membership=membership,
            awareness=self._awareness,
        )
        self._sync = sync = Sync(config=config, rng=rng, effects=effects, membership=membership)
        self._user = user = UserBroadcasts(
            name=name,
            rng=rng,
            effects=effects,
            peers=lambda: [
                m.address for m in membership.table if m.name != name and not m.status.is_gone
            ],
        )
        self._direct = direct = DirectMessages(
            name=name, rng=rng, effects=effects, membership=membership
        )
        self._state = state = MemberState(
            name=name,
            epoch=state_epoch,
            config=config,
            rng=rng,
            effects=effects,
            membership=membership,
        )
        self._on_message: dict[type, _MessageHandler] = {
            Ping: detector.on_ping,
            Ack: detector.on_ack,
            Nack: detector.on_nack,
            PingReq: detector.on_ping_req,
            Alive: membership.on_alive,
            Suspect: membership.on_suspect,
            Dead: membership.on_dead,
            Left: membership.on_left,
            UserMessage: user.on_message,
            DirectMessage: direct.on_datagram,
            StateDelta: state.on_delta,
        }
        self._on_stream: dict[type, _StreamHandler] = {
            PushPull: sync.on_push_pull,
            MemberSync: sync.on_member_sync,
            Ping: detector.on_stream_ping,
            DirectMessage: direct.on_stream,
            StateSync: state.on_stream,
            UserMessage: user.on_stream,
        }
        self._on_timer: dict[type, _TimerHandler] = {
            ProbeTick: detector.on_probe_tick,
            ProbeTimeout: detector.on_probe_timeout,
            ProbeDeadline: detector.on_probe_deadline,
            IndirectProbeTimeout: detector.on_relay_timeout,
            SuspicionTimeout: membership.on_suspicion_timeout,
            GossipTick: membership.on_gossip_tick,
            PushPullTick: sync.on_push_pull_tick,
            ReapTick: sync.on_reap_tick,
            ReconnectTick: sync.on_reconnect_tick,
            StateSyncTick: state.on_sync_tick,
            StateReapTick: state.on_reap_tick,
        }
        self._is_stale: dict[type, Callable[[Any], bool]] = {
            ProbeTimeout: detector.is_stale,
            ProbeDeadline: detector.is_stale,
            IndirectProbeTimeout: detector.is_stale,
            SuspicionTimeout: membership.is_stale,
        }
        self._on_input: dict[type, Callable[[Any, float], list[Output]]] = {
            DatagramReceived: lambda i, now: self.receive(i.payload, i.source, now),
            StreamReceived: lambda i, now: self.receive_stream(i.payload, i.source, i.token, now),
            StreamAnswered: lambda i, now: self.stream_reply(i.token, i.payload, now),
            StreamFailed: lambda i, now: self.stream_failed(i.token, i.failure, now, i.detail),
            JoinCommand: lambda i, now: self.join(list(i.seeds), now),
            UpdateMetaCommand: lambda i, now: self.update_meta(i.meta, now),
            BroadcastCommand: lambda i, now: self.broadcast(i.payload, now),
            SetStateCommand: lambda i, now: (
                self.delete_state(i.key, now)
                if i.value is None
                else self.set_state(i.key, i.value, now)
            ),
            SendCommand: lambda i, now: self.send(i.target, i.payload, now, i.reliable, i.ref),
            LeaveCommand: lambda i, now: self.leave(now),
        }

    # ------------------------------------------------------------------ queries

    @property
    def incarnation(self) -> int:
        """Our own incarnation number."""
        return self._membership.local_member.incarnation

    @property
    def boot(self) -> int:
        """Our boot id (random per engine; see ``Member.boot``)."""
        return self._membership.local_member.boot

    @property
    def local_member(self) -> Member:
        """What we announce about ourselves."""
        return self._membership.local_member

    @property
    def leaving(self) -> bool:
        """Whether we left (or are leaving)."""
        return self._membership.leaving

    @property
    def counters(self) -> Counter[str]:
        """Counters of what the engine did (read-only by convention)."""
        return self._effects.counters

    @property
    def health(self) -> int:
        """Our Lifeguard health score (0 is healthy)."""
        return self._awareness.score

    @property
    def gossip_queue_depth(self) -> int:
        """Membership updates waiting to be piggybacked."""
        return len(self._effects.broadcasts)

    @property
    def user_queue_depth(self) -> int:
        """Application broadcasts waiting to be piggybacked."""
        return len(self._effects.user_broadcasts)

    @property
    def members_refused_full(self) -> int:
        """New members refused because the table held ``max_members``."""
        return self._membership.table.refused_full

    def members(self) -> list[Member]:
        """Snapshot of every member we know, ourselves included, sorted by name."""
        return sorted(self._membership.table, key=lambda m: m.name)

    def iter_members(self) -> Iterator[Member]:
        """Every member we know, unsorted (cheap; do not change the engine meanwhile)."""
        return iter(self._membership.table)

    def member(self, name: str) -> Member | None:
        """What we hold about ``name``, or None."""
        return self._membership.get(name)

    def local_state(self, *, join: bool = False) -> PushPull:
        """Our whole member table as the push-pull message we would send."""
        return self._membership.local_state(join=join)

    def state(self, name: str) -> dict[str, bytes]:
        """A copy of the live keys of member ``name`` (ours under our name); {} if none."""
        return self._state.values(name)

    def state_snapshot(self, name: str) -> list[StateChanged]:
        """Member ``name``'s live keys as ``StateChanged(snapshot=True)`` events, by key."""
        return self._state.snapshot(name)

    def state_version(self, name: str) -> int:
        """The highest state version we hold from member ``name`` (0: none)."""
        return self._state.version(name)

    def state_digest(self) -> dict[str, int]:
        """Per member, the version up to which we hold its state completely."""
        return self._state.digest()

    def is_stale(self, timer: Timer) -> bool:
        """Whether ``timer`` would do nothing if it fired now: its probe was answered, its
        relayed ping acked, or its suspicion moved on. A runtime may drop such a timer
        instead of waking up for it (an answered probe then costs no wake-up at all);
        firing it anyway is harmless."""
        check = self._is_stale.get(type(timer))
        return check is not None and check(timer)

    def install_view(
        self,
        members: dict[str, Member],
        probe_order: list[str],
        digest: TableDigest | None = None,
    ) -> None:
        """Start from a converged view instead of joining (large simulations).

        ``members`` must hold every member alive, ourselves included (values are shared,
        not copied); ``probe_order`` is the initial probe order of the others. ``digest``,
        if given, must be ``TableDigest.of(members.values())``: engines installing one view
        then share the hashing of its rows (each copies the 8 kB result).
        """
        self._membership.install(members, probe_order, digest)

    def note_local_lag(self) -> None:
        """The runtime saw this process run late (timers fired late, a blocked loop):
        count it against our health, as Lifeguard counts a missed nack. No outputs."""
        self._awareness.apply_delta(1)
        self._effects.counters["lag_penalties"] += 1

    # ------------------------------------------------------------------ entry points

    def handle(self, item: Input, now: float) -> list[Output]:
        """Handle one typed input (``inputs.py``) or a due timer: the single door a
        driver's inbox needs.

        Raises what the matching entry point raises (commands only: network inputs never
        raise for bad bytes).
        """
        # The two inputs of nearly every step, datagrams and timers, take the short way.
        if type(item) is DatagramReceived:
            return self.receive(item.payload, item.source, now)
        on_timer = self._on_timer.get(type(item))
        if on_timer is not None:
            self._effects.now = now
            on_timer(item, now)
            return self._flush()
        return self._on_input[type(item)](item, now)

    def start(self, now: float) -> list[Output]:
        """Begin protocol periods. Timers start at random phases so nodes do not align."""
        effects = self._effects
        effects.now = now
        effects.emit(MemberJoined(member=self.local_member))
        cfg = self.config
        effects.schedule(now + self._rng.uniform(0, cfg.probe_interval), ProbeTick())
        effects.schedule(now + self._rng.uniform(0, cfg.push_pull_interval), PushPullTick())
        self._state.start(now)
        return self._flush()

    def set_state(self, key: str, value: bytes, now: float) -> list[Output]:
        """Write our state ``key`` (``_state.py``): the next version of our counter, a
        ``StateChanged`` event, and a delta gossiped to every member.

        Raises:
            StateLimitExceeded: over a ``Config.state_*`` limit; nothing changed.
            NotRunning: after leave.
        """
        self._effects.now = now
        self._state.set(key, value, now)
        return self._flush()

    def delete_state(self, key: str, now: float) -> list[Output]:
        """Delete our state ``key``: a tombstone, reaped after ``state_tombstone_grace``
        (nothing happens for a key we do not hold).

        Raises:
            StateLimitExceeded: ``state_tombstones_max`` tombstones are held already.
            NotRunning: after leave.
        """
        self._effects.now = now
        self._state.delete(key, now)
        return self._flush()

    def update_meta(self, meta: bytes, now: float) -> list[Output]:
        """Announce new metadata: raises our incarnation and gossips alive.

        Raises:
            MetadataTooLarge: over ``config.meta_max_size``; nothing is sent.
            NotRunning: after leave.
        """
        self._effects.now = now
        self._membership.update_meta(meta, now)
        return self._flush()

    def broadcast(self, payload: bytes, now: float) -> list[Output]:
        """Gossip an application message to every member (delivered once each); one too
        large for half a datagram goes on a stream to each member (``_broadcasts.py``).

        Raises:
            MessageTooLarge: over ``MAX_RELIABLE_BROADCAST`` (64 KiB); nothing is sent.
            NotRunning: after leave.
        """
        self._effects.now = now
        if self._membership.leaving:
            raise NotRunning("cannot broadcast after leaving")
        self._user.broadcast(payload)
        return self._flush()

    def send(
        self, target: str, payload: bytes, now: float, reliable: bool = False, ref: int = 0
    ) -> list[Output]:
        """Send an application payload to the member named ``target`` (``_direct.py``):
        best effort in one datagram, or ``reliable`` on a stream, whose result comes back
        as a ``DirectOutcome(ref, ...)``. The receiver gets a ``DirectDelivery``.

        Raises:
            UnknownMember: ``target`` is not held alive or suspect.
            MessageTooLarge: it does not fit (a datagram, or ``MAX_RELIABLE_PAYLOAD``).
            NotRunning: after leave.
        """
        self._effects.now = now
        if self._membership.leaving:
            raise NotRunning("cannot send after leaving")
        self._direct.send(target, payload, reliable=reliable, ref=ref)
        return self._flush()

    def join(self, seeds: list[str], now: float) -> list[Output]:
        """Exchange full state with each seed address; each gives one ``JoinOutcome``.

        Raises:
            NotRunning: after leave.
        """
        self._effects.now = now
        self._sync.join(seeds, now)
        return self._flush()

    def leave(self, now: float) -> list[Output]:
        """Leave gracefully: gossip "left" at our incarnation, then stop probing.

        ``LeaveComplete`` is output once the message went out (at once when alone).
        """
        self._effects.now = now
        self._membership.leave(now)
        return self._flush()

    def receive(self, payload: bytes, source: str, now: float) -> list[Output]:
        """Handle one datagram (already authenticated by the runtime) from ``source``.

        Malformed input is counted (``counters["packets_malformed"]``) and dropped.
        """
        effects = self._effects
        effects.now = now
        try:
            messages = self._decode_packet(payload)
        except DecodeError:
            effects.counters["packets_malformed"] += 1
            return []
        effects.counters["datagrams_received"] += 1
        effects.counters["bytes_received"] += len(payload)
        self._sync.contact(source, now)
        handlers = self._on_message
        for message in messages:
            handler = handlers.get(type(message))
            if handler is None:  # decodes, but never comes in a datagram (a PushPull)
                effects.counters["messages_unexpected"] += 1
            else:
                handler(message, source, now)
        return self._flush()

    def receive_message(self, message: Message, source: str, now: float) -> list[Output]:
        """Handle one decoded message as if it came alone in a datagram from ``source``
        (for simulators and tests that work with message values)."""
        effects = self._effects
        effects.now = now
        handler = self._on_message.get(type(message))
        if handler is None:
            effects.counters["messages_unexpected"] += 1
        else:
            handler(message, source, now)
        return self._flush()

    def receive_stream(self, payload: bytes, source: str, token: int, now: float) -> list[Output]:
        """Answer an incoming stream frame; the reply is a ``StreamReply(token, ...)``.

        Malformed frames are counted and get no reply (the runtime closes the stream).
        """
        effects = self._effects
        effects.now = now
        try:
            message = effects.wire.decode_stream(payload, self._membership.table.by_name)
        except DecodeError:
            effects.counters["streams_malformed"] += 1
            return []
        handler = self._on_stream.get(type(message))
        if handler is None or not handler(message, token, now):
            effects.counters["streams_unexpected"] += 1
        return self._flush()

    def stream_reply(self, token: int, payload: bytes, now: float) -> list[Output]:
        """The reply to our ``StreamRequest(token)`` arrived."""
        effects = self._effects
        effects.now = now
        pending = effects.take_stream(token)
        if pending is None:
            return []
        try:
            message = effects.wire.decode_stream(payload, self._membership.table.by_name)
        except DecodeError:
            effects.counters["streams_malformed"] += 1
            return self._stream_lost(
                pending.purpose,
                pending.address,
                pending.seq,
                StreamFailure.MALFORMED_REPLY,
                "",
                now,
            )
        if pending.purpose is StreamPurpose.PING:
            self._detector.stream_ping_answered(pending.seq, message, now)
        elif pending.purpose is StreamPurpose.DIRECT:
            self._direct.answered(pending.seq, message)
        elif pending.purpose is StreamPurpose.STATE:
            if not self._state.answered(pending.address, message, now):
                self._effects.counters["stream_state_unexpected"] += 1
        elif pending.purpose is StreamPurpose.BROADCAST:
            if not self._user.answered(pending.seq, message):
                self._effects.counters["stream_broadcast_unexpected"] += 1
        elif not self._sync.answered(pending.purpose, pending.address, message, now, pending.seq):
            return self._stream_lost(
                pending.purpose,
                pending.address,
                pending.seq,
                StreamFailure.UNEXPECTED_REPLY,
                "",
                now,
            )
        return self._flush()

    def stream_failed(
        self, token: int, failure: StreamFailure, now: float, detail: str = ""
    ) -> list[Output]:
        """Our ``StreamRequest(token)`` failed (refused, timed out, closed...); ``detail``
        says why in words (it becomes a join's reason)."""
        effects = self._effects
        effects.now = now
        pending = effects.take_stream(token)
        if pending is None:
            return []
        return self._stream_lost(
            pending.purpose, pending.address, pending.seq, failure, detail, now
        )

    def handle_timer(self, timer: Timer, now: float) -> list[Output]:
        """Run a timer the engine scheduled earlier. Stale timers do nothing."""
        self._effects.now = now
        self._on_timer[type(timer)](timer, now)
        return self._flush()

    # ------------------------------------------------------------------ plumbing

    def _flush(self) -> list[Output]:
        self._sync.arm_upkeep()
        return self._effects.flush()

    def _stream_lost(
        self,
        purpose: StreamPurpose,
        address: str,
        seq: int,
        failure: StreamFailure,
        detail: str,
        now: float,
    ) -> list[Output]:
        self._effects.counters[f"stream_{purpose.value}_failed"] += 1
        if purpose is StreamPurpose.PING:
            self._detector.stream_ping_failed(seq, failure, now)
        elif purpose is StreamPurpose.DIRECT:
            self._direct.failed(seq, address, failure, detail)
        elif purpose is StreamPurpose.STATE:
            pass  # counted above; the next exchange retries
        elif purpose is StreamPurpose.BROADCAST:
            self._user.failed()
        else:
            self._sync.failed(purpose, address, failure, detail, seq, now)
        return self._flush()
