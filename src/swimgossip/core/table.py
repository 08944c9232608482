"""The member table: the one owner of member status changes.

Every claim about another member (alive, suspect, dead, left) comes here and is accepted
exactly when it supersedes what we hold (``member.supersedes``: a higher incarnation
wins; at equal incarnation left > dead > suspect > alive). Claims about members we do not
know are accepted only for alive (a join), and only while the table has room.

One identity per name: an alive claim from another address than the one we hold is a
*name conflict* (two processes under one name, or a restart elsewhere before the old one
was declared failed), refused whatever its incarnation unless the member we hold left, or
has been dead for ``dead_reclaim_time`` (memberlist's rule). ``conflict`` tells the caller,
which reports it; so two live processes under one name never bump incarnations against
each other. A suspicion of a member we hold dead or left is refused too (memberlist
ignores suspicions of members that are not alive): only the member itself, with a new
alive claim, brings it back, as a join.

Because acceptance is one total order, the same set of alive, dead and left claims gives
the same view in any order of arrival (a suspicion is transient: it ends in an alive or a
dead claim at its incarnation, and those converge). It also gives the protocol rules: a
member that left is not resurrected by a stale alive (only a higher incarnation, which
only the member itself can mint, brings it back); a dead member is not re-suspected.
Claims about the local member never reach the table: the engine refutes them.

The table stores frozen ``Member`` values, so a snapshot is free and identical values
can be shared between tables (the simulator does).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import attrs

from .digest import TableDigest
from .member import Member, Status, supersedes

__all__ = ["Change", "MemberTable"]


@attrs.frozen(kw_only=True)
class Change:
    """An accepted claim: what we held before (None if unknown) and what we hold now."""

    old: Member | None
    new: Member


@attrs.define(eq=False)
class MemberTable:
    """All members we know, including ourselves, and when the gone ones went."""

    local_name: str
    max_members: int
    #: A member dead at least this long may be claimed from another address.
    dead_reclaim_time: float = 0.0
    _members: dict[str, Member] = attrs.field(factory=dict, init=False)
    _changed_at: dict[str, float] = attrs.field(factory=dict, init=False)
    _active: int = attrs.field(default=0, init=False)
    _gone: set[str] = attrs.field(factory=set, init=False)
    refused_full: int = attrs.field(default=0, init=False)
    #: The bucket hashes of every row held (``digest.py``), kept up to date by every change.
    digest: TableDigest = attrs.field(factory=TableDigest, init=False)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, name: str) -> bool:
        return name in self._members

    def __iter__(self) -> Iterator[Member]:
        return iter(self._members.values())

    @property
    def by_name(self) -> Mapping[str, Member]:
        """Every member we hold, by name (a live view: do not keep it across changes)."""
        return self._members

    def get(self, name: str) -> Member | None:
        """What we hold about ``name``, or None."""
        return self._members.get(name)

    def changed_at(self, name: str) -> float:
        """When ``name``, a dead or left member, became so (the engine's ``now``)."""
        return self._changed_at[name]

    @property
    def gone_count(self) -> int:
        """How many members are held dead or left."""
        return len(self._gone)

    def gone_names(self) -> list[str]:
        """Names of the members held dead or left (a copy, safe to mutate the table)."""
        return sorted(self._gone)

    @property
    def active_count(self) -> int:
        """Members alive or suspect, ourselves included: the ``N`` of the formulas."""
        return self._active

    def store(self, member: Member, now: float) -> Change:
        """Store ``member`` unconditionally (used for the local member and by claims)."""
        old = self._members.get(member.name)
        if old is not None and not old.status.is_gone:
            self._active -= 1
        if member.status.is_gone:
            self._gone.add(member.name)
        else:
            self._active += 1
            self._gone.discard(member.name)
        self._members[member.name] = member
        if old is not None:
            self.digest.remove(old)
        self.digest.add(member)
        if not member.status.is_gone:
            self._changed_at.pop(member.name, None)
        elif old is None or old.status != member.status:
            self._changed_at[member.name] = now
        return Change(old=old, new=member)

    def install(self, members: dict[str, Member], digest: TableDigest | None = None) -> None:
        """Replace the whole table with alive ``members`` (a converged view, for
        simulations that start large clusters without a join storm). The dict is copied;
        its ``Member`` values are shared. ``digest``, if given, must be
        ``TableDigest.of(members.values())`` (it is copied: many tables installing one
        view hash its rows once)."""
        assert all(not m.status.is_gone for m in members.values())
        assert self.local_name in members
        self._members = dict(members)
        self.digest = TableDigest.of(members.values()) if digest is None else digest.copy()
        self._changed_at.clear()
        self._gone.clear()
        self._active = len(members)

    def remove(self, name: str) -> None:
        """Forget ``name`` entirely (reaping); its name may join again afterwards."""
        old = self._members.pop(name, None)
        self._changed_at.pop(name, None)
        self._gone.discard(name)
        if old is not None:
            self.digest.remove(old)
        if old is not None and not old.status.is_gone:
            self._active -= 1

    def conflict(self, name: str, address: str, now: float) -> Member | None:
        """The member we hold under ``name`` if an alive claim from ``address`` would take
        its identity: it is at another address and alive, suspect, or dead for less than
        ``dead_reclaim_time``. None if the claim is no conflict."""
        old = self._members.get(name)
        if old is None or old.address == address or old.status == Status.LEFT:
            return None
        if old.status == Status.DEAD and now - self._changed_at[name] >= self.dead_reclaim_time:
            return None
        return old

    def claim_alive(
        self, name: str, address: str, incarnation: int, meta: bytes, now: float, boot: int = 0
    ) -> Change | None:
        """``name`` (boot id ``boot``) says it is alive at ``incarnation``. Returns the
        change, if accepted (never for a name ``conflict``)."""
        old = self._members.get(name)
        if old is None:
            if len(self._members) >= self.max_members:
                self.refused_full += 1
                return None
        elif incarnation <= old.incarnation or self.conflict(name, address, now) is not None:
            return None
        member = Member(
            name=name,
            address=address,
            status=Status.ALIVE,
            incarnation=incarnation,
            meta=meta,
            boot=boot,
        )
        return self.store(member, now)

    def claim_suspect(self, name: str, incarnation: int, now: float) -> Change | None:
        """Someone suspects ``name`` at ``incarnation``. Returns the change, if accepted."""
        return self._claim(name, Status.SUSPECT, incarnation, now)

    def claim_dead(self, name: str, incarnation: int, now: float) -> Change | None:
        """Someone declares ``name`` failed at ``incarnation``."""
        return self._claim(name, Status.DEAD, incarnation, now)

    def claim_left(self, name: str, incarnation: int, now: float) -> Change | None:
        """``name`` announced it left at ``incarnation``."""
        return self._claim(name, Status.LEFT, incarnation, now)

    def _claim(self, name: str, status: Status, incarnation: int, now: float) -> Change | None:
        old = self._members.get(name)
        if old is None or not supersedes(incarnation, status, old.incarnation, old.status):
            return None
        if status == Status.SUSPECT and old.status.is_gone:
            return None  # only the member's own alive claim brings it back
        return self.store(attrs.evolve(old, status=status, incarnation=incarnation), now)
