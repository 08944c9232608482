"""Application broadcasts: gossip a user's payload to every member, deliver each once.

A broadcast is a ``UserMessage`` with a random 63-bit id, queued in its own
transmit-limited queue (``Effects.user_broadcasts``), which packet assembly gives at most
half of a datagram's free space, so user traffic and membership gossip never starve each
other (memberlist#299). ``UserBroadcasts`` is the one owner of the memory of recent ids:
a receiver delivers a message the first time it sees its ``(source, id)`` and gossips it
on.
"""

from __future__ import annotations

import random
from collections import OrderedDict

from . import codec
from ._effects import Effects
from .errors import MessageTooLarge
from .messages import UserMessage
from .outputs import UserDelivery

__all__ = ["MAX_USER_SEEN", "UserBroadcasts"]

#: Application broadcasts remembered to deliver each exactly once.
MAX_USER_SEEN = 8192


class UserBroadcasts:
    """Sending and receiving application broadcasts.

    Args:
        name: our member name (the ``source`` of what we send).
        rng: the engine's only source of randomness (message ids).
        effects: where the queue and deliveries are.
    """

    def __init__(self, *, name: str, rng: random.Random, effects: Effects) -> None:
        self.name = name
        self.rng = rng
        self.effects = effects
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()

    def broadcast(self, payload: bytes) -> None:
        """Queue ``payload`` for every member.

        Raises:
            MessageTooLarge: if it cannot fit in half a datagram; nothing is queued.
        """
        message = UserMessage(source=self.name, id=self.rng.getrandbits(63), payload=payload)
        encoded = codec.encode_message(message)
        limit = self.effects.budget // 2
        if len(encoded) > limit:
            raise MessageTooLarge(len(payload), limit - (len(encoded) - len(payload)))
        key = (message.source, message.id)
        self._seen[key] = None
        self.effects.gossip_user(key, encoded)
        self.effects.counters["user_broadcasts_sent"] += 1

    def on_message(self, message: UserMessage, source: str, now: float) -> None:
        """Deliver ``message`` if it is new to us, and gossip it on."""
        key = (message.source, message.id)
        if key in self._seen:
            return
        self._seen[key] = None
        if len(self._seen) > MAX_USER_SEEN:
            self._seen.popitem(last=False)
        self.effects.gossip_user(key, codec.encode_message(message))
        self.effects.counters["user_broadcasts_received"] += 1
        self.effects.output(UserDelivery(source=message.source, payload=message.payload))
