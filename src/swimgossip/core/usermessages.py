"""Application broadcasts: gossip a user's payload to every member, deliver each once.

A broadcast is a ``UserMessage`` with a random 63-bit id, queued in its own transmit-limited
queue (``Engine.user_broadcasts``), which packet assembly gives at most half of a
datagram's free space, so user traffic and membership gossip never starve each other
(memberlist#299). A receiver delivers a message the first time it sees its
``(source, id)`` (a bounded memory of recent ids) and gossips it on.

This module is a mixin of ``Engine``; its methods are engine methods.
"""

# Methods are typed with `self: Engine` (the class they are mixed into); mypy calls
# that an "erased self type" [misc], which is what a mixin means here.
# mypy: disable-error-code="misc"

from __future__ import annotations

from typing import TYPE_CHECKING

from . import codec
from .errors import MessageTooLarge, NotRunning
from .messages import UserMessage
from .outputs import Output, UserDelivery

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["MAX_USER_QUEUE", "MAX_USER_SEEN", "UserMessagesMixin"]

#: Application broadcasts waiting to be sent; the oldest most-sent is dropped beyond this.
MAX_USER_QUEUE = 1024
#: Application broadcasts remembered to deliver each exactly once.
MAX_USER_SEEN = 8192


class UserMessagesMixin:
    """Sending and receiving application broadcasts."""

    def broadcast(self: Engine, payload: bytes, now: float) -> list[Output]:
        """Gossip an application message to every member (delivered once each).

        Raises:
            MessageTooLarge: if it cannot fit in one datagram; nothing is sent.
            NotRunning: after leave.
        """
        self._now = now
        if self.leaving:
            raise NotRunning("cannot broadcast after leaving")
        message = UserMessage(source=self.name, id=self.rng.getrandbits(63), payload=payload)
        encoded = codec.encode_message(message)
        limit = self._budget // 2
        if len(encoded) > limit:
            raise MessageTooLarge(len(payload), limit - (len(encoded) - len(payload)))
        self._seen_user[(message.source, message.id)] = None
        self.user_broadcasts.push((message.source, message.id), encoded)
        self._arm_gossip()
        self.counters["user_broadcasts_sent"] += 1
        return self._flush()

    def _on_user_message(self: Engine, message: UserMessage) -> None:
        key = (message.source, message.id)
        if key in self._seen_user:
            return
        self._seen_user[key] = None
        if len(self._seen_user) > MAX_USER_SEEN:
            self._seen_user.popitem(last=False)
        self.user_broadcasts.push(key, codec.encode_message(message))
        self._arm_gossip()
        self.counters["user_broadcasts_received"] += 1
        self._out.append(UserDelivery(source=message.source, payload=message.payload))
