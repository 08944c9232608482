"""Membership events: what the core tells the application about other members.

Each event is a frozen value holding a ``Member`` snapshot taken when the change happened,
and a per-node sequence number (``seq``) so a consumer can order and de-duplicate them.
Callers dispatch on ``type(event)``. Suspicion and failure carry provenance: who raised the
suspicion, and how many independent members confirmed it.
"""

from __future__ import annotations

import attrs

from .member import Member

__all__ = [
    "Event",
    "MemberConflict",
    "MemberEvent",
    "MemberFailed",
    "MemberJoined",
    "MemberLeft",
    "MemberRecovered",
    "MemberSuspected",
    "MemberUpdated",
    "StateChanged",
]


@attrs.frozen(kw_only=True)
class MemberJoined:
    """A member became alive: new to us, back after failing or leaving, or restarted
    (``restarted``: a new process under the same name, even if it was never declared
    failed).

    ``snapshot`` is True when the event is not a change but part of a snapshot (from
    ``subscribe(snapshot=True)``, or the fresh snapshot after ``EventsLost``): it says the
    member is there, not that it just arrived.
    """

    member: Member
    #: Per-node sequence number: 1, 2, ... in the order the node emitted its events
    #: (0 for the synthetic events of a snapshot).
    seq: int = 0
    #: True for the synthetic events of a snapshot (``seq`` is then 0).
    snapshot: bool = False
    #: True when the member came back with a new boot id: its process restarted (whether
    #: or not a failure was declared in between) and what it held in memory is gone. It
    #: may come for a member held alive all along (a fast restart): treat it as a join.
    restarted: bool = False


@attrs.frozen(kw_only=True)
class MemberUpdated:
    """An alive member changed its metadata or address (its incarnation rose)."""

    member: Member
    #: Per-node sequence number: 1, 2, ... in the order the node emitted its events
    #: (0 for the synthetic events of a snapshot).
    seq: int = 0
    previous: Member


@attrs.frozen(kw_only=True)
class MemberSuspected:
    """``by`` suspects the member; it is not yet declared failed."""

    member: Member
    #: Per-node sequence number: 1, 2, ... in the order the node emitted its events
    #: (0 for the synthetic events of a snapshot).
    seq: int = 0
    by: str


@attrs.frozen(kw_only=True)
class MemberFailed:
    """The member is declared failed. ``by`` raised the first suspicion (or the
    dead claim we heard); ``confirmations`` counts independent members that agreed."""

    member: Member
    #: Per-node sequence number: 1, 2, ... in the order the node emitted its events
    #: (0 for the synthetic events of a snapshot).
    seq: int = 0
    by: str
    confirmations: int


@attrs.frozen(kw_only=True)
class MemberLeft:
    """The member left the cluster gracefully."""

    member: Member
    #: Per-node sequence number: 1, 2, ... in the order the node emitted its events
    #: (0 for the synthetic events of a snapshot).
    seq: int = 0


@attrs.frozen(kw_only=True)
class MemberRecovered:
    """A suspect member refuted the suspicion and is alive again."""

    member: Member
    #: Per-node sequence number: 1, 2, ... in the order the node emitted its events
    #: (0 for the synthetic events of a snapshot).
    seq: int = 0


@attrs.frozen(kw_only=True)
class MemberConflict:
    """Another process claims ``member``'s name from ``address``: two live processes under
    one name (a misconfiguration), or a restart elsewhere before the old process was
    declared failed. The claim is refused and nothing changes; ``member`` is what we keep
    (ourselves, if the name is ours). Reported once per conflicting address and
    incarnation, and counted in ``name_conflicts``."""

    member: Member
    #: Per-node sequence number: 1, 2, ... in the order the node emitted its events
    #: (0 for the synthetic events of a snapshot).
    seq: int = 0
    #: Where the conflicting claim says the member is.
    address: str


MemberEvent = (
    MemberJoined
    | MemberUpdated
    | MemberSuspected
    | MemberFailed
    | MemberLeft
    | MemberRecovered
    | MemberConflict
)


@attrs.frozen(kw_only=True)
class StateChanged:
    """Key ``key`` of member ``member`` (a name) now holds ``value`` at ``version``;
    ``value`` is None when the key was deleted. Emitted for our own writes too, in the
    same ordered stream (and ``seq``) as the membership events.

    ``snapshot`` is True when the event is not a change but part of a snapshot (it follows
    its member's ``MemberJoined(snapshot=True)``): the key holds that value already.
    """

    member: str
    key: str
    value: bytes | None
    version: int
    #: Per-node sequence number, shared with the membership events (0 in a snapshot).
    seq: int = 0
    #: True for the synthetic events of a snapshot (``seq`` is then 0).
    snapshot: bool = False


#: Everything the engine publishes, in one ordered stream.
Event = MemberEvent | StateChanged
