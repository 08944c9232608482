"""State sync over the stream transport: join, push-pull, reconnect, and upkeep timers.

Gossip is probabilistic; push-pull makes the views converge for sure. On join, and when
retrying a failed member, a node sends its whole member table over a stream and receives
the other side's; both merge with ``Membership.merge_state``.

The periodic push-pull sends digests first (``MemberSync``; ``digest.py``) when the wire
carries them: (1) the requester sends its table digest in ``B`` buckets; (2) the replier
answers with its own digest and its rows of the buckets that differ; (3) the requester
merges them and pushes its rows of the buckets that still differ, answered with an
``Ack``. Both merges are ``merge_state`` itself, so the rules are those of the full
exchange; only rows of equal buckets, which both hold already, are not sent. A converged
pair moves the two digests. A peer that does not understand the request (an older
version: it drops the stream as malformed, or answers with something else) gets the full
push-pull at once, and for ``FALLBACK_MEMORY`` push-pull intervals after (``MAX_CONTACTS``
addresses remembered). memberlist's wire has no digest: Go's full push-pull is kept.

``Sync`` is the one owner of the stream side's schedule: the periodic push-pull, the
one-off exchange a few probe periods after a join (join storms), and the reap and
reconnect timers, which run only while there is a member to reap or to retry (an idle,
healthy cluster wakes for its probes alone). Failed members are remembered by
``Membership`` for ``reconnect_timeout``; one of them is retried every
``reconnect_interval``, so a healed partition merges back even after the other side was
reaped from the table.
"""

from __future__ import annotations

import math
import random

from ._effects import Effects
from ._membership import Membership
from .config import Config
from .digest import buckets_for, differing_buckets
from .errors import NotRunning
from .inputs import StreamFailure
from .member import Member
from .messages import Ack, MemberSync, Message, PushPull
from .outputs import JoinOutcome, StreamPurpose, StreamReply
from .timers import PushPullTick, ReapTick, ReconnectTick

__all__ = ["FALLBACK_MEMORY", "MAX_CONTACTS", "Sync", "push_pull_interval"]

#: Addresses remembered for rate-limiting first-contact exchanges (then the memory restarts).
MAX_CONTACTS = 1024
#: For how many base push-pull intervals a peer that did not understand our digest
#: request gets the full push-pull before we try digests again (it may have upgraded).
FALLBACK_MEMORY = 10

#: ``seq`` of our push-pull stream requests: which leg it is.
_FULL = 0
_DIGEST = 1
_DIGEST_PUSH = 2
#: How a failed digest request tells a peer that does not understand it (an older
#: version closes the stream without a reply) from one that cannot be reached.
_NOT_UNDERSTOOD = frozenset(
    {StreamFailure.BROKEN, StreamFailure.MALFORMED_REPLY, StreamFailure.UNEXPECTED_REPLY}
)


def push_pull_interval(base: float, cluster_size: int) -> float:
    """memberlist's pushPullScale: ``base`` up to 32 members, then one more ``base`` per
    doubling: ``base * (ceil(log2(N) - log2(32)) + 1)``."""
    if cluster_size <= 32:
        return base
    multiplier = math.ceil(math.log2(cluster_size) - 5.0) + 1.0
    return base * multiplier


class Sync:
    """Join, push-pull, reconnect and reap: the engine's stream side.

    Args:
        config: protocol tunables.
        rng: the engine's only source of randomness.
        effects: where streams, replies, outcomes and timers go.
        membership: whose state is exchanged and merged.
    """

    def __init__(
        self, *, config: Config, rng: random.Random, effects: Effects, membership: Membership
    ) -> None:
        self.config = config
        self.rng = rng
        self.effects = effects
        self.membership = membership
        self._reap_armed = False
        self._reconnect_armed = False
        #: The one-off push-pull a few probe periods after a join is armed (once per engine).
        self._settle_armed = False
        #: When we last exchanged state with each failed member's address on contact.
        self._contacts: dict[str, float] = {}
        #: Peers that did not understand a digest request, and when we noticed.
        self._full_only: dict[str, float] = {}

    def join(self, seeds: list[str], now: float) -> None:
        """Exchange full state with each seed address; each gives one ``JoinOutcome``.

        Raises:
            NotRunning: after leave.
        """
        if self.membership.leaving:
            raise NotRunning("cannot join after leaving")
        payload = self.effects.wire.encode_stream(self.membership.local_state(join=True))
        for address in seeds:
            self.effects.stream(StreamPurpose.JOIN, address, payload)

    def on_push_pull(self, state: PushPull, token: int, now: float) -> bool:
        """A peer sent its state over a stream: merge it and reply with ours."""
        self.effects.counters["push_pulls_received"] += 1
        self.membership.merge_state(state, now)
        reply = self.effects.wire.encode_stream(self.membership.local_state())
        self.effects.output(StreamReply(token=token, payload=reply))
        return True

    def on_member_sync(self, message: MemberSync, token: int, now: float) -> bool:
        """A peer's digest request (answer with our digest and our rows of the buckets
        that differ) or its push (merge it, ack). False for a request carrying rows."""
        counters = self.effects.counters
        membership = self.membership
        if message.push:
            counters["member_pushes_received"] += 1
            membership.merge_state(_as_state(message), now)
            self.effects.output(
                StreamReply(token=token, payload=self.effects.wire.encode_stream(Ack(seq=0)))
            )
            return True
        if message.members:
            return False
        counters["member_digests_received"] += 1
        buckets = len(message.digest) // 8
        ours = membership.table.digest.folded(buckets)
        differing = differing_buckets(ours, message.digest)
        rows = membership.rows_in(differing, buckets) if differing else None
        answer = MemberSync(
            source=self.membership.name,
            push=False,
            digest=ours,
            members=() if rows is None else rows.members,
            suspected_by=() if rows is None else rows.suspected_by,
        )
        reply = self.effects.wire.encode_stream(answer)
        counters["member_sync_bytes_sent"] += len(reply)
        self.effects.output(StreamReply(token=token, payload=reply))
        return True

    def _digest_answered(self, address: str, reply: MemberSync, now: float) -> bool:
        """The reply to our digest request: merge its rows, then push ours of the buckets
        that still differ."""
        if reply.push:
            return False
        membership = self.membership
        membership.merge_state(_as_state(reply), now)
        buckets = len(reply.digest) // 8
        differing = differing_buckets(membership.table.digest.folded(buckets), reply.digest)
        if not differing or membership.leaving:
            return True
        rows = membership.rows_in(differing, buckets)
        push = MemberSync(
            source=membership.name,
            push=True,
            digest=b"",
            members=rows.members,
            suspected_by=rows.suspected_by,
        )
        payload = self.effects.wire.encode_stream(push)
        self.effects.counters["member_sync_bytes_sent"] += len(payload)
        self.effects.stream(StreamPurpose.PUSH_PULL, address, payload, seq=_DIGEST_PUSH)
        return True

    def answered(
        self, purpose: StreamPurpose, address: str, reply: Message, now: float, seq: int = _FULL
    ) -> bool:
        """The reply to our join, push-pull or reconnect request to ``address`` arrived
        (``seq``: which leg of a push-pull it answers).

        Returns False if it does not answer the request (not a state): a failure."""
        if purpose is StreamPurpose.PUSH_PULL and seq != _FULL:
            if seq == _DIGEST_PUSH:
                return type(reply) is Ack
            return type(reply) is MemberSync and self._digest_answered(address, reply, now)
        if type(reply) is not PushPull:
            return False
        if purpose is StreamPurpose.JOIN:
            conflict = self._name_conflict(reply)
            if conflict is not None:
                self.effects.counters["name_conflicts"] += 1
                reason = (
                    f"name {conflict.name!r} is held by a live member at {conflict.address} "
                    f"({conflict.status.name.lower()}); choose another name, or wait until "
                    "that member leaves or is declared failed"
                )
                self.effects.output(
                    JoinOutcome(address=address, ok=False, reason=reason, conflict=conflict)
                )
                return True
        self.membership.merge_state(reply, now)
        if purpose is not StreamPurpose.JOIN:
            return True
        self.effects.output(JoinOutcome(address=address, ok=True))
        # Gossip our own arrival too (as memberlist does): we now know every member the
        # seed knew, including those that joined just before us and that the seed's own
        # gossip about us may miss while it does not know them yet. (Not once we are
        # leaving: our queued "left" stays what we gossip.)
        self.membership.announce_arrival(now)
        # And exchange state once more a few probe periods later, with a random member: in
        # a join storm, gossip about the members that joined after us can miss us, and the
        # periodic push-pull may be minutes away.
        if not self._settle_armed:
            self._settle_armed = True
            delay = self.rng.uniform(2.0, 4.0) * self.config.probe_interval
            self.effects.schedule(now + delay, PushPullTick(settle=True))
        return True

    def _name_conflict(self, state: PushPull) -> Member | None:
        """The member a seed's ``state`` holds under our name at another address, if it
        is alive or suspect there (a join under that name would be refused)."""
        me = self.membership.local_member
        for member in state.members:
            if member.name == me.name:
                if member.address != me.address and not member.status.is_gone:
                    return member
                return None
        return None

    def contact(self, address: str, now: float) -> None:
        """A datagram came from ``address``. If a failed member lives there, the network
        that hid it is back: exchange full state with it at once (first contact), rather
        than wait for the reconnect timer. At most once per ``probe_interval`` per
        address (``MAX_CONTACTS`` addresses remembered)."""
        if self.membership.failed_member_at(address) is None or self.membership.leaving:
            return
        last = self._contacts.get(address)
        if last is not None and now - last < self.config.probe_interval:
            return
        if len(self._contacts) >= MAX_CONTACTS:
            self._contacts.clear()
        self._contacts[address] = now
        self.effects.counters["first_contacts"] += 1
        payload = self.effects.wire.encode_stream(self.membership.local_state())
        self.effects.stream(StreamPurpose.RECONNECT, address, payload)

    def failed(
        self,
        purpose: StreamPurpose,
        address: str,
        failure: StreamFailure,
        detail: str = "",
        seq: int = _FULL,
        now: float = 0.0,
    ) -> None:
        """Our join, push-pull or reconnect request to ``address`` failed; a join reports
        why. A digest request the peer did not understand is followed by the full
        push-pull (see the module comment)."""
        if purpose is StreamPurpose.PUSH_PULL and seq == _DIGEST and failure in _NOT_UNDERSTOOD:
            self.effects.counters["push_pull_digest_fallbacks"] += 1
            if len(self._full_only) >= MAX_CONTACTS:
                self._full_only.clear()
            self._full_only[address] = now
            if not self.membership.leaving:
                self._push_pull(address, now)
            return
        if purpose is StreamPurpose.JOIN:
            reason = detail or failure.value
            self.effects.output(
                JoinOutcome(address=address, ok=False, failure=failure, reason=reason)
            )

    # ------------------------------------------------------------------ timers

    def on_push_pull_tick(self, timer: PushPullTick, now: float) -> None:
        """Exchange state with one random alive member (and keep the periodic chain)."""
        membership = self.membership
        if membership.leaving:
            return
        if not timer.settle:
            interval = push_pull_interval(self.config.push_pull_interval, membership.active_count)
            self.effects.schedule(now + interval, PushPullTick())
        peers = membership.cycle.sample(1, membership.is_alive)
        if peers:
            member = membership.get(peers[0])
            assert member is not None
            self._push_pull(member.address, now)

    def _push_pull(self, address: str, now: float) -> None:
        """Start a push-pull with ``address``: digests first, if the wire carries them and
        the peer understood them lately; else the whole table."""
        membership = self.membership
        wire = self.effects.wire
        noted = self._full_only.get(address)
        if noted is not None and now - noted >= FALLBACK_MEMORY * self.config.push_pull_interval:
            del self._full_only[address]
            noted = None
        if wire.CARRIES_DIGESTS and noted is None:
            table = membership.table
            request = MemberSync(
                source=membership.name,
                push=False,
                digest=table.digest.folded(buckets_for(len(table))),
                members=(),
            )
            payload = wire.encode_stream(request)
            self.effects.counters["member_sync_bytes_sent"] += len(payload)
            self.effects.stream(StreamPurpose.PUSH_PULL, address, payload, seq=_DIGEST)
            return
        payload = wire.encode_stream(membership.local_state())
        self.effects.stream(StreamPurpose.PUSH_PULL, address, payload, seq=_FULL)

    def on_reap_tick(self, timer: ReapTick, now: float) -> None:
        """Reap the members gone long enough (re-armed by ``arm_upkeep`` while any is left)."""
        self._reap_armed = False
        self.membership.reap(now)

    def on_reconnect_tick(self, timer: ReconnectTick, now: float) -> None:
        """Retry one failed member with a full-state exchange."""
        self._reconnect_armed = False  # re-armed by arm_upkeep while any is remembered
        address = self.membership.reconnect_target(now)
        if address is not None:
            payload = self.effects.wire.encode_stream(self.membership.local_state())
            self.effects.stream(StreamPurpose.RECONNECT, address, payload)

    def arm_upkeep(self) -> None:
        """Arm the reap and reconnect timers, only while there is a member to reap or to
        retry (and a leaving node needs neither). Run at the end of every entry point."""
        membership = self.membership
        if not (membership.has_gone or membership.has_failed):
            return  # nothing to reap or retry (the common case: checked first, cheaply)
        now = self.effects.now
        if not self._reap_armed and membership.has_gone and not membership.leaving:
            self._reap_armed = True
            interval = min(self.config.reap_timeout, self.config.reconnect_interval) / 4
            self.effects.schedule(now + max(1.0, interval), ReapTick())
        if not self._reconnect_armed and membership.has_failed:
            self._reconnect_armed = True
            self.effects.schedule(now + self.config.reconnect_interval, ReconnectTick())


def _as_state(message: MemberSync) -> PushPull:
    """The rows of a digest reply or push, as the state ``merge_state`` takes."""
    return PushPull(
        source=message.source,
        join=False,
        members=message.members,
        suspected_by=message.suspected_by,
    )
