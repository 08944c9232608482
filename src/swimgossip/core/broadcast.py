"""The piggyback queue: transmit-limited, fewest-sent first, newest update wins.

Every membership update is queued once, already encoded, under a key (the member's name).
A newer update under the same key replaces the older one, so a member is never gossiped
twice in the same packet and stale claims die at once. Each outgoing datagram takes as many
queued messages as fit in its byte budget, those sent least often first (newest first among
equals); a message is retired after ``retransmit_limit`` transmissions, which by SWIM's
analysis reaches all but ~N^-(2*lambda-2) of the members.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import attrs

__all__ = ["BroadcastQueue", "retransmit_limit"]


def retransmit_limit(retransmit_mult: int, cluster_size: int) -> int:
    """How many times each update is sent: ``retransmit_mult * ceil(log10(N + 1))``."""
    return retransmit_mult * math.ceil(math.log10(cluster_size + 1))


@attrs.define(eq=False, slots=True)
class _Item:
    key: Hashable
    payload: bytes
    order: int
    transmits: int = 0


@attrs.define(eq=False)
class BroadcastQueue:
    """Encoded gossip waiting to be piggybacked. Holds at most ``max_items``."""

    max_items: int
    _items: dict[Hashable, _Item] = attrs.field(factory=dict, init=False)
    _order: int = attrs.field(default=0, init=False)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def push(self, key: Hashable, payload: bytes) -> None:
        """Queue ``payload`` under ``key``, replacing an older message with that key.

        When the queue is full, the message sent most often (oldest among equals) is dropped.
        """
        self._order += 1
        self._items.pop(key, None)
        if len(self._items) >= self.max_items:
            victim = max(self._items.values(), key=lambda item: (item.transmits, -item.order))
            del self._items[victim.key]
        self._items[key] = _Item(key=key, payload=payload, order=self._order)

    def discard(self, key: Hashable) -> None:
        """Forget the message under ``key`` if any."""
        self._items.pop(key, None)

    def transmits(self, key: Hashable) -> int | None:
        """How often the message under ``key`` was sent, or None if it is not queued."""
        item = self._items.get(key)
        return None if item is None else item.transmits

    def take(
        self, budget: int, limit: int, overhead: int = 0, max_count: int = 1 << 30
    ) -> list[bytes]:
        """At most ``max_count`` messages fitting in ``budget`` bytes (each costing
        ``overhead`` extra).

        Counts one transmission for each message taken and retires those that reach
        ``limit``. Returns them fewest-sent first, newest first among equals. A message
        too big for what is left is skipped for smaller ones, until fewer than 16 bytes
        remain (no message is that small).
        """
        if not self._items or budget <= 0 or max_count <= 0:
            return []
        chosen: list[bytes] = []
        for item in sorted(self._items.values(), key=lambda i: (i.transmits, -i.order)):
            cost = len(item.payload) + overhead
            if cost > budget:
                if budget < 16:
                    break
                continue
            budget -= cost
            chosen.append(item.payload)
            item.transmits += 1
            if item.transmits >= limit:
                del self._items[item.key]
            if len(chosen) >= max_count:
                break
        return chosen
