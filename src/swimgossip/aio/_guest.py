"""One Trio run per asyncio loop, hosted as a guest (``trio.lowlevel.start_guest_run``).

How this works. Trio keeps its run state per thread, so a thread holds at most one Trio
run: every ``swimgossip.aio`` node on a loop shares that loop's ``TrioGuest``. The first
node to open starts it, the last to close ends it and waits for its ``done_callback``, so
no Trio run outlives the nodes on a loop. Trio's task steps run as callbacks of the
asyncio loop (``call_soon`` / ``call_soon_threadsafe``); only its wait for I/O happens in
a helper thread of Trio's thread cache. So Trio code and asyncio code never run at the
same moment, and asyncio code may *read* the node's state directly.

``TrioGuest.call(fn, *args)`` runs ``await fn(*args)`` as a Trio task and awaits its
result from asyncio. Its exception comes out unchanged; cancelling the awaiting asyncio
task cancels the Trio task; a call made after the run ended raises ``NotRunning``. Every
change of Trio state goes through ``TrioToken.run_sync_soon``, which wakes the run up.

Signals: the guest never touches the process's signal wakeup fd
(``host_uses_signal_set_wakeup_fd=True``): asyncio (or a server such as uvicorn) owns
signal handling, and the node needs none.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import attrs
import outcome
import trio

from ..core.errors import NotRunning

__all__ = ["TrioCall", "TrioGuest", "acquire_guest", "release_guest", "wait_even_if_cancelled"]

T = TypeVar("T")

logger = logging.getLogger("swimgossip")

_guests: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TrioGuest] = (
    weakref.WeakKeyDictionary()
)


@attrs.define(eq=False)
class TrioCall(Generic[T]):
    """One ``TrioGuest.submit``: the asyncio future of its outcome, and its Trio task's
    cancel scope (set once the task runs)."""

    guest: TrioGuest
    future: asyncio.Future[T]
    scope: trio.CancelScope | None = None
    cancelled: bool = False

    def cancel(self) -> None:
        """Cancel the Trio task (from asyncio); its future then ends in ``NotRunning`` if
        it was not done or cancelled already."""
        self.guest.run_sync_soon(self._cancel_in_trio)

    def _cancel_in_trio(self) -> None:
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()


@attrs.define(eq=False)
class TrioGuest:
    """The Trio run hosted on one asyncio loop; see the module comment."""

    loop: asyncio.AbstractEventLoop
    ready: asyncio.Future[None]
    done: asyncio.Future[outcome.Outcome[None]]
    token: trio.lowlevel.TrioToken | None = None
    nursery: trio.Nursery | None = None
    users: int = 0
    stopping: bool = False

    @classmethod
    def start(cls, loop: asyncio.AbstractEventLoop) -> TrioGuest:
        """Start a guest run on ``loop`` (the running loop of this thread).

        Raises:
            RuntimeError: this thread already runs Trio (another guest or ``trio.run``).
        """
        guest = cls(loop, loop.create_future(), loop.create_future())
        trio.lowlevel.start_guest_run(
            guest._main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=loop.call_soon,
            done_callback=guest._finished,
            host_uses_signal_set_wakeup_fd=True,
        )
        return guest

    async def _main(self) -> None:
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            self.token = trio.lowlevel.current_trio_token()
            self.ready.set_result(None)
            await trio.sleep_forever()

    def _finished(self, result: outcome.Outcome[None]) -> None:
        if isinstance(result, outcome.Error):
            logger.error("the Trio guest run ended with an error", exc_info=result.error)
        if not self.ready.done():
            self.ready.set_exception(NotRunning("the Trio guest run ended before it started"))
        if not self.done.done():
            self.done.set_result(result)

    def run_sync_soon(self, fn: Callable[..., object], *args: Any) -> bool:
        """Run ``fn(*args)`` in the Trio run soon; False if the run has ended."""
        if self.token is None:
            return False
        try:
            self.token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            return False
        return True

    def submit(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        orphan: Callable[[T], None] | None = None,
    ) -> TrioCall[T]:
        """Start ``await fn(*args)`` in a Trio task; its ``future`` gets the outcome.

        ``orphan(result)`` is called if the Trio task produced a result after the caller
        stopped waiting for it (so a stream can keep the item for the next read).

        Raises:
            NotRunning: the Trio run has ended.
        """
        call = TrioCall(self, self.loop.create_future())
        if not self.run_sync_soon(self._spawn, fn, args, call, orphan):
            raise NotRunning("the node's Trio run has ended")
        return call

    async def call(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        orphan: Callable[[T], None] | None = None,
    ) -> T:
        """``await fn(*args)`` in a Trio task (see ``submit``); cancelling the awaiting
        asyncio task cancels the Trio task.

        Raises:
            what ``fn`` raises; NotRunning: the Trio run has ended.
        """
        call = self.submit(fn, *args, orphan=orphan)
        try:
            return await call.future
        except asyncio.CancelledError:
            call.cancel()
            raise

    def _spawn(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        call: TrioCall[T],
        orphan: Callable[[T], None] | None,
    ) -> None:
        if self.nursery is None or call.future.done():
            call.future.cancel()
            return
        self.nursery.start_soon(self._run, fn, args, call, orphan)

    @staticmethod
    async def _run(
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        call: TrioCall[T],
        orphan: Callable[[T], None] | None,
    ) -> None:
        future = call.future
        with trio.CancelScope() as scope:
            call.scope = scope
            if call.cancelled:
                scope.cancel()
            try:
                result = await fn(*args)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                return
            except BaseException:  # Cancelled (the caller's or the run's end), KI
                if not future.done():
                    future.set_exception(NotRunning("the node's Trio run has ended"))
                raise
            if not future.done():
                future.set_result(result)
            elif orphan is not None:
                orphan(result)

    def stop(self) -> None:
        """End the run (its nursery is cancelled); ``done`` completes when it has."""
        self.stopping = True
        if self.nursery is not None:
            self.run_sync_soon(self.nursery.cancel_scope.cancel)


async def wait_even_if_cancelled(future: asyncio.Future[Any]) -> None:
    """Wait for ``future`` even if this task is cancelled meanwhile (then re-raise the
    cancellation once it is done): teardown that must not be cut short. Its outcome is
    consumed, not raised."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            cancelled = cancelled or not future.done()
        except Exception:
            pass
    if not future.cancelled():
        future.exception()  # retrieved: asyncio does not log it as never retrieved
    if cancelled:
        raise asyncio.CancelledError


async def acquire_guest() -> TrioGuest:
    """The running loop's Trio guest, started if needed; pair with ``release_guest``.

    Raises:
        RuntimeError: not called from a running asyncio loop, or this thread already runs
            Trio in another way.
    """
    loop = asyncio.get_running_loop()
    while True:
        guest = _guests.get(loop)
        if guest is None:
            guest = TrioGuest.start(loop)
            _guests[loop] = guest
        if guest.stopping or guest.done.done():  # closing or ended: wait, start anew
            await wait_even_if_cancelled(guest.done)
            if _guests.get(loop) is guest:
                del _guests[loop]
            continue
        guest.users += 1
        try:
            await asyncio.shield(guest.ready)
        except BaseException:
            await release_guest(guest)
            raise
        return guest


async def release_guest(guest: TrioGuest) -> None:
    """Drop one user of ``guest``; the last one ends the run and waits until it has."""
    guest.users -= 1
    if guest.users > 0:
        return
    guest.stop()
    if not guest.ready.done():
        await wait_even_if_cancelled(guest.ready)
        guest.stop()
    await wait_even_if_cancelled(guest.done)
    if _guests.get(guest.loop) is guest:
        del _guests[guest.loop]
