"""Event callbacks (``on_event`` / ``listen``) of a node and of its two doors.

``dispatch_by_kind`` makes one event callback of callbacks by event kind (``listen``).
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
from typing import Any

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
from ._events import EventsLost, FullEvent, NodeEvent

__all__ = [
    "Callbacks",
    "EventCallback",
    "FullEventCallback",
    "KindCallback",
    "dispatch_by_kind",
]

logger = logging.getLogger("swimgossip")

#: An ``on_event`` callback, sync or async (an awaitable result is awaited).
EventCallback = Callable[[NodeEvent], Awaitable[object] | object]
#: An ``on_event(..., state=True)`` callback: it gets ``StateChanged`` events too.
FullEventCallback = Callable[[FullEvent], Awaitable[object] | object]
#: A callback for one kind of event, untyped (``swimgossip.aio``'s ``listen`` uses it).
KindCallback = Callable[[Any], Awaitable[object] | object]


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
    (``listen`` here and in ``swimgossip.aio``); a ``MemberJoined`` with ``restarted``
    goes to ``on_join`` and then to ``on_restart``."""
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
        restarted = isinstance(event, MemberJoined) and event.restarted
        if on_restart is None or not restarted:
            return None if callback is None else callback(event)
        return _call_in_order([c for c in (callback, on_restart) if c is not None], event)

    return dispatch


async def _call_in_order(callbacks: list[Callable[[Any], object]], event: FullEvent) -> None:
    for callback in callbacks:
        result = callback(event)
        if inspect.isawaitable(result):
            await result


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

    def failed(self, callback: object, what: str = "event") -> None:
        """Report that ``callback`` raised (call it in the ``except`` block): logged with
        the traceback, counted."""
        self.count_error()
        logger.exception("%s: %s callback %r raised", self.name, what, callback)
