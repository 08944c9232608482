"""Fan-out of membership and state events and application messages to subscribers.

The node's engine task publishes every event to an ``EventHub``; the hub appends it to each
``Subscription``'s bounded buffer and wakes the reader. Publishing never waits, so a slow
subscriber cannot block the protocol. When a buffer is full the subscription drops what it
holds, counts it, and its reader next gets ``EventsLost(count, members)`` followed by a
fresh snapshot (a ``MemberJoined`` per member not gone), taken when the reader gets there:
a subscriber may fall behind but is never silently wrong.

Membership events and ``StateChanged`` share one ``seq`` and one order. A ``Subscription``
takes the membership events only (its type, ``NodeEvent``, keeps ``event.member`` a
``Member`` after the ``EventsLost`` check); a ``FullSubscription`` (``subscribe(state=
True)``) takes both, and its snapshots give each member's keys (``StateChanged(snapshot=
True)``) right after that member's ``MemberJoined``.

``subscribe(snapshot=True)`` takes the snapshot and registers the subscription in the same
step (no checkpoint between), so no change can fall between the two.

Messages, which have no snapshot to catch up from, go through a ``Fanout``: a set of
bounded streams of one kind, each dropping its oldest message when full and counting it
(in the stream's ``dropped`` and the fan-out's). The hub holds two, application broadcasts
(``MessageStream``) and direct messages (``DirectMessageStream``); Serf mode holds a third
for Serf's user events and queries (``SerfEventStream``, node/_serf.py).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar, cast, overload

import attrs
import trio

from ..core.events import MemberEvent, MemberJoined, StateChanged
from ..core.member import Member
from ..core.outputs import DirectDelivery, UserDelivery

__all__ = [
    "DirectMessageStream",
    "EventHub",
    "EventsLost",
    "Fanout",
    "FullEvent",
    "FullSubscription",
    "MessageStream",
    "NodeEvent",
    "Subscription",
]


@attrs.frozen(kw_only=True)
class EventsLost:
    """The subscriber fell behind and ``count`` events were dropped.

    ``members`` is the node's member table when the loss was reported; the events that
    follow are a fresh snapshot (``MemberJoined`` for every member not dead or left, each
    followed, in a subscription with ``state=True``, by a ``StateChanged`` per key).
    """

    count: int
    members: tuple[Member, ...]


NodeEvent = MemberEvent | EventsLost
"""What a subscription yields."""

FullEvent = MemberEvent | StateChanged | EventsLost
"""What a subscription with ``state=True`` yields: membership and state events in one
order."""

Snapshot = Callable[[], list[Member]]
StateSnapshot = Callable[[str], list[StateChanged]]


def _no_state(name: str) -> list[StateChanged]:
    return []


def snapshot_events(
    members: list[Member], states: StateSnapshot = _no_state
) -> list[MemberEvent | StateChanged]:
    """A ``MemberJoined(snapshot=True)`` for each member that is alive or suspect, in name
    order, each followed by the ``StateChanged(snapshot=True)`` events ``states`` gives."""
    events: list[MemberEvent | StateChanged] = []
    for member in members:
        if not member.status.is_gone:
            events.append(MemberJoined(member=member, snapshot=True))
            events.extend(states(member.name))
    return events


T = TypeVar("T")
E = TypeVar("E", NodeEvent, FullEvent)


class _ReceiveStream(Generic[T]):
    """``async for`` and ``async with`` over a ``receive`` that raises ``trio.EndOfChannel``
    when done, and a ``close``."""

    async def receive(self) -> T:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@attrs.define(eq=False)
class _Ordered(_ReceiveStream[E]):
    """The ordered, bounded event stream behind ``Subscription`` and ``FullSubscription``:
    ``state`` says whether ``StateChanged`` events (and the state part of snapshots) are
    in it."""

    _hub: EventHub
    _capacity: int
    _state: bool
    _buffer: collections.deque[E] = attrs.field(factory=collections.deque)
    # Snapshot events, read before the buffer and not counted against its capacity.
    _snapshot: collections.deque[E] = attrs.field(factory=collections.deque)
    _lost: int = 0
    _closed: bool = False
    _wakeup: trio.Event = attrs.field(factory=trio.Event)

    def _push(self, event: E) -> None:
        if self._closed:
            return
        if len(self._buffer) >= self._capacity:
            self._lost += len(self._buffer) + 1
            self._buffer.clear()
        else:
            self._buffer.append(event)
        self._wakeup.set()

    def _fill_snapshot(self, members: list[Member]) -> None:
        events = snapshot_events(members, self._hub.states if self._state else _no_state)
        self._snapshot = collections.deque(cast(list[E], events))

    def _close(self) -> None:
        self._closed = True
        self._wakeup.set()

    @property
    def buffered(self) -> int:
        """Events waiting to be read (snapshot included)."""
        return len(self._snapshot) + len(self._buffer)

    @property
    def lost(self) -> int:
        """Events dropped and not yet reported."""
        return self._lost

    async def receive(self) -> E:
        """The next event; waits if there is none.

        Raises:
            trio.EndOfChannel: the node stopped or the subscription was closed.
        """
        while True:
            if self._lost:
                # The snapshot reflects everything still buffered: those are lost too.
                members = self._hub.members()
                event = EventsLost(count=self._lost + len(self._buffer), members=tuple(members))
                self._lost = 0
                self._buffer.clear()
                self._fill_snapshot(members)
                return cast(E, event)
            if self._snapshot:
                return self._snapshot.popleft()
            if self._buffer:
                return self._buffer.popleft()
            if self._closed:
                raise trio.EndOfChannel
            self._wakeup = trio.Event()
            await self._wakeup.wait()

    def close(self) -> None:
        """Stop receiving; buffered events are discarded."""
        self._hub.remove(self)
        self._buffer.clear()
        self._snapshot.clear()
        self._close()


@attrs.define(eq=False)
class Subscription(_Ordered[NodeEvent]):
    """A bounded stream of ``NodeEvent`` values (membership events and ``EventsLost``); use
    it with ``async with`` / ``async for``.

    Ends (``StopAsyncIteration``) when the node stops or the subscription is closed.
    """


@attrs.define(eq=False)
class FullSubscription(_Ordered[FullEvent]):
    """A bounded stream of ``FullEvent`` values: membership events and ``StateChanged``
    in one order (one ``seq``), and ``EventsLost``, whose fresh snapshot gives each
    member's keys after its ``MemberJoined``; ``node.subscribe(state=True)`` returns it.

    Ends (``StopAsyncIteration``) when the node stops or the subscription is closed.
    """


@attrs.define(eq=False)
class DropOldestStream(_ReceiveStream[T]):
    """A bounded stream of messages from a ``Fanout``; when full, the oldest is dropped
    and counted in ``dropped`` (and in the fan-out's ``dropped``)."""

    _fanout: Fanout[T]
    _capacity: int
    _buffer: collections.deque[T] = attrs.field(factory=collections.deque)
    dropped: int = 0
    _closed: bool = False
    _wakeup: trio.Event = attrs.field(factory=trio.Event)

    def _push(self, message: T) -> None:
        if len(self._buffer) >= self._capacity:
            self._buffer.popleft()
            self.dropped += 1
            self._fanout.dropped += 1
        self._buffer.append(message)
        self._wakeup.set()

    def _close(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def receive(self) -> T:
        """The next message. Raises ``trio.EndOfChannel`` once closed and drained."""
        while not self._buffer:
            if self._closed:
                raise trio.EndOfChannel
            self._wakeup = trio.Event()
            await self._wakeup.wait()
        return self._buffer.popleft()

    def close(self) -> None:
        """Stop receiving."""
        self._fanout.forget(self)
        self._close()


S = TypeVar("S", bound=DropOldestStream[Any])


@attrs.define(eq=False)
class Fanout(Generic[T]):
    """Every open ``DropOldestStream`` of one kind of message: ``deliver`` hands a message
    to each and never waits; ``dropped`` counts what their overflows dropped."""

    streams: set[DropOldestStream[T]] = attrs.field(factory=set)
    dropped: int = 0
    closed: bool = False

    def open(self, stream_type: type[S], capacity: int) -> S:
        """A new stream of ``stream_type`` holding at most ``capacity`` (at least 1)
        messages; already ended if the fan-out is closed."""
        stream = stream_type(self, max(1, capacity))
        if self.closed:
            stream._close()
        else:
            self.streams.add(stream)
        return stream

    def forget(self, stream: DropOldestStream[T]) -> None:
        """Forget ``stream`` (it was closed)."""
        self.streams.discard(stream)

    def deliver(self, message: T) -> None:
        """Hand ``message`` to every open stream; never waits."""
        for stream in list(self.streams):
            stream._push(message)

    def close(self) -> None:
        """End every stream (what they hold can still be read) and every later one."""
        self.closed = True
        for stream in self.streams:
            stream._close()
        self.streams.clear()


@attrs.define(eq=False)
class MessageStream(DropOldestStream[UserDelivery]):
    """A bounded stream of application broadcasts (``UserDelivery``: ``source``,
    ``payload``). When full, the oldest message is dropped and counted in ``dropped``."""


@attrs.define(eq=False)
class DirectMessageStream(DropOldestStream[DirectDelivery]):
    """A bounded stream of direct messages for this node (``DirectDelivery``: ``source``,
    ``payload``, ``reliable``). When full, the oldest is dropped and counted in
    ``dropped``."""


@attrs.define(eq=False)
class EventHub:
    """Every subscription and message stream of one node.

    Args:
        members: returns the current member table (for snapshots).
        states: returns a member's keys as snapshot events (for snapshots with state).
    """

    members: Snapshot
    states: StateSnapshot = _no_state
    subscriptions: set[_Ordered[Any]] = attrs.field(factory=set)
    messages: Fanout[UserDelivery] = attrs.field(factory=Fanout)
    direct: Fanout[DirectDelivery] = attrs.field(factory=Fanout)
    published: int = 0
    closed: bool = False

    @overload
    def subscribe(
        self, *, snapshot: bool, capacity: int, state: Literal[False] = False
    ) -> Subscription: ...
    @overload
    def subscribe(
        self, *, snapshot: bool, capacity: int, state: Literal[True]
    ) -> FullSubscription: ...
    @overload
    def subscribe(
        self, *, snapshot: bool, capacity: int, state: bool
    ) -> Subscription | FullSubscription: ...
    def subscribe(
        self, *, snapshot: bool, capacity: int, state: bool = False
    ) -> Subscription | FullSubscription:
        """Register a subscription (with state events if ``state``), first filled with the
        snapshot if asked."""
        subscription: Subscription | FullSubscription
        if state:
            subscription = FullSubscription(self, max(1, capacity), True)
        else:
            subscription = Subscription(self, max(1, capacity), False)
        if snapshot:
            subscription._fill_snapshot(self.members())
        if self.closed:
            subscription._close()
        else:
            self.subscriptions.add(subscription)
        return subscription

    def open_messages(self, *, capacity: int) -> MessageStream:
        """Register a stream of application messages."""
        return self.messages.open(MessageStream, capacity)

    def open_direct(self, *, capacity: int) -> DirectMessageStream:
        """Register a stream of direct messages."""
        return self.direct.open(DirectMessageStream, capacity)

    @property
    def messages_dropped(self) -> int:
        """Messages (broadcasts and direct) dropped by full streams."""
        return self.messages.dropped + self.direct.dropped

    def remove(self, subscription: _Ordered[Any]) -> None:
        """Forget ``subscription``."""
        self.subscriptions.discard(subscription)

    def publish(self, event: MemberEvent | StateChanged) -> None:
        """Hand ``event`` to every subscription that takes its kind; never waits."""
        self.published += 1
        state = isinstance(event, StateChanged)
        for subscription in list(self.subscriptions):
            if subscription._state or not state:
                subscription._push(event)

    def deliver(self, message: UserDelivery) -> None:
        """Hand an application message to every message stream; never waits."""
        self.messages.deliver(message)

    def deliver_direct(self, message: DirectDelivery) -> None:
        """Hand a direct message to every direct-message stream; never waits."""
        self.direct.deliver(message)

    @property
    def pending(self) -> int:
        """Events buffered across subscriptions (a queue-depth metric)."""
        return sum(len(s._buffer) for s in self.subscriptions)

    def close(self) -> None:
        """End every subscription and message stream (the node stopped)."""
        self.closed = True
        for subscription in self.subscriptions:
            subscription._close()
        self.subscriptions.clear()
        self.messages.close()
        self.direct.close()
