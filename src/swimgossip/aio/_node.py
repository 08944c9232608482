"""``swimgossip.aio.open_node``: a node for asyncio programs, run by the same Trio runtime.

How this works. The node is an ordinary ``swimgossip.open_node`` node, held by
``node.host_node`` in the loop's Trio guest run (``_guest``); ``AioNode`` is the asyncio
handle on it. Reads (``members``, ``member``, ``health``, ``metrics``...) look at the node
directly: Trio steps and asyncio callbacks take turns on one thread, so nothing is
half-done. Actions (``join``, ``update_meta``, ``broadcast``, ``leave``) run as Trio tasks
and are awaited from asyncio; their errors are the Trio API's, unchanged.

Streams (``subscribe``, ``messages``) are the node's own bounded ``Subscription`` (or
``FullSubscription``, with member state) and ``MessageStream``: every read is one Trio
``receive``, so events keep their order and ``seq``, a reader that falls behind gets
``EventsLost`` and a fresh snapshot, and the protocol never waits for asyncio. An item
whose reader stopped waiting (a timeout) just as it arrived is kept for the next read.

Leaving the ``async with`` normally leaves the cluster gracefully; cancelling the task that
holds it, or an exception in the block, stops the node at once without leaving (a crash, as
the others see it) and the exception comes out as it was raised. Either way the node's
Trio tasks, its sockets and the callback tasks are gone when the block has ended, and the
last node on a loop ends the loop's Trio run.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from types import TracebackType
from typing import Any, Generic, Literal, Protocol, Self, TypeVar, Unpack, overload

import attrs
import trio

from ..core.config import Config
from ..core.errors import NotRunning
from ..core.member import Member
from ..core.outputs import UserDelivery
from ..node import FullEvent, Node, NodeEvent, host_node, join_within
from ..node._callbacks import (
    Callbacks,
    EventCallback,
    FullEventCallback,
    KindCallbacks,
    ListenCallbacks,
)
from ..node._hosted import door_callbacks
from ..security import SecurityMode
from ._guest import TrioGuest, acquire_guest, release_guest, wait_even_if_cancelled

__all__ = ["AioNode", "AioStream", "open_node"]

logger = logging.getLogger("swimgossip")

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

_DEFAULT_BUFFER = 1024


class _TrioStream(Protocol[T_co]):
    async def receive(self) -> T_co: ...

    def close(self) -> None: ...


@attrs.define(eq=False)
class AioStream(Generic[T]):
    """An asyncio view of a node's event or message stream: ``async with`` it and
    ``async for`` over it; ends when the node stops or the stream is closed."""

    _guest: TrioGuest
    _stream: _TrioStream[T]
    _held: collections.deque[T] = attrs.field(factory=collections.deque)
    _ended: bool = False

    async def receive(self) -> T:
        """The next item; waits for it.

        Raises:
            StopAsyncIteration: the node stopped or the stream was closed.
        """
        if self._held:
            return self._held.popleft()
        if self._ended:
            raise StopAsyncIteration
        try:
            return await self._guest.call(self._stream.receive, orphan=self._held.append)
        except (trio.EndOfChannel, NotRunning):
            self._ended = True
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop receiving; what is buffered is discarded."""
        self._ended = True
        self._held.clear()
        self._guest.run_sync_soon(self._stream.close)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        return await self.receive()

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
class AioNode:
    """A running cluster member, for asyncio code. Get one from ``open_node``.

    The same reads, actions, events and errors as ``swimgossip.Node``; actions are
    coroutines of the asyncio loop, callbacks run on the asyncio loop. Use it on the
    thread of that loop (from another thread, hand calls over with
    ``asyncio.run_coroutine_threadsafe``).
    """

    _node: Node
    _guest: TrioGuest
    _callbacks: Callbacks = attrs.field(init=False)
    _listener: asyncio.Task[None] | None = None
    #: The tasks of ``listen(on_message=, on_direct=)``, one per stream.
    _message_tasks: set[asyncio.Task[None]] = attrs.field(factory=set)

    def __attrs_post_init__(self) -> None:
        self._callbacks = door_callbacks(self._node)  # same thread as the Trio run

    # ------------------------------------------------------------------ reading

    @property
    def name(self) -> str:
        """This member's name."""
        return self._node.name

    @property
    def address(self) -> str:
        """The address others reach this node at (the bound one unless ``advertise``)."""
        return self._node.address

    @property
    def config(self) -> Config:
        """The protocol tunables in force."""
        return self._node.config

    def members(self) -> list[Member]:
        """Every member this node knows (itself included, also suspect/dead/left), by name."""
        return self._node.members()

    def member(self, name: str) -> Member | None:
        """What this node holds about ``name``, or None."""
        return self._node.member(name)

    @property
    def health(self) -> int:
        """Lifeguard local health score: 0 is healthy."""
        return self._node.health

    @property
    def running(self) -> bool:
        """False once the node has left or stopped."""
        return self._node.running

    def metrics(self) -> dict[str, float]:
        """A snapshot of counters, queue depths, lag and health (``Node.metrics``)."""
        return self._node.metrics()

    def metrics_text(self) -> str:
        """``metrics()`` in the Prometheus text exposition format (``Node.metrics_text``)."""
        return self._node.metrics_text()

    @property
    def security(self) -> SecurityMode:
        """The security mode in force."""
        return self._node.security

    def state(self, name: str) -> Mapping[str, bytes]:
        """A read-only copy of member ``name``'s state (``Node.state``)."""
        return self._node.state(name)

    def state_version(self, name: str) -> int:
        """The highest state version we hold from member ``name`` (0: none)."""
        return self._node.state_version(name)

    # ------------------------------------------------------------------ security

    def install_key(self, key: bytes) -> None:
        """``Node.install_key``: accept packets made with ``key`` too."""
        self._node.install_key(key)

    def use_key(self, key: bytes) -> None:
        """``Node.use_key``: send with the installed ``key`` from the next packet on."""
        self._node.use_key(key)

    def remove_key(self, key: bytes) -> None:
        """``Node.remove_key``: refuse packets made with ``key`` from now on."""
        self._node.remove_key(key)

    def reload_keys(self, path: str | os.PathLike[str]) -> tuple[str, ...]:
        """``Node.reload_keys``: replace the keys with those of a key file."""
        return self._node.reload_keys(path)

    def set_security(self, mode: SecurityMode) -> None:
        """``Node.set_security``: switch the security mode from the next packet on."""
        self._node.set_security(mode)

    # ------------------------------------------------------------------ acting

    async def join(self, seeds: Sequence[str], *, timeout: float | None = None) -> int:
        """Join the cluster through ``seeds``; returns how many answered (``Node.join``).

        Args:
            seeds: "host:port", "host" (default port) or a name resolving to several
                addresses.
            timeout: keep retrying until shortly before this many seconds (the Trio API
                takes the caller's ``trio.fail_after``); default: a few attempts.

        Raises:
            JoinError: no seed answered; ``reasons`` says why, per seed.
            NotRunning: the node has left.
        """
        return await self._guest.call(join_within, self._node, seeds, timeout)

    async def update_meta(self, meta: bytes) -> None:
        """Announce new metadata to the cluster.

        Raises:
            MetadataTooLarge: over ``config.meta_max_size``.
            NotRunning: the node has left.
        """
        await self._guest.call(self._node.update_meta, meta)

    async def broadcast(self, payload: bytes) -> None:
        """Gossip ``payload`` to every member's ``messages()`` (once each, best effort).

        Raises:
            MessageTooLarge: it cannot fit in one datagram.
            NotRunning: the node has left.
        """
        await self._guest.call(self._node.broadcast, payload)

    async def set_state(self, key: str, value: bytes) -> None:
        """Write this node's state ``key`` to ``value`` (``Node.set_state``).

        Raises:
            StateLimitExceeded: over a ``Config.state_*`` limit; nothing changed.
            TypeError, ValueError: a key that is not a str of 1 to 256 characters, or a
                value that is not bytes.
            NotRunning: the node has left.
        """
        await self._guest.call(self._node.set_state, key, value)

    async def delete_state(self, key: str) -> None:
        """Delete this node's state ``key`` (``Node.delete_state``).

        Raises:
            StateLimitExceeded: ``Config.state_tombstones_max`` deleted keys are held.
            NotRunning: the node has left.
        """
        await self._guest.call(self._node.delete_state, key)

    async def leave(self) -> None:
        """Leave gracefully now (at most ``config.leave_timeout``); again does nothing."""
        await self._guest.call(self._node.leave)

    # ------------------------------------------------------------------ events

    @overload
    def subscribe(
        self, *, snapshot: bool = False, buffer: int = ..., state: Literal[False] = False
    ) -> AioStream[NodeEvent]: ...
    @overload
    def subscribe(
        self, *, snapshot: bool = False, buffer: int = ..., state: Literal[True]
    ) -> AioStream[FullEvent]: ...
    def subscribe(
        self, *, snapshot: bool = False, buffer: int = _DEFAULT_BUFFER, state: bool = False
    ) -> AioStream[Any]:
        """Stream membership events: ``async with node.subscribe() as events``.

        Args:
            snapshot: first yield a ``MemberJoined`` per current member (not dead or left),
                taken atomically with subscribing.
            buffer: events held for a slow reader; beyond it the reader gets
                ``EventsLost`` and a fresh snapshot.
            state: also yield ``StateChanged`` events, in the same order and ``seq``
                (``Node.subscribe(state=True)``).
        """
        stream = self._node.subscribe(snapshot=snapshot, buffer=buffer, state=state)
        return AioStream(self._guest, stream)

    def messages(self, *, buffer: int = _DEFAULT_BUFFER) -> AioStream[UserDelivery]:
        """Application broadcasts from other members (``UserDelivery``) from now on."""
        return AioStream(self._guest, self._node.messages(buffer=buffer))

    @overload
    def on_event(
        self, callback: EventCallback, *, state: Literal[False] = False
    ) -> Callable[[], None]: ...
    @overload
    def on_event(
        self, callback: FullEventCallback, *, state: Literal[True]
    ) -> Callable[[], None]: ...
    @overload
    def on_event(self, callback: FullEventCallback, *, state: bool) -> Callable[[], None]: ...
    def on_event(self, callback: Any, *, state: bool = False) -> Callable[[], None]:
        """Call ``callback(event)`` (a function or a coroutine function) on the asyncio
        loop for every event from now on, in order; with ``state=True`` the
        ``StateChanged`` events too. Returns a function that unregisters it. A callback
        that raises is logged with its traceback and counted (``callback_errors`` in
        ``metrics()``), never raised."""
        remove = self._callbacks.add(callback, state=state)
        if self._listener is None:
            events = self.subscribe(buffer=64 * _DEFAULT_BUFFER, state=True)
            self._listener = asyncio.get_running_loop().create_task(
                self._run_callbacks(events), name=f"swimgossip callbacks {self.name}"
            )
        return remove

    def listen(self, **callbacks: Unpack[ListenCallbacks]) -> Callable[[], None]:
        """Register callbacks by event kind, as ``Node.listen``: each gets its own event
        class; sync or coroutine functions, run on the asyncio loop; one that raises is
        logged and counted (``callback_errors``), as in ``on_event``.

        The event callbacks run in the one order of the events (``on_restart`` gets the
        ``MemberJoined`` events with ``restarted=True``, after ``on_join``; ``on_state``
        the ``StateChanged`` events). ``on_message`` gets the application broadcasts of
        ``messages()`` (``UserDelivery``) and ``on_direct`` the direct messages sent to
        this node (``DirectDelivery``, ``Node.direct_messages``), each in an asyncio task
        of its own. Returns a function that unregisters them all.
        """
        kinds = KindCallbacks(**callbacks)
        remove_events = self.on_event(kinds.events(), state=kinds.state)
        loop = asyncio.get_running_loop()
        streams: list[AioStream[Any]] = []
        for stream, callback in kinds.open_streams(self._node, buffer=64 * _DEFAULT_BUFFER):
            messages: AioStream[Any] = AioStream(self._guest, stream)
            streams.append(messages)
            task = loop.create_task(
                self._run_message_callback(messages, callback),
                name=f"swimgossip message callback {self.name}",
            )
            self._message_tasks.add(task)
            task.add_done_callback(self._message_tasks.discard)

        def remove() -> None:
            remove_events()
            for messages in streams:
                messages.close()

        return remove

    async def _run_message_callback(
        self, messages: AioStream[Any], callback: Callable[[Any], object]
    ) -> None:
        async with messages:
            async for message in messages:
                await self._callbacks.call(callback, message, "message")

    async def _run_callbacks(self, events: AioStream[FullEvent]) -> None:
        async with events:
            async for event in events:
                for callback in self._callbacks.for_event(event):
                    await self._callbacks.call(callback, event)

    async def _stop_callbacks(self) -> None:
        listener, self._listener = self._listener, None
        tasks = [*([] if listener is None else [listener]), *self._message_tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task


@asynccontextmanager
async def open_node(name: str, **options: Any) -> AsyncIterator[AioNode]:
    """Run a cluster member on the running asyncio loop for the ``async with`` block.

    Takes the keyword arguments of ``swimgossip.open_node`` (``bind``, ``advertise``,
    ``config``, ``keyring``, ``security``, ``label``, ``meta``, ``seed``...) and returns
    once the node is bound. Leaving the block normally leaves the cluster gracefully;
    cancelling the task, or an exception in the block, is a crash (no leave), and the
    exception propagates unchanged.

    Raises:
        OSError: ``bind`` cannot be bound.
        ConfigError, MetadataTooLarge: invalid arguments.
        RuntimeError: this thread already runs Trio (``trio.run`` or another guest).
    """
    guest = await acquire_guest()
    try:
        async with _hosted(guest, name, options) as node:
            yield node
    finally:
        await release_guest(guest)


@asynccontextmanager
async def _hosted(guest: TrioGuest, name: str, options: dict[str, Any]) -> AsyncIterator[AioNode]:
    started: asyncio.Future[tuple[Node, trio.CancelScope]] = guest.loop.create_future()

    def on_started(node: Node, scope: trio.CancelScope) -> None:
        started.set_result((node, scope))

    hosting = guest.submit(host_node, name, dict(options), on_started)
    try:
        waits: list[asyncio.Future[Any]] = [started, hosting.future]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        hosting.cancel()
        await wait_even_if_cancelled(hosting.future)
        raise
    if not started.done():
        hosting.future.result()  # the error that stopped it opening, unchanged
        raise AssertionError("host_node returned without opening")  # pragma: no cover
    trio_node, scope = started.result()
    node = AioNode(trio_node, guest)
    try:
        yield node
    except BaseException:  # cancelled, or the block raised: a crash, then re-raise
        await node._stop_callbacks()
        guest.run_sync_soon(scope.cancel)
        await wait_even_if_cancelled(hosting.future)
        raise
    try:
        await guest.call(trio_node.leave)
    except BaseException:
        guest.run_sync_soon(scope.cancel)
        raise
    finally:
        await node._stop_callbacks()
        await wait_even_if_cancelled(hosting.future)
