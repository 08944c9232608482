"""``open_cluster``: real ``Node`` objects on a ``MemoryNetwork``, for scenario tests.

Each node is the production runtime (``open_node``) over a ``MemoryTransport``, run in its
own task and cancel scope inside the cluster's nursery. ``crash`` cancels that scope (the
node stops without leaving, as a killed process does); ``restart`` starts a new process
under the same name that joins a live member. A recorder task per node keeps every event the
node emits in ``cluster.events[name]`` (and, with times, in ``cluster.history``), starting
with the snapshot ``MemberJoined`` of the node itself.

Use it under ``trio.testing.MockClock(autojump_threshold=0)``: nodes then run minutes of
protocol in a fraction of a second. Everything random derives from ``seed``: the network's
choices, each engine's RNG (``seed/name/epoch``), and Trio's scheduler order (its module
RNG is re-seeded, as pytest-trio and hypothesis do), so a run replays exactly when started
again with the same seed in the same process layout. An exception leaving the ``async with``
gets a note naming the seed.

Security: ``open_cluster(keyring=..., security=..., label=...)`` sets every node's; a
``keyring`` may be one ``Keyring`` shared by all nodes (a change applies to all at once) or
a function ``name -> Keyring`` giving each node its own (for rolling key rotations).
``Cluster.start(name, security=..., label=..., keyring=...)`` overrides them for one node
(and its restarts); ``Node.set_security`` changes a running node's mode.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import attrs
import trio

from ..core.config import Config
from ..core.member import Status
from ..node import EventsLost, Node, NodeEvent, open_node
from ..security import Keyring, SecurityMode
from .network import MemoryNetwork, MemoryTransport
from .simulator import RecordedEvent

__all__ = ["Cluster", "ConvergenceError", "NodeSecurity", "open_cluster"]

#: Events a recorder may hold before the node's hub reports ``EventsLost``.
_RECORDER_BUFFER = 1_000_000


# Deliberately outside the SwimError tree: it is a failed test assertion about the cluster
# under test, not an error of the library, so pytest reports it as a failure (not an
# error) and no ``except SwimError`` in code under test can swallow it.
class ConvergenceError(AssertionError):
    """``wait_converged`` ran out of time; the message lists what each node lacks."""


KeyringSource = Keyring | Callable[[str], Keyring | None] | None
"""One keyring for every node, a function giving each node (by name) its own, or none."""


@attrs.frozen(kw_only=True)
class NodeSecurity:
    """How a cluster's node is started: its keyring, security mode and cluster label
    (``open_node``'s arguments of the same names)."""

    keyring: KeyringSource = None
    security: SecurityMode | None = None
    label: bytes | str = b""

    def keyring_for(self, name: str) -> Keyring | None:
        """The keyring node ``name`` starts with."""
        source = self.keyring
        return source(name) if callable(source) else source


@attrs.define(eq=False)
class _Process:
    """One running incarnation of a named node: its handle and how to stop it."""

    node: Node
    scope: trio.CancelScope
    transport: MemoryTransport
    stopped: trio.Event


@attrs.define(eq=False)
class Cluster:
    """The handle ``open_cluster`` yields. Faults on the wire live in ``network``."""

    seed: int
    config: Config
    network: MemoryNetwork
    #: Every node's keyring, mode and label unless ``start`` overrode them for one node.
    security: NodeSecurity
    _nursery: trio.Nursery
    #: Every event each node emitted (all its incarnations), in order.
    events: dict[str, list[NodeEvent]] = attrs.field(factory=dict)
    #: Every membership event of every node with the virtual time it was recorded
    #: (``EventsLost`` markers appear only in ``events``).
    history: list[RecordedEvent] = attrs.field(factory=list)
    _processes: dict[str, _Process] = attrs.field(factory=dict)
    _order: list[str] = attrs.field(factory=list)
    _epochs: dict[str, int] = attrs.field(factory=dict)
    _per_node: dict[str, NodeSecurity] = attrs.field(factory=dict)
    _changed: trio.Event = attrs.field(factory=trio.Event)

    @property
    def keyring(self) -> Keyring | None:
        """The keyring every node shares, or None (no keys, or one keyring per node)."""
        source = self.security.keyring
        return None if callable(source) else source

    # ------------------------------------------------------------------ reading

    @property
    def nodes(self) -> list[Node]:
        """The running nodes, in the order they were first started."""
        return [self._processes[name].node for name in self._order if name in self._processes]

    @property
    def names(self) -> list[str]:
        """Names of the running nodes."""
        return [node.name for node in self.nodes]

    def node(self, name: str) -> Node:
        """The running node called ``name``.

        Raises:
            KeyError: no node of that name is running (never started, or crashed).
        """
        process = self._processes.get(name)
        if process is None:
            raise KeyError(f"{name} is not running (running: {', '.join(self.names)})")
        return process.node

    def missing(self) -> dict[str, str]:
        """What keeps the cluster from being converged: per running node, a description
        of the running members it does not hold alive and the others it holds alive."""
        running = set(self.names)
        problems: dict[str, str] = {}
        for node in self.nodes:
            status = {m.name: m.status for m in node.members()}
            alive = {name for name, s in status.items() if s is Status.ALIVE}
            lacking = sorted(running - alive)
            extra = sorted(alive - running)
            parts = [f"{n} is {status[n].name if n in status else 'unknown'}" for n in lacking]
            parts += [f"{n} (not running) is ALIVE" for n in extra]
            if parts:
                problems[node.name] = ", ".join(parts)
        return problems

    def converged(self) -> bool:
        """Every running node holds exactly the running nodes alive."""
        return not self.missing()

    async def wait_converged(self, timeout: float | None = None) -> None:
        """Wait until ``converged()``.

        Args:
            timeout: virtual seconds to wait; default ``2 * push_pull_interval +
                reconnect_interval`` of the config plus 30 s, enough for a healed partition.

        Raises:
            ConvergenceError: not converged in time; says which node lacks what.
        """
        cfg = self.config
        if timeout is None:
            timeout = 2 * cfg.push_pull_interval + cfg.reconnect_interval + 30.0
        with trio.move_on_after(timeout):
            while not self.converged():
                self._changed = trio.Event()
                await self._changed.wait()
            return
        detail = "; ".join(f"{name}: {what}" for name, what in sorted(self.missing().items()))
        raise ConvergenceError(f"not converged after {timeout:g} virtual s: {detail}")

    # ------------------------------------------------------------------ faults

    async def pause(self, name: str, duration: float) -> None:
        """``name`` processes nothing for ``duration`` s; returns when it resumes.

        Implemented by holding the node on the network (``MemoryNetwork.hold``): its
        inbound waits and its runtime blocks at its first send (timers that send nothing
        may still run: the runtime has no pause hook).
        """
        self.node(name)
        self.network.hold(name)
        try:
            await trio.sleep(duration)
        finally:
            self.network.release(name)

    async def crash(self, name: str) -> None:
        """Stop ``name`` at once without leaving (its scope is cancelled); returns once it
        is off the network."""
        process = self._processes[name]
        process.scope.cancel()
        await process.stopped.wait()

    async def leave(self, name: str) -> None:
        """Leave gracefully (``Node.leave``); returns once the node has stopped."""
        process = self._processes[name]
        await process.node.leave()
        await process.stopped.wait()

    async def restart(self, name: str, *, join: Sequence[str] | None = None) -> Node:
        """Start a new process called ``name`` (crashing the running one if any) and join
        ``join`` (default: the first other running node). Returns the new node."""
        if name in self._processes:
            await self.crash(name)
        if join is None:
            join = [other for other in self.names if other != name][:1]
        return await self.start(name, join=join)

    async def start(
        self,
        name: str,
        *,
        join: Sequence[str] = (),
        keyring: KeyringSource = None,
        security: SecurityMode | None = None,
        label: bytes | str | None = None,
    ) -> Node:
        """Start a node called ``name`` and join it to the nodes named in ``join``.

        ``keyring``, ``security`` and ``label``, when given, replace the cluster's for this
        node and its later restarts.

        Raises:
            ValueError: ``name`` is already running.
            JoinError: no node in ``join`` answered.
        """
        if name in self._processes:
            raise ValueError(f"{name} is already running")
        settings = self._per_node.get(name, self.security)
        if keyring is not None:
            settings = attrs.evolve(settings, keyring=keyring)
        if security is not None:
            settings = attrs.evolve(settings, security=security)
        if label is not None:
            settings = attrs.evolve(settings, label=label)
        self._per_node[name] = settings
        epoch = self._epochs.get(name, 0) + 1
        self._epochs[name] = epoch
        engine_seed = random.Random(f"{self.seed}/{name}/{epoch}").getrandbits(64)
        process: _Process = await self._nursery.start(self._run, name, engine_seed)
        if name not in self._order:
            self._order.append(name)
        self._changed.set()
        if join:
            with trio.fail_after(max(30.0, 3 * self.config.stream_timeout)):
                await process.node.join(list(join))
        return process.node

    async def _run(
        self, name: str, engine_seed: int, *, task_status: trio.TaskStatus[_Process]
    ) -> None:
        transport = self.network.transport(name)
        settings = self._per_node.get(name, self.security)
        stopped = trio.Event()
        try:
            with trio.CancelScope() as scope:
                async with (
                    trio.open_nursery() as recorders,
                    open_node(
                        name,
                        config=self.config,
                        keyring=settings.keyring_for(name),
                        security=settings.security,
                        label=settings.label,
                        seed=engine_seed,
                        transport=transport,
                    ) as node,
                ):
                    subscription = node.subscribe(snapshot=True, buffer=_RECORDER_BUFFER)
                    recorders.start_soon(self._record, name, subscription)
                    self._processes[name] = _Process(node, scope, transport, stopped)
                    task_status.started(self._processes[name])
                    await node.wait_stopped()
        finally:
            transport.close()
            if name in self._processes and self._processes[name].stopped is stopped:
                del self._processes[name]
            self._changed.set()
            stopped.set()

    async def _record(self, name: str, subscription: AsyncIterator[NodeEvent]) -> None:
        log = self.events.setdefault(name, [])
        async for event in subscription:
            log.append(event)
            if not isinstance(event, EventsLost):
                self.history.append(RecordedEvent(trio.current_time(), name, event))
            self._changed.set()


def _seed_scheduler(seed: int) -> None:
    """Make Trio's task order a function of ``seed``.

    Trio orders each batch of runnable tasks with a module-level ``Random`` and, by
    default, also by the order they woke, which for deadlines falling at the same instant
    depends on object ids. Its opt-in deterministic mode (what pytest-trio switches on when
    hypothesis is installed) sorts each batch by task creation before shuffling with that
    ``Random``; we switch it on too and seed the ``Random``. Both are private to Trio, so
    this degrades to "not replayable" rather than failing if they move.
    """
    run_module = getattr(getattr(trio, "_core", None), "_run", None)
    rng = getattr(run_module, "_r", None)
    if isinstance(rng, random.Random) and hasattr(run_module, "_ALLOW_DETERMINISTIC_SCHEDULING"):
        setattr(run_module, "_ALLOW_DETERMINISTIC_SCHEDULING", True)  # noqa: B010
        rng.seed(f"swimgossip.testing/{seed}")


@asynccontextmanager
async def open_cluster(
    n: int,
    *,
    seed: int,
    config: Config | None = None,
    names: Sequence[str] | None = None,
    keyring: KeyringSource = None,
    security: SecurityMode | None = None,
    label: bytes | str = b"",
    latency: float = 0.0005,
    jitter: float = 0.0005,
    converge: bool = True,
) -> AsyncIterator[Cluster]:
    """Run ``n`` nodes on an in-memory network for the duration of the ``async with``.

    The first node starts alone; each other joins it. Leaving the block crashes every node
    (no leaves: cheap and deterministic).

    Args:
        n: number of nodes, named ``n0``, ``n1``... unless ``names`` is given.
        seed: the one seed of the run (see the module docstring).
        config: every node's config (default ``Config.local()``).
        names: node names (``len(names) == n``).
        keyring: one ``Keyring`` every node shares, or ``name -> Keyring`` for one each.
        security: every node's mode (default: ``REQUIRED`` with a keyring, else ``OFF``).
        label: every node's cluster label.
        latency, jitter: the network's one-way delay, ``latency + U(0, jitter)``.
        converge: wait until every node sees every node alive before yielding.

    Raises:
        ValueError: ``names`` does not hold ``n`` unique names.
        ConvergenceError: ``converge`` and the cluster did not form.
    """
    names = [f"n{i}" for i in range(n)] if names is None else list(names)
    if len(names) != n or len(set(names)) != n:
        raise ValueError(f"names must be {n} unique names, got {names!r}")
    config = Config.local() if config is None else config
    _seed_scheduler(seed)
    network = MemoryNetwork(seed, latency=latency, jitter=jitter)
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            defaults = NodeSecurity(keyring=keyring, security=security, label=label)
            cluster = Cluster(seed, config, network, defaults, nursery)
            for index, name in enumerate(names):
                await cluster.start(name, join=names[:1] if index else ())
            if converge:
                await cluster.wait_converged()
            try:
                yield cluster
            except trio.Cancelled:
                raise
            except BaseException as exc:
                body_error = exc
            nursery.cancel_scope.cancel()
    except trio.Cancelled:
        raise
    except BaseException as exc:
        _note_seed(exc, seed)
        raise
    if body_error is not None:
        _note_seed(body_error, seed)
        raise body_error


def _note_seed(exc: BaseException, seed: int) -> None:
    note = f"swimgossip.testing: cluster seed={seed} (the same seed replays this run)"
    if note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)
