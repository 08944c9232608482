"""The engine's effects: everything it asks of the outside world, gathered per entry point.

``Effects`` is the one owner of what leaves the engine and of the numbering that goes with
it: the outputs of the entry point being run (and its ``now``), the sequence numbers of
pings, the tokens of timers and streams, the event ``seq``, the registry of our stream
requests in flight, the datagram budget, and the two piggyback queues (membership gossip
and application broadcasts) that fill each datagram's free space. The other parts call it
to send, gossip, schedule, stream and emit; the engine facade sets ``now`` at the start of
each entry point and calls ``flush`` at its end.

Packet assembly gives application broadcasts at most half of a datagram's free space, so
user traffic and membership gossip never starve each other (memberlist#299). Gossip rounds
are armed only while something waits in a queue, at a random phase, so an idle node wakes
for its probes alone and news waits half a gossip interval per hop on average.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Hashable, Sequence

import attrs

from . import codec
from .broadcast import BroadcastQueue, retransmit_limit
from .config import Config
from .events import Event
from .messages import Message
from .outputs import Output, PublishEvent, ScheduleTimer, SendDatagram, StreamPurpose, StreamRequest
from .timers import GossipTick, Timer
from .wire import Wire

__all__ = ["MAX_USER_QUEUE", "PACKET_HEADER", "Effects", "PendingStream"]

#: Packet header room: version byte plus the largest array header we use.
PACKET_HEADER = 4
#: Application broadcasts waiting to be sent; the oldest most-sent is dropped beyond this.
MAX_USER_QUEUE = 1024


@attrs.frozen(slots=True)
class PendingStream:
    """One of our stream requests in flight: why, to whom, and the probe ``seq`` (pings)."""

    purpose: StreamPurpose
    address: str
    seq: int


@attrs.define(eq=False)
class Effects:
    """Outputs, numbering, streams in flight and the piggyback queues of one engine.

    Args:
        config: protocol tunables.
        rng: the engine's only source of randomness.
        budget: bytes of each datagram available for messages.
        cluster_size: how many members are active (the ``N`` of the retransmit limit).
        wire: the byte format (``wire.py``); our ``codec`` by default.
    """

    config: Config
    rng: random.Random
    budget: int
    cluster_size: Callable[[], int]
    wire: Wire = codec
    #: Counters of everything the engine did, read by the runtime's metrics.
    counters: Counter[str] = attrs.field(factory=Counter, init=False)
    #: Membership gossip (keyed by member name).
    broadcasts: BroadcastQueue = attrs.field(init=False)
    #: Application broadcasts (keyed by ``(source, id)``).
    user_broadcasts: BroadcastQueue = attrs.field(
        factory=lambda: BroadcastQueue(max_items=MAX_USER_QUEUE), init=False
    )
    #: Member state deltas (keyed by ``(owner, key)``; a newer version replaces an older).
    state_broadcasts: BroadcastQueue = attrs.field(
        factory=lambda: BroadcastQueue(max_items=MAX_USER_QUEUE), init=False
    )
    #: The ``now`` of the entry point being run (set by the engine; for timers armed deep
    #: inside it).
    now: float = attrs.field(default=0.0, init=False)
    _out: list[Output] = attrs.field(factory=list, init=False)
    _streams: dict[int, PendingStream] = attrs.field(factory=dict, init=False)
    _seq: int = attrs.field(default=0, init=False)
    _token: int = attrs.field(default=0, init=False)
    _event_seq: int = attrs.field(default=0, init=False)
    _gossip_armed: bool = attrs.field(default=False, init=False)
    _encode_message: Callable[[Message], bytes] = attrs.field(init=False)
    _join_packet: Callable[[Sequence[bytes]], bytes] = attrs.field(init=False)
    _max_messages: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        # The wire's hot-path functions, read per datagram (as cheap as a module global).
        self._encode_message = self.wire.encode_message
        self._join_packet = self.wire.join_packet
        self._max_messages = self.wire.MAX_DATAGRAM_MESSAGES
        self.broadcasts = BroadcastQueue(max_items=self.config.max_members + 16)

    # ------------------------------------------------------------------ per entry point

    def flush(self) -> list[Output]:
        """The outputs gathered since the last flush, in order."""
        out, self._out = self._out, []
        return out

    def output(self, output: Output) -> None:
        """Add one output as it is (replies, join outcomes, deliveries)."""
        self._out.append(output)

    # ------------------------------------------------------------------ numbering

    def next_seq(self) -> int:
        """A fresh ping sequence number."""
        self._seq += 1
        return self._seq

    def next_token(self) -> int:
        """A fresh token (suspicion timers, stream requests)."""
        self._token += 1
        return self._token

    def emit(self, event: Event) -> None:
        """Publish a membership or state event, numbered with the next event ``seq``."""
        self._event_seq += 1
        self._out.append(PublishEvent(event=attrs.evolve(event, seq=self._event_seq)))

    def schedule(self, at: float, timer: Timer) -> None:
        """Ask for ``timer`` to be handed back at ``at``."""
        self._out.append(ScheduleTimer(at=at, timer=timer))

    # ------------------------------------------------------------------ streams

    def stream(
        self,
        purpose: StreamPurpose,
        address: str,
        payload: bytes,
        *,
        seq: int = 0,
        deadline: float | None = None,
    ) -> int:
        """Request a stream exchange; returns its token (see ``take_stream``)."""
        token = self.next_token()
        self._streams[token] = PendingStream(purpose, address, seq)
        if deadline is None:
            deadline = self.now + self.config.stream_timeout
        self._out.append(
            StreamRequest(
                token=token, address=address, payload=payload, purpose=purpose, deadline=deadline
            )
        )
        self.counters[f"stream_{purpose.value}_sent"] += 1
        return token

    def take_stream(self, token: int) -> PendingStream | None:
        """The request ``token`` stood for, once (None if unknown or already settled)."""
        return self._streams.pop(token, None)

    # ------------------------------------------------------------------ datagrams

    def send(self, address: str, primary: list[Message]) -> bool:
        """Send ``primary`` messages to ``address`` with as much gossip as fits.

        Without primary messages, sends only if there is gossip; returns whether it sent.
        """
        encoded = list(map(self._encode_message, primary))
        if not (self.broadcasts or self.user_broadcasts or self.state_broadcasts):
            # Nothing to piggyback (an idle cluster's every ping and ack): send as is.
            if not encoded:
                return False
            payload = self._join_packet(encoded)
            counters = self.counters
            counters["datagrams_sent"] += 1
            counters["bytes_sent"] += len(payload)
            self._out.append(SendDatagram(address=address, payload=payload))
            return True
        room = self.budget - sum(len(e) for e in encoded)
        limit = retransmit_limit(self.config.retransmit_mult, self.cluster_size())
        # Application broadcasts and state deltas each take at most half the room (a third
        # when both wait), so no kind starves membership gossip or the other (memberlist#299).
        queues = [q for q in (self.user_broadcasts, self.state_broadcasts) if q]
        share = room // (len(queues) + 1)
        for queue in queues:
            count = self._max_messages // 4
            taken = queue.take(share, limit, max_count=count)
            room -= sum(len(e) for e in taken)
            encoded += taken
        count = self._max_messages - len(encoded)
        encoded += self.broadcasts.take(room, limit, max_count=count)
        if not encoded:
            return False
        payload = self._join_packet(encoded)
        self.counters["datagrams_sent"] += 1
        self.counters["bytes_sent"] += len(payload)
        self._out.append(SendDatagram(address=address, payload=payload))
        return True

    # ------------------------------------------------------------------ gossip

    @property
    def has_gossip(self) -> bool:
        """Whether anything waits in either queue."""
        return bool(self.broadcasts) or bool(self.user_broadcasts) or bool(self.state_broadcasts)

    def gossip(self, key: Hashable, message: Message) -> None:
        """Queue membership gossip under ``key`` (replacing older news under it).

        A message larger than a whole datagram's budget could never be sent: it is not
        queued (counted in ``gossip_too_large``; push-pull still carries the state), and
        older news under ``key`` is dropped, being superseded."""
        encoded = self.wire.encode_message(message)
        if len(encoded) > self.budget:
            self.counters["gossip_too_large"] += 1
            self.broadcasts.discard(key)
            return
        self.broadcasts.push(key, encoded)
        self.arm_gossip()

    def gossip_user(self, key: Hashable, encoded: bytes) -> None:
        """Queue an encoded application broadcast under ``key`` (not if it is larger than
        the half datagram user traffic may take: counted in ``gossip_too_large``)."""
        if len(encoded) > self.budget // 2:
            self.counters["gossip_too_large"] += 1
            return
        self.user_broadcasts.push(key, encoded)
        self.arm_gossip()

    def gossip_state(self, key: Hashable, encoded: bytes) -> bool:
        """Queue an encoded state delta under ``key`` (replacing an older version); not if
        it is larger than the half datagram it may take (counted in
        ``state_gossip_too_large``: the state exchange carries it). Returns whether queued."""
        if len(encoded) > self.budget // 2:
            self.counters["state_gossip_too_large"] += 1
            self.state_broadcasts.discard(key)
            return False
        self.state_broadcasts.push(key, encoded)
        self.arm_gossip()
        return True

    def arm_gossip(self) -> None:
        """Make sure a gossip round is due. Rounds run only while something waits to be
        gossiped, so an idle node wakes for its probes alone."""
        if not self._gossip_armed:
            self._gossip_armed = True
            # At a random phase, as a free-running ticker would be: news waits half a
            # gossip interval on average, not a whole one, at every hop.
            delay = self.rng.uniform(0, self.config.gossip_interval)
            self.schedule(self.now + delay, GossipTick())

    def gossip_round_started(self) -> None:
        """The armed ``GossipTick`` fired."""
        self._gossip_armed = False

    def gossip_round_ended(self) -> None:
        """After a round: while more waits, keep the cadence of one round per interval."""
        if self.has_gossip and not self._gossip_armed:
            self._gossip_armed = True
            self.schedule(self.now + self.config.gossip_interval, GossipTick())
