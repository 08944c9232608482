"""Member state: per-member versioned key-value pairs, delta-gossiped, reconciled by digests.

``MemberState`` is the one owner of the state data: our own keys (``str -> bytes``), the
copies of every other member's keys, the tombstones of deleted keys, and for each member
the *synced* version (up to which we hold that member's keys completely).

Versions. Every write of ours gets the next version of our one counter. It starts above a
floor the driver passes (``epoch``: the wall clock in microseconds when the engine was
built; the Trio runtime passes ``time.time_ns() // 1000``) and follows it as a hybrid
logical clock: a write gets ``max(last + 1, epoch + microseconds since start)``. A restarted
process therefore starts above every version its previous run could have issued (unless it
issued more than one write per microsecond on average, or the wall clock stepped back across
the restart by more than the restart took), without any file. As a second guard, a delta
of our own name with a higher version than our counter (a previous run's, heard back from
a peer) moves our counter above it.

Restarts. A new process starts with no keys, but peers still hold the keys its previous
run wrote. The first exchange it starts (``_SELF_CHECKS``) leaves its own name out of the
request's digest, so the peer sends back every key of ours it holds; one above what we
hold (``_own_echo``) is superseded at a new version: a tombstone for a key this run does
not have, our value for one it has. So every copy ends equal to the new run's state. The
cost: once per process start, the peer sends our own keys back.

Dissemination. A new version is queued as a ``StateDelta`` in the state piggyback queue of
``Effects`` (a bounded share of each datagram, fair with membership gossip and application
broadcasts), and every receiver that applies it queues it again (epidemic). A delta larger
than its share of a datagram is not gossiped: the state exchange carries it.

The state exchange (scuttlebutt, ``StreamPurpose.STATE``, every ``state_sync_interval``
with one random alive member): we send our digest, for each member its synced version; the
peer answers with its own digest and every delta it holds above ours; we apply them (our
synced versions rise to the peer's) and push back, in a second stream, the deltas the peer
lacks, answered with ``Ack``. A converged cluster's exchange moves digests, not values.
Gossiped deltas do not raise the synced version (a lost delta below them would never be
asked for again): only a complete set from an exchange does.

An exchange with nothing to move is not started. A member starts its exchanges only while
it holds some state (any member's keys or tombstones, ours included), plus the first one
after start (``_SELF_CHECKS``: the restart check; also what a joiner learns everything
from). A member that holds nothing has nothing a peer could lack, and what it lacks comes
to it from the peers that hold it: each of them keeps exchanging every interval with a
random alive member, and an exchange moves state both ways (the peer's answer carries what
the starter lacks; the starter's push what the peer lacks). So every entry held anywhere
keeps reaching every member, the guarantee of the exchange is unchanged, and a cluster in
which no member has state (the common case) runs one exchange per member per process
start and then no state timer at all. The periodic chain stops at the first tick that
finds us holding nothing, and restarts (at a random phase in the interval) as soon as we
hold something: a local write, or a delta applied from gossip or from a peer's exchange.
What this costs: a member that holds nothing no longer pulls by itself after its first
exchange; a late joiner whose first exchange found no state (or a member across a healed
partition) waits to be picked by a member that holds some: at about one pick per interval
when every member holds state (the usual case once any has been written), since each
holder picks one of the N - 1 others.

Limits (``Config.state_*``): a local write over one raises ``StateLimitExceeded``; a remote
delta over one is dropped and counted (``state_refused``), so a member sending more never
grows our memory. Tombstones are kept ``state_tombstone_grace`` seconds, then reaped. The
state of a member leaves with it when it is reaped from the member table; no
``StateChanged`` is emitted for it after that."""

from __future__ import annotations

import random

import attrs

from ._effects import Effects
from ._membership import Membership
from .config import Config
from .errors import NotRunning, StateLimitExceeded, WireUnsupported
from .events import StateChanged
from .messages import MAX_NAME_LENGTH, Ack, Message, StateDelta, StateSync
from .outputs import StreamPurpose, StreamReply
from .timers import StateReapTick, StateSyncTick

__all__ = ["Entry", "MemberState"]

#: How many exchanges we start after start leave our own name out of our digest
#: (``_own_echo``).
_SELF_CHECKS = 1


@attrs.frozen(slots=True)
class Entry:
    """One key's value at a version; ``value`` None is a tombstone deleted at ``since``."""

    version: int
    value: bytes | None
    since: float = 0.0


class MemberState:
    """Every member's versioned key-value state (see the module comment).

    Args:
        name: our member name (the owner of the keys we write).
        epoch: the version floor (wall clock microseconds at start; see above).
        config: limits and intervals.
        rng: the engine's only source of randomness (the exchange partner).
        effects: outputs, streams, events, the state piggyback queue.
        membership: the member table (owners must be members; the exchange partner).
    """

    def __init__(
        self,
        *,
        name: str,
        epoch: int,
        config: Config,
        rng: random.Random,
        effects: Effects,
        membership: Membership,
    ) -> None:
        self.name = name
        self.config = config
        self.rng = rng
        self.effects = effects
        self.membership = membership
        self._epoch = epoch
        self._start: float | None = None
        self._version = epoch
        #: owner -> key -> entry (our own keys under our name).
        self._data: dict[str, dict[str, Entry]] = {}
        #: owner -> the version up to which we hold its keys completely.
        self._synced: dict[str, int] = {}
        self._reap_armed = False
        #: A ``StateSyncTick`` is pending (the periodic chain runs; see the module comment).
        self._sync_armed = False
        #: Exchanges we start still to come whose digest leaves out our own name, so the
        #: peer sends back every key of ours it holds (a previous run's; ``_own_echo``).
        self._self_checks = _SELF_CHECKS

    # ------------------------------------------------------------------ queries

    def values(self, owner: str) -> dict[str, bytes]:
        """A copy of ``owner``'s live keys (tombstones left out)."""
        keys = self._data.get(owner, {})
        return {k: e.value for k, e in sorted(keys.items()) if e.value is not None}

    def snapshot(self, owner: str) -> list[StateChanged]:
        """``owner``'s live keys as snapshot events (``snapshot=True``, ``seq`` 0), by key."""
        keys = self._data.get(owner, {})
        return [
            StateChanged(member=owner, key=k, value=e.value, version=e.version, snapshot=True)
            for k, e in sorted(keys.items())
            if e.value is not None
        ]

    def version(self, owner: str) -> int:
        """The highest version we hold of ``owner``'s keys (0: none)."""
        keys = self._data.get(owner)
        return max((e.version for e in keys.values()), default=0) if keys else 0

    def digest(self) -> dict[str, int]:
        """Per owner, the synced version (ours: our counter)."""
        synced = dict(self._synced)
        if self.name in self._data:
            synced[self.name] = self._version
        return synced

    def tombstones(self, owner: str) -> int:
        """How many deleted keys of ``owner`` we keep."""
        return sum(1 for e in self._data.get(owner, {}).values() if e.value is None)

    # ------------------------------------------------------------------ local writes

    def start(self, now: float) -> None:
        """Begin: the exchange timer (at a random phase), and the clock of our versions."""
        self._start = now
        self._arm_sync(now)

    def _arm_sync(self, now: float) -> None:
        """Start the exchange chain at a random phase, unless it runs (or cannot: before
        start, after leave, on memberlist's wire, which has no state)."""
        if self._sync_armed or self._start is None or self.membership.leaving:
            return
        if not self.effects.wire.CARRIES_STATE:
            return
        self._sync_armed = True
        delay = self.rng.uniform(0, self.config.state_sync_interval)
        self.effects.schedule(now + delay, StateSyncTick())

    def set(self, key: str, value: bytes, now: float) -> int:
        """Write our ``key``; returns its version.

        Raises:
            StateLimitExceeded: over a ``Config.state_*`` limit; nothing changed.
            NotRunning: after leave.
            TypeError, ValueError: a key that is not a non-empty str of at most
                ``MAX_NAME_LENGTH`` characters, or a value that is not bytes.
        """
        self._check_key(key)
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"a state value must be bytes, got {type(value).__name__}")
        value = bytes(value)
        reason = self._refusal(self.name, key, value)
        if reason is not None:
            raise StateLimitExceeded(*reason)
        return self._write(key, value, now)

    def delete(self, key: str, now: float) -> int | None:
        """Delete our ``key`` (a tombstone); returns its version, None if we had no such key.

        Raises:
            StateLimitExceeded: ``state_tombstones_max`` tombstones are held already.
            NotRunning: after leave.
        """
        self._check_key(key)
        held = self._data.get(self.name, {}).get(key)
        if held is None or held.value is None:
            return None
        reason = self._refusal(self.name, key, None)
        if reason is not None:
            raise StateLimitExceeded(*reason)
        return self._write(key, None, now)

    def _check_key(self, key: str) -> None:
        wire = self.effects.wire
        if not wire.CARRIES_STATE:
            raise WireUnsupported("member state", wire.NAME)
        if self.membership.leaving:
            raise NotRunning("cannot change state after leaving")
        if not isinstance(key, str):
            raise TypeError(f"a state key must be a str, got {type(key).__name__}")
        if not key or len(key) > MAX_NAME_LENGTH:
            raise ValueError(f"a state key must be 1 to {MAX_NAME_LENGTH} characters")

    def _write(self, key: str, value: bytes | None, now: float) -> int:
        start = now if self._start is None else self._start
        clock = self._epoch + int((now - start) * 1_000_000)
        self._version = max(self._version + 1, clock)
        entry = Entry(self._version, value, now)
        self._data.setdefault(self.name, {})[key] = entry
        self._publish(self.name, key, entry)
        self._arm_reap()
        self._arm_sync(now)
        return self._version

    # ------------------------------------------------------------------ remote deltas

    def on_delta(self, delta: StateDelta, source: str, now: float) -> None:
        """A gossiped delta arrived in a datagram."""
        self._apply(delta, now)

    def _apply(self, delta: StateDelta, now: float) -> bool:
        """Apply one remote delta; False if refused (limits, unknown owner)."""
        counters = self.effects.counters
        owner = delta.owner
        if owner == self.name:
            self._own_echo(delta, now)
            return True
        if self.membership.get(owner) is None:
            counters["state_unknown_owner"] += 1
            return False
        held = self._data.get(owner, {}).get(delta.key)
        if held is not None and held.version >= delta.version:
            counters["state_duplicates"] += 1
            return True
        value = None if delta.deleted else delta.value
        if self._refusal(owner, delta.key, value) is not None:
            counters["state_refused"] += 1
            return False
        entry = Entry(delta.version, value, now)
        self._data.setdefault(owner, {})[delta.key] = entry
        counters["state_applied"] += 1
        self._publish(owner, delta.key, entry)
        self._arm_reap()
        self._arm_sync(now)
        return True

    def _own_echo(self, delta: StateDelta, now: float) -> None:
        """A delta of our own name came back. One above what we hold is a previous run's
        (a restart, or a key whose tombstone we reaped before a peer heard of it): our
        counter moves above it (never reuse a version) and we supersede it, with a
        tombstone for a key we do not hold or our own value for one we do, so every copy
        ends equal to ours."""
        if delta.version > self._version:
            self._version = delta.version
        held = self._data.get(self.name, {}).get(delta.key)
        if held is not None and held.version >= delta.version:
            return
        if held is None and delta.deleted:
            return  # a previous run's tombstone: nothing of it to undo
        value = None if held is None else held.value
        if self._refusal(self.name, delta.key, value) is not None:
            self.effects.counters["state_refused"] += 1
            return
        self.effects.counters["state_superseded"] += 1
        self._write(delta.key, value, now)

    def _refusal(self, owner: str, key: str, value: bytes | None) -> tuple[str, str] | None:
        """Which limit writing ``key = value`` for ``owner`` would break, if any."""
        cfg = self.config
        keys = self._data.get(owner, {})
        held = keys.get(key)
        if value is not None and len(value) > cfg.state_value_max:
            limit = cfg.state_value_max
            return ("state_value_max", f"a value of {len(value)} bytes is over {limit}")
        if held is None and len(keys) >= cfg.state_keys_max:
            return ("state_keys_max", f"{owner!r} holds {len(keys)} keys already")
        size = sum(len(e.value) for e in keys.values() if e.value is not None)
        if held is not None and held.value is not None:
            size -= len(held.value)
        if value is not None and size + len(value) > cfg.state_bytes_max:
            return ("state_bytes_max", f"{owner!r} would hold {size + len(value)} value bytes")
        new_tombstone = value is None and (held is None or held.value is not None)
        if new_tombstone and self.tombstones(owner) >= cfg.state_tombstones_max:
            return ("state_tombstones_max", f"{owner!r} holds too many deleted keys")
        return None

    def _publish(self, owner: str, key: str, entry: Entry) -> None:
        self.effects.emit(
            StateChanged(member=owner, key=key, value=entry.value, version=entry.version)
        )
        delta = _delta(owner, key, entry)
        self.effects.gossip_state((owner, key), self.effects.wire.encode_message(delta))

    # ------------------------------------------------------------------ the exchange

    def on_sync_tick(self, timer: StateSyncTick, now: float) -> None:
        """Exchange digests with one random alive member and keep the periodic chain,
        while we hold some state or have not yet made our first exchange (else the chain
        stops until we hold some: see the module comment)."""
        self._sync_armed = False
        membership = self.membership
        if membership.leaving:
            return
        if not self._data and not self._self_checks:
            self.effects.counters["state_sync_paused"] += 1
            return
        self._sync_armed = True
        self.effects.schedule(now + self.config.state_sync_interval, StateSyncTick())
        peers = membership.cycle.sample(1, membership.is_alive)
        if peers:
            member = membership.get(peers[0])
            assert member is not None
            self.exchange(member.address)

    def exchange(self, address: str) -> None:
        """Start a state exchange with ``address``: our digest first."""
        digest = self.digest()
        if self._self_checks:
            digest.pop(self.name, None)  # 0: send back every key of ours you hold
        request = StateSync(
            source=self.name,
            push=False,
            owners=tuple(digest),
            versions=tuple(digest.values()),
            deltas=(),
        )
        payload = self.effects.wire.encode_stream(request)
        self.effects.counters["state_exchanges"] += 1
        self.effects.counters["state_bytes_sent"] += len(payload)
        self.effects.stream(StreamPurpose.STATE, address, payload)

    def on_stream(self, message: StateSync, token: int, now: float) -> bool:
        """A peer's digest (answer with ours and what it lacks) or push (apply, ack)."""
        theirs = dict(zip(message.owners, message.versions, strict=True))
        if message.push:
            self._apply_set(message.deltas, theirs, now)
            reply = self.effects.wire.encode_stream(Ack(seq=0))
        else:
            digest = self.digest()
            answer = StateSync(
                source=self.name,
                push=False,
                owners=tuple(digest),
                versions=tuple(digest.values()),
                deltas=self._missing(theirs),
            )
            reply = self.effects.wire.encode_stream(answer)
        self.effects.counters["state_bytes_sent"] += len(reply)
        self.effects.output(StreamReply(token=token, payload=reply))
        return True

    def answered(self, address: str, reply: Message, now: float) -> bool:
        """The reply to our exchange: apply its deltas, push back what the peer lacks."""
        if type(reply) is Ack:
            return True  # our push was applied
        if type(reply) is not StateSync or reply.push:
            return False
        theirs = dict(zip(reply.owners, reply.versions, strict=True))
        self._apply_set(reply.deltas, theirs, now)
        self._self_checks = max(0, self._self_checks - 1)
        missing = self._missing(theirs)
        if missing:
            digest = self.digest()
            push = StateSync(
                source=self.name,
                push=True,
                owners=tuple(digest),
                versions=tuple(digest.values()),
                deltas=missing,
            )
            payload = self.effects.wire.encode_stream(push)
            self.effects.counters["state_bytes_sent"] += len(payload)
            self.effects.stream(StreamPurpose.STATE, address, payload)
        return True

    def _missing(self, theirs: dict[str, int]) -> tuple[StateDelta, ...]:
        """Every delta we hold above the peer's synced version of its owner."""
        out: list[StateDelta] = []
        for owner, keys in self._data.items():
            floor = theirs.get(owner, 0)
            for key, entry in keys.items():
                if entry.version > floor:
                    out.append(_delta(owner, key, entry))
        out.sort(key=lambda d: (d.owner, d.version))
        return tuple(out)

    def _apply_set(
        self, deltas: tuple[StateDelta, ...], theirs: dict[str, int], now: float
    ) -> None:
        """Apply a complete set from a peer: each owner's synced version rises to the
        peer's, unless a delta of that owner was refused."""
        refused: set[str] = set()
        for delta in deltas:
            if not self._apply(delta, now):
                refused.add(delta.owner)
        for owner, version in theirs.items():
            if owner == self.name:
                if version > self._version:
                    self._version = version
                continue
            if owner in refused or self.membership.get(owner) is None:
                continue
            if version > self._synced.get(owner, 0):
                self._synced[owner] = version

    # ------------------------------------------------------------------ upkeep

    def on_reap_tick(self, timer: StateReapTick, now: float) -> None:
        """Reap tombstones past their grace, and the state of reaped members."""
        self._reap_armed = False
        grace = self.config.state_tombstone_grace
        for owner in list(self._data):
            if owner != self.name and self.membership.get(owner) is None:
                del self._data[owner]
                self._synced.pop(owner, None)
                self.effects.counters["state_owners_reaped"] += 1
                continue
            keys = self._data[owner]
            for key in [k for k, e in keys.items() if e.value is None and now - e.since >= grace]:
                del keys[key]
                self.effects.counters["state_tombstones_reaped"] += 1
        for owner in [o for o in self._synced if o not in self._data]:
            del self._synced[owner]
        self._arm_reap()

    def _arm_reap(self) -> None:
        if not self._reap_armed and self._data:
            self._reap_armed = True
            delay = max(1.0, self.config.state_tombstone_grace / 4)
            self.effects.schedule(self.effects.now + delay, StateReapTick())


def _delta(owner: str, key: str, entry: Entry) -> StateDelta:
    return StateDelta(
        owner=owner,
        key=key,
        version=entry.version,
        value=b"" if entry.value is None else entry.value,
        deleted=entry.value is None,
    )
