"""A deterministic network of engines in virtual time (no Trio, no sockets).

``Simulation`` runs many ``swimgossip.core.Engine`` instances in one process against a
timer heap. Every packet goes through the real codec and, with a keyring, the real signing;
the network between them is a model with per-link loss, latency and jitter, partitions,
crashes and pauses. Everything random comes from one seed, so a run is replayed exactly
by running it again with the same seed.

Model choices, stated so results can be read correctly:

* datagrams are lost independently with the link's loss probability, delayed by
  ``latency + U(0, jitter)``;
* streams (push-pull, stream pings) are TCP-like: they do not lose data, but each leg that
  would have lost a packet costs a 200 ms retransmission; across a partition a stream
  times out at its deadline; to a crashed node it is refused at once;
* a paused node (a GC pause, SIGSTOP) processes nothing; what arrived meanwhile waits, and
  on waking it first runs the timers that came due, then the queued packets (the worst
  order for it, as on a real event loop that wakes to expired timeouts);
* a stalled node (Lifeguard's "slow member": an overloaded receive path) keeps running its
  timers and sending, but processes nothing it receives until the stall ends, so its own
  probes time out while the acks wait in its queue.
"""

from __future__ import annotations

import gc
import heapq
import random
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ..core.config import Config
from ..core.digest import TableDigest
from ..core.engine import Engine
from ..core.events import MemberEvent, StateChanged
from ..core.inputs import (
    DatagramReceived,
    Input,
    StreamAnswered,
    StreamFailed,
    StreamFailure,
    StreamReceived,
)
from ..core.member import Member, Status
from ..core.outputs import (
    JoinOutcome,
    LeaveComplete,
    Output,
    PublishEvent,
    ScheduleTimer,
    SendDatagram,
    StreamReply,
    StreamRequest,
    UserDelivery,
)
from ..core.timers import TIMER_TYPES
from ..security import AuthenticationError, Keyring, PacketSigner, SecurityMode

__all__ = ["RecordedEvent", "SimNode", "Simulation"]

_RETRANSMIT_DELAY = 0.2


@attrs.frozen(slots=True)
class _StreamArrival:
    """A stream request reaching its destination (sealed), and where its reply goes."""

    src_name: str
    src_epoch: int
    src_token: int
    payload: bytes
    deadline: float


@attrs.frozen(slots=True)
class _Resume:
    """A pause or stall of the node may be over: run its backlog."""


@attrs.frozen(slots=True)
class _Call:
    """Run ``function(*args)`` (scripted scenarios)."""

    function: Any
    args: tuple[Any, ...]


#: What waits in the simulator's heap for a node: the engine's own typed inputs (payloads
#: still sealed), or the simulator's own markers.
_Held = Input | _StreamArrival
_Item = _Held | _Resume | _Call


@attrs.frozen
class RecordedEvent:
    """One membership event, when it happened and which node emitted it."""

    time: float
    observer: str
    event: MemberEvent


@attrs.define(eq=False)
class SimNode:
    """A simulated process: its engine and what the simulator knows of it."""

    name: str
    address: str
    engine: Engine
    epoch: int
    crashed: bool = False
    paused_until: float = 0.0
    stalled_until: float = 0.0
    backlog: list[_Held] = attrs.Factory(list)
    sent_datagrams: int = 0
    sent_bytes: int = 0


class Simulation:
    """Engines on a simulated network, in virtual time.

    Args:
        config: protocol configuration of every node.
        seed: the one seed of the run (network and every engine's RNG derive from it).
        latency, jitter: one-way datagram delay is ``latency + U(0, jitter)`` seconds.
        keyring: sign or seal every packet and stream with this keyring; nodes added after
            ``keyring`` is replaced use the new one.
        security_mode: the policy of every node's ``PacketSigner`` when ``keyring`` is set
            (default ``REQUIRED``: signed); ``SEALED`` runs the same scenario sealed.
    """

    def __init__(
        self,
        *,
        config: Config,
        seed: int = 0,
        latency: float = 0.0005,
        jitter: float = 0.0005,
        keyring: Keyring | None = None,
        security_mode: SecurityMode = SecurityMode.REQUIRED,
    ) -> None:
        self.config = config
        self.seed = seed
        self.rng = random.Random(seed)
        self.latency = latency
        self.jitter = jitter
        self.keyring = keyring
        self.security_mode = security_mode
        self.now = 0.0
        self.nodes: dict[str, SimNode] = {}
        self.events: list[RecordedEvent] = []
        #: State events: (time, observer, StateChanged), in the order emitted.
        self.state_events: list[tuple[float, str, StateChanged]] = []
        self.deliveries: list[tuple[float, str, UserDelivery]] = []
        self.join_outcomes: list[tuple[float, str, JoinOutcome]] = []
        self.left: set[str] = set()
        self.counters: Counter[str] = Counter()
        self._heap: list[tuple[float, int, str, int, _Item]] = []
        self._seq = 0
        self._by_address: dict[str, str] = {}
        self._loss = 0.0
        self._link_loss: dict[tuple[str, str], float] = {}
        self._group: dict[str, int] = {}
        self._stream_token = 0
        self._stream_routes: dict[tuple[str, int], tuple[str, int, int, float]] = {}
        self._signers: dict[str, PacketSigner] = {}
        self._epochs = 0
        #: How each output is applied, by its type.
        self._on_output: dict[type, Callable[[SimNode, Any], None]] = {
            SendDatagram: self._send_datagram,
            ScheduleTimer: self._schedule,
            PublishEvent: self._publish,
            StreamRequest: self._open_stream,
            StreamReply: self._reply_stream,
            UserDelivery: self._deliver_user,
            JoinOutcome: self._report_join,
            LeaveComplete: self._leave_complete,
        }

    # ------------------------------------------------------------------ building

    def add_node(
        self, name: str, *, meta: bytes = b"", join: Iterable[str] = (), at: float | None = None
    ) -> SimNode:
        """Start a node now (or replace a crashed one of that name) and join ``join`` names."""
        old = self.nodes.get(name)
        if old is not None and not old.crashed:
            raise ValueError(f"{name} is running")
        address = f"{name}:7946"
        self._epochs += 1
        if self.keyring is not None:
            self._signers[name] = PacketSigner(self.keyring, self.security_mode)
        engine = Engine(
            name=name,
            address=address,
            config=self.config,
            rng=random.Random(f"{self.seed}/{name}/{self._epochs}"),
            meta=meta,
            envelope_overhead=self._signers[name].overhead if self.keyring else 0,
            # Virtual wall clock in microseconds: a restart starts above the old versions.
            state_epoch=int(self.now * 1_000_000),
        )
        node = SimNode(name=name, address=address, engine=engine, epoch=self._epochs)
        self.nodes[name] = node
        self._by_address[address] = name
        self.left.discard(name)
        self._apply(node, engine.start(self.now))
        seeds = [self.nodes[seed].address for seed in join]
        if seeds:
            self._apply(node, engine.join(seeds, self.now))
        return node

    def add_cluster(self, count: int, *, prefix: str = "n", prejoined: bool = False) -> None:
        """Start ``count`` nodes named ``{prefix}0``... .

        By default each joins ``{prefix}0`` through the protocol, 10 ms apart. With
        ``prejoined`` every node starts from the converged view instead (no join storm:
        for clusters of thousands).
        """
        names = [f"{prefix}{i}" for i in range(count)]
        if not prejoined:
            for i, name in enumerate(names):
                self.add_node(name, join=[names[0]] if i else [])
                self.run_for(0.01)
            return
        collecting = gc.isenabled()
        gc.disable()  # building millions of objects: collect once at the end instead
        try:
            for name in names:
                self.add_node(name)
            view = {
                name: Member(
                    name=name,
                    address=self.nodes[name].address,
                    status=Status.ALIVE,
                    incarnation=0,
                    meta=b"",
                )
                for name in names
            }
            order = list(names)
            self.rng.shuffle(order)
            digest = TableDigest.of(view.values())  # hashed once, copied by every table
            for name in names:
                offset = self.rng.randrange(count)
                self.nodes[name].engine.install_view(view, order[offset:] + order[:offset], digest)
            # A large converged view is tens of millions of long-lived objects. Left to the
            # cyclic garbage collector, every full collection rescans them all (at 10,000 nodes
            # that made building one push-pull take seconds); frozen, they are skipped. They
            # are still freed by reference counting when the simulation goes.
            gc.collect()
            gc.freeze()
        finally:
            if collecting:
                gc.enable()

    # ------------------------------------------------------------------ faults

    def crash(self, name: str) -> None:
        """Stop ``name`` at once, without leaving (its timers and packets vanish)."""
        self.nodes[name].crashed = True

    def leave(self, name: str) -> None:
        """Leave gracefully; the node stops when its leave has gone out."""
        node = self.nodes[name]
        self._apply(node, node.engine.leave(self.now))

    def pause(self, name: str, duration: float) -> None:
        """``name`` processes nothing for ``duration`` seconds, then catches up."""
        node = self.nodes[name]
        node.paused_until = max(node.paused_until, self.now + duration)
        self._push(node.paused_until, name, node.epoch, _Resume())

    def stall(self, name: str, duration: float) -> None:
        """``name`` runs its timers but handles nothing it receives for ``duration`` s."""
        node = self.nodes[name]
        node.stalled_until = max(node.stalled_until, self.now + duration)
        self._push(node.stalled_until, name, node.epoch, _Resume())

    def partition(self, *groups: Iterable[str]) -> None:
        """Split the network: nodes in different groups cannot reach each other.
        Nodes not named form one more group together."""
        self._group = {}
        for index, group in enumerate(groups, start=1):
            for name in group:
                self._group[name] = index

    def heal(self) -> None:
        """Remove every partition."""
        self._group = {}

    def set_loss(self, probability: float, src: str | None = None, dst: str | None = None) -> None:
        """Drop datagrams with ``probability``: everywhere, or on the one-way link src->dst."""
        if src is None and dst is None:
            self._loss = probability
        elif src is not None and dst is not None:
            self._link_loss[(src, dst)] = probability
        else:
            raise ValueError("give both src and dst, or neither")

    def update_meta(self, name: str, meta: bytes) -> None:
        """Change ``name``'s metadata now."""
        node = self.nodes[name]
        self._apply(node, node.engine.update_meta(meta, self.now))

    def set_state(self, name: str, key: str, value: bytes) -> None:
        """Write ``name``'s state ``key`` now."""
        node = self.nodes[name]
        self._apply(node, node.engine.set_state(key, value, self.now))

    def delete_state(self, name: str, key: str) -> None:
        """Delete ``name``'s state ``key`` now."""
        node = self.nodes[name]
        self._apply(node, node.engine.delete_state(key, self.now))

    def call_at(self, at: float, function: Any, *args: Any) -> None:
        """Run ``function(*args)`` at virtual time ``at`` (for scripted scenarios)."""
        self._push(at, "", 0, _Call(function, args))

    # ------------------------------------------------------------------ running

    def run_until(self, until: float) -> None:
        """Process everything due up to virtual time ``until``."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            at, _, name, epoch, item = heapq.heappop(heap)
            self.now = at
            if isinstance(item, _Call):
                item.function(*item.args)
                continue
            node = self.nodes.get(name)
            if node is None or node.crashed or node.epoch != epoch:
                continue
            if isinstance(item, _Resume):
                self._resume(node)
            elif node.paused_until > at or (
                type(item) not in TIMER_TYPES and node.stalled_until > at
            ):
                node.backlog.append(item)
            else:
                self._deliver(node, item)
        self.now = max(self.now, until)

    def run_for(self, duration: float) -> None:
        """Process the next ``duration`` virtual seconds."""
        self.run_until(self.now + duration)

    def _resume(self, node: SimNode) -> None:
        if node.paused_until > self.now:
            return
        backlog, node.backlog = node.backlog, []
        backlog.sort(key=lambda item: type(item) not in TIMER_TYPES)  # timers first, in order
        for item in backlog:
            held = node.paused_until > self.now or (
                type(item) not in TIMER_TYPES and node.stalled_until > self.now
            )
            if node.crashed or held:
                node.backlog.append(item)
                continue
            self._deliver(node, item)

    def _deliver(self, node: SimNode, item: _Held) -> None:
        if type(item) is _StreamArrival:
            self._serve_stream(node, item)
            return
        if self.keyring is not None and type(item) in (DatagramReceived, StreamAnswered):
            opened = self._open(node, item.payload)  # type: ignore[union-attr]
            if opened is None:
                return
            item = attrs.evolve(item, payload=opened)  # type: ignore[arg-type]
        self._apply(node, node.engine.handle(item, self.now))  # type: ignore[arg-type]

    def _serve_stream(self, node: SimNode, arrival: _StreamArrival) -> None:
        payload = self._open(node, arrival.payload)
        if payload is None:
            return
        self._stream_token += 1
        token = self._stream_token
        route = (arrival.src_name, arrival.src_epoch, arrival.src_token, arrival.deadline)
        self._stream_routes[(node.name, token)] = route
        source = self.nodes[arrival.src_name].address
        item = StreamReceived(payload=payload, source=source, token=token)
        self._apply(node, node.engine.handle(item, self.now))
        self._stream_routes.pop((node.name, token), None)

    def _open(self, node: SimNode, payload: bytes) -> bytes | None:
        if self.keyring is None:
            return payload
        try:
            return self._signers[node.name].unwrap(payload)
        except AuthenticationError:
            self.counters["rejected_unauthenticated"] += 1
            return None

    def _seal(self, node: SimNode, payload: bytes) -> bytes:
        return payload if self.keyring is None else self._signers[node.name].wrap(payload)

    # ------------------------------------------------------------------ outputs

    def _push(self, at: float, name: str, epoch: int, item: _Item) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, name, epoch, item))

    def _reachable(self, src: str, dst: str) -> bool:
        return self._group.get(src, 0) == self._group.get(dst, 0)

    def _apply(self, node: SimNode, outputs: list[Output]) -> None:
        handlers = self._on_output
        for output in outputs:
            handlers[type(output)](node, output)

    def _schedule(self, node: SimNode, output: ScheduleTimer) -> None:
        self._push(output.at, node.name, node.epoch, output.timer)

    def _publish(self, node: SimNode, output: PublishEvent) -> None:
        event = output.event
        if isinstance(event, StateChanged):
            self.state_events.append((self.now, node.name, event))
        else:
            self.events.append(RecordedEvent(self.now, node.name, event))

    def _deliver_user(self, node: SimNode, output: UserDelivery) -> None:
        self.deliveries.append((self.now, node.name, output))

    def _report_join(self, node: SimNode, output: JoinOutcome) -> None:
        self.join_outcomes.append((self.now, node.name, output))

    def _leave_complete(self, node: SimNode, output: LeaveComplete) -> None:
        self.left.add(node.name)
        node.crashed = True

    def _send_datagram(self, node: SimNode, output: SendDatagram) -> None:
        payload = self._seal(node, output.payload)
        node.sent_datagrams += 1
        node.sent_bytes += len(payload)
        dst = self._by_address.get(output.address)
        if dst is None or not self._reachable(node.name, dst):
            return
        loss = self._link_loss.get((node.name, dst), self._loss)
        if loss and self.rng.random() < loss:
            self.counters["datagrams_lost"] += 1
            return
        target = self.nodes[dst]
        delay = self.latency + self.rng.random() * self.jitter
        item = DatagramReceived(payload=payload, source=node.address)
        self._push(self.now + delay, dst, target.epoch, item)

    def _stream_delay(self, src: str, dst: str, legs: int) -> float:
        loss = max(self._link_loss.get((src, dst), self._loss), self._loss)
        delay = 0.0
        for _ in range(legs):
            delay += self.latency + self.rng.random() * self.jitter
            while loss and self.rng.random() < loss and delay < 60:
                delay += _RETRANSMIT_DELAY
        return delay

    def _open_stream(self, node: SimNode, request: StreamRequest) -> None:
        self.counters[f"streams_{request.purpose.value}"] += 1
        dst = self._by_address.get(request.address)
        fail_at = request.deadline
        failure = StreamFailure.TIMED_OUT
        if dst is None or self.nodes[dst].crashed:
            fail_at, failure = self.now + 2 * self.latency, StreamFailure.REFUSED
        elif self._reachable(node.name, dst):
            at = self.now + self._stream_delay(node.name, dst, 2)
            if at < request.deadline:
                payload = self._seal(node, request.payload)
                arrival = _StreamArrival(
                    node.name, node.epoch, request.token, payload, request.deadline
                )
                self._push(at, dst, self.nodes[dst].epoch, arrival)
        failed = StreamFailed(token=request.token, failure=failure)
        self._push(fail_at, node.name, node.epoch, failed)

    def _reply_stream(self, node: SimNode, reply: StreamReply) -> None:
        route = self._stream_routes.get((node.name, reply.token))
        if route is None:
            return
        src, epoch, token, deadline = route
        if not self._reachable(node.name, src):
            return
        at = self.now + self._stream_delay(node.name, src, 1)
        if at < deadline:
            answered = StreamAnswered(token=token, payload=self._seal(node, reply.payload))
            self._push(at, src, epoch, answered)

    # ------------------------------------------------------------------ observing

    def running(self) -> list[str]:
        """Names of the nodes neither crashed nor left."""
        return [name for name, node in self.nodes.items() if not node.crashed]

    def converged(self) -> bool:
        """Every running node holds every running node alive (and no one else alive)."""
        running = set(self.running())
        for name in running:
            engine = self.nodes[name].engine
            alive = {m.name for m in engine.iter_members() if m.status == Status.ALIVE}
            if alive != running:
                return False
        return True

    def run_until_converged(self, timeout: float, step: float = 0.5) -> bool:
        """Run until :meth:`converged` or ``timeout`` virtual seconds pass."""
        deadline = self.now + timeout
        while self.now < deadline:
            if self.converged():
                return True
            self.run_for(step)
        return self.converged()
