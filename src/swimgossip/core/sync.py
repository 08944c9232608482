"""Full-state sync over the stream transport: join, push-pull, reconnect, and reaping.

Gossip is probabilistic; push-pull makes the views converge for sure. Periodically (and on
join, and when retrying a failed member) a node sends its whole member table over a stream
and receives the other side's; both merge with the same rules as gossip (memberlist's
mergeState): alive and left claims apply as they are, while a remote "dead" or "suspect"
only makes us *suspect* the member, so the member can refute before it is declared failed.

Failed members are remembered apart from the table for ``reconnect_timeout`` and one of them
is retried every ``reconnect_interval``; a healed partition therefore merges back even after
the other side was reaped from the table. This module is a mixin of ``Engine``: the methods
are the engine's stream entry points.
"""

# The methods below are typed with `self: Engine` (the class they are mixed into);
# mypy calls that "erased self type" [misc], which is what a mixin means here.
# mypy: disable-error-code="misc"

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from . import codec
from .errors import DecodeError, NotRunning
from .member import Status, supersedes
from .messages import Ack, Left, Ping, PushPull, Suspect, alive_claim
from .outputs import STREAM_REFUSED, JoinOutcome, Output, StreamPurpose, StreamReply
from .timers import PushPullTick, ReapTick, ReconnectTick, Timer

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["SyncMixin", "push_pull_interval"]


def push_pull_interval(base: float, cluster_size: int) -> float:
    """memberlist's pushPullScale: ``base`` up to 32 members, then one more ``base`` per
    doubling: ``base * (ceil(log2(N) - log2(32)) + 1)``."""
    if cluster_size <= 32:
        return base
    multiplier = math.ceil(math.log2(cluster_size) - 5.0) + 1.0
    return base * multiplier


class SyncMixin:
    """Join, push-pull, reconnect and reap: the engine's stream side."""

    def join(self: Engine, seeds: list[str], now: float) -> list[Output]:
        """Exchange full state with each seed address; each gives one ``JoinOutcome``.

        Raises:
            NotRunning: after leave.
        """
        self._now = now
        if self.leaving:
            raise NotRunning("cannot join after leaving")
        payload = codec.encode_stream(self.local_state(join=True))
        for address in seeds:
            self._stream(StreamPurpose.JOIN, address, payload, now)
        return self._flush()

    def local_state(self: Engine, *, join: bool = False) -> PushPull:
        """Our whole member table as a push-pull message."""
        members = tuple(self.table)
        suspected_by: tuple[str, ...] = ()
        if self._suspicions:
            suspicions = self._suspicions
            suspected_by = tuple(
                suspicions[m.name].by if m.name in suspicions else "" for m in members
            )
        return PushPull(source=self.name, join=join, members=members, suspected_by=suspected_by)

    def receive_stream(
        self: Engine, payload: bytes, source: str, token: int, now: float
    ) -> list[Output]:
        """Answer an incoming stream frame; the reply is a ``StreamReply(token, ...)``.

        Malformed frames are counted and get no reply (the runtime closes the stream).
        """
        self._now = now
        try:
            message = codec.decode_stream(payload)
        except DecodeError:
            self.counters["streams_malformed"] += 1
            return []
        if type(message) is PushPull:
            self.counters["push_pulls_received"] += 1
            self.merge_state(message, now)
            reply = codec.encode_stream(self.local_state())
            self._out.append(StreamReply(token=token, payload=reply))
        elif type(message) is Ping and message.target == self.name:
            reply = codec.encode_stream(Ack(seq=message.seq))
            self._out.append(StreamReply(token=token, payload=reply))
        else:
            self.counters["streams_unexpected"] += 1
        return self._flush()

    def stream_reply(self: Engine, token: int, payload: bytes, now: float) -> list[Output]:
        """The reply to our ``StreamRequest(token)`` arrived."""
        self._now = now
        pending = self._streams.pop(token, None)
        if pending is None:
            return []
        purpose, address, seq = pending
        try:
            message = codec.decode_stream(payload)
        except DecodeError:
            self.counters["streams_malformed"] += 1
            return self._stream_lost(purpose, address, "malformed reply")
        if purpose is StreamPurpose.PING:
            if type(message) is Ack and message.seq == seq:
                self.counters["stream_probes_succeeded"] += 1
                self._on_ack(seq, now)
        elif type(message) is PushPull:
            self.merge_state(message, now)
            if purpose is StreamPurpose.JOIN:
                self._out.append(JoinOutcome(address=address, ok=True))
                # Gossip our own arrival too (as memberlist does): we now know every member
                # the seed knew, including those that joined just before us and that the
                # seed's own gossip about us may miss while it does not know them yet.
                self._announce_self(self.local_member, now)
                # And exchange state once more a few probe periods later, with a random
                # member: in a join storm, gossip about the members that joined after us
                # can miss us, and the periodic push-pull may be minutes away.
                if not self._settle_armed:
                    self._settle_armed = True
                    delay = self.rng.uniform(2.0, 4.0) * self.config.probe_interval
                    self._schedule(now + delay, PushPullTick(settle=True))
        else:
            return self._stream_lost(purpose, address, "unexpected reply")
        return self._flush()

    def stream_failed(self: Engine, token: int, reason: str, now: float) -> list[Output]:
        """Our ``StreamRequest(token)`` failed (refused, timed out, closed)."""
        self._now = now
        pending = self._streams.pop(token, None)
        if pending is None:
            return []
        purpose, address, seq = pending
        if purpose is StreamPurpose.PING and reason == STREAM_REFUSED:
            self._probe_refused(seq, now)
        return self._stream_lost(purpose, address, reason)

    def _stream_lost(
        self: Engine, purpose: StreamPurpose, address: str, reason: str
    ) -> list[Output]:
        self.counters[f"stream_{purpose.value}_failed"] += 1
        if purpose is StreamPurpose.JOIN:
            self._out.append(JoinOutcome(address=address, ok=False, reason=reason))
        return self._flush()

    def merge_state(self: Engine, state: PushPull, now: float) -> None:
        """Merge a remote member table with the precedence rules (memberlist's mergeState)."""
        table = self.table
        suspected_by = state.suspected_by
        for index, member in enumerate(state.members[: self.config.max_members]):
            status = member.status
            claimed = Status.SUSPECT if status == Status.DEAD else status
            held = table.get(member.name)
            if (
                held is not None
                and member.name != self.name
                and not supersedes(member.incarnation, claimed, held.incarnation, held.status)
            ):
                continue  # no news (the common case in a converged cluster): skip the claim
            if status == Status.ALIVE:
                self.on_alive(alive_claim(member), now)
            elif status == Status.LEFT:
                self.on_left(Left(name=member.name, incarnation=member.incarnation), now)
            else:
                if held is None and member.name != self.name:
                    continue  # a stranger's corpse: nothing to suspect
                # Credit the suspicion to whoever raised it, when the sender says; a
                # relayed suspicion is then never counted as an independent confirmation.
                source = (suspected_by[index] if suspected_by else "") or state.source
                self.on_suspect(
                    Suspect(name=member.name, incarnation=member.incarnation, source=source),
                    now,
                )

    def _handle_sync_timer(self: Engine, timer: Timer, now: float) -> None:
        if type(timer) is PushPullTick:
            self._push_pull_tick(now, periodic=not timer.settle)
        elif type(timer) is ReapTick:
            self._reap_armed = False  # re-armed by _flush while anything is left to reap
            self._reap(now)
        elif type(timer) is ReconnectTick:
            self._reconnect_armed = False  # likewise, while any failed member is retried
            self._reconnect_tick(now)

    def _arm_upkeep(self: Engine) -> None:
        """Arm the reap and reconnect timers, only while there is a member to reap or to
        retry: an idle, healthy cluster wakes for its probes alone (and a leaving node
        needs neither)."""
        if not self._reap_armed and self.table.gone_count and not self.leaving:
            self._reap_armed = True
            interval = min(self.config.reap_timeout, self.config.reconnect_interval) / 4
            self._schedule(self._now + max(1.0, interval), ReapTick())
        if not self._reconnect_armed and self._reconnect:
            self._reconnect_armed = True
            self._schedule(self._now + self.config.reconnect_interval, ReconnectTick())

    def _push_pull_tick(self: Engine, now: float, *, periodic: bool = True) -> None:
        if self.leaving:
            return
        if periodic:
            interval = push_pull_interval(self.config.push_pull_interval, self.table.active_count)
            self._schedule(now + interval, PushPullTick())
        peers = self.cycle.sample(1, self._is_alive)
        if peers:
            member = self.table.get(peers[0])
            assert member is not None
            payload = codec.encode_stream(self.local_state())
            self._stream(StreamPurpose.PUSH_PULL, member.address, payload, now)

    def _reap(self: Engine, now: float) -> None:
        horizon = now - self.config.reap_timeout
        for name in self.table.gone_names():
            if name != self.name and self.table.changed_at(name) <= horizon:
                self.table.remove(name)
                self.cycle.remove(name)
                self.broadcasts.discard(name)
                self.counters["members_reaped"] += 1

    def _reconnect_tick(self: Engine, now: float) -> None:
        forget = now - self.config.reconnect_timeout
        for name, (_, failed_at) in list(self._reconnect.items()):
            if failed_at <= forget:
                del self._reconnect[name]
        if self.leaving or not self._reconnect:
            return
        name = self.rng.choice(list(self._reconnect))
        address, _ = self._reconnect[name]
        payload = codec.encode_stream(self.local_state())
        self._stream(StreamPurpose.RECONNECT, address, payload, now)
