"""Claims about members: gossip in, table changes, suspicion timers and events out.

Each handler gives a claim (alive, suspect, dead, left) to the member table, which alone
decides by precedence whether it is news. Accepted news is re-gossiped, turned into an
event, and for suspicions starts a Lifeguard timer that shrinks as independent members
confirm. Claims about ourselves are never stored: we refute them by raising our
incarnation (which also counts against our own health score, as in Lifeguard), unless we
are leaving. Whoever sent us such a claim also gets our current alive claim straight back,
even when the claim is stale (memberlist ignores stale ones): it holds the suspicion, and
if it misses every gossiped copy of the refutation it declares us failed.

This module is a mixin of ``Engine``; its methods are engine methods.
"""

# Methods are typed with `self: Engine` (the class they are mixed into); mypy calls
# that an "erased self type" [misc], which is what a mixin means here.
# mypy: disable-error-code="misc"

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from .events import (
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberRecovered,
    MemberSuspected,
    MemberUpdated,
)
from .member import Status
from .messages import Alive, Dead, Left, Suspect, alive_claim
from .suspicion import (
    Suspicion,
    expected_confirmations,
    suspicion_max_timeout,
    suspicion_min_timeout,
)
from .table import Change
from .timers import SuspicionTimeout

#: Most accusers remembered for rate-limiting direct answers (then the memory restarts).
MAX_ANSWERED_ACCUSERS = 1024

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["ClaimsMixin"]


class ClaimsMixin:
    """Applying membership claims."""

    def on_alive(self: Engine, alive: Alive, now: float) -> None:
        """Apply an alive claim (from gossip or a merged state)."""
        if alive.name == self.name:
            me = self.local_member
            if (
                self.leaving
                or alive.incarnation < me.incarnation
                or (
                    alive.incarnation == me.incarnation
                    and alive.address == me.address
                    and alive.meta == me.meta
                )
            ):
                return
            self.counters["name_conflicts" if alive.address != me.address else "refutations"] += 1
            self._refute(alive.incarnation, now)
            return
        change = self.table.claim_alive(
            alive.name, alive.address, alive.incarnation, alive.meta, now
        )
        if change is None:
            return
        self._gossip(alive.name, alive)
        self.cycle.add(alive.name)
        self._reconnect.pop(alive.name, None)
        suspicion = self._suspicions.pop(alive.name, None)
        old = change.old
        if old is None or old.status.is_gone:
            self._emit(MemberJoined(member=change.new))
        elif old.status == Status.SUSPECT or suspicion is not None:
            self._emit(MemberRecovered(member=change.new))
        elif old.address != change.new.address or old.meta != change.new.meta:
            self._emit(MemberUpdated(member=change.new, previous=old))

    def on_suspect(self: Engine, suspect: Suspect, now: float, sender: str = "") -> None:
        """Apply a suspicion claim sent from ``sender``: about us, refute it; else track it."""
        if suspect.name == self.name:
            self._accused(suspect.incarnation, sender, now)
            return
        change = self.table.claim_suspect(suspect.name, suspect.incarnation, now)
        if change is None:
            self._confirm(suspect, now)
            return
        self._gossip(suspect.name, suspect)
        self._start_suspicion(change, suspect.source, now)

    def _start_suspicion(self: Engine, change: Change, by: str, now: float) -> None:
        cfg = self.config
        n = self.table.active_count
        low = max(
            cfg.suspicion_floor, suspicion_min_timeout(cfg.suspicion_mult, n, cfg.probe_interval)
        )
        suspicion = Suspicion(
            incarnation=change.new.incarnation,
            by=by,
            started=now,
            min_timeout=low,
            max_timeout=suspicion_max_timeout(low, cfg.suspicion_max_timeout_mult),
            expected=expected_confirmations(cfg.suspicion_mult, n),
            token=self._next_token(),
        )
        self._suspicions[change.new.name] = suspicion
        self.counters["suspicions"] += 1
        self._schedule_suspicion(change.new.name, suspicion)
        self._emit(MemberSuspected(member=change.new, by=by))

    def _schedule_suspicion(self: Engine, name: str, suspicion: Suspicion) -> None:
        self._schedule(
            suspicion.deadline,
            SuspicionTimeout(name=name, incarnation=suspicion.incarnation, token=suspicion.token),
        )

    def _confirm(self: Engine, suspect: Suspect, now: float) -> None:
        suspicion = self._suspicions.get(suspect.name)
        if suspicion is None or suspicion.incarnation != suspect.incarnation:
            return
        if suspicion.confirm(suspect.source):
            self.counters["suspicion_confirmations"] += 1
            suspicion.token = self._next_token()
            self._schedule_suspicion(suspect.name, suspicion)
            self._gossip(suspect.name, suspect)

    def on_dead(self: Engine, dead: Dead, now: float, sender: str = "") -> None:
        """Apply a failure claim (sent from ``sender``): refute it if it is about us."""
        if dead.name == self.name:
            self._accused(dead.incarnation, sender, now)
            return
        change = self.table.claim_dead(dead.name, dead.incarnation, now)
        if change is None:
            return
        suspicion = self._suspicions.pop(dead.name, None)
        if change.old is not None and change.old.status.is_gone:
            self._gossip(dead.name, dead)  # a newer claim about a member already gone
            return
        self._declare_failed(change, dead, suspicion)

    def _declare_failed(
        self: Engine, change: Change, dead: Dead, suspicion: Suspicion | None
    ) -> None:
        self._gossip(dead.name, dead)
        self._reconnect[dead.name] = (change.new.address, self.table.changed_at(dead.name))
        self._emit(
            MemberFailed(
                member=change.new,
                by=suspicion.by if suspicion is not None else dead.source,
                confirmations=len(suspicion.confirmed_by) if suspicion is not None else 0,
            )
        )

    def on_left(self: Engine, left: Left, now: float) -> None:
        """Apply a graceful-leave claim. A stale "left" about us is refuted."""
        if left.name == self.name:
            if not self.leaving and left.incarnation >= self.incarnation:
                self.counters["refutations"] += 1
                self._refute(left.incarnation, now)
            return
        change = self.table.claim_left(left.name, left.incarnation, now)
        if change is None:
            return
        self._gossip(left.name, left)
        self._suspicions.pop(left.name, None)
        self._reconnect.pop(left.name, None)
        if change.old is None or change.old.status != Status.LEFT:
            self._emit(MemberLeft(member=change.new))

    def _accused(self: Engine, incarnation: int, sender: str, now: float) -> None:
        """We are claimed suspect or dead at ``incarnation``: refute if it is news, and tell
        ``sender`` our current incarnation either way.

        ``sender`` is the address the claim came from ("" when it came over a stream, whose
        exchange already carries our current state back).
        """
        if self.leaving:
            return
        refuting = incarnation >= self.incarnation
        if refuting:
            self.counters["refutations"] += 1
            self._refute(incarnation, now)
        if sender:
            self._answer_accuser(sender, now, refuting)

    def _answer_accuser(self: Engine, address: str, now: float, refuted: bool) -> None:
        """Send our alive claim straight to ``address``, at most once per probe interval.

        Gossip carries a refutation a bounded number of times, to random members; under
        heavy loss a member can miss every copy and, hearing no confirmations either,
        declare us failed at the suspicion ceiling. Whoever sent us the claim holds it (or
        relays it), and its claim keeps reaching us (its probes of us carry it), so
        answering it directly closes that gap for one datagram per interval.
        """
        last = self._answered_accusers.get(address)
        if last is not None and now - last < self.config.probe_interval:
            return
        if len(self._answered_accusers) >= MAX_ANSWERED_ACCUSERS:
            self._answered_accusers.clear()
        self._answered_accusers[address] = now
        self.counters["accusations_answered"] += 1
        if refuted:  # the refutation just queued is the newest gossip: it leads the datagram
            self._send(address, [])
            return
        self._send(address, [alive_claim(self.local_member)])

    def _refute(self: Engine, accused_incarnation: int, now: float) -> None:
        me = self.local_member
        incarnation = max(me.incarnation, accused_incarnation) + 1
        self._announce_self(attrs.evolve(me, incarnation=incarnation, status=Status.ALIVE), now)
        self.awareness.apply_delta(1)

    def _suspicion_timeout(self: Engine, timer: SuspicionTimeout, now: float) -> None:
        suspicion = self._suspicions.get(timer.name)
        if suspicion is None or suspicion.token != timer.token:
            return
        change = self.table.claim_dead(timer.name, timer.incarnation, now)
        del self._suspicions[timer.name]
        if change is None:
            return
        self.counters["failures_declared"] += 1
        dead = Dead(name=timer.name, incarnation=timer.incarnation, source=self.name)
        self._declare_failed(change, dead, suspicion)
