"""Rendezvous (highest-random-weight) hashing over members: ``swimgossip.ring.Ring``.

Which member owns a key (a shard, a tenant, a job), computed alike by every member from the
member list, with weights, moving only the keys of a member that goes. The implementation
is pure and lives in the core (``swimgossip.core.ring``); docs/sharding.md reassigns shards
on ``MemberFailed``::

    ring = Ring.from_members(node.alive())
    if ring.owner(f"shard-{n}") == node.name: ...
"""

from __future__ import annotations

from .core.ring import EmptyRing, Ring, score

__all__ = ["EmptyRing", "Ring", "score"]
