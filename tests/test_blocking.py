"""swimgossip.blocking: real nodes on 127.0.0.1 driven from plain threads, and a cluster
mixing an asyncio node, a blocking node and a Trio node.

Every wait is for an event with a generous timeout; nothing sleeps to synchronise and
nothing asserts on how fast it went.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import trio
import trio.testing

import swimgossip
import swimgossip.aio
import swimgossip.blocking
from node_helpers import FAST, PATIENCE, about
from swimgossip import EventsLost, JoinError, MemberFailed, MemberJoined, MemberLeft, NodeEvent
from swimgossip.blocking import BlockingNode, BlockingStream
from swimgossip.node._callbacks import KindCallbacks

OPTIONS: dict[str, Any] = {"bind": "127.0.0.1:0", "config": FAST}


def node_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("swimgossip node")]


def until_event(
    events: BlockingStream[NodeEvent], kind: type[Any], name: str, seen: list[NodeEvent]
) -> NodeEvent:
    """Read ``events`` (each read bounded by its timeout) until ``kind`` about ``name``."""
    for event in events:
        seen.append(event)
        if type(event) is kind and about(event) == name:
            return event
    raise AssertionError(f"no {kind.__name__} about {name} before the stream ended")


def until_alive(events: BlockingStream[NodeEvent], names: set[str]) -> None:
    missing = set(names)
    for event in events:
        if type(event) is MemberJoined:
            missing.discard(about(event) or "")
        if not missing:
            return
    raise AssertionError(f"{missing} did not join before the stream ended")


@pytest.fixture
def nodes() -> Iterator[list[BlockingNode]]:
    """Nodes a test starts; aborted at the end whatever happened."""
    started: list[BlockingNode] = []
    yield started
    for node in started:
        node.abort()


def test_three_threaded_nodes_a_crash_is_failed_and_a_leave_is_left(
    nodes: list[BlockingNode],
) -> None:
    a = swimgossip.blocking.start_node("a", **OPTIONS)
    nodes.append(a)
    events_a = a.events(timeout=PATIENCE)
    b = swimgossip.blocking.start_node("b", **OPTIONS)
    c = swimgossip.blocking.start_node("c", **OPTIONS)
    nodes += [b, c]
    events_b = b.events(timeout=PATIENCE)
    # join from two other threads at once
    answered: list[int] = []
    joins = [
        threading.Thread(target=lambda n=n: answered.append(n.join([a.address]))) for n in (b, c)
    ]
    for thread in joins:
        thread.start()
    for thread in joins:
        thread.join(PATIENCE)
    assert answered == [1, 1]
    until_alive(events_a, {"b", "c"})
    until_alive(events_b, {"c"})  # b must know c to see it fail

    c.abort()  # a crash: no leave
    assert "swimgossip node c" not in node_threads()
    for events in (events_a, events_b):
        seen: list[NodeEvent] = []
        until_event(events, MemberFailed, "c", seen)
        assert MemberLeft not in [type(e) for e in seen if about(e) == "c"]

    b.close()  # a graceful leave
    b.close()  # idempotent
    until_event(events_a, MemberLeft, "b", [])
    assert not b.running
    assert "swimgossip node b" not in node_threads()
    with pytest.raises(swimgossip.NotRunning):
        b.broadcast(b"after close")
    assert b.member("b") is not None  # reads still answer from the last state
    events_a.close()
    a.close()
    assert node_threads() == []


def test_events_are_in_order_with_increasing_seq_and_a_slow_reader_gets_events_lost(
    nodes: list[BlockingNode],
) -> None:
    a = swimgossip.blocking.start_node("a", **OPTIONS)
    nodes.append(a)
    trio_seen: list[NodeEvent] = []
    # The Trio API's own callback on a's Trio node, registered before the streams below.
    a._run(_register, a._node, trio_seen.append)  # type: ignore[attr-defined]
    slow = a.events(timeout=PATIENCE, buffer=1)  # not read while the cluster forms
    watcher = a.events(timeout=PATIENCE)
    others = [swimgossip.blocking.start_node(name, **OPTIONS) for name in ("b", "c")]
    nodes += others
    for node in others:
        node.join([a.address])
    seen: list[NodeEvent] = []
    others[0].update_meta(b"role=db")
    until_event(watcher, swimgossip.MemberUpdated, "b", seen)
    seqs = [e.seq for e in seen]  # type: ignore[union-attr]
    assert len(seqs) >= 3 and seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    a._run(trio.testing.wait_all_tasks_blocked)  # type: ignore[attr-defined]
    assert (
        [(type(e), about(e), e.seq) for e in seen]
        == [  # type: ignore[union-attr]
            (type(e), about(e), e.seq)  # type: ignore[union-attr]
            for e in trio_seen[: len(seen)]
        ]
    )

    lost = next(slow)
    assert isinstance(lost, EventsLost) and lost.count >= 2
    snapshot = [next(slow) for _ in range(3)]
    assert {(type(e), about(e)) for e in snapshot} == {
        (MemberJoined, "a"),
        (MemberJoined, "b"),
        (MemberJoined, "c"),
    }
    assert next(a.events(timeout=0.05), None) is None  # ends on its timeout
    slow.close()
    assert next(slow, None) is None  # and on close


async def _register(node: swimgossip.Node, callback: Any) -> None:
    node.on_event(callback)


def callback_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("swimgossip callbacks")]


def next_about(heard: queue.Queue[tuple[str, str | None, str]], kind: str, name: str) -> None:
    """Take what the callbacks heard until ``(kind, name)`` (each get bounded)."""
    for _ in range(100):
        if heard.get(timeout=PATIENCE)[:2] == (kind, name):
            return
    raise AssertionError(f"no {kind} about {name}")


def test_listen_runs_callbacks_in_their_thread_in_order_and_counts_a_raising_one(
    nodes: list[BlockingNode], caplog: pytest.LogCaptureFixture
) -> None:
    a = swimgossip.blocking.start_node("a", **OPTIONS)
    nodes.append(a)
    heard: queue.Queue[tuple[str, str | None, str]] = queue.Queue()
    all_heard: list[tuple[str, str | None, str]] = []

    def note(kind: str) -> Any:
        def callback(event: NodeEvent) -> None:
            item = (kind, about(event), threading.current_thread().name)
            all_heard.append(item)
            heard.put(item)

        return callback

    def boom(event: NodeEvent) -> None:
        raise RuntimeError("a broken callback")

    a.on_event(boom)  # registered first: it raises before each event reaches note
    remove = a.listen(on_join=note("join"), on_fail=note("fail"), on_leave=note("leave"))
    for name in ("b", "c"):
        nodes.append(swimgossip.blocking.start_node(name, **OPTIONS))
    b, c = nodes[1:]
    with caplog.at_level(logging.ERROR, logger="swimgossip"):
        b.join([a.address], timeout=PATIENCE)
        next_about(heard, "join", "b")
        # boom raised for that join first; its count went to a's Trio thread before this
        # read, which is queued behind it
        assert a.metrics()["callback_errors"] >= 1
        c.join([a.address], timeout=PATIENCE)
        next_about(heard, "join", "c")
        c.abort()  # a crash: failed at a
        next_about(heard, "fail", "c")
        assert "a broken callback" in caplog.text
    assert {thread for _, _, thread in all_heard} == {"swimgossip callbacks a"}
    assert [k for k, name, _ in all_heard if name == "c"] == ["join", "fail"]

    remove()  # unregistered: b's leave reaches the callback registered after, not these
    left: queue.Queue[str | None] = queue.Queue()
    a.listen(on_leave=lambda event: left.put(about(event)))
    b.close()
    assert left.get(timeout=PATIENCE) == "b"
    assert ("leave", "b") not in [(k, name) for k, name, _ in all_heard]
    a.close()
    assert callback_threads() == []  # close() waited for the callback thread


def test_a_join_timeout_raises_join_error_with_the_reasons_per_seed(
    nodes: list[BlockingNode],
) -> None:
    silent = socket.socket()  # accepts streams and never answers: "timed out"
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        a = swimgossip.blocking.start_node("a", **OPTIONS)
        nodes.append(a)
        mute = f"127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(JoinError) as info:
            a.join(["127.0.0.1:1", mute], timeout=3)
    finally:
        silent.close()
    reasons = info.value.reasons
    assert set(reasons) == {"127.0.0.1:1", mute}
    assert "refused" in reasons["127.0.0.1:1"]
    assert "timed out" in reasons[mute]
    assert a.running


def test_an_exception_in_the_with_block_propagates_and_aborts(nodes: list[BlockingNode]) -> None:
    a = swimgossip.blocking.start_node("a", **OPTIONS)
    nodes.append(a)
    events = a.events(timeout=PATIENCE)
    raised = RuntimeError("from the block")
    with pytest.raises(RuntimeError) as info, swimgossip.blocking.start_node("b", **OPTIONS) as b:
        b.join([a.address])
        raise raised
    assert info.value is raised
    assert not b.running and "swimgossip node b" not in node_threads()
    seen: list[NodeEvent] = []
    until_event(events, MemberFailed, "b", seen)
    assert MemberLeft not in [type(e) for e in seen if about(e) == "b"]


def test_a_broadcast_reaches_the_messages_of_another_node(nodes: list[BlockingNode]) -> None:
    a = swimgossip.blocking.start_node("a", **OPTIONS)
    b = swimgossip.blocking.start_node("b", **OPTIONS)
    nodes += [a, b]
    with b.messages(timeout=PATIENCE) as messages:
        b.join([a.address])
        a.broadcast(b"hello from a")
        delivery = next(messages)
    assert (delivery.source, delivery.payload) == ("a", b"hello from a")


def test_a_bind_error_is_raised_by_start_node(nodes: list[BlockingNode]) -> None:
    a = swimgossip.blocking.start_node("a", **OPTIONS)
    nodes.append(a)
    with pytest.raises(OSError):
        swimgossip.blocking.start_node("b", bind=a.address, config=FAST)
    assert "swimgossip node b" not in node_threads()


def test_an_asyncio_a_blocking_and_a_trio_node_form_one_cluster(
    nodes: list[BlockingNode],
) -> None:
    hub = swimgossip.blocking.start_node("blocking", **OPTIONS)
    nodes.append(hub)
    hub_events = hub.events(timeout=PATIENCE)
    names = {"blocking", "asyncio", "trio"}
    trio_view: list[set[str]] = []
    trio_joined, trio_saw_asyncio = threading.Event(), threading.Event()

    async def trio_side() -> None:
        with trio.fail_after(PATIENCE):
            async with swimgossip.open_node("trio", **OPTIONS) as node:
                async with node.subscribe(snapshot=True) as events:
                    await node.join([hub.address])
                    trio_joined.set()
                    async for event in events:
                        if type(event) is MemberJoined and about(event) == "asyncio":
                            trio_saw_asyncio.set()
                        if type(event) is MemberLeft and about(event) == "asyncio":
                            break
                trio_view.append({m.name for m in node.members()})

    async def asyncio_side() -> set[str]:
        async with swimgossip.aio.open_node("asyncio", **OPTIONS) as node:
            async with asyncio.timeout(PATIENCE), node.subscribe(snapshot=True) as events:
                await node.join([hub.address])
                alive: set[str] = set()
                async for event in events:
                    if type(event) is MemberJoined:
                        alive.add(about(event) or "")
                    if alive == names:
                        break
                # leave only once the Trio node knows us, so that it sees us leave
                assert await asyncio.to_thread(trio_saw_asyncio.wait, PATIENCE)
            return {m.name for m in node.members() if m.status is swimgossip.Status.ALIVE}

    trio_thread = threading.Thread(target=trio.run, args=(trio_side,))
    trio_thread.start()
    try:
        assert trio_joined.wait(PATIENCE)
        assert asyncio.run(asyncio_side()) == names
    finally:
        trio_thread.join(PATIENCE)
    assert not trio_thread.is_alive()
    assert trio_view == [names]
    seen: list[NodeEvent] = []
    until_event(hub_events, MemberLeft, "asyncio", seen)
    joined = {about(e) for e in seen if type(e) is MemberJoined}
    assert {"asyncio", "trio"} <= joined


def test_state_is_set_read_and_streamed_in_order(nodes: list[BlockingNode]) -> None:
    options = {**OPTIONS, "config": swimgossip.Config.local(state_sync_interval=0.3)}
    a = swimgossip.blocking.start_node("a", **options)
    b = swimgossip.blocking.start_node("b", **options)
    nodes += [a, b]
    seen: list[swimgossip.FullEvent] = []
    with b.events(timeout=PATIENCE, state=True) as events:
        b.join([a.address])
        a.set_state("port", b"8080")
        for event in events:
            seen.append(event)
            if isinstance(event, swimgossip.StateChanged):
                break
        a.delete_state("port")
        for event in events:
            seen.append(event)
            if isinstance(event, swimgossip.StateChanged) and event.value is None:
                break
    assert b.state("a") == {} == a.state("a")
    assert b.state_version("a") == a.state_version("a") > 0
    changes = [(e.key, e.value) for e in seen if isinstance(e, swimgossip.StateChanged)]
    assert changes == [("port", b"8080"), ("port", None)]
    assert about(seen[0]) == "a" and type(seen[0]) is MemberJoined
    seqs = [e.seq for e in seen if not isinstance(e, EventsLost)]
    assert seqs == sorted(seqs)
    with pytest.raises(swimgossip.StateLimitExceeded):
        a.set_state("big", bytes(a.config.state_value_max + 1))


#: Suspicion lasts long enough (4 s or more) for a paused member to come back and refute it.
PATIENT_SUSPICION = FAST.evolve(suspicion_mult=10)


def test_listen_takes_every_kind_of_node_listen_and_runs_them_in_the_callback_thread(
    nodes: list[BlockingNode],
) -> None:
    """on_message, on_direct, on_suspect, on_recover, on_restart (after on_join), all in
    the one callback thread; unregistering closes the message streams."""
    options = {**OPTIONS, "config": PATIENT_SUSPICION}
    a = swimgossip.blocking.start_node("a", **options)
    b = swimgossip.blocking.start_node("b", **options)
    nodes += [a, b]
    heard: queue.Queue[tuple[str, Any, str]] = queue.Queue()
    all_heard: list[tuple[str, Any, str]] = []
    release = threading.Event()

    def note(kind: str) -> Any:
        def callback(item: Any) -> None:
            entry = (kind, item, threading.current_thread().name)
            all_heard.append(entry)
            heard.put(entry)
            if kind == "suspect":
                release.set()  # the paused member may answer again

        return callback

    def next_of(kind: str) -> Any:
        for _ in range(100):
            got, item, _ = heard.get(timeout=PATIENCE)
            if got == kind:
                return item
        raise AssertionError(f"no {kind}")

    remove = a.listen(
        on_join=note("join"),
        on_message=note("message"),
        on_direct=note("direct"),
        on_suspect=note("suspect"),
        on_recover=note("recover"),
        on_restart=note("restart"),
    )
    b.join([a.address], timeout=PATIENCE)
    b.broadcast(b"to all")
    message = next_of("message")
    assert (message.source, message.payload) == ("b", b"to all")
    b._run(b._node.send, "a", b"to a")
    direct = next_of("direct")
    assert (direct.source, direct.payload) == ("b", b"to a")

    # b's Trio thread is held until a suspects b: b then refutes it
    pause = threading.Thread(target=b._read, args=(lambda: release.wait(PATIENCE),))
    pause.start()
    try:
        assert about(next_of("suspect")) == "b"
        assert type(next_of("recover")) is swimgossip.MemberRecovered
    finally:
        release.set()
        pause.join(PATIENCE)

    address = b.address
    b.abort()  # a new process under b's name at its address
    b = swimgossip.blocking.start_node("b", **{**options, "bind": address})
    nodes.append(b)
    b.join([a.address], timeout=PATIENCE)
    restarted = next_of("restart")
    assert type(restarted) is MemberJoined and restarted.restarted and about(restarted) == "b"
    restart = [entry[:2] for entry in all_heard].index(("restart", restarted))
    assert all_heard[restart - 1][:2] == ("join", restarted)  # on_join first, same event
    assert {thread for _, _, thread in all_heard} == {"swimgossip callbacks a"}
    assert a.metrics()["callback_errors"] == 0

    remove()  # the message streams are closed: b's next broadcast reaches only `later`
    later: queue.Queue[swimgossip.UserDelivery] = queue.Queue()
    a.listen(on_message=later.put)
    b.broadcast(b"after")
    assert later.get(timeout=PATIENCE).payload == b"after"
    assert [m.payload for kind, m, _ in all_heard if kind == "message"] == [b"to all"]
    a.close()
    assert callback_threads() == []


def test_a_restarted_join_reaches_on_join_then_on_restart_without_awaiting() -> None:
    """The threaded door's callbacks are plain functions: the one event callback of
    ``listen`` calls them all and returns nothing to await; EventsLost goes to on_lost."""
    heard: list[tuple[str, object]] = []
    kinds = KindCallbacks(
        on_join=lambda e: heard.append(("join", e)),
        on_restart=lambda e: heard.append(("restart", e)),
        on_lost=lambda e: heard.append(("lost", e)),
    )
    member = swimgossip.Member(
        name="b", address="127.0.0.1:1", status=swimgossip.Status.ALIVE, incarnation=1
    )
    restarted = MemberJoined(member=member, seq=3, restarted=True)
    lost = EventsLost(count=2, members=(member,))
    dispatch = kinds.events()
    assert dispatch(restarted) is None and dispatch(lost) is None
    assert heard == [("join", restarted), ("restart", restarted), ("lost", lost)]
