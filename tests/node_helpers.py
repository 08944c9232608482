"""Helpers for the runtime tests: fast configs, nodes in their own cancel scopes, waiting.

Every wait here is on an event under the caller's generous ``trio.fail_after``; nothing
sleeps to synchronise. ``poll`` is only for counters that have no event (metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

import swimgossip
from swimgossip import Config, Node, NodeEvent, Subscription

#: Fast but forgiving on two noisy cores: a crash is declared failed within a few seconds.
FAST = Config.local(
    probe_interval=0.4,
    probe_timeout=0.2,
    gossip_interval=0.05,
    suspicion_mult=2,
    suspicion_max_timeout_mult=2,
    push_pull_interval=5.0,
    stream_timeout=1.0,
    leave_timeout=2.0,
)

#: Deadline of any single wait in these tests (they normally finish in well under 1 s).
PATIENCE = 20.0

#: Events ``until`` and ``until_event`` read at most (each read is bounded by the caller's
#: ``trio.fail_after``): far above what any test needs.
MAX_EVENTS = 10_000


async def start_node(
    nursery: trio.Nursery, name: str, **options: Any
) -> tuple[Node, trio.CancelScope]:
    """Run ``name`` on 127.0.0.1:0 in ``nursery``; cancel the returned scope to crash it."""
    options.setdefault("bind", "127.0.0.1:0")
    options.setdefault("config", FAST)

    async def run(*, task_status: trio.TaskStatus[tuple[Node, trio.CancelScope]]) -> None:
        with trio.CancelScope() as scope:
            async with swimgossip.open_node(name, **options) as node:
                task_status.started((node, scope))
                await node.wait_stopped()

    result: tuple[Node, trio.CancelScope] = await nursery.start(run)
    return result


async def until(events: Subscription, predicate: Callable[[], bool]) -> list[NodeEvent]:
    """Read ``events`` until ``predicate()`` holds; return what was read."""
    seen: list[NodeEvent] = []
    for _ in range(MAX_EVENTS):
        if predicate():
            return seen
        seen.append(await events.receive())
    raise AssertionError(f"the predicate did not hold within {MAX_EVENTS} events: {seen[-5:]}")


async def until_event(
    events: Subscription, kind: type[Any], name: str, seen: list[NodeEvent] | None = None
) -> NodeEvent:
    """Read ``events`` until one of type ``kind`` about member ``name`` arrives."""
    for _ in range(MAX_EVENTS):
        event = await events.receive()
        if seen is not None:
            seen.append(event)
        if type(event) is kind and about(event) == name:
            return event
    raise AssertionError(f"no {kind.__name__} about {name} within {MAX_EVENTS} events")


def about(event: NodeEvent) -> str | None:
    """The name of the member an event is about (None for ``EventsLost``)."""
    member = getattr(event, "member", None)
    return None if member is None else str(member.name)


def kinds_about(events: list[NodeEvent], name: str) -> list[type[Any]]:
    """The types of the events about ``name``, in order."""
    return [type(e) for e in events if about(e) == name]


def alive_names(node: Node) -> set[str]:
    """Names ``node`` holds alive."""
    return {m.name for m in node.members() if m.status == swimgossip.Status.ALIVE}


async def poll(predicate: Callable[[], bool]) -> None:
    """Wait for a condition that has no event (a counter), checking every 10 ms."""
    while not predicate():
        await trio.sleep(0.01)
