"""The probe order: shuffled round robin, newcomers at random positions.

SWIM probes one member per period. Walking a shuffled list (reshuffled at the end of each
pass) instead of picking at random bounds the time to the first probe of a crashed member
to 2N-1 periods. A newcomer is inserted at a random position, so it neither waits a whole
pass nor jumps the queue predictably. The same list doubles as the population for choosing
``k`` random members (ping-req helpers, gossip and push-pull targets).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

__all__ = ["ProbeCycle"]


@attrs.define(eq=False)
class ProbeCycle:
    """Names of the other members in probe order."""

    rng: random.Random
    _names: list[str] = attrs.field(factory=list, init=False)
    #: The names as a set, for ``add`` and ``remove``; built on first need after
    #: ``install`` (a prejoined simulation's 10,000 nodes never need most of theirs: at
    #: 10,000 names a set is 50 bytes per name per node, more than the list and the table).
    _present_set: set[str] | None = attrs.field(factory=set, init=False)
    _position: int = attrs.field(default=0, init=False)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: str) -> bool:
        return name in self._present

    @property
    def _present(self) -> set[str]:
        if self._present_set is None:
            self._present_set = set(self._names)
        return self._present_set

    def add(self, name: str) -> None:
        """Insert ``name`` at a random position (no-op if present)."""
        present = self._present
        if name in present:
            return
        present.add(name)
        index = self.rng.randint(0, len(self._names))
        self._names.insert(index, name)
        if index < self._position:
            self._position += 1

    def install(self, names: list[str]) -> None:
        """Replace the order with ``names`` as given (already shuffled by the caller; the
        list is taken over, not copied)."""
        self._names = names
        self._present_set = None
        self._position = 0

    def remove(self, name: str) -> None:
        """Take ``name`` out of the order (no-op if absent)."""
        present = self._present
        if name not in present:
            return
        present.discard(name)
        index = self._names.index(name)
        del self._names[index]
        if index < self._position:
            self._position -= 1

    def next(self, probeable: Callable[[str], bool]) -> str | None:
        """The next name in order for which ``probeable`` holds; None if there is none."""
        for _ in range(2 * len(self._names) + 1):  # the rest of this pass, then a new one
            if self._position >= len(self._names):
                self.rng.shuffle(self._names)
                self._position = 0
                if not self._names:
                    return None
            name = self._names[self._position]
            self._position += 1
            if probeable(name):
                return name
        return None

    def sample(self, count: int, wanted: Callable[[str], bool]) -> list[str]:
        """Up to ``count`` distinct random names for which ``wanted`` holds.

        Exhaustive for small populations; for large ones a bounded number of random tries
        (so the usual cost does not grow with the cluster), then one scan from a random
        offset if those found too few.
        """
        names = self._names
        if count <= 0 or not names:
            return []
        if len(names) <= 4 * count + 8:
            candidates = [name for name in names if wanted(name)]
            if len(candidates) <= count:
                self.rng.shuffle(candidates)
                return candidates
            return self.rng.sample(candidates, count)
        chosen: list[str] = []
        randrange = self.rng.randrange
        for _ in range(8 * count + 32):
            name = names[randrange(len(names))]
            if name not in chosen and wanted(name):
                chosen.append(name)
                if len(chosen) == count:
                    return chosen
        # Few wanted names among many: scan once from a random offset.
        start = randrange(len(names))
        for index in range(len(names)):
            name = names[(start + index) % len(names)]
            if name not in chosen and wanted(name):
                chosen.append(name)
                if len(chosen) == count:
                    break
        return chosen
