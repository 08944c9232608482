"""Event callbacks (``on_event`` / ``listen``) of a node and of its two doors.

``KindCallbacks`` holds the callbacks of one ``listen`` call (the same set in ``Node`` and
in both doors): ``events()`` makes them one event callback (``dispatch_by_kind``) and
``open_streams`` opens the message streams that ``on_message`` and ``on_direct`` read.
``Callbacks`` holds the callbacks registered on a node or on a door's handle, says which
of them take an event, and reports a callback that raised: logged with its traceback and
counted in the node's ``callback_errors`` (``metrics()``), never raised. The loop that
calls them lives with the thread they run in: a Trio task of the node (``Node``), an
asyncio task on the loop (``swimgossip.aio``), a thread of its own (``swimgossip.blocking``);
each is fed by an ordinary bounded subscription.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypedDict

import attrs

from ..core.events import (
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberRecovered,
    MemberSuspected,
    MemberUpdated,
    StateChanged,
)
from ..core.outputs import DirectDelivery, UserDelivery
from ._events import DirectMessageStream, EventsLost, FullEvent, MessageStream, NodeEvent

if TYPE_CHECKING:
    from ._node import Node

__all__ = [
    "Callbacks",
    "EventCallback",
    "FullEventCallback",
    "KindCallbacks",
    "ListenCallbacks",
    "MessageFeed",
    "dispatch_by_kind",
]

logger = logging.getLogger("swimgossip")

#: An ``on_event`` callback, sync or async (an awaitable result is awaited).
EventCallback = Callable[[NodeEvent], Awaitable[object] | object]
#: An ``on_event(..., state=True)`` callback: it gets ``StateChanged`` events too.
FullEventCallback = Callable[[FullEvent], Awaitable[object] | object]
#: A message stream of ``listen`` and the ``on_message`` / ``on_direct`` callback it feeds.
MessageFeed = tuple[MessageStream | DirectMessageStream, Callable[[Any], object]]


class ListenCallbacks(TypedDict, total=False):
    """The keyword arguments of ``listen`` (``Node``, ``AioNode``, ``BlockingNode``): one
    callback per event kind, each typed with its own event class; see ``Node.listen``."""

    on_join: Callable[[MemberJoined], object] | None
    on_update: Callable[[MemberUpdated], object] | None
    on_suspect: Callable[[MemberSuspected], object] | None
    on_recover: Callable[[MemberRecovered], object] | None
    on_fail: Callable[[MemberFailed], object] | None
    on_leave: Callable[[MemberLeft], object] | None
    on_lost: Callable[[EventsLost], object] | None
    on_message: Callable[[UserDelivery], object] | None
    on_restart: Callable[[MemberJoined], object] | None
    on_direct: Callable[[DirectDelivery], object] | None
    on_state: Callable[[StateChanged], object] | None


def dispatch_by_kind(
    *,
    on_join: Callable[[MemberJoined], object] | None = None,
    on_update: Callable[[MemberUpdated], object] | None = None,
    on_suspect: Callable[[MemberSuspected], object] | None = None,
    on_recover: Callable[[MemberRecovered], object] | None = None,
    on_fail: Callable[[MemberFailed], object] | None = None,
    on_leave: Callable[[MemberLeft], object] | None = None,
    on_lost: Callable[[EventsLost], object] | None = None,
    on_restart: Callable[[MemberJoined], object] | None = None,
    on_state: Callable[[StateChanged], object] | None = None,
) -> FullEventCallback:
    """One event callback that calls the callback given for the event's kind, if any
    (``KindCallbacks.events``); a ``MemberJoined`` with ``restarted`` goes to ``on_join``
    and then to ``on_restart``. It returns an awaitable only if a callback did (so with
    plain functions, as in the threaded door, every callback has run when it returns)."""
    table: dict[type[Any], Callable[[Any], object] | None] = {
        MemberJoined: on_join,
        MemberUpdated: on_update,
        MemberSuspected: on_suspect,
        MemberRecovered: on_recover,
        MemberFailed: on_fail,
        MemberLeft: on_leave,
        EventsLost: on_lost,
        StateChanged: on_state,
    }

    def dispatch(event: FullEvent) -> Awaitable[object] | object:
        callback = table.get(type(event))
        if on_restart is None or not isinstance(event, MemberJoined) or not event.restarted:
            return None if callback is None else callback(event)
        if callback is None:
            return on_restart(event)
        first = callback(event)
        if inspect.isawaitable(first):  # on_restart runs once on_join is done
            return _then(first, on_restart, event)
        return on_restart(event)  # all sync: nothing to await (the threaded door)

    return dispatch


async def _then(first: Awaitable[object], then: Callable[[Any], object], event: FullEvent) -> None:
    await first
    result = then(event)
    if inspect.isawaitable(result):
        await result


@attrs.frozen(kw_only=True)
class KindCallbacks:
    """The callbacks of one ``listen`` call, by kind (see ``Node.listen``); the node and
    both doors build one and run it where they document.

    ``events()`` is the event callback to register with ``on_event(..., state=state)``;
    ``open_streams`` opens the message streams of ``on_message`` and ``on_direct``.
    """

    on_join: Callable[[MemberJoined], object] | None = None
    on_update: Callable[[MemberUpdated], object] | None = None
    on_suspect: Callable[[MemberSuspected], object] | None = None
    on_recover: Callable[[MemberRecovered], object] | None = None
    on_fail: Callable[[MemberFailed], object] | None = None
    on_leave: Callable[[MemberLeft], object] | None = None
    on_lost: Callable[[EventsLost], object] | None = None
    on_message: Callable[[UserDelivery], object] | None = None
    on_restart: Callable[[MemberJoined], object] | None = None
    on_direct: Callable[[DirectDelivery], object] | None = None
    on_state: Callable[[StateChanged], object] | None = None

    @property
    def state(self) -> bool:
        """Whether the event callback takes ``StateChanged`` events (``on_state``)."""
        return self.on_state is not None

    def events(self) -> FullEventCallback:
        """One event callback that calls the one given for the event's kind."""
        return dispatch_by_kind(
            on_join=self.on_join,
            on_update=self.on_update,
            on_suspect=self.on_suspect,
            on_recover=self.on_recover,
            on_fail=self.on_fail,
            on_leave=self.on_leave,
            on_lost=self.on_lost,
            on_restart=self.on_restart,
            on_state=self.on_state,
        )

    def open_streams(self, node: Node, *, buffer: int) -> list[MessageFeed]:
        """Open ``node.messages()`` for ``on_message`` and ``node.direct_messages()`` for
        ``on_direct`` (those given), each holding at most ``buffer`` messages; call it in
        the node's Trio thread. The caller reads them and closes them when unregistered."""
        feeds: list[MessageFeed] = []
        if self.on_message is not None:
            feeds.append((node.messages(buffer=buffer), self.on_message))
        if self.on_direct is not None:
            feeds.append((node.direct_messages(buffer=buffer), self.on_direct))
        return feeds


@attrs.define(eq=False)
class Callbacks:
    """The event callbacks registered on one node or door handle.

    Args:
        name: the node's name, for the log.
        count_error: counts one callback error in the node's ``callback_errors``.
    """

    name: str
    count_error: Callable[[], None]
    #: Each callback, and whether it takes ``StateChanged`` events.
    _entries: list[tuple[FullEventCallback, bool]] = attrs.field(factory=list)

    def add(self, callback: FullEventCallback, *, state: bool) -> Callable[[], None]:
        """Register ``callback`` (for ``StateChanged`` events too if ``state``); returns a
        function that unregisters it."""
        entry = (callback, state)
        self._entries.append(entry)

        def remove() -> None:
            if entry in self._entries:
                self._entries.remove(entry)

        return remove

    def for_event(self, event: FullEvent) -> list[FullEventCallback]:
        """The callbacks that take ``event``, in the order they were registered."""
        state = isinstance(event, StateChanged)
        return [callback for callback, wants in list(self._entries) if wants or not state]

    async def call(
        self, callback: Callable[[Any], object], item: object, what: str = "event"
    ) -> None:
        """``callback(item)``, awaiting an awaitable result (on the loop that awaits this:
        Trio's or asyncio's); if it raises, ``failed``."""
        try:
            result = callback(item)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.failed(callback, what)

    def call_sync(
        self, callback: Callable[[Any], object], item: object, what: str = "event"
    ) -> None:
        """``callback(item)`` for a plain function (the threaded door); if it raises,
        ``failed``."""
        try:
            callback(item)
        except Exception:
            self.failed(callback, what)

    def failed(self, callback: object, what: str = "event") -> None:
        """Report that ``callback`` raised (call it in the ``except`` block): logged with
        the traceback, counted."""
        self.count_error()
        logger.exception("%s: %s callback %r raised", self.name, what, callback)
