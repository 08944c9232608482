"""``swimgossip demo``: a live 8-node cluster on loopback; a crash, a leave and a rejoin.

How this works. Eight real nodes (``open_node``, UDP and TCP on 127.0.0.1, port 0) run in
one process with ``DEMO_CONFIG``, a ``local`` preset tuned so that a crash is detected in
a few seconds. Each node runs in its own task under its own cancel scope: cancelling the
scope stops the node at once without leaving, which is what a crash looks like to the
others. A watcher per node records every event; the script waits for conditions on the
nodes' member tables (never for fixed delays) and measures how long each took:

1. the cluster forms through one seed;
2. one node crashes: suspected -> failed, with the detection time;
3. one node leaves gracefully;
4. both come back (the crashed one with a new address) and everyone sees 8 alive.

The view is a live ``rich`` table when rich is installed (the ``demo`` extra) and stdout
is a terminal; otherwise (CI, a pipe) the same story is printed as plain lines. Exits 0
when every step happened within its deadline, 1 otherwise.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import trio

from ..core.config import Config
from ..core.events import MemberEvent, MemberFailed, MemberJoined, MemberLeft, MemberSuspected
from ..core.member import Status
from ..node import EventsLost, Node, open_node
from ._format import format_columns

__all__ = ["DEMO_CONFIG", "run_demo"]

#: Detection in a few seconds on one host: probe every 0.5 s, suspicion between 1 and 3 s.
DEMO_CONFIG = Config.local(
    probe_interval=0.5,
    probe_timeout=0.2,
    suspicion_mult=2,
    suspicion_max_timeout_mult=3,
    push_pull_interval=5.0,
    leave_timeout=1.0,
)
NODES = 8
#: Longest wait for any one step (formation, detection, leave, rejoin).
STEP_DEADLINE = 20.0

_EVENT_WORDS = {
    MemberJoined: "joined",
    MemberSuspected: "suspected",
    MemberFailed: "failed",
    MemberLeft: "left",
}


class Display(Protocol):
    """Where the demo's story goes."""

    def phase(self, text: str) -> None: ...
    def note(self, text: str) -> None: ...
    def table(self, rows: list[list[str]], checkpoint: bool = False) -> None: ...
    def close(self) -> None: ...


@attrs.define(eq=False)
class PlainDisplay:
    """Plain lines on stdout: phases, notes, and the table at each checkpoint (phase end)."""

    def phase(self, text: str) -> None:
        print(f"\n== {text}", flush=True)

    def note(self, text: str) -> None:
        print(f"   {text}", flush=True)

    def table(self, rows: list[list[str]], checkpoint: bool = False) -> None:
        if checkpoint:
            print(format_columns(rows), flush=True)

    def close(self) -> None:
        pass


@attrs.define(eq=False)
class RichDisplay:
    """A ``rich.live.Live`` table of members, redrawn on every change; phases and notes
    scroll above it."""

    live: Any
    title: str = ""
    rows: list[list[str]] = attrs.field(factory=list)

    @classmethod
    def open(cls) -> RichDisplay | None:
        """A started display, or None without rich or without a terminal."""
        try:
            from rich.console import Console
            from rich.live import Live
        except ImportError:
            return None
        console = Console()
        if not console.is_terminal:
            return None
        live = Live(console=console, auto_refresh=False, redirect_stderr=False)
        live.start()
        return cls(live)

    def phase(self, text: str) -> None:
        self.title = text
        self.live.console.print(f"[bold]== {text}[/bold]")
        self._draw()

    def note(self, text: str) -> None:
        self.live.console.print(f"   {text}")

    def table(self, rows: list[list[str]], checkpoint: bool = False) -> None:
        self.rows = rows
        self._draw()

    def _draw(self) -> None:
        from rich.table import Table

        table = Table(title=self.title, title_justify="left")
        colours = {"alive": "green", "suspect": "yellow", "dead": "red", "left": "blue"}
        if self.rows:
            for header in self.rows[0]:
                table.add_column(header)
            for row in self.rows[1:]:
                colour = colours.get(row[2], "white")
                table.add_row(*row[:2], f"[{colour}]{row[2]}[/{colour}]", *row[3:])
        self.live.update(table, refresh=True)

    def close(self) -> None:
        self.live.stop()


@attrs.define(eq=False)
class DemoCluster:
    """The demo's nodes, their cancel scopes and everything they reported."""

    nursery: trio.Nursery
    display: Display
    started_at: float
    nodes: dict[str, Node] = attrs.field(factory=dict)
    scopes: dict[str, trio.CancelScope] = attrs.field(factory=dict)
    #: (seconds since start, observer, event) for every event of every node.
    log: list[tuple[float, str, MemberEvent]] = attrs.field(factory=list)
    changed: trio.Event = attrs.field(factory=trio.Event)
    #: Set when the story is over: the last table drawn stays on screen.
    finished: bool = False
    _narrated: set[tuple[str, str, int]] = attrs.field(factory=set)

    def elapsed(self) -> float:
        return trio.current_time() - self.started_at

    async def start(self, name: str, seeds: list[str]) -> Node:
        """Start ``name`` on 127.0.0.1 and join ``seeds``."""
        node: Node = await self.nursery.start(self._run_member, name)
        if seeds:
            with trio.fail_after(STEP_DEADLINE):
                await node.join(seeds)
        return node

    async def _run_member(self, name: str, *, task_status: trio.TaskStatus[Node]) -> None:
        with trio.CancelScope() as scope:
            async with open_node(name, bind="127.0.0.1:0", config=DEMO_CONFIG) as node:
                self.nodes[name], self.scopes[name] = node, scope
                self.nursery.start_soon(self._watch, node)
                task_status.started(node)
                await node.wait_stopped()
        if self.nodes.get(name) is node:
            del self.nodes[name]
        self._touch()

    async def _watch(self, node: Node) -> None:
        async with node.subscribe() as events:
            async for event in events:
                if not isinstance(event, EventsLost):
                    self._record(node.name, event)
                self._touch()

    def _record(self, observer: str, event: MemberEvent) -> None:
        at = self.elapsed()
        self.log.append((at, observer, event))
        word = _EVENT_WORDS.get(type(event))
        member = event.member
        key = (member.name, word or "", member.incarnation)
        if word is None or key in self._narrated or member.name == observer:
            return
        self._narrated.add(key)
        detail = f"first seen by {observer}"
        if isinstance(event, MemberSuspected):
            detail = f"suspected by {event.by}, first seen by {observer}"
        elif isinstance(event, MemberFailed):
            detail += f", {event.confirmations} confirmation(s)"
        self.display.note(f"+{at:6.2f} s  {member.name} {word} ({detail})")

    def _touch(self) -> None:
        self.changed.set()
        self.changed = trio.Event()
        if not self.finished:
            self.display.table(self.rows())

    def crash(self, name: str) -> None:
        """Stop ``name`` at once, without leaving."""
        self.scopes[name].cancel()
        del self.nodes[name]

    def views(self, name: str) -> collections.Counter[Status]:
        """How the running nodes other than ``name`` see it."""
        seen: collections.Counter[Status] = collections.Counter()
        for observer, node in self.nodes.items():
            if observer != name:
                member = node.member(name)
                if member is not None:
                    seen[member.status] += 1
        return seen

    def everyone_sees(self, name: str, status: Status) -> bool:
        others = sum(1 for observer in self.nodes if observer != name)
        return self.views(name)[status] == others

    async def wait_until(self, condition: Callable[[], bool]) -> float | None:
        """Seconds until ``condition()`` held, or None after ``STEP_DEADLINE``."""
        start = trio.current_time()
        with trio.move_on_after(STEP_DEADLINE):
            while not condition():
                await self.changed.wait()
            return trio.current_time() - start
        return None

    def rows(self) -> list[list[str]]:
        """The table: one row per member any running node knows, with how it is seen."""
        names = sorted({m.name for node in self.nodes.values() for m in node.members()})
        rows = [["Name", "Address", "Status", "Incarnation", "Seen as (by the others)"]]
        for name in names:
            held = [m for node in self.nodes.values() if (m := node.member(name)) is not None]
            freshest = max(held, key=lambda m: (m.incarnation, m.status))
            views = self.views(name)
            status = views.most_common(1)[0][0] if views else freshest.status
            seen = ", ".join(f"{count} {s.name.lower()}" for s, count in sorted(views.items()))
            rows.append(
                [name, freshest.address, status.name.lower(), str(freshest.incarnation), seen]
            )
        return rows


def _first(
    log: list[tuple[float, str, MemberEvent]], kind: type[Any], name: str, after: float
) -> float | None:
    """When the first ``kind`` event about ``name`` at or after ``after`` was recorded."""
    times = (at for at, _, e in log if type(e) is kind and e.member.name == name and at >= after)
    return min(times, default=None)


async def _story(cluster: DemoCluster, summary: list[str]) -> bool:
    show = cluster.display
    names = [f"node-{i}" for i in range(NODES)]
    show.phase(f"1. starting {NODES} nodes on 127.0.0.1 (UDP + TCP), joining through {names[0]}")
    seed = await cluster.start(names[0], [])
    for name in names[1:]:
        await cluster.start(name, [seed.address])
    formed = await cluster.wait_until(
        lambda: all(cluster.everyone_sees(n, Status.ALIVE) for n in names)
    )
    if formed is None:
        show.note(f"the cluster did not converge within {STEP_DEADLINE:g} s")
        return False
    summary.append(
        f"formed        all {NODES} nodes saw each other alive after {cluster.elapsed():.2f} s"
    )
    show.table(cluster.rows(), checkpoint=True)

    victim, leaver = names[-1], names[-2]
    crashed_at = cluster.elapsed()
    show.phase(f"2. crashing {victim} at +{crashed_at:.2f} s (its task is cancelled: no goodbye)")
    cluster.crash(victim)
    detected = await cluster.wait_until(lambda: cluster.everyone_sees(victim, Status.DEAD))
    if detected is None:
        show.note(f"{victim} was not declared failed by everyone within {STEP_DEADLINE:g} s")
        return False
    suspected = _first(cluster.log, MemberSuspected, victim, crashed_at)
    failed = _first(cluster.log, MemberFailed, victim, crashed_at)
    first = f"{suspected - crashed_at:.2f} s" if suspected is not None else "-"
    first_failed = failed - crashed_at if failed is not None else detected
    line = (
        f"detection time: {first_failed:.2f} s to the first 'failed', {detected:.2f} s until "
        f"all {len(cluster.nodes)} survivors agreed (first suspicion after {first})"
    )
    show.note(line)
    summary.append(f"crash         {victim}: {line}")
    show.table(cluster.rows(), checkpoint=True)

    show.phase(f"3. {leaver} leaves gracefully")
    leave_started = cluster.elapsed()
    await cluster.nodes[leaver].leave()
    spread = await cluster.wait_until(lambda: cluster.everyone_sees(leaver, Status.LEFT))
    if spread is None:
        show.note(f"not everyone saw {leaver} leave within {STEP_DEADLINE:g} s")
        return False
    took = cluster.elapsed() - leave_started
    summary.append(f"leave         {leaver}: every survivor knew it had left within {took:.2f} s")
    show.table(cluster.rows(), checkpoint=True)

    show.phase(f"4. {leaver} and {victim} rejoin ({victim} on a new port)")
    rejoin_started = cluster.elapsed()
    for name in (leaver, victim):
        await cluster.start(name, [seed.address])
    back = await cluster.wait_until(
        lambda: (
            len(cluster.nodes) == NODES
            and all(cluster.everyone_sees(n, Status.ALIVE) for n in names)
        )
    )
    if back is None:
        show.note(f"the rejoin did not converge within {STEP_DEADLINE:g} s")
        return False
    took = cluster.elapsed() - rejoin_started
    summary.append(
        f"rejoin        all {NODES} alive again everywhere {took:.2f} s after restarting"
    )
    show.table(cluster.rows(), checkpoint=True)
    return True


async def _main() -> int:
    display: Display = RichDisplay.open() or PlainDisplay()
    summary: list[str] = []
    try:
        async with trio.open_nursery() as nursery:
            cluster = DemoCluster(nursery, display, trio.current_time())
            ok = await _story(cluster, summary)
            cluster.finished = True
            for name in list(cluster.nodes):
                cluster.crash(name)  # the demo is over: stop everything at once
    finally:
        display.close()
    print("\n== summary (real UDP on loopback, one process, config: local preset tuned for speed)")
    for line in summary:
        print(f"   {line}")
    print("   ok" if ok else "   FAILED: a step did not happen in time", flush=True)
    return 0 if ok else 1


def run_demo() -> int:
    """Run the demo; returns the exit status (0 when every step happened in time)."""
    try:
        return trio.run(_main)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
