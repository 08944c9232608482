"""swimgossip.aio: real nodes on 127.0.0.1 inside one ``asyncio.run`` each.

Every wait is for an event under a generous ``asyncio.timeout``; nothing sleeps to
synchronise and nothing asserts on how fast it went.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

import pytest
import trio
import trio.testing

import swimgossip
import swimgossip.aio
import swimgossip.blocking
from node_helpers import FAST, PATIENCE, about
from swimgossip import (
    EventsLost,
    JoinError,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberSuspected,
)
from swimgossip.aio import AioNode, AioStream
from swimgossip.aio._guest import acquire_guest, release_guest

OPTIONS: dict[str, Any] = {"bind": "127.0.0.1:0", "config": FAST}


async def until_event(
    events: AioStream[swimgossip.NodeEvent],
    kind: type[Any],
    name: str,
    seen: list[swimgossip.NodeEvent] | None = None,
) -> swimgossip.NodeEvent:
    """Read ``events`` until one of type ``kind`` about ``name`` arrives."""
    async with asyncio.timeout(PATIENCE):
        async for event in events:
            if seen is not None:
                seen.append(event)
            if type(event) is kind and about(event) == name:
                return event
    raise AssertionError(f"the stream ended before {kind.__name__} about {name}")


async def until_alive(events: AioStream[swimgossip.NodeEvent], names: set[str]) -> None:
    """Read ``events`` until every one of ``names`` has joined."""
    missing = set(names)
    async with asyncio.timeout(PATIENCE):
        async for event in events:
            if type(event) is MemberJoined:
                missing.discard(about(event) or "")
            if not missing:
                return
    raise AssertionError(f"the stream ended before {missing} joined")


def no_swimgossip_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("swimgossip")]


def test_three_nodes_a_crash_is_failed_and_a_leave_is_left_at_the_others() -> None:
    async def node_until(
        name: str, seed: str, ready: asyncio.Event, release: asyncio.Event, log: list[Any]
    ) -> None:
        async with (
            swimgossip.aio.open_node(name, **OPTIONS) as node,
            node.subscribe() as events,
        ):
            await node.join([seed])
            log.append(node)
            await until_alive(events, {"b", "c"} - {name})  # each knows the other
            ready.set()
            await release.wait()
            if name == "b":  # b stays until it has seen c fail
                log.append(await until_event(events, MemberFailed, "c"))

    async def main() -> None:
        on_fail: list[tuple[str | None, int]] = []
        async with swimgossip.aio.open_node("a", **OPTIONS) as a:
            a.listen(on_fail=lambda e: on_fail.append((about(e), threading.get_ident())))
            async with a.subscribe() as events:
                b_log: list[Any] = []
                ready_b, ready_c = asyncio.Event(), asyncio.Event()
                release_b, release_c = asyncio.Event(), asyncio.Event()
                b = asyncio.create_task(node_until("b", a.address, ready_b, release_b, b_log))
                c = asyncio.create_task(node_until("c", a.address, ready_c, release_c, []))
                await until_alive(events, {"b", "c"})
                async with asyncio.timeout(PATIENCE):
                    await ready_b.wait()
                    await ready_c.wait()

                c.cancel()  # the task holding c is cancelled: a crash, no leave
                with pytest.raises(asyncio.CancelledError):
                    await c
                seen: list[swimgossip.NodeEvent] = []
                failed = await until_event(events, MemberFailed, "c", seen)
                assert MemberLeft not in [type(e) for e in seen if about(e) == "c"]
                assert isinstance(failed, MemberFailed)

                release_b.set()  # b's block ends normally: a graceful leave
                await asyncio.wait_for(b, PATIENCE)
                await until_event(events, MemberLeft, "b")
                assert type(b_log[-1]) is MemberFailed and about(b_log[-1]) == "c"
                assert not b_log[0].running
                assert a.member("b").status is swimgossip.Status.LEFT
                assert a.member("c").status is swimgossip.Status.DEAD
            # callbacks run on the asyncio loop's thread, in order
            assert ("c", threading.get_ident()) in on_fail
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())
    assert not trio.lowlevel.in_trio_run()  # the loop's Trio guest run has ended
    assert no_swimgossip_threads()


def test_events_come_in_the_trio_order_with_the_trio_seq() -> None:
    async def main() -> None:
        async with (
            swimgossip.aio.open_node("a", **OPTIONS) as a,
            swimgossip.aio.open_node("b", **OPTIONS) as b,
            swimgossip.aio.open_node("c", **OPTIONS) as c,
        ):
            trio_seen: list[swimgossip.NodeEvent] = []
            # The Trio API's own callback on a's Trio node, registered in the Trio run
            # before the aio subscription exists, so both see every event from here on.
            trio_node = a._node  # type: ignore[attr-defined]
            await a._guest.call(_register, trio_node, trio_seen.append)  # type: ignore[attr-defined]
            async with a.subscribe() as events:
                await b.join([a.address])
                await c.join([a.address])
                await b.update_meta(b"role=db")
                aio_seen: list[swimgossip.NodeEvent] = []
                await until_event(events, swimgossip.MemberUpdated, "b", aio_seen)
            # let the Trio callback task catch up with what the aio reader has seen
            await a._guest.call(trio.testing.wait_all_tasks_blocked)  # type: ignore[attr-defined]
        assert len(aio_seen) >= 3
        assert (
            [(type(e), about(e), e.seq) for e in aio_seen]
            == [  # type: ignore[union-attr]
                (type(e), about(e), e.seq)  # type: ignore[union-attr]
                for e in trio_seen[: len(aio_seen)]
            ]
        )
        seqs = [e.seq for e in aio_seen]  # type: ignore[union-attr]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    asyncio.run(main())


async def _register(node: swimgossip.Node, callback: Any) -> None:
    node.on_event(callback)


def test_a_subscriber_that_never_reads_gets_events_lost_and_a_snapshot() -> None:
    async def main() -> None:
        async with (
            swimgossip.aio.open_node("a", **OPTIONS) as a,
            swimgossip.aio.open_node("b", **OPTIONS) as b,
            swimgossip.aio.open_node("c", **OPTIONS) as c,
        ):
            slow = a.subscribe(buffer=1)  # never read while the cluster forms
            async with a.subscribe() as watcher:
                await b.join([a.address])
                await c.join([a.address])
                await until_alive(watcher, {"b", "c"})
            async with slow:
                async with asyncio.timeout(PATIENCE):
                    lost = await anext(slow)
                    assert isinstance(lost, EventsLost)
                    assert lost.count >= 2
                    assert {m.name for m in lost.members} == {"a", "b", "c"}
                    snapshot = [await anext(slow) for _ in range(3)]
            assert {(type(e), about(e)) for e in snapshot} == {
                (MemberJoined, "a"),
                (MemberJoined, "b"),
                (MemberJoined, "c"),
            }

    asyncio.run(main())


class Boom(Exception):
    pass


def test_an_exception_in_the_block_propagates_unchanged_and_the_node_is_gone() -> None:
    raised = Boom("from the block")

    async def main() -> None:
        async with swimgossip.aio.open_node("a", **OPTIONS) as a, a.subscribe() as events:
            held: list[AioNode] = []
            with pytest.raises(Boom) as info:
                async with swimgossip.aio.open_node("b", **OPTIONS) as b:
                    held.append(b)
                    await b.join([a.address])
                    raise raised
            assert info.value is raised
            assert not held[0].running
            seen: list[swimgossip.NodeEvent] = []
            await until_event(events, MemberFailed, "b", seen)  # a crash: no leave
            assert MemberLeft not in [type(e) for e in seen if about(e) == "b"]
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())
    assert not trio.lowlevel.in_trio_run()


def test_a_join_that_fails_raises_join_error_with_the_reasons() -> None:
    async def main() -> None:
        async with swimgossip.aio.open_node("a", **OPTIONS) as a:
            with pytest.raises(JoinError) as info:
                await a.join(["127.0.0.1:1"], timeout=3)
            assert set(info.value.reasons) == {"127.0.0.1:1"}
            assert "refused" in info.value.reasons["127.0.0.1:1"]
            assert a.running  # a failed join does not stop the node

    asyncio.run(main())


def test_a_bind_error_is_raised_from_open_node() -> None:
    async def main() -> None:
        async with swimgossip.aio.open_node("a", **OPTIONS) as a:
            with pytest.raises(OSError):
                async with swimgossip.aio.open_node("b", bind=a.address, config=FAST):
                    raise AssertionError("opened on a taken port")
            assert a.running

    asyncio.run(main())


def test_cancelling_an_awaited_action_cancels_it_in_trio_and_the_node_goes_on() -> None:
    silent = socket.socket()  # accepts the join's stream and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    mute = f"127.0.0.1:{silent.getsockname()[1]}"

    async def main() -> None:
        async with (
            swimgossip.aio.open_node("a", **OPTIONS) as a,
            swimgossip.aio.open_node("b", **OPTIONS) as b,
        ):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await a.join([mute], timeout=PATIENCE)  # Trio would retry for long
            assert await asyncio.wait_for(a.join([b.address]), PATIENCE) == 1
            assert a.member("b") is not None

    try:
        asyncio.run(main())
    finally:
        silent.close()


def test_an_item_that_arrives_as_its_reader_gives_up_is_kept_for_the_next_read() -> None:
    class OneItem:
        """A Trio stream holding one item, handed out when ``ready`` is set."""

        def __init__(self) -> None:
            self.ready = trio.Event()
            self.items = ["the item"]

        async def receive(self) -> str:
            await self.ready.wait()
            return self.items.pop(0)  # a second receive would raise IndexError

        def close(self) -> None:
            pass

    async def main() -> None:
        guest = await acquire_guest()
        try:
            source = OneItem()
            stream: AioStream[str] = AioStream(guest, source)
            reader = asyncio.create_task(stream.receive())
            await guest.call(trio.testing.wait_all_tasks_blocked)  # the Trio read waits
            # The item arrives (its Trio task is rescheduled) before the cancellation of
            # the reader reaches Trio: the Trio task returns it to a future nobody awaits.
            guest.run_sync_soon(source.ready.set)
            reader.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reader
            await guest.call(trio.testing.wait_all_tasks_blocked)
            assert source.items == []
            assert await asyncio.wait_for(stream.receive(), PATIENCE) == "the item"
        finally:
            await release_guest(guest)

    asyncio.run(main())


def test_a_broadcast_reaches_the_messages_of_another_node() -> None:
    async def main() -> None:
        async with (
            swimgossip.aio.open_node("a", **OPTIONS) as a,
            swimgossip.aio.open_node("b", **OPTIONS) as b,
            b.messages() as messages,
        ):
            await b.join([a.address])
            await a.broadcast(b"hello from a")
            delivery = await asyncio.wait_for(anext(messages), PATIENCE)
            assert (delivery.source, delivery.payload) == ("a", b"hello from a")

    asyncio.run(main())


def test_a_raising_callback_is_logged_and_counted_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        async with (
            swimgossip.aio.open_node("a", **OPTIONS) as a,
            swimgossip.aio.open_node("b", **OPTIONS) as b,
        ):
            joined = asyncio.Event()

            def boom(event: swimgossip.NodeEvent) -> None:
                raise RuntimeError("a broken callback")

            a.on_event(boom)  # registered first: it raises before the join reaches on_join
            a.listen(on_join=lambda event: about(event) == "b" and joined.set())
            assert a.metrics()["callback_errors"] == 0
            await b.join([a.address])
            async with asyncio.timeout(PATIENCE):
                await joined.wait()
            assert a.metrics()["callback_errors"] >= 1

    with caplog.at_level(logging.ERROR, logger="swimgossip"):
        asyncio.run(main())
    assert "a broken callback" in caplog.text


def test_state_travels_in_the_ordered_stream_and_to_on_state() -> None:
    async def main() -> None:
        config = swimgossip.Config.local(state_sync_interval=0.3)
        options = {**OPTIONS, "config": config}
        heard: list[swimgossip.StateChanged] = []
        got = asyncio.Event()

        def on_state(event: swimgossip.StateChanged) -> None:
            heard.append(event)
            if event.value is None:
                got.set()

        async with (
            swimgossip.aio.open_node("a", **options) as a,
            swimgossip.aio.open_node("b", **options) as b,
            b.subscribe(state=True) as events,
        ):
            b.listen(on_state=on_state)
            await b.join([a.address])
            await a.set_state("shards", b"1,4,7")
            seen: list[swimgossip.FullEvent] = []
            async with asyncio.timeout(PATIENCE):
                async for event in events:
                    seen.append(event)
                    if isinstance(event, swimgossip.StateChanged):
                        break
                await a.delete_state("shards")
                await got.wait()
            assert b.state("a") == {} and a.state("a") == {}
            assert b.state_version("a") == a.state_version("a") > 0
            assert about(seen[0]) == "a" and type(seen[0]) is MemberJoined  # joined first
            last = seen[-1]
            assert isinstance(last, swimgossip.StateChanged)
            assert (last.member, last.key, last.value) == ("a", "shards", b"1,4,7")
            assert [e.seq for e in seen] == sorted(e.seq for e in seen if e.seq)
            assert [(e.key, e.value) for e in heard] == [("shards", b"1,4,7"), ("shards", None)]
            with pytest.raises(swimgossip.StateLimitExceeded):
                await a.set_state("big", bytes(config.state_value_max + 1))

    asyncio.run(main())


#: Suspicion lasts long enough (4 s or more) for a paused member to come back and refute it.
PATIENT_SUSPICION = FAST.evolve(suspicion_mult=10)


def test_listen_takes_every_kind_of_node_listen_and_runs_them_on_the_loop() -> None:
    """on_message, on_direct, on_suspect, on_recover, on_restart (after on_join) on an aio
    node; the other member is a threaded node, which can be paused (its Trio thread held)
    and restarted under its name at its address."""

    async def main() -> None:
        options = {**OPTIONS, "config": PATIENT_SUSPICION}
        heard: list[tuple[str, object, int]] = []
        got = {kind: asyncio.Event() for kind in ("message", "direct", "suspect", "recover")}
        got["restart"] = asyncio.Event()
        release = threading.Event()

        def note(kind: str) -> Any:
            def callback(item: Any) -> None:
                heard.append((kind, item, threading.get_ident()))
                if kind == "suspect":
                    release.set()  # the paused member may answer again
                if kind in got:
                    got[kind].set()

            return callback

        async def on_direct(message: swimgossip.DirectDelivery) -> None:  # awaited
            note("direct")(message)

        b = await asyncio.to_thread(swimgossip.blocking.start_node, "b", **options)
        try:
            async with swimgossip.aio.open_node("a", **options) as a:
                a.listen(
                    on_join=note("join"),
                    on_message=note("message"),
                    on_direct=on_direct,
                    on_suspect=note("suspect"),
                    on_recover=note("recover"),
                    on_restart=note("restart"),
                )
                await asyncio.to_thread(b.join, [a.address], timeout=PATIENCE)
                async with asyncio.timeout(PATIENCE):
                    await asyncio.to_thread(b.broadcast, b"to all")
                    await got["message"].wait()
                    await asyncio.to_thread(b._run, b._node.send, "a", b"to a")
                    await got["direct"].wait()
                    # b's Trio thread is held until a suspects b: b then refutes it
                    pause = threading.Thread(target=b._read, args=(lambda: release.wait(),))
                    pause.start()
                    await got["suspect"].wait()
                    await got["recover"].wait()
                    await asyncio.to_thread(pause.join)
                    address = b.address
                    await asyncio.to_thread(b.abort)  # a new process under b's name
                    b = await asyncio.to_thread(
                        swimgossip.blocking.start_node, "b", **{**options, "bind": address}
                    )
                    await asyncio.to_thread(b.join, [a.address], timeout=PATIENCE)
                    await got["restart"].wait()
                assert a.metrics()["callback_errors"] == 0
        finally:
            release.set()
            await asyncio.to_thread(b.abort)
        loop_thread = threading.get_ident()
        assert {thread for _, _, thread in heard} == {loop_thread}
        kinds = [kind for kind, _, _ in heard]
        messages = [
            (kind, m.source, m.payload) for kind, m, _ in heard if kind in ("message", "direct")
        ]
        assert messages == [("message", "b", b"to all"), ("direct", "b", b"to a")]
        suspected = next(e for kind, e, _ in heard if kind == "suspect")
        recovered = next(e for kind, e, _ in heard if kind == "recover")
        assert type(suspected) is MemberSuspected and about(suspected) == "b"
        assert type(recovered) is swimgossip.MemberRecovered and about(recovered) == "b"
        restart = kinds.index("restart")
        restarted = heard[restart][1]
        assert type(restarted) is MemberJoined and restarted.restarted and about(restarted) == "b"
        assert heard[restart - 1][:2] == ("join", restarted)  # on_join first, same event

    asyncio.run(main())
