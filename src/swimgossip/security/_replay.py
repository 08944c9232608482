"""The replay guard: a time window plus a bounded cache of nonces already accepted.

How this works. Every signed or sealed packet carries the sender's wall-clock time in
milliseconds and a 96-bit random nonce, both covered by its tag. After a packet
authenticates, the guard accepts it only if

1. its timestamp is within ``window_ms`` of the receiver's wall clock (else STALE or
   FUTURE), and
2. its nonce is not in the cache of nonces accepted earlier (else REPLAY), and
3. it is stamped after the *floor*, the newest stamp the guard ever forgot (else FORGOTTEN).

Two clocks, each for what only it can do. The *wall* clock judges the window: a peer's
stamp can only be compared with our own wall time. The *monotonic* clock (the caller's
``mono_ms``; ``time.monotonic`` in ``PacketSigner``) decides how long an entry is at least
remembered: ``window_ms`` after it was admitted, whatever the wall clock does meanwhile.
And the *floor* makes forgetting safe under any clock: every entry the guard drops, by
expiry or by eviction, raises the floor to the entry's stamp, so the packet it stood for is
refused forever after. Why all three: the wall clock steps (NTP, a VM resumed, an operator),
and a step forward then back used to expire entries by the forward time and then accept
their packets again as fresh inside the restored window: a replay. With the floor, a
forgotten packet can never come back, whatever the clocks did; with the monotonic hold, a
short wall-clock step does not forget anything at all (replays are caught from memory, as
REPLAY, and no genuine packet is refused). The floor costs a sane clock nothing: an entry
expires only once its stamp is out of the window (``stamp < now - window_ms``), so the floor
stays below every stamp the window would still accept; it refuses genuine packets only
after the wall clock stepped *back* over stamps we had already forgotten, and then only
packets at least as old as a packet we really accepted.

Entries expire by *timestamp*, oldest first (and only once held ``window_ms`` of monotonic
time). Packets mostly arrive in timestamp order, so the entries live in two structures: a
deque of the entries that arrived in order (its timestamps never decrease: append and
expire in O(1)) and a min-heap of the few that arrived late; the oldest entry is the older
of the two heads.

Bounded memory. The cache holds at most ``capacity`` nonces. When it is full of unexpired
entries, the oldest stamp is evicted (raising the floor to it; a packet older than
everything still cached is refused as FORGOTTEN rather than evicting a newer entry). So a
full cache never lets a replay through; it may refuse some genuine late packets, and counts
every eviction (``evictions``) so the operator can size ``capacity``. At the default 65,536
entries and a +-30 s window that needs more than 1,000 authenticated packets per second
sustained; a node in a 1,000-member LAN cluster receives about 30. Only authenticated
packets reach the guard, so unauthenticated floods cannot fill it.

The guard is pure: it never reads a clock; the caller passes ``now_ms`` (and ``mono_ms``).
"""

from __future__ import annotations

import enum
import heapq
from collections import deque

import attrs

__all__ = ["DEFAULT_REPLAY_CACHE_SIZE", "DEFAULT_REPLAY_WINDOW", "Freshness", "ReplayGuard"]

#: Seconds a packet's timestamp may differ from the receiver's clock, either way.
DEFAULT_REPLAY_WINDOW = 30.0
#: Nonces remembered at most.
DEFAULT_REPLAY_CACHE_SIZE = 65_536


class Freshness(enum.Enum):
    """The guard's verdict on an authenticated packet."""

    FRESH = "fresh"
    STALE = "stale"
    FUTURE = "future"
    REPLAY = "replay"
    #: Possibly a replay: the cache is full and no longer remembers packets this old.
    FORGOTTEN = "forgotten"


@attrs.define(eq=False)
class ReplayGuard:
    """Remembers recently accepted nonces; refuses old, future and repeated packets.

    Args:
        window_ms: the acceptance window, in milliseconds either side of ``now_ms``.
        capacity: the most nonces remembered (at least 1).

    Raises:
        ValueError: if ``window_ms`` is negative or ``capacity`` is below 1.
    """

    window_ms: int = attrs.field(on_setattr=attrs.setters.frozen)
    capacity: int = attrs.field(on_setattr=attrs.setters.frozen)
    #: Entries evicted because the cache was full while they were still in the window.
    evictions: int = attrs.field(default=0, init=False)
    # Packets stamped at or before this were possibly forgotten: refused as replays.
    _floor_ms: int = attrs.field(default=-1, init=False)
    _seen: set[bytes] = attrs.field(factory=set, init=False)
    # (timestamp, nonce, admitted at on the monotonic clock) of every cached nonce: in
    # arrival order while timestamps do not decrease, else in the heap.
    _in_order: deque[tuple[int, bytes, int]] = attrs.field(factory=deque, init=False)
    _late: list[tuple[int, bytes, int]] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        if self.window_ms < 0:
            raise ValueError(f"the replay window must be >= 0 ms, not {self.window_ms}")
        if self.capacity < 1:
            raise ValueError(f"the replay cache must hold >= 1 entry, not {self.capacity}")

    def __len__(self) -> int:
        return len(self._seen)

    def admit(
        self, nonce: bytes, timestamp_ms: int, now_ms: int, mono_ms: int | None = None
    ) -> Freshness:
        """Judge an authenticated packet and, if FRESH, remember its nonce.

        Args:
            nonce: the packet's nonce.
            timestamp_ms: the packet's (authenticated) timestamp.
            now_ms: the receiver's wall clock.
            mono_ms: the receiver's monotonic clock (default: ``now_ms``, for callers
                whose wall clock never steps).

        Returns:
            ``Freshness.FRESH`` if the packet is to be accepted; otherwise why not.
        """
        if mono_ms is None:
            mono_ms = now_ms
        window_ms = self.window_ms
        skew = timestamp_ms - now_ms
        if skew < -window_ms:
            return _STALE
        if skew > window_ms:
            return _FUTURE
        seen = self._seen
        if nonce in seen:
            return _REPLAY
        in_order, late = self._in_order, self._late
        oldest_useful = now_ms - window_ms
        held_since = mono_ms - window_ms
        floor = self._floor_ms
        while in_order and in_order[0][0] < oldest_useful and in_order[0][2] <= held_since:
            stamp, forgotten, _ = in_order.popleft()
            seen.discard(forgotten)
            floor = max(floor, stamp)
        while late and late[0][0] < oldest_useful and late[0][2] <= held_since:
            stamp, forgotten, _ = heapq.heappop(late)
            seen.discard(forgotten)
            floor = max(floor, stamp)
        self._floor_ms = floor
        if timestamp_ms <= floor:
            return _FORGOTTEN
        if len(seen) >= self.capacity:
            from_late = bool(late) and (not in_order or late[0][0] < in_order[0][0])
            oldest_ms = late[0][0] if from_late else in_order[0][0]
            if timestamp_ms <= oldest_ms:
                # Remembering it would mean forgetting a newer packet: refuse it instead.
                return _FORGOTTEN
            evicted = heapq.heappop(late)[1] if from_late else in_order.popleft()[1]
            seen.discard(evicted)
            self.evictions += 1
            self._floor_ms = max(self._floor_ms, oldest_ms)
        seen.add(nonce)
        entry = (timestamp_ms, nonce, mono_ms)
        if not in_order or timestamp_ms >= in_order[-1][0]:
            in_order.append(entry)
        else:
            heapq.heappush(late, entry)
        return _FRESH


_FRESH, _STALE, _FUTURE, _REPLAY, _FORGOTTEN = (
    Freshness.FRESH,
    Freshness.STALE,
    Freshness.FUTURE,
    Freshness.REPLAY,
    Freshness.FORGOTTEN,
)
