"""``swimgossip.blocking.start_node``: a node for plain threaded code, run by the Trio runtime.

How this works. ``start_node`` starts one background thread that runs ``trio.run`` around
``node.host_node`` (an ordinary ``swimgossip.open_node`` node) and returns once the node
is bound, with a ``BlockingNode``. Every method of the handle runs in that Trio run through
``trio.from_thread`` with the run's ``TrioToken`` and blocks the calling thread until it is
done; any number of threads may call it. Errors are the Trio API's, unchanged.

``events()`` is the node's own bounded ``Subscription`` (``FullSubscription`` with
``state=True``) read one event per ``next()``, so
events keep their order and ``seq`` and a reader that falls behind gets ``EventsLost`` and
a fresh snapshot; the protocol never waits for a reader.

Callbacks (``on_event``, ``listen``) run in one thread of their own per node, started by
the first registration and fed by such a stream (``_CallbackFeed``: the events, and the
message streams of ``listen(on_message=, on_direct=)``): in the order of the events, one
at a time, never in the node's Trio thread, so a slow callback delays only the callbacks
after it. One that raises is logged with its traceback and counted (``callback_errors``).

``close()`` leaves gracefully (at most ``config.leave_timeout``) and joins the thread
(and the callback thread, unless called from a callback);
``abort()`` stops at once without leaving (a crash, as the others see it). Both are
idempotent. As a context manager the node closes on a normal exit and aborts when the
block raises (the exception propagates unchanged), like ``swimgossip.open_node``. A node
still open when the interpreter exits is aborted then.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import contextlib
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, Literal, Protocol, Self, TypeVar, Unpack, overload

import trio

from ..core.config import Config
from ..core.errors import NotRunning
from ..core.member import Member
from ..core.outputs import UserDelivery
from ..node import FullEvent, Node, NodeEvent, host_node, join_within
from ..node._callbacks import Callbacks, KindCallbacks, ListenCallbacks
from ..node._hosted import door_callbacks

__all__ = ["BlockingNode", "BlockingStream", "start_node"]

T = TypeVar("T")

#: A callback of the threaded door: a plain function (what it returns is ignored).
BlockingCallback = Callable[[Any], object]
T_co = TypeVar("T_co", covariant=True)

_DEFAULT_BUFFER = 1024

#: Nodes not yet closed, aborted when the interpreter exits.
_open_nodes: weakref.WeakSet[BlockingNode] = weakref.WeakSet()


class _TrioStream(Protocol[T_co]):
    async def receive(self) -> T_co: ...

    def close(self) -> None: ...


class BlockingStream(Generic[T]):
    """An iterator over a node's events or messages, for plain threads.

    ``next()`` waits at most ``timeout`` seconds (None: no limit) for the next item; the
    iteration ends on that timeout, when the node stops, or on ``close()``. Use it as a
    context manager, or ``close()`` it, to stop holding a buffer in the node.
    """

    def __init__(self, node: BlockingNode, stream: _TrioStream[T], timeout: float | None):
        self._node = node
        self._stream = stream
        self._timeout = timeout
        self._closed = False

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        try:
            found: list[T] = self._node._run(_receive_within, self._stream, self._timeout)
        except NotRunning:
            found = []
        if not found:
            self.close()
            raise StopIteration
        return found[0]

    def close(self) -> None:
        """Stop receiving; what is buffered is discarded. Idempotent."""
        if not self._closed:
            self._closed = True
            self._node._call_soon(self._stream.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _receive_within(stream: _TrioStream[T], timeout: float | None) -> list[T]:
    """``[item]``, or ``[]`` on timeout or once the stream has ended."""
    with trio.move_on_after(float("inf") if timeout is None else timeout):
        try:
            return [await stream.receive()]
        except trio.EndOfChannel:
            return []
    return []


class _CallbackFeed:
    """What the callback thread reads: the node's event subscription and the message
    streams of ``listen(on_message=, on_direct=)``, merged in the node's Trio thread (and
    only touched there).

    Each item is ``(None, event)`` for the event callbacks or ``(callback, message)`` for
    the message callback of its stream; each stream keeps its own order. A ``receive``
    waits on every stream at once and keeps what more than one of them gave for the next
    reads (at most one item per stream), so nothing is lost when it is cancelled. It ends
    once every stream has ended.
    """

    def __init__(self, events: _TrioStream[Any]) -> None:
        self._streams: list[tuple[_TrioStream[Any], BlockingCallback | None]] = [(events, None)]
        self._ready: collections.deque[tuple[BlockingCallback | None, Any]] = collections.deque()
        self._added = trio.Event()

    def add(self, stream: _TrioStream[Any], callback: BlockingCallback) -> None:
        """Read ``stream`` too, for ``callback``."""
        self._streams.append((stream, callback))
        self._added.set()

    async def receive(self) -> tuple[BlockingCallback | None, Any]:
        """The next item; waits for one.

        Raises:
            trio.EndOfChannel: every stream has ended.
        """
        while not self._ready:
            if not self._streams:
                raise trio.EndOfChannel
            self._added = trio.Event()
            async with trio.open_nursery() as nursery:
                done = nursery.cancel_scope
                for entry in list(self._streams):
                    nursery.start_soon(self._take, entry, done)
                nursery.start_soon(self._until_added, done)
        return self._ready.popleft()

    async def _take(
        self, entry: tuple[_TrioStream[Any], BlockingCallback | None], done: trio.CancelScope
    ) -> None:
        stream, callback = entry
        try:
            item = await stream.receive()
        except trio.EndOfChannel:
            if entry in self._streams:  # not already gone with close()
                self._streams.remove(entry)
        else:
            self._ready.append((callback, item))
        done.cancel()

    async def _until_added(self, done: trio.CancelScope) -> None:
        await self._added.wait()
        done.cancel()

    def close(self) -> None:
        """Close every stream. Idempotent."""
        for stream, _ in self._streams:
            stream.close()
        self._streams.clear()
        self._ready.clear()


class BlockingNode:
    """A running cluster member, for threaded code. Get one from ``start_node``.

    The same reads, actions, events and errors as ``swimgossip.Node``; every method blocks
    the calling thread until the node's Trio thread has done it.
    """

    def __init__(
        self,
        node: Node,
        scope: trio.CancelScope,
        token: trio.lowlevel.TrioToken,
        thread: threading.Thread,
    ) -> None:
        self._node = node
        self._scope = scope
        self._token = token
        self._thread = thread
        self._lock = threading.Lock()
        self._closing = False
        self._callbacks: Callbacks = door_callbacks(node, token.run_sync_soon)
        self._listener: threading.Thread | None = None
        self._feed: _CallbackFeed | None = None

    # ------------------------------------------------------------------ plumbing

    def _run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await fn(*args)`` in the node's Trio thread; NotRunning once it has ended."""
        try:
            return trio.from_thread.run(fn, *args, trio_token=self._token)
        except trio.RunFinishedError:
            raise NotRunning("the node has stopped") from None

    def _read(self, fn: Callable[[], T]) -> T:
        """``fn()`` in the Trio thread, or here once that thread has ended."""
        if self._thread.is_alive():
            try:
                return trio.from_thread.run_sync(fn, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._thread.join()
        return fn()

    def _call_soon(self, fn: Callable[[], object]) -> None:
        """``fn()`` in the Trio thread soon, without waiting; nothing once it has ended."""
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(fn)

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
        return self._read(self._node.members)

    def member(self, name: str) -> Member | None:
        """What this node holds about ``name``, or None."""
        return self._read(lambda: self._node.member(name))

    @property
    def health(self) -> int:
        """Lifeguard local health score: 0 is healthy."""
        return self._read(lambda: self._node.health)

    @property
    def running(self) -> bool:
        """False once the node has left or stopped."""
        return self._thread.is_alive() and self._read(lambda: self._node.running)

    def metrics(self) -> dict[str, float]:
        """A snapshot of counters, queue depths, lag and health (``Node.metrics``)."""
        return self._read(self._node.metrics)

    def metrics_text(self) -> str:
        """``metrics()`` in the Prometheus text exposition format (``Node.metrics_text``)."""
        return self._read(self._node.metrics_text)

    def state(self, name: str) -> Mapping[str, bytes]:
        """A read-only copy of member ``name``'s state (``Node.state``)."""
        return self._read(lambda: self._node.state(name))

    def state_version(self, name: str) -> int:
        """The highest state version we hold from member ``name`` (0: none)."""
        return self._read(lambda: self._node.state_version(name))

    # ------------------------------------------------------------------ acting

    def join(self, seeds: Sequence[str], *, timeout: float | None = None) -> int:
        """Join the cluster through ``seeds``; returns how many answered (``Node.join``).

        Args:
            seeds: "host:port", "host" (default port) or a name resolving to several
                addresses.
            timeout: keep retrying until shortly before this many seconds; default: a few
                attempts.

        Raises:
            JoinError: no seed answered; ``reasons`` says why, per seed.
            NotRunning: the node has left.
        """
        return self._run(join_within, self._node, list(seeds), timeout)

    def update_meta(self, meta: bytes) -> None:
        """Announce new metadata to the cluster.

        Raises:
            MetadataTooLarge: over ``config.meta_max_size``.
            NotRunning: the node has left.
        """
        self._run(self._node.update_meta, meta)

    def broadcast(self, payload: bytes) -> None:
        """Gossip ``payload`` to every member's ``messages()`` (once each, best effort).

        Raises:
            MessageTooLarge: it cannot fit in one datagram.
            NotRunning: the node has left.
        """
        self._run(self._node.broadcast, payload)

    def set_state(self, key: str, value: bytes) -> None:
        """Write this node's state ``key`` to ``value`` (``Node.set_state``).

        Raises:
            StateLimitExceeded: over a ``Config.state_*`` limit; nothing changed.
            TypeError, ValueError: a key that is not a str of 1 to 256 characters, or a
                value that is not bytes.
            NotRunning: the node has left.
        """
        self._run(self._node.set_state, key, value)

    def delete_state(self, key: str) -> None:
        """Delete this node's state ``key`` (``Node.delete_state``).

        Raises:
            StateLimitExceeded: ``Config.state_tombstones_max`` deleted keys are held.
            NotRunning: the node has left.
        """
        self._run(self._node.delete_state, key)

    @overload
    def events(
        self,
        *,
        timeout: float | None = None,
        snapshot: bool = False,
        buffer: int = ...,
        state: Literal[False] = False,
    ) -> BlockingStream[NodeEvent]: ...
    @overload
    def events(
        self,
        *,
        timeout: float | None = None,
        snapshot: bool = False,
        buffer: int = ...,
        state: Literal[True],
    ) -> BlockingStream[FullEvent]: ...
    def events(
        self,
        *,
        timeout: float | None = None,
        snapshot: bool = False,
        buffer: int = _DEFAULT_BUFFER,
        state: bool = False,
    ) -> BlockingStream[Any]:
        """Membership events from now on: ``for event in node.events(timeout=1.0)``.

        Args:
            timeout: the iteration ends when no event came for this many seconds
                (None: it ends only when the node stops or the stream is closed).
            snapshot: first yield a ``MemberJoined`` per current member (not dead or left).
            buffer: events held for a slow reader; beyond it the reader gets
                ``EventsLost`` and a fresh snapshot.
            state: also yield ``StateChanged`` events, in the same order and ``seq``
                (``Node.subscribe(state=True)``).

        Raises:
            NotRunning: the node has stopped.
        """
        subscription = self._read(
            lambda: self._node.subscribe(snapshot=snapshot, buffer=buffer, state=state)
        )
        return BlockingStream(self, subscription, timeout)

    def messages(
        self, *, timeout: float | None = None, buffer: int = _DEFAULT_BUFFER
    ) -> BlockingStream[UserDelivery]:
        """Application broadcasts from other members (``UserDelivery``) from now on; the
        iteration ends as for ``events``."""
        stream = self._read(lambda: self._node.messages(buffer=buffer))
        return BlockingStream(self, stream, timeout)

    @overload
    def on_event(
        self, callback: Callable[[NodeEvent], object], *, state: Literal[False] = False
    ) -> Callable[[], None]: ...
    @overload
    def on_event(
        self, callback: Callable[[FullEvent], object], *, state: Literal[True]
    ) -> Callable[[], None]: ...
    @overload
    def on_event(
        self, callback: Callable[[FullEvent], object], *, state: bool
    ) -> Callable[[], None]: ...
    def on_event(self, callback: Any, *, state: bool = False) -> Callable[[], None]:
        """Call ``callback(event)`` (a plain function) for every event from now on, in
        order, in this node's callback thread; with ``state=True`` the ``StateChanged``
        events too. Returns a function that unregisters it. A callback that raises is
        logged with its traceback and counted (``callback_errors`` in ``metrics()``),
        never raised.

        Raises:
            NotRunning: the node has stopped.
        """
        remove = self._callbacks.add(callback, state=state)
        self._callback_feed()
        return remove

    def listen(self, **callbacks: Unpack[ListenCallbacks]) -> Callable[[], None]:
        """Register callbacks by event kind, as ``Node.listen``: each gets its own event
        class; plain functions, run in this node's callback thread; one that raises is
        logged and counted (``callback_errors``), as in ``on_event``.

        The event callbacks run in the one order of the events (``on_restart`` gets the
        ``MemberJoined`` events with ``restarted=True``, after ``on_join``; ``on_state``
        the ``StateChanged`` events). ``on_message`` gets the application broadcasts of
        ``messages()`` (``UserDelivery``) and ``on_direct`` the direct messages sent to
        this node (``DirectDelivery``, ``Node.direct_messages``), in the same thread, each
        stream in its own order. Returns a function that unregisters them all (messages
        that arrive after it has returned do not reach them).

        Raises:
            NotRunning: the node has stopped.
        """
        kinds = KindCallbacks(**callbacks)
        remove_events = self.on_event(kinds.events(), state=kinds.state)
        feed = self._callback_feed()

        def open_streams() -> list[_TrioStream[object]]:
            feeds = kinds.open_streams(self._node, buffer=64 * _DEFAULT_BUFFER)
            for stream, callback in feeds:
                feed.add(stream, callback)
            return [stream for stream, _ in feeds]

        streams = self._read(open_streams)

        def close_streams() -> None:
            for stream in streams:
                stream.close()

        def remove() -> None:  # the message streams are closed when it returns
            remove_events()
            self._read(close_streams)

        return remove

    def _callback_feed(self) -> _CallbackFeed:
        """The callback thread's feed, starting the thread on first use."""
        with self._lock:
            if self._feed is None:
                subscription = self._read(
                    lambda: self._node.subscribe(buffer=64 * _DEFAULT_BUFFER, state=True)
                )
                feed = _CallbackFeed(subscription)
                self._listener = threading.Thread(
                    target=self._run_callbacks,
                    args=(BlockingStream(self, feed, None),),
                    name=f"swimgossip callbacks {self.name}",
                    daemon=True,
                )
                self._listener.start()
                self._feed = feed
            return self._feed

    def _run_callbacks(self, feed: BlockingStream[tuple[BlockingCallback | None, Any]]) -> None:
        with feed:
            for target, item in feed:
                if target is not None:  # a message, for the callback of its stream
                    self._callbacks.call_sync(target, item, "message")
                    continue
                for callback in self._callbacks.for_event(item):
                    self._callbacks.call_sync(callback, item)

    def _join_listener(self) -> None:
        """Wait for the callback thread (its stream has ended), unless this is it."""
        listener = self._listener
        if listener is not None and listener is not threading.current_thread() and not _exiting:
            listener.join()

    # ------------------------------------------------------------------ stopping

    def close(self) -> None:
        """Leave gracefully (at most ``config.leave_timeout``), then wait for the node's
        thread to end. Calling it again, or after ``abort``, does nothing more."""
        if self._begin_stop():
            with contextlib.suppress(NotRunning):
                self._run(self._node.leave)
        self._thread.join()
        self._join_listener()

    def abort(self) -> None:
        """Stop at once without leaving (the others will declare this node failed), then
        wait for the node's thread to end. Idempotent."""
        if self._begin_stop():
            self._call_soon(self._scope.cancel)
        self._thread.join()
        self._join_listener()

    def _begin_stop(self) -> bool:
        with self._lock:
            first, self._closing = not self._closing, True
        _open_nodes.discard(self)
        return first

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def start_node(name: str, **options: Any) -> BlockingNode:
    """Start a cluster member in a background thread; returns once it is bound.

    Takes the keyword arguments of ``swimgossip.open_node`` (``bind``, ``advertise``,
    ``config``, ``keyring``, ``security``, ``label``, ``meta``, ``seed``...). Call
    ``close()`` (graceful leave) or use ``with start_node(...) as node``.

    Raises:
        OSError: ``bind`` cannot be bound.
        ConfigError, MetadataTooLarge: invalid arguments.
    """
    started: concurrent.futures.Future[tuple[Node, trio.CancelScope, trio.lowlevel.TrioToken]]
    started = concurrent.futures.Future()

    def on_started(node: Node, scope: trio.CancelScope) -> None:
        started.set_result((node, scope, trio.lowlevel.current_trio_token()))

    def run() -> None:
        try:
            trio.run(host_node, name, dict(options), on_started)
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
                return
            raise

    thread = threading.Thread(target=run, name=f"swimgossip node {name}", daemon=True)
    thread.start()
    try:
        node, scope, token = started.result()
    except BaseException:
        if started.done():  # it failed to open: its thread has ended or is ending
            thread.join()
        else:  # interrupted while waiting (KeyboardInterrupt): stop it once it is up
            started.add_done_callback(_abort_when_started)
        raise
    handle = BlockingNode(node, scope, token, thread)
    _open_nodes.add(handle)
    return handle


def _abort_when_started(
    started: concurrent.futures.Future[tuple[Node, trio.CancelScope, trio.lowlevel.TrioToken]],
) -> None:
    if started.exception() is None:
        _, scope, token = started.result()
        token.run_sync_soon(scope.cancel)


#: The interpreter is exiting: do not wait for callback threads (a callback may hang).
_exiting = False


@atexit.register
def _abort_open_nodes() -> None:
    """Stop the nodes still open at interpreter exit (no leave: the process is going)."""
    global _exiting
    _exiting = True
    for node in list(_open_nodes):
        node.abort()
