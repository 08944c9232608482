"""Serf's layer over memberlist, sans I/O: Lamport clocks, join and leave intents, user
events, queries, Serf's push-pull state. One object, ``SerfLayer``, owns it all.

It implements memberlist's delegate hooks (``swimgossip.net.memberlist.Delegate``): the
node in memberlist mode calls ``node_meta``, ``notify_message``, ``get_broadcasts``,
``local_state``, ``merge_remote_state`` and ``notify_join`` / ``notify_leave`` /
``notify_update`` synchronously; the layer never reads a clock, never sends, never calls
back. What it produces for the outside waits in its outbox (``drain()``):
``UserEventReceived`` and ``QueryReceived`` for the user, ``SendTo`` for a ``userMsg`` to
one address (a query ack, a relayed response). Its own broadcasts (intents, events,
re-broadcasts) wait in three transmit-limited queues that ``get_broadcasts`` drains in
Serf's order: intents, then queries, then events.

The rules are Serf's (serf.go, delegate.go), each in the method named after Serf's:

- Three Lamport clocks (member intents, events, queries). ``witness(t)`` moves a clock to
  ``t + 1`` when ``t`` is not older; a push-pull's clocks are witnessed minus one.
- A member's ``status_ltime`` orders its intents: a join or leave intent older than it or
  equal is ignored (and not re-broadcast). A leave moves an alive member to ``leaving``
  (memberlist's ``dead`` then makes it ``left``, not ``failed``), a failed one to ``left``;
  a join moves a ``leaving`` member back to alive. An intent about a member not yet known
  is kept (bounded) and applied when memberlist announces it.
- A leave intent about this node while it is alive is refuted with a join intent at the
  current clock (after a restart, the cluster may still hold our old leave).
- User events are de-duplicated by (Lamport time, name, payload) in a ring of
  ``event_buffer`` slots; an event older than the ring is dropped, and so is one before
  ``event_min_time`` (on join, unless ``replay_old_events``: ``serf agent`` without
  ``-replay`` does the same).
- Queries are de-duplicated by (Lamport time, id) likewise; one whose filters select this
  node is acked when asked and handed to the user unless internal (``_serf_*``).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Mapping

import attrs

from ...core.member import Member, Status
from .._transport import format_address
from ..memberlist.errors import WireError
from .messages import (
    QUERY_FLAG_ACK,
    EventsAt,
    JoinIntent,
    LeaveIntent,
    Query,
    QueryResponse,
    Relay,
    SerfError,
    SerfMessageType,
    SerfPushPull,
    UserEvent,
    decode_filter,
    decode_serf_message,
    decode_serf_push_pull,
    encode_serf_message,
    encode_serf_push_pull,
    encode_serf_tags,
)

__all__ = [
    "INTERNAL_QUERY_PREFIX",
    "LamportClock",
    "QueryReceived",
    "SendTo",
    "SerfLayer",
    "SerfMemberStatus",
    "SerfOutput",
    "UserEventReceived",
]

#: Queries whose name starts with this are Serf's own (ping, conflict, keys).
INTERNAL_QUERY_PREFIX = "_serf_"
#: Serf's ``UserEventSizeLimit``: name plus payload, and the encoded message, at most this.
USER_EVENT_SIZE_LIMIT = 9 * 1024
#: Serf's default ``QueryResponseSizeLimit``.
QUERY_RESPONSE_SIZE_LIMIT = 1024


class LamportClock:
    """A Lamport clock (serf/lamport.go): ``time``, ``increment``, ``witness``."""

    __slots__ = ("_counter",)

    def __init__(self, start: int = 0) -> None:
        self._counter = start

    def time(self) -> int:
        """The current value."""
        return self._counter

    def increment(self) -> int:
        """Advance by one and return the new value."""
        self._counter += 1
        return self._counter

    def witness(self, other: int) -> None:
        """Having seen ``other``: make sure this clock is past it (at least ``other + 1``)."""
        if other >= self._counter:
            self._counter = other + 1


class SerfMemberStatus(enum.IntEnum):
    """Serf's ``MemberStatus``, as ``serf members`` prints it."""

    NONE = 0
    ALIVE = 1
    LEAVING = 2
    LEFT = 3
    FAILED = 4


@attrs.frozen(kw_only=True)
class UserEventReceived:
    """A Serf user event arrived (new to this node): ``serf event NAME PAYLOAD``."""

    ltime: int
    name: str
    payload: bytes
    coalesce: bool = False


@attrs.frozen(kw_only=True)
class QueryReceived:
    """A (non-internal) Serf query selected this node; answer with ``SerfLayer.respond``."""

    query: Query


@attrs.frozen(kw_only=True)
class SendTo:
    """Send ``payload`` as a memberlist ``userMsg`` datagram to ``address`` (``host:port``)."""

    address: str
    payload: bytes
    node: str = ""


SerfOutput = UserEventReceived | QueryReceived | SendTo


@attrs.define(eq=False)
class _MemberState:
    status: SerfMemberStatus
    status_ltime: int = 0


@attrs.define(eq=False)
class _Broadcast:
    payload: bytes
    seq: int
    transmits: int = 0


@attrs.define(eq=False)
class _Queue:
    """memberlist's ``TransmitLimitedQueue`` for broadcasts that never invalidate one
    another (Serf's): fewest transmits first, newest first among equals; a broadcast is
    dropped once sent ``limit`` times, the oldest when over ``max_depth``."""

    max_depth: int
    items: list[_Broadcast] = attrs.Factory(list)
    seq: int = 0

    def push(self, payload: bytes) -> _Broadcast:
        self.seq += 1
        item = _Broadcast(payload=payload, seq=self.seq)
        self.items.append(item)
        if len(self.items) > self.max_depth:
            del self.items[: len(self.items) - self.max_depth]
        return item

    def pull(self, overhead: int, limit: int, transmit_limit: int) -> list[bytes]:
        out: list[bytes] = []
        used = 0
        for item in sorted(self.items, key=lambda b: (b.transmits, -b.seq)):
            cost = overhead + len(item.payload)
            if used + cost > limit:
                continue
            used += cost
            out.append(item.payload)
            item.transmits += 1
        self.items = [b for b in self.items if b.transmits < transmit_limit]
        return out

    def holds(self, item: _Broadcast) -> bool:
        return any(b is item for b in self.items)


@attrs.define(eq=False)
class _Ring:
    """Serf's event (or query) buffer: ``size`` slots indexed by Lamport time modulo
    ``size``, each holding what was seen at one time."""

    size: int
    slots: dict[int, tuple[int, list[object]]] = attrs.Factory(dict)
    min_time: int = 0

    def fresh(self, ltime: int, now: int) -> bool:
        if ltime < self.min_time:
            return False
        return not (now > self.size and ltime < now - self.size)

    def add(self, ltime: int, key: object) -> bool:
        """Record ``key`` at ``ltime``; False if it was there already."""
        index = ltime % self.size
        slot = self.slots.get(index)
        if slot is not None and slot[0] == ltime:
            if key in slot[1]:
                return False
            slot[1].append(key)
        else:
            self.slots[index] = (ltime, [key])
        return True


_SIMPLE_REGEX = re.compile(r"\^?[^()\[\]{}|\\^$]*\$?")


def _tag_filter_matches(expr: str, value: str) -> bool:
    """Go's ``regexp.MatchString(expr, value)`` for the expressions we dare to run here:
    no groups, classes, alternation, repetition counts nor escapes, at most two ``*+?``.
    Python's ``re`` backtracks (a peer's crafted regex could stall the node, Go's RE2
    cannot), so any other expression does not match: no ack, no delivery."""
    if not _SIMPLE_REGEX.fullmatch(expr) or sum(expr.count(q) for q in "*+?") > 2:
        return False
    return re.search(expr, value) is not None


class SerfLayer:
    """Serf's state for one member named ``name`` (see the module docstring).

    Args:
        name: this node's name (as memberlist announces it).
        tags: this node's Serf tags (``set_tags`` changes them).
        event_buffer: slots of the user event de-duplication ring (Serf: 512).
        query_buffer: slots of the query de-duplication ring (Serf: 512).
        retransmit_mult: memberlist's ``RetransmitMult`` (LAN: 4).
        max_queue_depth: the most broadcasts a queue holds (Serf's ``MaxQueueDepth``).
        max_intents: the most intents about not-yet-known members kept.
        max_departed: the most left or failed members remembered (the oldest forgotten;
            Serf forgets them after its 24 h tombstone and reconnect timeouts).
        replay_old_events: deliver the events a join's push-pull brings (``-replay``).

    Raises:
        ValueError: the tags do not encode within 512 bytes.
    """

    def __init__(
        self,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        event_buffer: int = 512,
        query_buffer: int = 512,
        retransmit_mult: int = 4,
        max_queue_depth: int = 4096,
        max_intents: int = 4096,
        max_departed: int = 4096,
        replay_old_events: bool = False,
    ) -> None:
        self.name = name
        self._meta = encode_serf_tags(tags or {})
        self.tags: dict[str, str] = dict(tags or {})
        # At 1, as Serf's: a leave at the default join time of 0 would be ignored.
        self.clock = LamportClock(1)
        self.event_clock = LamportClock(1)
        self.query_clock = LamportClock(1)
        self.members: dict[str, _MemberState] = {name: _MemberState(SerfMemberStatus.ALIVE)}
        self._intents: dict[str, tuple[SerfMessageType, int]] = {}
        self._max_intents = max_intents
        self._departed: dict[str, None] = {}  # left or failed members, oldest first
        self._max_departed = max_departed
        self._events = _Ring(event_buffer)
        self._queries = _Ring(query_buffer)
        self._intent_queue = _Queue(max_queue_depth)
        self._query_queue = _Queue(max_queue_depth)
        self._event_queue = _Queue(max_queue_depth)
        self._retransmit_mult = retransmit_mult
        self._replay_old_events = replay_old_events
        #: True while this node joins (``begin_join`` .. ``join``): a join's push-pull
        #: then sets the event floor (Serf's ``eventJoinIgnore``).
        self.joining = False
        self._leave: _Broadcast | None = None
        self.leaving = False
        self._outbox: list[SerfOutput] = []
        #: Serf messages received and accepted / dropped as malformed or unknown.
        self.messages_in = 0
        self.messages_dropped = 0
        #: The last refused message's error (for a log line), or None.
        self.last_error: WireError | None = None

    # --- outside in: actions ---------------------------------------------------------

    def drain(self) -> list[SerfOutput]:
        """Everything produced since the last call: events for the user, sends."""
        out, self._outbox = self._outbox, []
        return out

    def set_tags(self, tags: Mapping[str, str]) -> bytes:
        """Change this node's tags; returns the new meta (the node announces it with a new
        ``alive``). ``ValueError`` if they do not encode within 512 bytes."""
        self._meta = encode_serf_tags(tags)
        self.tags = dict(tags)
        return self._meta

    def begin_join(self) -> None:
        """This node starts joining: the events a join push-pull brings are old news
        (unless ``replay_old_events``), as in Serf's ``Join(ignoreOld=True)``."""
        self.joining = True

    def join(self) -> None:
        """memberlist joined: broadcast the join intent at the current clock (Serf's
        ``broadcastJoin``), after which a push-pull's old events are no longer ignored."""
        self.joining = False
        self._broadcast_join(self.clock.time())

    def leave(self) -> None:
        """Broadcast the intent to leave (Serf's ``Leave``); memberlist's own leave (a
        ``dead`` about itself) must follow once ``leave_sent`` (or a timeout)."""
        message = LeaveIntent(ltime=self.clock.time(), node=self.name)
        self.clock.increment()
        self.leaving = True
        self._leave_intent(message)
        if self._has_alive_members():
            self._leave = self._intent_queue.push(encode_serf_message(message))

    @property
    def leave_sent(self) -> bool:
        """The leave intent has gone out as often as memberlist sends a broadcast (or
        there was nobody to tell)."""
        return self._leave is None or not self._intent_queue.holds(self._leave)

    def user_event(self, name: str, payload: bytes = b"", *, coalesce: bool = False) -> None:
        """Broadcast a user event (Serf's ``UserEvent``); it is not delivered back here.

        Raises:
            ValueError: name and payload, or the encoded message, exceed 9 KiB (Serf's
                ``UserEventSizeLimit``).
        """
        if len(name.encode()) + len(payload) > USER_EVENT_SIZE_LIMIT:
            raise ValueError(f"a user event is at most {USER_EVENT_SIZE_LIMIT} bytes")
        message = UserEvent(
            ltime=self.event_clock.time(), name=name, payload=payload, coalesce=coalesce
        )
        raw = encode_serf_message(message)
        if len(raw) > USER_EVENT_SIZE_LIMIT:
            raise ValueError(f"the encoded user event exceeds {USER_EVENT_SIZE_LIMIT} bytes")
        self.event_clock.increment()
        self._user_event(message, deliver=False)
        self._event_queue.push(raw)

    def respond(self, query: Query, payload: bytes) -> SendTo:
        """The datagram answering ``query`` (to its source); ``ValueError`` over 1 KiB."""
        raw = encode_serf_message(
            QueryResponse(ltime=query.ltime, id=query.id, sender=self.name, payload=payload)
        )
        if len(raw) > QUERY_RESPONSE_SIZE_LIMIT:
            raise ValueError(f"a query response is at most {QUERY_RESPONSE_SIZE_LIMIT} bytes")
        return SendTo(address=_address(query.addr, query.port), payload=raw, node=query.source_node)

    def status_of(self, name: str) -> SerfMemberStatus:
        """What Serf would print for ``name`` as far as this node knows (NONE: unknown)."""
        state = self.members.get(name)
        return state.status if state is not None else SerfMemberStatus.NONE

    # --- memberlist's delegate hooks -------------------------------------------------

    def node_meta(self, limit: int) -> bytes:
        """This node's tags as Serf encodes them in meta."""
        if len(self._meta) > limit:
            raise ValueError(f"encoded tags ({len(self._meta)} bytes) exceed {limit} bytes")
        return self._meta

    def notify_message(self, payload: bytes) -> None:
        """A ``userMsg`` body from memberlist: a Serf message. Malformed or unknown ones
        are counted (``messages_dropped``, ``last_error``) and dropped."""
        if not payload:
            return
        try:
            message = decode_serf_message(payload)
        except WireError as exc:
            self.messages_dropped += 1
            self.last_error = exc
            return
        self.messages_in += 1
        queue = self._intent_queue
        if isinstance(message, LeaveIntent):
            rebroadcast = self._leave_intent(message)
        elif isinstance(message, JoinIntent):
            rebroadcast = self._join_intent(message)
        elif isinstance(message, UserEvent):
            rebroadcast, queue = self._user_event(message, deliver=True), self._event_queue
        elif isinstance(message, Query):
            rebroadcast, queue = self._query(message), self._query_queue
        elif isinstance(message, Relay):
            rebroadcast = False
            self._relay(message)
        else:  # a QueryResponse: this node never runs queries
            rebroadcast = False
        if rebroadcast:
            queue.push(payload)

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        """Serf's broadcasts to piggyback: intents, then queries, then events."""
        transmit_limit = self._retransmit_mult * _log10_ceil(len(self.members) + 1)
        out: list[bytes] = []
        for queue in (self._intent_queue, self._query_queue, self._event_queue):
            used = sum(overhead + len(m) for m in out)
            out.extend(queue.pull(overhead, limit - used, transmit_limit))
        return out

    def local_state(self, join: bool) -> bytes:
        """Serf's push-pull state: clocks, status times, left members, recent events."""
        events = tuple(
            EventsAt(ltime=ltime, events=tuple(e for e in keys if isinstance(e, tuple)))
            for ltime, keys in sorted(self._events.slots.values(), key=lambda s: s[0])
        )
        state = SerfPushPull(
            ltime=self.clock.time(),
            status_ltimes=tuple((n, m.status_ltime) for n, m in self.members.items()),
            left_members=tuple(
                n for n, m in self.members.items() if m.status is SerfMemberStatus.LEFT
            ),
            event_ltime=self.event_clock.time(),
            events=events,
            query_ltime=self.query_clock.time(),
        )
        return encode_serf_push_pull(state)

    def merge_remote_state(self, state: bytes, join: bool) -> None:
        """A peer's Serf push-pull state (Serf's ``MergeRemoteState``); malformed state is
        counted and dropped like a malformed message."""
        try:
            remote = decode_serf_push_pull(state)
        except WireError as exc:
            self.messages_dropped += 1
            self.last_error = exc
            return
        if remote.ltime > 0:
            self.clock.witness(remote.ltime - 1)
        if remote.event_ltime > 0:
            self.event_clock.witness(remote.event_ltime - 1)
        if remote.query_ltime > 0:
            self.query_clock.witness(remote.query_ltime - 1)
        times = dict(remote.status_ltimes)
        left = set(remote.left_members)
        for name in remote.left_members:
            self._leave_intent(LeaveIntent(ltime=times.get(name, 0) + 1, node=name))
        for name, ltime in remote.status_ltimes:
            if name not in left:
                self._join_intent(JoinIntent(ltime=ltime, node=name))
        if join and self.joining and not self._replay_old_events:
            self._events.min_time = max(self._events.min_time, remote.event_ltime)
        for slot in remote.events:
            for name, payload in slot.events:
                self._user_event(UserEvent(ltime=slot.ltime, name=name, payload=payload), True)

    def notify_join(self, member: Member) -> None:
        """memberlist: ``member`` is alive (Serf's ``handleNodeJoin``)."""
        state = self.members.get(member.name)
        if state is None:
            state = _MemberState(SerfMemberStatus.ALIVE)
            intent = self._intents.pop(member.name, None)
            if intent is not None:
                kind, ltime = intent
                state.status_ltime = ltime
                if kind is SerfMessageType.LEAVE:
                    state.status = SerfMemberStatus.LEAVING
            self.members[member.name] = state
        elif member.name != self.name or not self.leaving:
            state.status = SerfMemberStatus.ALIVE
            self._departed.pop(member.name, None)

    def notify_leave(self, member: Member) -> None:
        """memberlist: ``member`` failed or left (Serf's ``handleNodeLeave``)."""
        state = self.members.get(member.name)
        if state is None:
            return
        if state.status is SerfMemberStatus.LEAVING or member.status is Status.LEFT:
            state.status = SerfMemberStatus.LEFT
        elif state.status is SerfMemberStatus.ALIVE:
            state.status = SerfMemberStatus.FAILED
        else:
            return
        self._departed.pop(member.name, None)
        self._departed[member.name] = None
        while len(self._departed) > self._max_departed:
            oldest = next(iter(self._departed))
            del self._departed[oldest]
            if oldest != self.name:
                self.members.pop(oldest, None)

    def notify_update(self, member: Member) -> None:
        """memberlist: ``member`` changed its meta (tags) or address: nothing to keep."""

    # --- Serf's rules ----------------------------------------------------------------

    def _has_alive_members(self) -> bool:
        return any(
            n != self.name and m.status is SerfMemberStatus.ALIVE for n, m in self.members.items()
        )

    def _broadcast_join(self, ltime: int) -> None:
        message = JoinIntent(ltime=ltime, node=self.name)
        self.clock.witness(ltime)
        self._join_intent(message)
        self._intent_queue.push(encode_serf_message(message))

    def _remember_intent(self, name: str, kind: SerfMessageType, ltime: int) -> bool:
        known = self._intents.get(name)
        if known is not None and ltime <= known[1]:
            return False
        self._intents.pop(name, None)
        self._intents[name] = (kind, ltime)
        while len(self._intents) > self._max_intents:
            del self._intents[next(iter(self._intents))]
        return True

    def _leave_intent(self, message: LeaveIntent) -> bool:
        self.clock.witness(message.ltime)
        member = self.members.get(message.node)
        if member is None:
            return self._remember_intent(message.node, SerfMessageType.LEAVE, message.ltime)
        if message.ltime <= member.status_ltime:
            return False
        if message.node == self.name and not self.leaving:
            self._broadcast_join(self.clock.time())  # refute an old leave of ours
            return False
        member.status_ltime = message.ltime
        if member.status is SerfMemberStatus.ALIVE:
            member.status = SerfMemberStatus.LEAVING
        elif member.status is SerfMemberStatus.FAILED:
            member.status = SerfMemberStatus.LEFT
        return member.status in (SerfMemberStatus.LEAVING, SerfMemberStatus.LEFT)

    def _join_intent(self, message: JoinIntent) -> bool:
        self.clock.witness(message.ltime)
        member = self.members.get(message.node)
        if member is None:
            return self._remember_intent(message.node, SerfMessageType.JOIN, message.ltime)
        if message.ltime <= member.status_ltime:
            return False
        member.status_ltime = message.ltime
        if member.status is SerfMemberStatus.LEAVING:
            member.status = SerfMemberStatus.ALIVE
        return True

    def _user_event(self, message: UserEvent, deliver: bool) -> bool:
        self.event_clock.witness(message.ltime)
        if not self._events.fresh(message.ltime, self.event_clock.time()):
            return False
        if not self._events.add(message.ltime, (message.name, message.payload)):
            return False
        if deliver:
            self._outbox.append(
                UserEventReceived(
                    ltime=message.ltime,
                    name=message.name,
                    payload=message.payload,
                    coalesce=message.coalesce,
                )
            )
        return True

    def _query(self, query: Query) -> bool:
        self.query_clock.witness(query.ltime)
        if not self._queries.fresh(query.ltime, self.query_clock.time()):
            return False
        if not self._queries.add(query.ltime, query.id):
            return False
        rebroadcast = not query.no_broadcast
        if not self._selected_by(query):
            return rebroadcast
        if query.wants_ack:
            ack = QueryResponse(
                ltime=query.ltime, id=query.id, sender=self.name, flags=QUERY_FLAG_ACK
            )
            try:
                address = _address(query.addr, query.port)
            except SerfError as exc:
                self.last_error = exc
            else:
                raw = encode_serf_message(ack)
                self._outbox.append(SendTo(address=address, payload=raw, node=query.source_node))
        if not query.name.startswith(INTERNAL_QUERY_PREFIX):
            self._outbox.append(QueryReceived(query=query))
        return rebroadcast

    def _selected_by(self, query: Query) -> bool:
        for raw in query.filters:
            try:
                selector = decode_filter(raw)
            except SerfError as exc:
                self.last_error = exc
                return False
            if selector.kind == 0 and self.name not in selector.nodes:
                return False
            if selector.kind == 1 and not _tag_filter_matches(
                selector.expr, self.tags.get(selector.tag, "")
            ):
                return False
        return True

    def _relay(self, relay: Relay) -> None:
        # Only query responses are relayed (that is all Serf relays): not an open proxy.
        if relay.message[:1] != bytes((SerfMessageType.QUERY_RESPONSE,)):
            self.messages_dropped += 1
            self.last_error = SerfError("a relay that does not carry a query response")
            return
        try:
            address = _address(relay.dest_addr, relay.dest_port)
        except SerfError as exc:
            self.messages_dropped += 1
            self.last_error = exc
            return
        self._outbox.append(SendTo(address=address, payload=relay.message, node=relay.dest_name))


def _log10_ceil(n: int) -> int:
    """``ceil(log10(n))`` for ``n >= 1``, exactly (memberlist's retransmit limit)."""
    digits = len(str(n))
    return digits - 1 if n == 10 ** (digits - 1) else digits


def _address(addr: bytes, port: int) -> str:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise SerfError(f"a serf address of {len(addr)} bytes is not IPv4 or IPv6") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # Go's 16-byte form of an IPv4 address
    return format_address(str(ip), port)
