"""The public runtime: ``open_node`` / ``serve_node`` and the ``Node`` handle.

``open_node`` binds the transport (``udp.py``), builds the engine, starts the runtime
(``runtime.py``: the one task that owns the engine) in a nursery, and yields a ``Node``.
Leaving the ``async with`` normally leaves the cluster gracefully (at most
``config.leave_timeout``); if the enclosing scope is cancelled, or the body raises, the node
stops at once without leaving, which is exactly what a crash looks like to the others. The
body's own exception comes out as it was raised, never wrapped in an ExceptionGroup.

``Node`` methods that change state (join, update_meta, broadcast, leave) hand work to the
runtime and wait for it; reads (members, member, health, metrics) look at the engine
directly, which is safe because nothing in between can be half-done on one Trio thread.
Callbacks (``on_event`` / ``listen``) run in one task per node, in order, fed by an
ordinary subscription; a callback that raises is logged with its traceback and skipped.
"""

from __future__ import annotations

import inspect
import logging
import math
import random
import socket as stdlib_socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import trio

from .core.config import Config
from .core.engine import Engine
from .core.errors import LocalError
from .core.events import (
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
)
from .core.member import Member, Status
from .events import EventHub, MessageStream, NodeEvent, Subscription
from .runtime import Runtime
from .security import Keyring, PacketSigner, SecurityMode
from .transport import Transport, format_address, parse_address
from .udp import UdpTransport, open_udp_transport

__all__ = ["JoinError", "Node", "open_node", "serve_node"]

logger = logging.getLogger("swimgossip")

EventCallback = Callable[[NodeEvent], Awaitable[object] | object]
#: A ``listen`` callback gets one kind of event (``MemberJoined``...), sync or async.
KindCallback = Callable[[Any], Awaitable[object] | object]

_DEFAULT_BUFFER = 1024
#: Counters present in ``metrics()`` even before they first count something.
_ALWAYS_REPORTED = (
    "packets_in",
    "packets_out",
    "bytes_in",
    "bytes_out",
    "auth_failures",
    "send_errors",
    "receive_errors",
    "packets_dropped_busy",
    "callback_errors",
    "probes",
    "probes_failed",
    "suspicions",
    "refutations",
    "failures_declared",
    "packets_malformed",
    "streams_malformed",
    "timers_late",
    "lag_penalties",
    "indirect_probes",
    "nacks_sent",
    "nacks_received",
)
_JOIN_ATTEMPTS_WITHOUT_DEADLINE = 3


class JoinError(LocalError):
    """No seed could be joined. ``reasons`` maps each seed to why it failed."""

    def __init__(self, reasons: dict[str, str]) -> None:
        detail = "; ".join(f"{seed}: {why}" for seed, why in reasons.items()) or "no seeds"
        super().__init__(f"could not join any seed ({detail})")
        self.reasons = reasons


@attrs.define(eq=False)
class Node:
    """A running cluster member. Get one from ``open_node`` or ``serve_node``."""

    name: str
    address: str
    config: Config
    keyring: Keyring | None
    _engine: Engine
    _runtime: Runtime
    _transport: Transport
    _nursery: trio.Nursery
    _callbacks: list[EventCallback] = attrs.field(factory=list)
    _callback_task: bool = False
    _left: bool = False

    # ------------------------------------------------------------------ reading

    def members(self) -> list[Member]:
        """Every member this node knows (itself included, also suspect/dead/left), by name."""
        return self._engine.members()

    def member(self, name: str) -> Member | None:
        """What this node holds about ``name``, or None."""
        return self._engine.member(name)

    @property
    def health(self) -> int:
        """Lifeguard local health score: 0 is healthy; timeouts scale by ``health + 1``."""
        return self._engine.awareness.score

    @property
    def running(self) -> bool:
        """False once the node has left or stopped."""
        return not self._runtime.stopped

    def metrics(self) -> dict[str, float]:
        """A snapshot of counters (engine and runtime), queue depths, lag and health."""
        engine, runtime = self._engine, self._runtime
        values: dict[str, float] = dict(engine.counters)
        values.update(runtime.counters)
        statuses = [m.status for m in engine.members()]
        security = runtime.signer.stats()
        values.update(
            health=engine.awareness.score,
            members_alive=statuses.count(Status.ALIVE),
            members_suspect=statuses.count(Status.SUSPECT),
            members_dead=statuses.count(Status.DEAD),
            members_left=statuses.count(Status.LEFT),
            queue_depth=len(engine.broadcasts),
            user_queue_depth=len(engine.user_broadcasts),
            events_published=runtime.hub.published,
            events_pending=runtime.hub.pending,
            messages_dropped=runtime.hub.messages_dropped,
            event_loop_lag=runtime.lag_last,
            event_loop_lag_max=runtime.lag_max,
            timers_pending=runtime.timers_pending(),
            inbox_depth=runtime.inbox_depth(),
        )
        values.update(
            (f"auth_{field.name}", getattr(security, field.name))
            for field in attrs.fields(type(security))
        )
        for always in _ALWAYS_REPORTED:
            values.setdefault(always, 0)
        return values

    # ------------------------------------------------------------------ subscribing

    def subscribe(self, *, snapshot: bool = False, buffer: int = _DEFAULT_BUFFER) -> Subscription:
        """Stream membership events; use as ``async with node.subscribe() as events``.

        Args:
            snapshot: first yield a ``MemberJoined`` per current member (not dead or left),
                taken atomically with subscribing.
            buffer: events held for a slow reader; beyond it the reader gets
                ``EventsLost`` and a fresh snapshot.
        """
        return self._runtime.hub.subscribe(snapshot=snapshot, capacity=buffer)

    def messages(self, *, buffer: int = _DEFAULT_BUFFER) -> MessageStream:
        """Application broadcasts from other members (``UserDelivery``: source, payload)
        received from now on. Iterate it with ``async for``; ``close()`` when done."""
        return self._runtime.hub.open_messages(capacity=buffer)

    def on_event(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` (sync or async) for every event from now on, in order.

        Returns a function that unregisters it. Exceptions are logged, never raised.
        """
        self._callbacks.append(callback)
        if not self._callback_task:
            self._callback_task = True
            subscription = self.subscribe(buffer=64 * _DEFAULT_BUFFER)
            self._nursery.start_soon(self._run_callbacks, subscription)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return remove

    def listen(
        self,
        *,
        on_join: KindCallback | None = None,
        on_update: KindCallback | None = None,
        on_fail: KindCallback | None = None,
        on_leave: KindCallback | None = None,
    ) -> Callable[[], None]:
        """Register callbacks by event kind (``MemberJoined``, ``MemberUpdated``,
        ``MemberFailed``, ``MemberLeft``). Returns a function that unregisters them."""
        table: dict[type[Any], KindCallback | None] = {
            MemberJoined: on_join,
            MemberUpdated: on_update,
            MemberFailed: on_fail,
            MemberLeft: on_leave,
        }

        def dispatch(event: NodeEvent) -> Awaitable[object] | object:
            callback = table.get(type(event))
            return None if callback is None else callback(event)

        return self.on_event(dispatch)

    async def _run_callbacks(self, subscription: Subscription) -> None:
        async for event in subscription:
            for callback in list(self._callbacks):
                try:
                    result = callback(event)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    self._runtime.counters["callback_errors"] += 1
                    logger.exception("%s: event callback %r raised", self.name, callback)

    # ------------------------------------------------------------------ acting

    async def join(self, seeds: Sequence[str]) -> int:
        """Join the cluster through ``seeds`` ("host:port"); returns how many answered.

        Retries with backoff until a seed answers; with a caller deadline
        (``trio.fail_after``) until shortly before it, otherwise a few times.

        Raises:
            JoinError: no seed answered; ``reasons`` says why, per seed.
            NotRunning: the node has left.
        """
        reasons: dict[str, str] = {}
        deadline = trio.current_effective_deadline()
        stop_at = deadline - min(1.0, 0.1 * (deadline - trio.current_time()))
        delay, attempt = 0.1, 0
        while True:
            attempt += 1
            addresses = await self._resolve(seeds, reasons)
            if addresses:
                joined = await self._join_once(addresses, reasons, stop_at)
                if joined:
                    return joined
            if not addresses and not reasons:
                return 0  # only ourselves as seeds
            out_of_time = trio.current_time() + delay >= stop_at
            if out_of_time or (math.isinf(stop_at) and attempt >= _JOIN_ATTEMPTS_WITHOUT_DEADLINE):
                raise JoinError(reasons)
            await trio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _resolve(self, seeds: Sequence[str], reasons: dict[str, str]) -> dict[str, str]:
        addresses: dict[str, str] = {}
        for seed in seeds:
            try:
                address = await self._transport.resolve(seed)
            except (ValueError, OSError) as exc:
                reasons[seed] = f"cannot resolve: {exc}"
                continue
            if address not in (self.address, self._transport.address):
                addresses[seed] = address
        return addresses

    async def _join_once(
        self, addresses: dict[str, str], reasons: dict[str, str], stop_at: float
    ) -> int:
        targets = list(addresses.values())
        outcomes = self._runtime.wait_join(targets)
        engine = self._engine
        await self._runtime.call(lambda now: engine.join(targets, now))
        by_address = {address: seed for seed, address in addresses.items()}
        for seed in addresses:
            reasons[seed] = "timed out"
        joined = 0
        with trio.move_on_at(stop_at):
            for _ in targets:
                try:
                    outcome = await outcomes.receive()
                except trio.EndOfChannel:
                    break
                seed = by_address.get(outcome.address, outcome.address)
                if outcome.ok:
                    joined += 1
                    reasons.pop(seed, None)
                else:
                    reasons[seed] = outcome.reason
        return joined

    async def update_meta(self, meta: bytes) -> None:
        """Announce new metadata to the cluster.

        Raises:
            MetadataTooLarge: over ``config.meta_max_size``.
            NotRunning: the node has left.
        """
        engine = self._engine
        await self._runtime.call(lambda now: engine.update_meta(meta, now))

    async def broadcast(self, payload: bytes) -> None:
        """Gossip ``payload`` to every member's ``messages()`` (once each, best effort).

        Raises:
            MessageTooLarge: it cannot fit in one datagram.
            NotRunning: the node has left.
        """
        engine = self._engine
        await self._runtime.call(lambda now: engine.broadcast(payload, now))

    async def leave(self) -> None:
        """Leave gracefully: gossip our departure, wait for it to go out (at most
        ``config.leave_timeout``), then stop. Calling it again does nothing."""
        if self._left:
            return
        self._left = True
        engine, runtime = self._engine, self._runtime
        with trio.move_on_after(self.config.leave_timeout) as scope:
            if not runtime.stopped:
                await runtime.call(lambda now: engine.leave(now))
                await runtime.leave_complete.wait()
        if scope.cancelled_caught:
            logger.warning(
                "%s: leave not confirmed within %ss", self.name, self.config.leave_timeout
            )
        runtime.stop()

    async def wait_stopped(self) -> None:
        """Wait until the node has left or stopped."""
        await self._runtime.finished.wait()


def _advertised(transport: UdpTransport, advertise: str | None) -> str:
    if advertise is not None:
        host, port = parse_address(advertise)
        return format_address(host, port)
    if transport.host not in ("0.0.0.0", "::"):
        return transport.address
    probe = stdlib_socket.socket(transport.family, stdlib_socket.SOCK_DGRAM)
    try:  # connecting a UDP socket sends nothing; it picks the outgoing interface
        target = "2001:db8::1" if transport.family == stdlib_socket.AF_INET6 else "192.0.2.1"
        probe.connect((target, 9))
        host = str(probe.getsockname()[0])
    except OSError:
        host = "::1" if transport.family == stdlib_socket.AF_INET6 else "127.0.0.1"
    finally:
        probe.close()
    return format_address(host, transport.port)


@asynccontextmanager
async def open_node(
    name: str,
    *,
    bind: str = "0.0.0.0:7946",
    advertise: str | None = None,
    config: Config | None = None,
    keyring: Keyring | None = None,
    security: SecurityMode | None = None,
    meta: bytes = b"",
    seed: int | None = None,
    transport: Transport | None = None,
) -> AsyncIterator[Node]:
    """Run a cluster member for the duration of the ``async with`` block.

    Args:
        name: this member's unique name.
        bind: local "host:port" / "[v6]:port" for UDP and TCP; port 0 picks one.
        advertise: the address others should use, if not the bound one.
        config: protocol tunables (default ``Config.lan()``).
        keyring: sign and verify every packet with these keys.
        security: signing policy; default ``REQUIRED`` with a keyring, else ``OFF``.
        meta: initial application metadata.
        seed: seed for the engine's RNG (default: random).
        transport: an open transport to use instead of binding UDP/TCP sockets at
            ``bind`` (``swimgossip.testing`` passes its in-memory network here); the
            caller keeps ownership of it.

    Raises:
        OSError: ``bind`` cannot be bound.
        ConfigError, MetadataTooLarge: invalid arguments.
    """
    config = Config.lan() if config is None else config
    if security is None:
        security = SecurityMode.OFF if keyring is None else SecurityMode.REQUIRED
    signer = PacketSigner(keyring, security)
    async with AsyncExitStack() as stack:
        if transport is None:
            udp = await stack.enter_async_context(open_udp_transport(bind))
            transport, address = udp, _advertised(udp, advertise)
        else:
            address = advertise if advertise is not None else transport.address
        engine = Engine(
            name=name,
            address=address,
            config=config,
            rng=random.Random(seed),
            meta=meta,
            envelope_overhead=signer.overhead,
        )
        runtime = Runtime(engine, transport, signer, EventHub(engine.members))
        body_error: BaseException | None = None
        async with trio.open_nursery() as nursery:
            await nursery.start(runtime.run)
            node = Node(name, address, config, keyring, engine, runtime, transport, nursery)
            try:
                yield node
            except trio.Cancelled:
                raise  # a crash: stop at once, no leave
            except BaseException as exc:
                body_error = exc
            else:
                await node.leave()
            runtime.stop()
            nursery.cancel_scope.cancel()
        if body_error is not None:
            raise body_error


async def serve_node(
    name: str,
    *,
    task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Run a node until it leaves; for ``node = await nursery.start(serve_node, name, ...)``.

    Takes the same keyword arguments as ``open_node``. Cancelling the task is a crash (no
    leave); call ``await node.leave()`` to leave gracefully, which also ends this task.
    """
    async with open_node(name, **options) as node:
        task_status.started(node)
        await node.wait_stopped()
