"""Members, statuses and SWIM's precedence rule.

A member is known by a unique name. What we believe of it is a ``Member`` value: address,
status, incarnation and metadata. Only the member itself raises its incarnation (to refute a
suspicion, to change metadata). Claims about a member are ordered by ``supersedes``:

* a higher incarnation wins;
* at equal incarnation, left > dead > suspect > alive (a graceful leave is the most
  informative claim; SWIM's "dead/left > suspect > alive").

The engine adds two protocol rules on top (see ``table.py``): a suspicion is never raised
against a dead or left member, and a dead or left member is not re-declared.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from .tags import decode_tags

__all__ = ["Member", "Status", "supersedes"]


class Status(enum.IntEnum):
    """What we believe of a member. The integer is its wire value and its rank."""

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3

    @property
    def is_gone(self) -> bool:
        """True for DEAD and LEFT: the member takes no part in probing or gossip."""
        return self >= Status.DEAD


@attrs.frozen(kw_only=True)
class Member:
    """An immutable snapshot of what one node believes about one member."""

    name: str
    address: str
    status: Status
    incarnation: int
    meta: bytes = b""
    #: The member's boot id: random per process start, so a restart under the same name
    #: is told apart from the same process (0: unknown).
    boot: int = 0

    @property
    def tags(self) -> Mapping[str, str]:
        """The tags carried in ``meta`` (``core/tags.py``); empty for raw metadata."""
        return decode_tags(self.meta)


def supersedes(
    new_incarnation: int, new_status: Status, old_incarnation: int, old_status: Status
) -> bool:
    """Return True when a claim (``new_*``) overrides what is held (``old_*``).

    Higher incarnation wins; at equal incarnation the higher-ranked status wins. An equal
    claim does not supersede (it carries no news).
    """
    if new_incarnation != old_incarnation:
        return new_incarnation > old_incarnation
    return new_status > old_status
