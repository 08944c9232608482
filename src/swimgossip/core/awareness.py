"""Lifeguard's local health multiplier.

A node that is itself slow (CPU starved, paused, losing packets) misses acks and would
accuse healthy peers. The awareness score counts the evidence that *we* are the problem:
+1 for a failed probe, +1 per nack we expected and did not get, +1 each time we must refute
a suspicion of ourselves; -1 for each successful probe. Probe interval and probe timeout are
multiplied by ``score + 1``, so an unhealthy node probes slower and waits longer.
"""

from __future__ import annotations

import attrs

__all__ = ["Awareness"]


@attrs.define(eq=False)
class Awareness:
    """The score in ``[0, max_multiplier - 1]``; ``max_multiplier == 1`` disables it."""

    max_multiplier: int
    score: int = 0

    def apply_delta(self, delta: int) -> int:
        """Move the score by ``delta`` within bounds and return the new score."""
        self.score = min(max(self.score + delta, 0), self.max_multiplier - 1)
        return self.score

    def scale(self, duration: float) -> float:
        """``duration`` stretched by the current health: ``duration * (score + 1)``."""
        return duration * (self.score + 1)
