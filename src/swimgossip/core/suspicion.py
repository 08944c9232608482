"""Suspicion timeouts (Lifeguard) as pure functions, and one suspicion's bookkeeping.

The floor is memberlist's ``suspicion_mult * max(1, log10(N)) * probe_interval`` and the
ceiling ``suspicion_max_timeout_mult`` times that. A fresh suspicion waits the ceiling;
every *independent* confirmation (another member suspecting the same incarnation) shrinks
it logarithmically towards the floor:
``timeout = max(floor, ceiling - (ceiling - floor) * ln(C + 1) / ln(K + 1))`` with ``C``
confirmations so far and ``K`` expected ones (``suspicion_mult - 2``, or 0 in a cluster too
small to supply them, in which case the floor applies at once).
"""

from __future__ import annotations

import math

import attrs

__all__ = [
    "Suspicion",
    "expected_confirmations",
    "suspicion_max_timeout",
    "suspicion_min_timeout",
    "suspicion_timeout",
]


def suspicion_min_timeout(suspicion_mult: int, cluster_size: int, probe_interval: float) -> float:
    """The floor: ``suspicion_mult * max(1, log10(N)) * probe_interval``."""
    node_scale = max(1.0, math.log10(max(1, cluster_size)))
    return suspicion_mult * node_scale * probe_interval


def suspicion_max_timeout(min_timeout: float, max_timeout_mult: int) -> float:
    """The ceiling: ``max_timeout_mult`` times the floor."""
    return min_timeout * max_timeout_mult


def expected_confirmations(suspicion_mult: int, cluster_size: int) -> int:
    """``K``: how many independent confirmations to expect before reaching the floor.

    Those able to confirm are the members other than the suspect and us; when fewer than
    ``suspicion_mult - 2`` exist we expect none and use the floor directly.
    """
    k = suspicion_mult - 2
    return 0 if cluster_size - 2 < k else max(k, 0)


def suspicion_timeout(
    confirmations: int, expected: int, min_timeout: float, max_timeout: float
) -> float:
    """Lifeguard's dynamic timeout after ``confirmations`` of ``expected``."""
    if expected <= 0:
        return min_timeout
    fraction = math.log(confirmations + 1) / math.log(expected + 1)
    return max(min_timeout, max_timeout - (max_timeout - min_timeout) * fraction)


@attrs.define(eq=False)
class Suspicion:
    """One live suspicion: when it started, its bounds, and who confirmed it.

    ``token`` changes whenever the deadline moves, so earlier ``SuspicionTimeout`` timers
    become stale.
    """

    incarnation: int
    by: str
    started: float
    min_timeout: float
    max_timeout: float
    expected: int
    token: int
    confirmed_by: set[str] = attrs.Factory(set)

    @property
    def deadline(self) -> float:
        """When the suspect is declared failed, given the confirmations so far."""
        timeout = suspicion_timeout(
            len(self.confirmed_by), self.expected, self.min_timeout, self.max_timeout
        )
        return self.started + timeout

    def confirm(self, source: str) -> bool:
        """Record an independent confirmation; True if it was new and counted."""
        if source == self.by or source in self.confirmed_by:
            return False
        if len(self.confirmed_by) >= self.expected:
            return False
        self.confirmed_by.add(source)
        return True
