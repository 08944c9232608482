"""Subscriptions and callbacks: bounded buffers with EventsLost, callbacks that raise."""

from __future__ import annotations

import logging

import pytest
import trio

from node_helpers import PATIENCE, alive_names, start_node, until, until_event
from swimgossip import EventsLost, MemberJoined, MemberUpdated, NodeEvent


async def test_slow_subscriber_gets_events_lost_then_a_snapshot() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a")
            b, _ = await start_node(nursery, "b")
            c, _ = await start_node(nursery, "c")
            async with a.subscribe(buffer=2) as never_read, a.subscribe() as events:
                await b.join([a.address])
                await c.join([a.address])
                await until(events, lambda: alive_names(a) == {"a", "b", "c"})
                for round_ in range(3):
                    await b.update_meta(b"%d" % round_)
                    await until_event(events, MemberUpdated, "b")
                assert never_read.buffered <= 2  # bounded while nobody reads
                lost = await never_read.receive()
                assert isinstance(lost, EventsLost)
                assert lost.count >= 3
                assert list(lost.members) == a.members()
                snapshot = [await never_read.receive() for _ in range(3)]
            assert all(type(e) is MemberJoined for e in snapshot)
            assert {e.member.name for e in snapshot} == {"a", "b", "c"}  # type: ignore[union-attr]
            assert a.running
            nursery.cancel_scope.cancel()


async def test_raising_callback_is_logged_and_protocol_continues(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="swimgossip")
    seen: list[NodeEvent] = []
    joined: list[str] = []
    b_joined = trio.Event()

    def broken(event: NodeEvent) -> None:
        raise RuntimeError("callback bug")

    async def record(event: NodeEvent) -> None:
        seen.append(event)
        await trio.lowlevel.checkpoint()

    def on_join(event: MemberJoined) -> None:
        joined.append(event.member.name)
        if event.member.name == "c":
            b_joined.set()

    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a")
            b, _ = await start_node(nursery, "b")
            c, _ = await start_node(nursery, "c")
            a.on_event(broken)
            a.on_event(record)
            a.listen(on_join=on_join)
            await b.join([a.address])
            await c.join([a.address])
            await b_joined.wait()
            assert {"b", "c"} <= set(joined)
            assert [e for e in seen if type(e) is MemberJoined]
            assert a.metrics()["callback_errors"] >= 2
            assert alive_names(a) == {"a", "b", "c"}
            nursery.cancel_scope.cancel()
    errors = [r for r in caplog.records if "callback" in r.getMessage()]
    assert errors and errors[0].exc_info is not None
