"""Application broadcasts: gossip a user's payload to every member, deliver each once.

A broadcast is a ``UserMessage`` queued in its own transmit-limited queue
(``Effects.user_broadcasts``), which packet assembly gives at most half of a datagram's
free space, so user traffic and membership gossip never starve each other (memberlist#299).
A receiver delivers a message the first time it sees it and gossips it on.

Exactly once, in bounded memory. A message's 63-bit id is its sender's *run* (a random
31-bit epoch drawn when the engine starts, so a restarted process starts a new run) in the
high bits and a counter in the low 32. ``UserBroadcasts`` is the one owner of what each run
delivered: the newest counter seen and a bitmap of the ``SEEN_WINDOW`` counters below it.
So a duplicate is refused whenever it comes (network duplication, gossip from several
members, a copy that circulates for long), and memory does not grow with the number of
messages: 512 bytes per run, at most ``MAX_USER_RUNS`` runs. What the bound costs, stated
exactly: a first copy arriving ``SEEN_WINDOW`` or more messages behind the newest one of
its run is refused (at most once; counted in ``user_broadcasts_too_old``; a sender's own
queue holds at most 1,024 messages, so only a member cut off for that many broadcasts of
one sender sees it); and once more than ``MAX_USER_RUNS`` runs were heard, the least
recently heard run is forgotten, so a copy of its messages still in circulation would be
delivered again (counted in ``user_runs_forgotten``). Ids of older versions (random) are
one run each: exactly once for the last ``MAX_USER_RUNS`` of them, as before.

Larger payloads take the reliable path. A broadcast whose message does not fit in half a
datagram, up to ``MAX_RELIABLE_BROADCAST`` bytes of payload (64 KiB, the codec's bound on
a byte string), is sent as the same ``UserMessage`` on one stream exchange
(``StreamPurpose.BROADCAST``) to every member held alive or suspect at that moment, with
the same signing, sealing and frame limits as every stream; each receiver delivers it once
(the same memory as above) and answers ``Ack(seq=id)``. It is not gossiped on, so a
member that joins later, or whose stream fails, does not get it (counted in
``user_broadcasts_stream_failed``). Above the bound, ``MessageTooLarge``.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable

import attrs

from . import codec
from ._effects import Effects
from .errors import MessageTooLarge
from .messages import Ack, Message, UserMessage
from .outputs import StreamPurpose, StreamReply, UserDelivery

__all__ = ["MAX_RELIABLE_BROADCAST", "MAX_USER_RUNS", "SEEN_WINDOW", "UserBroadcasts"]

#: Largest broadcast payload (sent on streams when it does not fit a datagram).
MAX_RELIABLE_BROADCAST = codec.MAX_BYTES_LENGTH

#: Counters told apart below the newest one seen of each sender run.
SEEN_WINDOW = 4096
#: Sender runs remembered (the least recently heard is forgotten first).
MAX_USER_RUNS = 1024
_COUNTER_BITS = 32
_COUNTER_MASK = (1 << _COUNTER_BITS) - 1
_WINDOW_MASK = (1 << SEEN_WINDOW) - 1


@attrs.define(eq=False, slots=True)
class _Run:
    """What one sender run delivered: the newest counter, and a bitmap whose bit ``i``
    says counter ``newest - i`` was seen."""

    newest: int
    bits: int = 1


class UserBroadcasts:
    """Sending and receiving application broadcasts.

    Args:
        name: our member name (the ``source`` of what we send).
        rng: the engine's only source of randomness (our run's epoch).
        effects: where the queue and deliveries are.
        peers: the addresses of the members held alive or suspect, ourselves excluded
            (the receivers of a broadcast sent on streams).
    """

    def __init__(
        self,
        *,
        name: str,
        rng: random.Random,
        effects: Effects,
        peers: Callable[[], list[str]] = list,
    ) -> None:
        self.name = name
        self.rng = rng
        self.effects = effects
        self.peers = peers
        self._epoch = -1  # drawn at our first broadcast
        self._counter = 0
        self._runs: OrderedDict[tuple[str, int], _Run] = OrderedDict()

    def broadcast(self, payload: bytes) -> None:
        """Queue ``payload`` for every member.

        Raises:
            MessageTooLarge: over ``MAX_RELIABLE_BROADCAST`` bytes; nothing is sent.
        """
        if self._epoch < 0 or self._counter > _COUNTER_MASK:  # 4 billion: a new run
            self._epoch, self._counter = self.rng.getrandbits(31), 0
        message_id = (self._epoch << _COUNTER_BITS) | self._counter
        message = UserMessage(source=self.name, id=message_id, payload=payload)
        encoded = self.effects.wire.encode_message(message)
        limit = self.effects.budget // 2
        if len(encoded) > limit:
            if len(payload) > MAX_RELIABLE_BROADCAST:
                raise MessageTooLarge(len(payload), MAX_RELIABLE_BROADCAST)
            self._counter += 1
            self._first_time(message.source, message.id)
            frame = self.effects.wire.encode_stream(message)
            for address in self.peers():
                self.effects.stream(StreamPurpose.BROADCAST, address, frame, seq=message.id)
            self.effects.counters["user_broadcasts_sent_reliable"] += 1
            return
        self._counter += 1
        self._first_time(message.source, message.id)
        self.effects.gossip_user((message.source, message.id), encoded)
        self.effects.counters["user_broadcasts_sent"] += 1

    def on_message(self, message: UserMessage, source: str, now: float) -> None:
        """Deliver ``message`` if it is new to us, and gossip it on."""
        if not self._first_time(message.source, message.id):
            return
        self.effects.gossip_user(
            (message.source, message.id), self.effects.wire.encode_message(message)
        )
        self.effects.counters["user_broadcasts_received"] += 1
        self.effects.output(UserDelivery(source=message.source, payload=message.payload))

    def on_stream(self, message: UserMessage, token: int, now: float) -> bool:
        """A broadcast too large for a datagram arrived on a stream: deliver it once (not
        gossiped on) and answer ``Ack(seq=id)``."""
        if self._first_time(message.source, message.id):
            self.effects.counters["user_broadcasts_received"] += 1
            self.effects.output(UserDelivery(source=message.source, payload=message.payload))
        self.effects.output(
            StreamReply(token=token, payload=self.effects.wire.encode_stream(Ack(seq=message.id)))
        )
        return True

    def answered(self, seq: int, reply: Message) -> bool:
        """A member answered our broadcast ``seq`` sent on a stream."""
        if type(reply) is not Ack or reply.seq != seq:
            return False
        self.effects.counters["user_broadcasts_stream_acked"] += 1
        return True

    def failed(self) -> None:
        """A stream of a broadcast got no answer: that member does not get it."""
        self.effects.counters["user_broadcasts_stream_failed"] += 1

    def _first_time(self, source: str, message_id: int) -> bool:
        """Record ``message_id`` of ``source``; whether it is new (see the module comment)."""
        key = (source, message_id >> _COUNTER_BITS)
        counter = message_id & _COUNTER_MASK
        runs = self._runs
        run = runs.get(key)
        if run is None:
            if len(runs) >= MAX_USER_RUNS:
                runs.popitem(last=False)
                self.effects.counters["user_runs_forgotten"] += 1
            runs[key] = _Run(newest=counter)
            return True
        runs.move_to_end(key)
        if counter > run.newest:
            ahead = counter - run.newest
            run.bits = ((run.bits << ahead) | 1) & _WINDOW_MASK if ahead < SEEN_WINDOW else 1
            run.newest = counter
            return True
        behind = run.newest - counter
        if behind >= SEEN_WINDOW:
            self.effects.counters["user_broadcasts_too_old"] += 1
            return False
        bit = 1 << behind
        if run.bits & bit:
            self.effects.counters["user_broadcasts_duplicate"] += 1
            return False
        run.bits |= bit
        return True
