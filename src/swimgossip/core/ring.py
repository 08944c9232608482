"""Rendezvous (highest-random-weight) hashing: which member owns a key. Pure.

Every member scores every key with a hash of (member name, key) and the key belongs to the
member with the highest score. All members compute the same answer from the same member
list with no coordination (the hash is BLAKE2b, the same in every process, unlike
``hash()``). When a member goes, only the keys it owned move, each to its next-highest
scorer; when one arrives, only the keys it now wins move, all to it. Nothing else changes:
that is the property sharding needs, and the reason to prefer this over ``hash(key) % n``.

Weights use the logarithmic method (Schindelhauer and Schomaker, "Weighted Distributed
Hash Tables", 2005): with ``u`` the hash mapped into (0, 1), the score is
``weight / -ln(u)``, so a member of weight 2 owns on average twice the keys of a member of
weight 1, and the stability above still holds.

``swimgossip.ring`` re-exports this module; docs/sharding.md shows shards reassigned when a
member fails.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping

from .errors import EmptyRing
from .member import Member

__all__ = ["EmptyRing", "Ring", "score"]

_SCALE = 2.0**64


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def score(member: str, key: str | bytes, weight: float = 1.0) -> float:
    """The rendezvous score of ``member`` for ``key`` (higher wins)."""
    name = member.encode("utf-8")
    digest = hashlib.blake2b(
        len(name).to_bytes(4, "big") + name + _as_bytes(key), digest_size=8
    ).digest()
    unit = (int.from_bytes(digest, "big") + 0.5) / _SCALE  # in (0, 1), never 0 or 1
    return weight / -math.log(unit)


class Ring:
    """Rendezvous hashing over named members with weights.

    Args:
        members: member names (weight 1 each), or a mapping name -> weight.

    Raises:
        ValueError: a weight that is not a positive finite number.
    """

    __slots__ = ("_weights",)

    def __init__(self, members: Iterable[str] | Mapping[str, float] = ()) -> None:
        if isinstance(members, Mapping):
            weights = {str(name): float(weight) for name, weight in members.items()}
        else:
            weights = dict.fromkeys(members, 1.0)
        for name, weight in weights.items():
            if not (weight > 0 and math.isfinite(weight)):
                raise ValueError(f"weight of {name!r} must be a positive number, got {weight!r}")
        self._weights: dict[str, float] = weights

    @classmethod
    def from_members(
        cls, members: Iterable[Member], *, weight: Callable[[Member], float] | None = None
    ) -> Ring:
        """A ring over ``members`` (pass the alive ones: ``node.alive()``); ``weight``
        gives each its weight (default 1), e.g. ``lambda m: float(m.tags.get("w", 1))``.

        Raises:
            ValueError: a weight that is not a positive finite number.
        """
        return cls({m.name: 1.0 if weight is None else weight(m) for m in members})

    @property
    def members(self) -> Mapping[str, float]:
        """Member name -> weight."""
        return dict(self._weights)

    def __len__(self) -> int:
        return len(self._weights)

    def __contains__(self, name: object) -> bool:
        return name in self._weights

    def owner(self, key: str | bytes) -> str:
        """The member that owns ``key``.

        Raises:
            EmptyRing: the ring has no member.
        """
        if not self._weights:
            raise EmptyRing("the ring has no member to own a key")
        # Ties (vanishingly rare) go to the greater name, so every process agrees.
        return max(self._weights, key=lambda name: (score(name, key, self._weights[name]), name))

    def owners(self, key: str | bytes, count: int) -> list[str]:
        """The ``count`` members preferred for ``key``, best first (replicas: the first is
        ``owner(key)``; when it goes, the second takes over). Fewer if the ring is smaller.

        Raises:
            ValueError: ``count`` is negative.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        ranked = sorted(
            self._weights,
            key=lambda name: (score(name, key, self._weights[name]), name),
            reverse=True,
        )
        return ranked[:count]

    def assign(self, keys: Iterable[str | bytes]) -> dict[str, list[str | bytes]]:
        """Each member's keys (members owning none are left out), keys in the given order.

        Raises:
            EmptyRing: the ring has no member and ``keys`` is not empty.
        """
        owned: dict[str, list[str | bytes]] = {}
        for key in keys:
            owned.setdefault(self.owner(key), []).append(key)
        return owned

    def __repr__(self) -> str:
        return f"Ring({self._weights!r})"
