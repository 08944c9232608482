"""The piggyback queue: transmit-limited, fewest-sent first, newest update wins.

Every membership update is queued once, already encoded, under a key (the member's name).
A newer update under the same key replaces the older one, so a member is never gossiped
twice in the same packet and stale claims die at once. Each outgoing datagram takes as many
queued messages as fit in its byte budget, those sent least often first (newest first among
equals); a message is retired after ``retransmit_limit`` transmissions, which by SWIM's
analysis reaches all but ~N^-(2*lambda-2) of the members.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable

import attrs

__all__ = ["MAX_SKIPPED", "BroadcastQueue", "retransmit_limit"]


def retransmit_limit(retransmit_mult: int, cluster_size: int) -> int:
    """How many times each update is sent: ``retransmit_mult * ceil(log10(N + 1))``."""
    return retransmit_mult * math.ceil(math.log10(cluster_size + 1))


#: Messages too big for what is left of a datagram that one ``take`` skips at most.
MAX_SKIPPED = 64


@attrs.define(eq=False, slots=True)
class _Item:
    key: Hashable
    payload: bytes
    order: int
    transmits: int = 0


@attrs.define(eq=False)
class BroadcastQueue:
    """Encoded gossip waiting to be piggybacked. Holds at most ``max_items``.

    The items live in a dict (by key) and a heap ordered by (transmits, newest first), so a
    datagram costs O((taken + skipped) log n), not a sort of the whole queue: a replaced,
    discarded or re-sent item leaves a stale heap entry behind, skipped when it surfaces
    and swept out when stale entries outnumber live ones.
    """

    max_items: int
    _items: dict[Hashable, _Item] = attrs.field(factory=dict, init=False)
    _heap: list[tuple[int, int, _Item]] = attrs.field(factory=list, init=False)
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
        item = _Item(key=key, payload=payload, order=self._order)
        self._items[key] = item
        heapq.heappush(self._heap, (0, -item.order, item))
        self._sweep()

    def discard(self, key: Hashable) -> None:
        """Forget the message under ``key`` if any."""
        self._items.pop(key, None)
        self._sweep()

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
        remain (no message is that small) or ``MAX_SKIPPED`` were skipped.
        """
        if not self._items or budget <= 0 or max_count <= 0:
            return []
        heap, items = self._heap, self._items
        chosen: list[bytes] = []
        put_back: list[tuple[int, int, _Item]] = []
        skipped = 0
        while heap and len(chosen) < max_count:
            transmits, newest, item = heap[0]
            if items.get(item.key) is not item or item.transmits != transmits:
                heapq.heappop(heap)  # stale: replaced, discarded or re-sent since
                continue
            cost = len(item.payload) + overhead
            if cost > budget:
                if budget < 16 or skipped >= MAX_SKIPPED:
                    break
                skipped += 1
                put_back.append(heapq.heappop(heap))
                continue
            heapq.heappop(heap)
            budget -= cost
            chosen.append(item.payload)
            item.transmits += 1
            if item.transmits >= limit:
                del items[item.key]
            else:
                put_back.append((item.transmits, newest, item))
        for entry in put_back:
            heapq.heappush(heap, entry)
        return chosen

    def _sweep(self) -> None:
        """Rebuild the heap once stale entries outnumber the live ones."""
        if len(self._heap) > 2 * len(self._items) + 64:
            self._heap = [(i.transmits, -i.order, i) for i in self._items.values()]
            heapq.heapify(self._heap)
