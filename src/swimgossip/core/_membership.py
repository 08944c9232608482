"""Membership: who is in the cluster, the claims that change it, and our own standing.

``Membership`` is the one owner of the member table, the probe cycle, the live suspicions
(with their Lifeguard timers), the failed members remembered for reconnecting, the memory
of accusers we answered, and our own leave. Every claim (alive, suspect, dead, left, from
gossip or a merged state) goes to the member table (``table.py``), which alone decides by
precedence whether it is news. Accepted news is re-gossiped, turned into an event, and for
suspicions starts a Lifeguard timer that shrinks as independent members confirm
(``suspicion.py``). Claims about ourselves are never stored: we refute them by raising our
incarnation (which also counts against our own health score, as in Lifeguard), unless we
are leaving. Whoever sent us such a claim also gets our current alive claim straight back,
even when the claim is stale (memberlist ignores stale ones): it holds the suspicion, and
if it misses every gossiped copy of the refutation it declares us failed.

A member's name is one identity: an alive claim from another address than the one we hold
(two processes under one name, see ``MemberTable.conflict``) is refused and reported as a
``MemberConflict`` event and the ``name_conflicts`` counter, also when the name is ours:
we do not refute it, so two live processes under one name never bump incarnations
against each other. The event comes once per conflicting address and incarnation.

Full-state merges apply the same rules (memberlist's mergeState): alive and left claims
as they are, while a remote "dead" or "suspect" only makes us *suspect* the member, so the
member can refute before it is declared failed. Failed members are remembered apart from
the table for ``reconnect_timeout`` so that sync can retry them after a partition, even
once they are reaped from the table. We are leaving exactly when our own row says LEFT.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from itertools import compress, count
from operator import attrgetter, is_not
from zlib import crc32

import attrs

from ._effects import Effects
from .awareness import Awareness
from .broadcast import retransmit_limit
from .config import Config
from .digest import TableDigest
from .errors import MetadataTooLarge, NotRunning
from .events import (
    MemberConflict,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberRecovered,
    MemberSuspected,
    MemberUpdated,
)
from .member import Member, Status, supersedes
from .messages import Alive, Dead, Left, PushPull, Suspect, alive_claim
from .outputs import LeaveComplete
from .probe import ProbeCycle
from .suspicion import (
    Suspicion,
    expected_confirmations,
    suspicion_max_timeout,
    suspicion_min_timeout,
)
from .table import Change, MemberTable
from .timers import GossipTick, SuspicionTimeout

NAME = attrgetter("name")

__all__ = [
    "MAX_ACK_BUDDY_SCAN",
    "MAX_ANSWERED_ACCUSERS",
    "MAX_CONFLICTS_REMEMBERED",
    "MAX_RECONNECT_CANDIDATES",
    "Membership",
]

#: Most accusers remembered for rate-limiting direct answers (then the memory restarts).
MAX_ANSWERED_ACCUSERS = 1024
#: Acks carry a suspicion of the pinger only while we hold at most this many suspicions.
MAX_ACK_BUDDY_SCAN = 32
#: Failed members remembered for reconnecting at most (the oldest failure is forgotten).
MAX_RECONNECT_CANDIDATES = 1024
#: Name conflicts remembered to report each once (then the memory restarts).
MAX_CONFLICTS_REMEMBERED = 256


class Membership:
    """The member table and every rule that changes it.

    Args:
        name, address, meta: who we are (our own row starts alive at incarnation 0).
        boot: our boot id (random per process start; see ``Member.boot``).
        config: protocol tunables.
        rng: the engine's only source of randomness (probe order, gossip targets).
        effects: where sends, gossip, timers and events go.
        awareness: our health score (a refutation raises it).

    Raises:
        MetadataTooLarge: if ``meta`` is over ``config.meta_max_size``.
    """

    def __init__(
        self,
        *,
        name: str,
        address: str,
        meta: bytes,
        config: Config,
        rng: random.Random,
        effects: Effects,
        awareness: Awareness,
        boot: int = 0,
    ) -> None:
        if len(meta) > config.meta_max_size:
            raise MetadataTooLarge(len(meta), config.meta_max_size)
        self.name = name
        self.config = config
        self.rng = rng
        self.effects = effects
        self.awareness = awareness
        self.table = MemberTable(
            local_name=name,
            max_members=config.max_members,
            dead_reclaim_time=config.dead_reclaim_time,
        )
        self.cycle = ProbeCycle(rng)
        self._suspicions: dict[str, Suspicion] = {}
        #: Failed members to retry: name -> (address, when it failed), and by address.
        self._failed: dict[str, tuple[str, float]] = {}
        self._failed_at: dict[str, str] = {}
        #: When we last corrected each address that sent a suspicion of a gone member.
        self._corrected: dict[str, float] = {}
        #: Name conflicts reported: (name, claimed address) -> claimed incarnation.
        self._conflicts: dict[tuple[str, str], int] = {}
        #: When we last sent our alive claim straight to each address that accused us.
        self._answered_accusers: dict[str, float] = {}
        #: Transmissions of our "left" to wait for before ``LeaveComplete`` (-1: done).
        self._leave_target = 0
        me = Member(
            name=name, address=address, status=Status.ALIVE, incarnation=0, meta=meta, boot=boot
        )
        self.table.store(me, 0.0)

    # ------------------------------------------------------------------ queries

    @property
    def local_member(self) -> Member:
        """What we announce about ourselves."""
        member = self.table.get(self.name)
        assert member is not None
        return member

    @property
    def leaving(self) -> bool:
        """Whether we left (or are leaving): our own row says so."""
        return self.local_member.status is Status.LEFT

    @property
    def active_count(self) -> int:
        """Members alive or suspect, ourselves included."""
        return self.table.active_count

    @property
    def has_gone(self) -> bool:
        """Whether any member is held dead or left (there is something to reap)."""
        return self.table.gone_count > 0

    @property
    def has_failed(self) -> bool:
        """Whether any failed member is remembered for reconnecting."""
        return bool(self._failed)

    @property
    def failed_count(self) -> int:
        """How many failed members are remembered for reconnecting."""
        return len(self._failed)

    def get(self, name: str) -> Member | None:
        """What we hold about ``name``, or None."""
        return self.table.get(name)

    def is_probeable(self, name: str) -> bool:
        """Whether ``name`` is a member we probe (alive or suspect)."""
        member = self.table.get(name)
        return member is not None and not member.status.is_gone

    def is_alive(self, name: str) -> bool:
        """Whether ``name`` is held alive."""
        member = self.table.get(name)
        return member is not None and member.status == Status.ALIVE

    def suspicion_of(self, name: str) -> Suspicion | None:
        """Our live suspicion of ``name``, if any."""
        return self._suspicions.get(name)

    def buddy_suspicion(self, address: str) -> Suspect | None:
        """The suspicion we hold of the member at ``address``, to carry in our ack to its
        ping (Lifeguard's buddy system, both ways). A scan, so bounded: with many
        suspicions at once (a partition) pings stay cheap; our own probes still carry them."""
        if len(self._suspicions) > MAX_ACK_BUDDY_SCAN:
            return None
        for name, suspicion in self._suspicions.items():
            member = self.table.get(name)
            if member is not None and member.address == address:
                return Suspect(name=name, incarnation=member.incarnation, source=suspicion.by)
        return None

    def is_stale(self, timer: SuspicionTimeout) -> bool:
        """Whether the suspicion ``timer`` guards has moved on (refuted, confirmed anew)."""
        suspicion = self._suspicions.get(timer.name)
        return suspicion is None or suspicion.token != timer.token

    def local_state(self, *, join: bool = False) -> PushPull:
        """Our whole member table as a push-pull message."""
        members = tuple(self.table)
        suspected_by: tuple[str, ...] = ()
        if self._suspicions:
            suspicions = self._suspicions
            suspected_by = tuple(
                suspicions[m.name].by if m.name in suspicions else "" for m in members
            )
        return PushPull(source=self.name, join=join, members=members, suspected_by=suspected_by)

    def rows_in(self, buckets: Collection[int], size: int) -> PushPull:
        """Our rows of ``buckets`` in a digest of ``size`` buckets (``digest.py``), as a
        state (with who raised each suspicion, as in ``local_state``). A scan of the
        table (it keeps no index by bucket): about 0.3 us per member."""
        if len(buckets) >= size:
            return self.local_state()
        wanted = set(buckets)
        mask = size - 1
        members = tuple(
            m for m in self.table if crc32(m.name.encode("utf-8", "surrogatepass")) & mask in wanted
        )
        suspected_by: tuple[str, ...] = ()
        if self._suspicions:
            suspicions = self._suspicions
            suspected_by = tuple(
                suspicions[m.name].by if m.name in suspicions else "" for m in members
            )
        return PushPull(source=self.name, join=False, members=members, suspected_by=suspected_by)

    def install(
        self, members: dict[str, Member], probe_order: list[str], digest: TableDigest | None = None
    ) -> None:
        """Start from a converged view (see ``Engine.install_view``)."""
        self.table.install(members, digest)
        self.cycle.install([name for name in probe_order if name != self.name])

    # ------------------------------------------------------------------ claims

    def on_alive(self, alive: Alive, sender: str, now: float) -> None:
        """Apply an alive claim (from gossip or a merged state)."""
        if alive.name == self.name:
            me = self.local_member
            if alive.address != me.address:
                if not self.leaving and alive.incarnation >= me.incarnation:
                    self._report_conflict(me, alive)
                return
            if (
                self.leaving
                or alive.incarnation < me.incarnation
                or (
                    alive.incarnation == me.incarnation
                    and alive.meta == me.meta
                    # Another boot id at our address is a previous process of ours that
                    # someone still holds: refute it (another address is a name conflict).
                    # Boot id 0 is unknown (memberlist's wire has none): our own alive
                    # echoed back, not a previous process, so nothing to refute.
                    and alive.boot in (0, me.boot)
                )
            ):
                return
            self.effects.counters["refutations"] += 1
            self._refute(alive.incarnation, now)
            return
        held = self.table.get(alive.name)
        if held is not None and alive.incarnation >= held.incarnation:
            conflict = self.table.conflict(alive.name, alive.address, now)
            if conflict is not None:
                self._report_conflict(conflict, alive)
                return
        change = self.table.claim_alive(
            alive.name, alive.address, alive.incarnation, alive.meta, now, alive.boot
        )
        if change is None:
            return
        self.effects.gossip(alive.name, alive)
        self.cycle.add(alive.name)
        self._forget_failed(alive.name)
        suspicion = self._suspicions.pop(alive.name, None)
        old = change.old
        if old is not None and old.boot != change.new.boot:
            self.effects.counters["restarts_seen"] += 1
            self.effects.emit(MemberJoined(member=change.new, restarted=True))
        elif old is None or old.status.is_gone:
            self.effects.emit(MemberJoined(member=change.new))
        elif old.status == Status.SUSPECT or suspicion is not None:
            self.effects.emit(MemberRecovered(member=change.new))
        elif old.address != change.new.address or old.meta != change.new.meta:
            self.effects.emit(MemberUpdated(member=change.new, previous=old))

    def _correct(self, address: str, held: Member, now: float) -> None:
        """``address`` sent a suspicion of ``held``, a member we hold dead or left: send it
        our claim straight back (at most once per probe interval per address). Gossip
        carries a "left" a bounded number of times; a member that missed every copy
        suspects the silent member and would declare it failed, not left."""
        if not address:
            return
        last = self._corrected.get(address)
        if last is not None and now - last < self.config.probe_interval:
            return
        if len(self._corrected) >= MAX_ANSWERED_ACCUSERS:
            self._corrected.clear()
        self._corrected[address] = now
        self.effects.counters["stale_claims_corrected"] += 1
        if held.status == Status.LEFT:
            claim: Left | Dead = Left(name=held.name, incarnation=held.incarnation)
        else:
            claim = Dead(name=held.name, incarnation=held.incarnation, source=self.name)
        self.effects.send(address, [claim])

    def _report_conflict(self, held: Member, claim: Alive) -> None:
        """Count a refused claim of ``held``'s name from another address, and emit a
        ``MemberConflict`` the first time we see this address at this incarnation."""
        self.effects.counters["name_conflicts"] += 1
        key = (held.name, claim.address)
        if self._conflicts.get(key, -1) >= claim.incarnation:
            return
        if len(self._conflicts) >= MAX_CONFLICTS_REMEMBERED:
            self._conflicts.clear()
        self._conflicts[key] = claim.incarnation
        self.effects.emit(MemberConflict(member=held, address=claim.address))

    def on_suspect(self, suspect: Suspect, sender: str, now: float) -> None:
        """Apply a suspicion claim sent from ``sender``: about us, refute it; else track it.

        ``sender`` is the address it came from ("" for a stream or our own probe)."""
        if suspect.name == self.name:
            self._accused(suspect.incarnation, sender, now)
            return
        change = self.table.claim_suspect(suspect.name, suspect.incarnation, now)
        if change is None:
            held = self.table.get(suspect.name)
            if held is not None and held.status.is_gone:
                self._correct(sender, held, now)
            else:
                self._confirm(suspect)
            return
        self.effects.gossip(suspect.name, suspect)
        self._start_suspicion(change, suspect.source, now)

    def on_dead(self, dead: Dead, sender: str, now: float) -> None:
        """Apply a failure claim (sent from ``sender``): refute it if it is about us."""
        if dead.name == self.name:
            self._accused(dead.incarnation, sender, now)
            return
        held = self.table.get(dead.name)
        if (
            held is not None
            and not held.status.is_gone
            and dead.incarnation == held.incarnation
            and dead.source != self.name
        ):
            # Someone else's verdict about a member we hold live: to us it is a suspicion
            # (credited to its source), so the member can still refute, and our own timer,
            # shortened by confirmations, gives the verdict. After a partition heals, each
            # side's "dead" about the other then cannot fail a member its own side reaches.
            self.on_suspect(
                Suspect(name=dead.name, incarnation=dead.incarnation, source=dead.source),
                sender,
                now,
            )
            return
        change = self.table.claim_dead(dead.name, dead.incarnation, now)
        if change is None:
            return
        suspicion = self._suspicions.pop(dead.name, None)
        if change.old is not None and change.old.status.is_gone:
            self.effects.gossip(dead.name, dead)  # a newer claim about a member already gone
            return
        self._declare_failed(change, dead, suspicion)

    def on_left(self, left: Left, sender: str, now: float) -> None:
        """Apply a graceful-leave claim. A stale "left" about us is refuted."""
        if left.name == self.name:
            if not self.leaving and left.incarnation >= self.local_member.incarnation:
                self.effects.counters["refutations"] += 1
                self._refute(left.incarnation, now)
            return
        change = self.table.claim_left(left.name, left.incarnation, now)
        if change is None:
            return
        self.effects.gossip(left.name, left)
        self._suspicions.pop(left.name, None)
        self._forget_failed(left.name)
        if change.old is None or change.old.status != Status.LEFT:
            self.effects.emit(MemberLeft(member=change.new))

    def suspect(self, name: str, incarnation: int, now: float) -> None:
        """Our own probe of ``name`` at ``incarnation`` failed: suspect it, or, if it is
        already suspect, confirm someone else's suspicion (a no-op if the suspicion is
        ours). A claim about an incarnation the member has since refuted changes nothing."""
        self.on_suspect(Suspect(name=name, incarnation=incarnation, source=self.name), "", now)

    def merge_state(self, state: PushPull, now: float) -> None:
        """Merge a remote member table with the precedence rules (memberlist's mergeState)."""
        held_get = self.table.by_name.get
        suspected_by = state.suspected_by
        members = state.members[: self.config.max_members]
        # The decoder hands back the very value we hold for a row equal to it: such rows
        # are no news (about ourselves too: an equal claim is never refuted), and are
        # skipped in bulk, in C, before the rules below look at the others one by one.
        news = compress(count(), map(is_not, map(held_get, map(NAME, members)), members))
        for index in news:
            member = members[index]
            held = held_get(member.name)
            status = member.status
            claimed = Status.SUSPECT if status == Status.DEAD else status
            if (
                held is not None
                and member.name != self.name
                and not supersedes(member.incarnation, claimed, held.incarnation, held.status)
                and (status != Status.ALIVE or member.address == held.address)
            ):
                continue  # no news (the common case in a converged cluster): skip the claim
            if status == Status.ALIVE:
                self.on_alive(alive_claim(member), "", now)
            elif status == Status.LEFT:
                self.on_left(Left(name=member.name, incarnation=member.incarnation), "", now)
            else:
                if held is None and member.name != self.name:
                    continue  # a stranger's corpse: nothing to suspect
                # Credit the suspicion to whoever raised it, when the sender says; a
                # relayed suspicion is then never counted as an independent confirmation.
                source = (suspected_by[index] if suspected_by else "") or state.source
                self.on_suspect(
                    Suspect(name=member.name, incarnation=member.incarnation, source=source),
                    "",
                    now,
                )

    # ------------------------------------------------------------------ suspicions

    def _start_suspicion(self, change: Change, by: str, now: float) -> None:
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
            token=self.effects.next_token(),
        )
        self._suspicions[change.new.name] = suspicion
        self.effects.counters["suspicions"] += 1
        self._schedule_suspicion(change.new.name, suspicion)
        self.effects.emit(MemberSuspected(member=change.new, by=by))

    def _schedule_suspicion(self, name: str, suspicion: Suspicion) -> None:
        self.effects.schedule(
            suspicion.deadline,
            SuspicionTimeout(name=name, incarnation=suspicion.incarnation, token=suspicion.token),
        )

    def _confirm(self, suspect: Suspect) -> None:
        suspicion = self._suspicions.get(suspect.name)
        if suspicion is None or suspicion.incarnation != suspect.incarnation:
            return
        if suspicion.confirm(suspect.source):
            self.effects.counters["suspicion_confirmations"] += 1
            suspicion.token = self.effects.next_token()
            self._schedule_suspicion(suspect.name, suspicion)
            self.effects.gossip(suspect.name, suspect)

    def on_suspicion_timeout(self, timer: SuspicionTimeout, now: float) -> None:
        """The suspicion ``timer`` guards ran out: declare the member failed."""
        suspicion = self._suspicions.get(timer.name)
        if suspicion is None or suspicion.token != timer.token:
            return
        change = self.table.claim_dead(timer.name, timer.incarnation, now)
        del self._suspicions[timer.name]
        if change is None:
            return
        self.effects.counters["failures_declared"] += 1
        dead = Dead(name=timer.name, incarnation=timer.incarnation, source=self.name)
        self._declare_failed(change, dead, suspicion)

    def _declare_failed(self, change: Change, dead: Dead, suspicion: Suspicion | None) -> None:
        self.effects.gossip(dead.name, dead)
        failed = self._failed
        if dead.name not in failed and len(failed) >= MAX_RECONNECT_CANDIDATES:
            self._forget_failed(next(iter(failed)))  # the oldest failure
        self._forget_failed(dead.name)
        failed[dead.name] = (change.new.address, self.table.changed_at(dead.name))
        self._failed_at[change.new.address] = dead.name
        self.effects.emit(
            MemberFailed(
                member=change.new,
                by=suspicion.by if suspicion is not None else dead.source,
                confirmations=len(suspicion.confirmed_by) if suspicion is not None else 0,
            )
        )

    # ------------------------------------------------------------------ ourselves

    def update_meta(self, meta: bytes, now: float) -> None:
        """Announce new metadata at the next incarnation.

        Raises:
            MetadataTooLarge: over ``config.meta_max_size``; nothing changes.
            NotRunning: after leave.
        """
        if len(meta) > self.config.meta_max_size:
            raise MetadataTooLarge(len(meta), self.config.meta_max_size)
        if self.leaving:
            raise NotRunning("cannot update metadata after leaving")
        previous = self.local_member
        self._announce(attrs.evolve(previous, incarnation=previous.incarnation + 1, meta=meta), now)
        self.effects.emit(MemberUpdated(member=self.local_member, previous=previous))

    def announce_arrival(self, now: float) -> None:
        """Gossip our own alive claim as it stands (after a join), unless we are leaving:
        our queued "left" must not be replaced by an "alive"."""
        if not self.leaving:
            self._announce(self.local_member, now)

    def _announce(self, member: Member, now: float) -> None:
        self.table.store(member, now)
        self.effects.gossip(member.name, alive_claim(member))

    def _accused(self, incarnation: int, sender: str, now: float) -> None:
        """We are claimed suspect or dead at ``incarnation``: refute if it is news, and tell
        ``sender`` our current incarnation either way.

        ``sender`` is the address the claim came from ("" when it came over a stream, whose
        exchange already carries our current state back).
        """
        if self.leaving:
            return
        refuting = incarnation >= self.local_member.incarnation
        if refuting:
            self.effects.counters["refutations"] += 1
            self._refute(incarnation, now)
        if sender:
            self._answer_accuser(sender, now, refuting)

    def _answer_accuser(self, address: str, now: float, refuted: bool) -> None:
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
        self.effects.counters["accusations_answered"] += 1
        if refuted:  # the refutation just queued is the newest gossip: it leads the datagram
            self.effects.send(address, [])
            return
        self.effects.send(address, [alive_claim(self.local_member)])

    def _refute(self, accused_incarnation: int, now: float) -> None:
        me = self.local_member
        incarnation = max(me.incarnation, accused_incarnation) + 1
        self._announce(attrs.evolve(me, incarnation=incarnation, status=Status.ALIVE), now)
        self.awareness.apply_delta(1)

    def leave(self, now: float) -> None:
        """Mark ourselves left and gossip it; ``LeaveComplete`` follows once it went out
        ``retransmit_limit`` times (at once when alone). A second call does nothing."""
        if self.leaving:
            return
        me = self.local_member
        self.table.store(attrs.evolve(me, status=Status.LEFT), now)
        self.effects.gossip(self.name, Left(name=self.name, incarnation=me.incarnation))
        peers = self.table.active_count
        self._leave_target = min(
            retransmit_limit(self.config.retransmit_mult, peers + 1), max(peers, 0)
        )
        self.gossip_round(now)
        self._check_leave_complete()

    def _check_leave_complete(self) -> None:
        if not self.leaving or self._leave_target < 0:
            return
        sent = self.effects.broadcasts.transmits(self.name)
        if sent is None or sent >= self._leave_target:
            self._leave_target = -1
            self.effects.output(LeaveComplete())

    # ------------------------------------------------------------------ dissemination

    def on_gossip_tick(self, timer: GossipTick, now: float) -> None:
        """A gossip round is due: send what waits to a few random members."""
        self.effects.gossip_round_started()
        self.gossip_round(now)
        self._check_leave_complete()
        self.effects.gossip_round_ended()

    def gossip_round(self, now: float) -> None:
        """Send queued gossip to ``gossip_nodes`` random members (and recently dead ones)."""
        if not self.effects.has_gossip:
            return
        horizon = now - self.config.gossip_to_the_dead_time
        table = self.table

        def wanted(name: str) -> bool:
            member = table.get(name)
            if member is None:
                return False
            if member.status == Status.DEAD:
                return table.changed_at(name) >= horizon
            return member.status != Status.LEFT

        for name in self.cycle.sample(self.config.gossip_nodes, wanted):
            member = table.get(name)
            assert member is not None
            if not self.effects.send(member.address, []):
                break

    # ------------------------------------------------------------------ upkeep

    def reap(self, now: float) -> None:
        """Forget dead and left members held longer than ``reap_timeout``."""
        horizon = now - self.config.reap_timeout
        for name in self.table.gone_names():
            if name != self.name and self.table.changed_at(name) <= horizon:
                self.table.remove(name)
                self.cycle.remove(name)
                self.effects.broadcasts.discard(name)
                self.effects.counters["members_reaped"] += 1

    def reconnect_target(self, now: float) -> str | None:
        """The address of one failed member to retry (at random), after forgetting those
        that failed more than ``reconnect_timeout`` ago; None if there is none."""
        forget = now - self.config.reconnect_timeout
        for name, (_, failed_at) in list(self._failed.items()):
            if failed_at <= forget:
                self._forget_failed(name)
        if self.leaving or not self._failed:
            return None
        name = self.rng.choice(list(self._failed))
        return self._failed[name][0]

    def failed_member_at(self, address: str) -> str | None:
        """The name of the failed member remembered at ``address``, if any."""
        return self._failed_at.get(address)

    def reconnect_ping_target(self) -> tuple[str, str] | None:
        """(name, address) of a failed member to ping after this probe period, or None.

        Each period, with probability ``gossip_nodes / N``, a node pings one random failed
        member: about ``gossip_nodes`` such datagrams per probe period in the whole
        cluster, whatever its size, so a healed partition is noticed within about a period
        (the ack is a first contact; see ``Sync.contact``) at a cost that does not grow
        with the cluster."""
        if self.leaving or not self._failed:
            return None
        if self.rng.random() >= self.config.gossip_nodes / max(self.table.active_count, 1):
            return None
        name = self.rng.choice(list(self._failed))
        return name, self._failed[name][0]

    def _forget_failed(self, name: str) -> None:
        entry = self._failed.pop(name, None)
        if entry is not None and self._failed_at.get(entry[0]) == name:
            del self._failed_at[entry[0]]
