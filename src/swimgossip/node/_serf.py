"""A node's Serf mode: ``SerfLayer`` behind memberlist mode's delegate hooks, and the
user's handle to it (``node.serf``, a ``SerfHandle``).

The memberlist mode calls the delegate's hooks synchronously from the task that drives
the engine; ``SerfDelegate`` forwards each to its ``SerfLayer`` (sans I/O) and then routes
what the layer produced: user events and queries to the ``SerfEventStream`` s the user
opened (a ``Fanout`` of bounded streams, as the node's ``messages()``: the oldest dropped
and counted when full), datagrams for one address
(query acks, relayed responses) to a bounded queue that ``run_sends`` empties. It notes
when the layer's leave intent has gone out (``leave_sent``), which a leave waits for
before memberlist's own leave, so that Serf records ``left``, not ``failed``.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Mapping, Sequence

import attrs
import trio

from ..core.member import Member
from ..core.tags import decode_tags
from ..net.serf import (
    QueryReceived,
    SendTo,
    SerfLayer,
    UserEventReceived,
    serf_meta_to_ours,
)
from ..net.serf._wire import canonical_meta
from ._events import DropOldestStream, Fanout

__all__ = ["MAX_PENDING_SENDS", "SerfDelegate", "SerfEvent", "SerfEventStream", "SerfHandle"]

#: Datagrams (query acks, relays) waiting to be sent at most; beyond, the oldest is dropped.
MAX_PENDING_SENDS = 256

SerfEvent = UserEventReceived | QueryReceived


@attrs.define(eq=False)
class SerfEventStream(DropOldestStream[SerfEvent]):
    """Serf user events (``UserEventReceived``) and queries (``QueryReceived``) received
    from now on. Iterate with ``async for`` (or ``async with``); ``close()`` when done.
    When ``capacity`` events wait unread, the oldest is dropped and counted in
    ``dropped``."""


@attrs.define(eq=False)
class SerfDelegate:
    """memberlist's delegate hooks over a ``SerfLayer`` (see the module docstring)."""

    layer: SerfLayer
    events: Fanout[SerfEvent] = attrs.field(factory=Fanout)
    sends: collections.deque[SendTo] = attrs.field(factory=collections.deque)
    sends_dropped: int = 0
    leave_sent: trio.Event = attrs.field(factory=trio.Event)
    _send_wakeup: trio.Event = attrs.field(factory=trio.Event)

    def _route(self) -> None:
        for out in self.layer.drain():
            if isinstance(out, SendTo):
                self.queue_send(out)
            else:
                self.events.deliver(out)

    def queue_send(self, datagram: SendTo) -> None:
        """Queue a datagram for ``run_sends`` (the oldest dropped beyond the bound)."""
        if len(self.sends) >= MAX_PENDING_SENDS:
            self.sends.popleft()
            self.sends_dropped += 1
        self.sends.append(datagram)
        self._send_wakeup.set()

    def _check_leave(self) -> None:
        if self.layer.leaving and self.layer.leave_sent:
            self.leave_sent.set()

    # --- memberlist's delegate hooks -------------------------------------------------

    def node_meta(self, limit: int) -> bytes:
        """Our tags as the engine holds them (our encoding: ``SerfWire`` puts them in
        Serf's on the way out), canonical (keys sorted)."""
        return serf_meta_to_ours(self.layer.node_meta(limit))

    def notify_message(self, payload: bytes) -> None:
        """A Serf message arrived."""
        self.layer.notify_message(payload)
        self._route()

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        """Serf's broadcasts to piggyback."""
        out = self.layer.get_broadcasts(overhead, limit)
        self._check_leave()
        return out

    def local_state(self, join: bool) -> bytes:
        """Serf's push-pull state."""
        return self.layer.local_state(join)

    def merge_remote_state(self, state: bytes, join: bool) -> None:
        """A peer's Serf push-pull state."""
        self.layer.merge_remote_state(state, join)
        self._route()

    def notify_join(self, member: Member) -> None:
        """memberlist: ``member`` is alive."""
        self.layer.notify_join(member)

    def notify_leave(self, member: Member) -> None:
        """memberlist: ``member`` failed or left."""
        self.layer.notify_leave(member)

    def notify_update(self, member: Member) -> None:
        """memberlist: ``member`` changed its meta."""
        self.layer.notify_update(member)

    # --- the node's side -------------------------------------------------------------

    async def join(
        self, join: Callable[[Sequence[str]], Awaitable[int]], seeds: Sequence[str]
    ) -> int:
        """``join(seeds)`` (memberlist's join) inside Serf's: the events the join's
        push-pull brings are old news, and once a seed answered, Serf's join intent goes
        out at our (now witnessed) clock."""
        self.layer.begin_join()
        try:
            answered = await join(seeds)
        finally:
            self.layer.joining = False
        if answered:
            self.layer.join()
        return answered

    @staticmethod
    def canonical_meta(meta: bytes) -> bytes:
        """``meta`` as tags in the form they come back through Serf's encoding (keys
        sorted; anything that is not tags is no tags)."""
        return canonical_meta(meta)

    def tags_announced(self, meta: bytes) -> None:
        """The node announced ``meta`` (canonical): the layer's tags, for query filters."""
        self.layer.set_tags(decode_tags(meta))

    def start_leave(self) -> None:
        """Broadcast Serf's leave intent (the node then waits for ``leave_sent``)."""
        self.layer.leave()
        self._check_leave()

    async def announce_leave(self, timeout: float) -> None:
        """Broadcast Serf's leave intent and wait until it has gone out (at most
        ``timeout``): a leave does this before memberlist's own."""
        self.start_leave()
        with trio.move_on_after(timeout):
            await self.leave_sent.wait()

    async def run_sends(self, send: Callable[[str, bytes], Awaitable[None]]) -> None:
        """Send queued datagrams with ``send(address, payload)`` forever (a node task).
        A failing send is dropped: these are best-effort datagrams, as in Serf."""
        while True:
            while not self.sends:
                self._send_wakeup = trio.Event()
                await self._send_wakeup.wait()
            datagram = self.sends.popleft()
            try:
                await send(datagram.address, datagram.payload)
            except (OSError, ValueError):
                self.sends_dropped += 1

    def close(self) -> None:
        """End every event stream (the node stopped)."""
        self.events.close()


@attrs.define(eq=False)
class SerfHandle:
    """A node's Serf side (``node.serf`` in ``wire="serf"``): user events, tags, queries.

    Args:
        delegate: the node's ``SerfDelegate``.
        update_tags: the node's ``update_tags`` (announces them with a new ``alive``).
    """

    _delegate: SerfDelegate
    _update_tags: Callable[[Mapping[str, str]], Awaitable[None]]

    @property
    def tags(self) -> Mapping[str, str]:
        """This node's Serf tags."""
        return dict(self._delegate.layer.tags)

    def events(self, *, buffer: int = 1024) -> SerfEventStream:
        """Serf user events and queries received from now on (``async for``)."""
        return self._delegate.events.open(SerfEventStream, buffer)

    async def user_event(self, name: str, payload: bytes = b"", *, coalesce: bool = False) -> None:
        """Broadcast a Serf user event (what ``serf event NAME PAYLOAD`` does).

        Raises:
            ValueError: name and payload exceed Serf's 9 KiB.
        """
        self._delegate.layer.user_event(name, payload, coalesce=coalesce)
        await trio.lowlevel.checkpoint()

    async def set_tags(self, tags: Mapping[str, str]) -> None:
        """Replace this node's tags; Serf agents see them (``serf members -detailed``).
        The same as ``node.update_tags(tags)``.

        Raises:
            ConfigError: a key is empty or holds ``=``, or a key or value is not a str.
            ValueError: they exceed Serf's 512 bytes encoded.
        """
        await self._update_tags(tags)

    async def respond(self, query: QueryReceived, payload: bytes) -> None:
        """Answer a query (a datagram to its source, best effort).

        Raises:
            ValueError: the response exceeds Serf's 1 KiB.
        """
        self._delegate.queue_send(self._delegate.layer.respond(query.query, payload))
        await trio.lowlevel.checkpoint()
