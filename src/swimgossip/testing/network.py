"""An in-memory network for real ``Node`` objects, in Trio (virtual) time.

``MemoryNetwork(seed)`` hands out ``MemoryTransport`` objects (``network.transport("n0")``)
that implement ``swimgossip.net.Transport``; pass one to ``open_node(transport=...)``.
Nothing here reads a wall clock: every delay is a deadline in ``trio.current_time()``, so
under ``trio.testing.MockClock(autojump_threshold=0)`` a minute of protocol runs in
milliseconds, and every random choice (loss, jitter, duplication) comes from one
``random.Random(seed)``.

How a datagram travels: ``send_datagram`` decides at once whether it is lost (partition,
loss of the link or of the whole network) and when it arrives (``latency + U(0, jitter)``;
jitter reorders), then pushes it on the receiver's own heap keyed by arrival time.
``receive_datagram`` waits until the head of that heap is due. There is no delivery task,
so nothing needs a nursery and nothing is in flight when the receiver is gone.

Streams (``exchange``) are TCP-like, as in ``simulator.py``: no data is lost, but each leg
that would have lost a packet costs a 200 ms retransmission. To an address where nothing is
serving the caller gets ``ConnectionRefusedError``; across a partition the call hangs until
the caller's deadline (a TCP connect that never completes); a peer that stops mid-exchange
resets the connection.

A *held* node (``hold`` / ``release``: what ``Cluster.pause`` uses) receives nothing until released
(its datagrams wait in its heap, its incoming streams wait to be accepted) and each of its
sends and outgoing streams blocks until then. The runtime's driver task therefore freezes at
its first send, and on waking finds its timers late (which Lifeguard counts as local lag).
Unlike a real SIGSTOP, timers that send nothing (a suspicion expiring) may still run during
the hold: the runtime offers no hook to stop its timer loop from outside.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter
from collections.abc import Iterable

import attrs
import trio

from ..net import FrameError, StreamHandler, format_address, parse_address

__all__ = ["DEFAULT_PORT", "MemoryNetwork", "MemoryTransport"]

#: Port of an address given as a bare name (``"n0"`` is ``"n0:7946"``).
DEFAULT_PORT = 7946
#: A lost TCP segment costs this much before its retransmission gets through.
RETRANSMIT_DELAY = 0.2
#: Give up adding retransmissions beyond this (a link with loss 1.0 never delivers).
_MAX_STREAM_DELAY = 60.0

Link = tuple[str, str]


def _probability(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be within [0, 1], got {value!r}")
    return float(value)


def _duration(name: str, value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


@attrs.define(eq=False)
class MemoryTransport:
    """One endpoint of a ``MemoryNetwork``. Get it from ``MemoryNetwork.transport``.

    ``close()`` takes it off the network (what a crashed process looks like); the address
    can then be given to a new transport (a restart).
    """

    network: MemoryNetwork
    _address: str
    closed: bool = False
    _inbound: list[tuple[float, int, bytes, str]] = attrs.field(factory=list)
    _wakeup: trio.Event = attrs.field(factory=trio.Event)
    _handler: StreamHandler | None = None
    _stream_timeout: float = 10.0
    _stream_counters: Counter[str] = attrs.field(factory=Counter)
    _gone: trio.Event = attrs.field(factory=trio.Event)

    @property
    def address(self) -> str:
        """This endpoint's ``"name:port"``."""
        return self._address

    @property
    def name(self) -> str:
        """The host part of the address: the node name the fault API uses."""
        return parse_address(self._address)[0]

    @property
    def serving(self) -> bool:
        """True while open and accepting streams."""
        return not self.closed and self._handler is not None

    async def resolve(self, address: str) -> str:
        """``"n0"`` or ``"n0:7946"`` -> ``"n0:7946"`` (no lookup: a down node resolves too).

        Raises:
            ValueError: ``address`` is malformed.
        """
        if ":" not in address:
            address = f"{address}:{DEFAULT_PORT}"
        host, port = parse_address(address)
        return format_address(host, port)

    async def send_datagram(self, address: str, payload: bytes) -> None:
        """Hand ``payload`` to the network; waits only while this node is held.

        Raises:
            OSError: this transport is closed.
        """
        await self.network._wait_released(self.name)
        if self.closed:
            raise OSError("transport closed")
        self.network._route(self, address, payload)

    async def receive_datagram(self) -> tuple[bytes, str]:
        """Wait for the next datagram due (and not held): ``(payload, source)``."""
        while True:
            await self.network._wait_released(self.name)
            now = trio.current_time()
            if self._inbound and self._inbound[0][0] <= now:
                _, _, payload, source = heapq.heappop(self._inbound)
                return payload, source
            due = self._inbound[0][0] if self._inbound else math.inf
            self._wakeup = trio.Event()
            with trio.move_on_at(due):
                await self._wakeup.wait()

    async def exchange(self, address: str, request: bytes) -> bytes:
        """One request frame, one reply frame, TCP-like (see the module docstring).

        Raises:
            ConnectionRefusedError: nothing serves ``address``.
            ConnectionResetError: the peer stopped during the exchange.
            FrameError: the peer closed the stream without replying.
        """
        return await self.network._exchange(self, address, request)

    async def serve_streams(
        self,
        handler: StreamHandler,
        *,
        timeout: float,
        counters: Counter[str] | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept exchanges (each within ``timeout`` s, else counted in ``counters`` as
        ``streams_timed_out``) until cancelled."""
        if self.closed:
            raise OSError("transport closed")
        self._handler, self._stream_timeout = handler, timeout
        if counters is not None:
            self._stream_counters = counters
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            self._handler = None
            self._gone.set()

    def close(self) -> None:
        """Leave the network: drop what waits, refuse new streams, reset open ones."""
        self.closed = True
        self._handler = None
        self._inbound.clear()
        self._gone.set()
        self._wakeup.set()
        self.network._forget(self)

    def _deliver(self, at: float, seq: int, payload: bytes, source: str) -> None:
        heapq.heappush(self._inbound, (at, seq, payload, source))
        self._wakeup.set()


@attrs.define(eq=False)
class MemoryNetwork:
    """A simulated network between ``MemoryTransport`` endpoints, seeded.

    Args:
        seed: the seed of every random choice the network makes.
        latency, jitter: one-way datagram delay is ``latency + U(0, jitter)`` seconds.

    Faults are named by node name (the host part of an address, ``"n0"``) and take effect
    for datagrams sent from then on.
    """

    seed: int = 0
    latency: float = attrs.field(default=0.0005, converter=float)
    jitter: float = attrs.field(default=0.0005, converter=float)
    rng: random.Random = attrs.field(init=False)
    #: ``datagrams_sent``, ``datagrams_lost``, ``datagrams_partitioned``, ``duplicated``...
    counters: Counter[str] = attrs.field(factory=Counter, init=False)
    _endpoints: dict[str, MemoryTransport] = attrs.field(factory=dict, init=False)
    _group: dict[str, int] = attrs.field(factory=dict, init=False)
    _isolations: itertools.count[int] = attrs.field(
        factory=lambda: itertools.count(-1, -1), init=False
    )
    _loss: float = attrs.field(default=0.0, init=False)
    _link_loss: dict[Link, float] = attrs.field(factory=dict, init=False)
    _link_latency: dict[Link, tuple[float, float]] = attrs.field(factory=dict, init=False)
    _duplication: float = attrs.field(default=0.0, init=False)
    _holds: dict[str, trio.Event] = attrs.field(factory=dict, init=False)
    _seq: itertools.count[int] = attrs.field(factory=itertools.count, init=False)

    def __attrs_post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        _duration("latency", self.latency)
        _duration("jitter", self.jitter)

    # ------------------------------------------------------------------ endpoints

    def transport(self, address: str) -> MemoryTransport:
        """A new endpoint at ``address`` (``"n0"`` means ``"n0:7946"``).

        Raises:
            ValueError: an open endpoint already has this address.
        """
        if ":" not in address:
            address = f"{address}:{DEFAULT_PORT}"
        address = format_address(*parse_address(address))
        if address in self._endpoints:
            raise ValueError(f"{address} is already on the network")
        endpoint = MemoryTransport(self, address)
        self._endpoints[address] = endpoint
        return endpoint

    def _forget(self, endpoint: MemoryTransport) -> None:
        if self._endpoints.get(endpoint.address) is endpoint:
            del self._endpoints[endpoint.address]

    # ------------------------------------------------------------------ faults

    def partition(self, *groups: Iterable[str]) -> None:
        """Split the network: nodes in different groups cannot reach each other. Nodes
        not named form one more group together. Replaces any earlier partition."""
        self._group = {}
        for index, group in enumerate(groups, start=1):
            for name in group:
                self._group[name] = index

    def isolate(self, name: str) -> None:
        """Cut ``name`` off from everyone (on top of any partition)."""
        self._group[name] = next(self._isolations)

    def heal(self) -> None:
        """Remove every partition and isolation (loss and latency settings stay)."""
        self._group = {}

    def reachable(self, src: str, dst: str) -> bool:
        """True unless a partition or isolation separates ``src`` from ``dst``."""
        return self._group.get(src, 0) == self._group.get(dst, 0)

    def set_loss(
        self, probability: float, *, src: str | None = None, dst: str | None = None
    ) -> None:
        """Drop datagrams with ``probability``: everywhere, or on the one-way link
        ``src -> dst`` (which then ignores the network-wide value).

        Raises:
            ValueError: only one of src/dst given, or probability outside [0, 1].
        """
        probability = _probability("loss", probability)
        if src is None and dst is None:
            self._loss = probability
        elif src is not None and dst is not None:
            self._link_loss[(src, dst)] = probability
        else:
            raise ValueError("give both src and dst, or neither")

    def clear_loss(self) -> None:
        """Remove network-wide and per-link loss."""
        self._loss = 0.0
        self._link_loss.clear()

    def set_latency(
        self,
        latency: float,
        jitter: float | None = None,
        *,
        src: str | None = None,
        dst: str | None = None,
    ) -> None:
        """One-way delay ``latency + U(0, jitter)``: everywhere, or on link ``src -> dst``.

        ``jitter`` defaults to the current network-wide jitter. Jitter larger than the gap
        between two datagrams reorders them.
        """
        latency = _duration("latency", latency)
        jitter = self.jitter if jitter is None else _duration("jitter", jitter)
        if src is None and dst is None:
            self.latency, self.jitter = latency, jitter
        elif src is not None and dst is not None:
            self._link_latency[(src, dst)] = (latency, jitter)
        else:
            raise ValueError("give both src and dst, or neither")

    def set_duplication(self, probability: float) -> None:
        """Deliver each datagram a second time (independently delayed) with ``probability``."""
        self._duplication = _probability("duplication", probability)

    def hold(self, name: str) -> None:
        """``name`` receives and sends nothing until ``release(name)``: its inbound waits,
        its sends and streams block (see the module docstring for what this models)."""
        self._holds.setdefault(name, trio.Event())

    def release(self, name: str) -> None:
        """End a ``hold``; what waited proceeds, in the order it started waiting."""
        released = self._holds.pop(name, None)
        if released is not None:
            released.set()

    def held(self, name: str) -> bool:
        """True while ``name`` is held."""
        return name in self._holds

    # ------------------------------------------------------------------ delivery

    async def _wait_released(self, name: str) -> None:
        # One Event per hold, set by release(): waiters wake in FIFO order. (Separate
        # deadlines at the same instant would wake in an order Trio does not define.)
        while (released := self._holds.get(name)) is not None:
            await released.wait()

    def _delay(self, src: str, dst: str) -> float:
        latency, jitter = self._link_latency.get((src, dst), (self.latency, self.jitter))
        return latency + self.rng.random() * jitter

    def _lost(self, src: str, dst: str) -> bool:
        loss = self._link_loss.get((src, dst), self._loss)
        return loss > 0 and self.rng.random() < loss

    def _route(self, sender: MemoryTransport, address: str, payload: bytes) -> None:
        self.counters["datagrams_sent"] += 1
        target = self._endpoints.get(address)
        if target is None:
            self.counters["datagrams_unroutable"] += 1
            return
        src, dst = sender.name, target.name
        if not self.reachable(src, dst):
            self.counters["datagrams_partitioned"] += 1
            return
        copies = 2 if self._duplication and self.rng.random() < self._duplication else 1
        self.counters["datagrams_duplicated"] += copies - 1
        now = trio.current_time()
        for _ in range(copies):
            if self._lost(src, dst):
                self.counters["datagrams_lost"] += 1
                continue
            target._deliver(now + self._delay(src, dst), next(self._seq), payload, sender.address)

    def _stream_leg(self, src: str, dst: str) -> float:
        loss = max(self._link_loss.get((src, dst), self._loss), self._loss)
        delay = self._delay(src, dst)
        while loss and delay < _MAX_STREAM_DELAY and self.rng.random() < loss:
            delay += RETRANSMIT_DELAY
        return delay

    async def _exchange(self, client: MemoryTransport, address: str, request: bytes) -> bytes:
        src = client.name
        await self._wait_released(src)
        server = self._endpoints.get(address)
        if server is None or not server.serving:
            await trio.sleep(2 * self.latency)
            raise ConnectionRefusedError(f"nothing serves {address}")
        dst = server.name
        self.counters["streams"] += 1
        if not self.reachable(src, dst):
            await trio.sleep_forever()  # a connect across a partition never completes
        await trio.sleep(self._stream_leg(src, dst) + self._stream_leg(dst, src))
        await self._wait_released(dst)  # a held process accepts nothing
        reply = await self._serve(server, request, client.address)
        await trio.sleep(self._stream_leg(dst, src))
        if not self.reachable(dst, src):
            await trio.sleep_forever()
        await self._wait_released(src)
        if reply is None:
            raise FrameError(f"{address} closed the stream without a reply")
        return reply

    async def _serve(self, server: MemoryTransport, request: bytes, source: str) -> bytes | None:
        handler = server._handler
        if handler is None or server.closed:
            raise ConnectionResetError(f"{server.address} went away")
        reply: bytes | None = None
        gone = False
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal gone
                await server._gone.wait()
                gone = True
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            with trio.move_on_after(server._stream_timeout) as deadline:
                reply = await handler(request, source)
            if deadline.cancelled_caught:
                server._stream_counters["streams_timed_out"] += 1
            nursery.cancel_scope.cancel()
        if gone:
            raise ConnectionResetError(f"{server.address} went away")
        return reply
