"""A service as a user writes it: tests/test_typing.py runs ``mypy --strict`` on this file
and expects no error. It is only type-checked, never run (the same calls run in the
runtime tests and the README)."""

from __future__ import annotations

import functools

import trio

import swimgossip
import swimgossip.aio
import swimgossip.blocking
from swimgossip import (
    DirectDelivery,
    EventsLost,
    FullSubscription,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberRecovered,
    MemberSuspected,
    MemberUpdated,
    Node,
    NodeEvent,
    StateChanged,
    UserDelivery,
)


async def readme_loop(node: Node) -> list[str]:
    """The README's loop: narrowing on ``EventsLost`` leaves events that have a member."""
    names: list[str] = []
    async with node.subscribe(snapshot=True) as events:
        async for event in events:
            if isinstance(event, EventsLost):
                names.extend(m.name for m in event.members)
                continue
            names.append(event.member.name)
            if isinstance(event, MemberJoined) and event.snapshot:
                continue  # already there when we subscribed, not a new arrival
            if isinstance(event, MemberFailed):
                print(event.by, event.confirmations)
    return names


def describe(event: NodeEvent) -> str:
    match event:
        case EventsLost(count=count):
            return f"lost {count}"
        case MemberSuspected(member=member, by=by):
            return f"{member.name} suspected by {by}"
        case _:
            return event.member.name


def on_join(event: MemberJoined) -> None:
    print(event.member.name, event.snapshot)


async def on_fail(event: MemberFailed) -> None:
    await trio.lowlevel.checkpoint()
    print(event.by, event.confirmations)


def on_suspect(event: MemberSuspected) -> None:
    print(event.by)


def on_recover(event: MemberRecovered) -> None:
    print(event.member.incarnation)


def on_update(event: MemberUpdated) -> None:
    print(event.previous.meta, event.member.meta)


def on_leave(event: MemberLeft) -> None:
    print(event.member.name)


def on_lost(event: EventsLost) -> None:
    print(event.count)


def on_message(message: UserDelivery) -> None:
    print(message.source, message.payload)


async def on_direct(message: DirectDelivery) -> None:
    print(message.source, message.payload, message.reliable)


def on_restart(event: MemberJoined) -> None:
    print(event.member.name, event.member.boot, event.restarted)


def on_state(event: StateChanged) -> None:
    print(event.member, event.key, event.value, event.version, event.snapshot)


async def state_loop(node: Node) -> dict[str, dict[str, bytes]]:
    """Membership and state in one stream: narrowing on ``EventsLost`` then on
    ``StateChanged`` (whose ``member`` is a name) leaves events that have a ``Member``."""
    view: dict[str, dict[str, bytes]] = {}
    events: FullSubscription
    async with node.subscribe(snapshot=True, state=True) as events:
        async for event in events:
            if isinstance(event, EventsLost):
                view.clear()
            elif isinstance(event, StateChanged):
                keys = view.setdefault(event.member, {})
                if event.value is None:
                    keys.pop(event.key, None)
                else:
                    keys[event.key] = event.value
            else:
                view.setdefault(event.member.name, {})
    await node.set_state("ready", b"1")
    await node.delete_state("ready")
    print(dict(node.state(node.name)), node.state_version(node.name))
    node.on_event(lambda e: print(e.seq if not isinstance(e, EventsLost) else 0), state=True)
    return view


async def service() -> None:
    config = swimgossip.Config.local()
    async with trio.open_nursery() as nursery:
        node: Node = await nursery.start(
            functools.partial(
                swimgossip.serve_node, "a", bind="127.0.0.1:0", config=config, handle_signals=True
            )
        )
        remove = node.listen(
            on_join=on_join,
            on_fail=on_fail,
            on_suspect=on_suspect,
            on_recover=on_recover,
            on_update=on_update,
            on_leave=on_leave,
            on_lost=on_lost,
            on_message=on_message,
            on_direct=on_direct,
            on_restart=on_restart,
            on_state=on_state,
        )
        await node.send("b", b"payload", reliable=True)
        for member in node.alive(tags={"role": "db"}):
            print(member.tags.get("zone"))
        remove()
        await node.leave()
    async with swimgossip.open_node("b", bind="127.0.0.1:0", handle_signals=True) as b:
        await readme_loop(b)
        print(b.stop_signal)


async def doors() -> None:
    """The doors' ``listen`` takes the same typed callbacks as ``Node.listen``."""
    async with swimgossip.aio.open_node("c", bind="127.0.0.1:0") as c:
        c.listen(on_suspect=on_suspect, on_recover=on_recover, on_direct=on_direct)
    with swimgossip.blocking.start_node("d", bind="127.0.0.1:0") as d:
        d.listen(on_lost=on_lost, on_message=on_message, on_restart=on_restart)
