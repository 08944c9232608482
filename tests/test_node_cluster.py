"""The runtime over real loopback sockets: join, crash, leave, metadata, broadcasts."""

from __future__ import annotations

import contextlib
import functools
import socket
import time

import attrs
import pytest
import trio

import swimgossip
from node_helpers import (
    FAST,
    PATIENCE,
    alive_names,
    kinds_about,
    poll,
    start_node,
    until,
    until_event,
)
from swimgossip import (
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberSuspected,
    MemberUpdated,
    Status,
)


async def test_three_nodes_join_and_see_each_other() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a")
            b, _ = await start_node(nursery, "b")
            c, _ = await start_node(nursery, "c")
            assert a.address.startswith("127.0.0.1:") and not a.address.endswith(":0")
            async with a.subscribe(snapshot=True) as events:
                assert await b.join([a.address]) == 1
                assert await c.join([b.address]) == 1
                everyone = {"a", "b", "c"}
                await until(events, lambda: alive_names(a) == everyone)
                for node in (b, c):
                    async with node.subscribe() as theirs:
                        await until(theirs, lambda n=node: alive_names(n) == everyone)  # type: ignore[misc]
            member = b.member("c")
            assert member is not None and member.address == c.address
            assert member.status is Status.ALIVE
            metrics = a.metrics()
            assert metrics["packets_out"] >= 0 and metrics["auth_failures"] == 0
            assert metrics["streams_in"] >= 1  # b's join
            assert metrics["health"] == a.health
            nursery.cancel_scope.cancel()


async def test_snapshot_subscription_starts_with_current_members() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a")
            b, _ = await start_node(nursery, "b")
            async with a.subscribe() as events:
                await b.join([a.address])
                await until_event(events, MemberJoined, "b")
            async with a.subscribe(snapshot=True) as events:
                first = [await events.receive(), await events.receive()]
            assert all(type(e) is MemberJoined for e in first)
            assert sorted(e.member.name for e in first) == ["a", "b"]  # type: ignore[union-attr]
            nursery.cancel_scope.cancel()


async def test_crash_is_suspected_then_failed_everywhere() -> None:
    names = ["a", "b", "c", "d", "e"]
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            started = [await start_node(nursery, name) for name in names]
            nodes = [node for node, _ in started]
            a = nodes[0]
            async with contextlib.AsyncExitStack() as stack:
                subs = [await stack.enter_async_context(n.subscribe()) for n in nodes]
                for node in nodes[1:]:
                    await node.join([a.address])
                for node, events in zip(nodes, subs, strict=True):
                    await until(events, lambda n=node: alive_names(n) == set(names))  # type: ignore[misc]
                started[-1][1].cancel()  # "e" crashes: no leave
                suspected_first = 0
                for node, events in zip(nodes[:-1], subs[:-1], strict=True):
                    seen: list[swimgossip.NodeEvent] = []
                    failed = await until_event(events, MemberFailed, "e", seen)
                    assert isinstance(failed, MemberFailed) and failed.by in names[:-1]
                    about_e = kinds_about(seen, "e")
                    assert MemberLeft not in about_e
                    suspected_first += MemberSuspected in about_e[:-1]
                    assert node.member("e").status is Status.DEAD  # type: ignore[union-attr]
            # a node may hear the verdict before any suspicion, but someone suspected first
            assert suspected_first >= 1
            assert sum(n.metrics()["suspicions"] for n in nodes[:-1]) >= 1
            # e's sockets are closed: the stream ping of a probe is refused, not silent.
            assert sum(n.metrics()["probes_refused"] for n in nodes[:-1]) >= 1
            nursery.cancel_scope.cancel()


async def test_graceful_leave_is_left_not_failed() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a")
            b, _ = await start_node(nursery, "b")
            c, _ = await start_node(nursery, "c")
            async with a.subscribe() as events:
                await b.join([a.address])
                await c.join([a.address])
                await until(events, lambda: alive_names(a) == {"a", "b", "c"})
                await c.leave()
                assert not c.running
                seen: list[swimgossip.NodeEvent] = []
                await until_event(events, MemberLeft, "c", seen)
            assert not any(type(e) is MemberFailed for e in seen)
            member = a.member("c")
            assert member is not None and member.status is Status.LEFT
            with pytest.raises(swimgossip.NotRunning):
                await c.broadcast(b"too late")
            nursery.cancel_scope.cancel()


async def test_leaving_the_block_leaves_gracefully() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a")
            async with a.subscribe() as events:
                async with swimgossip.open_node("b", bind="127.0.0.1:0", config=FAST) as b:
                    await b.join([a.address])
                    await until_event(events, MemberJoined, "b")
                await until_event(events, MemberLeft, "b")
            nursery.cancel_scope.cancel()


async def test_update_meta_and_broadcast_reach_the_others() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a", meta=b"v0")
            b, _ = await start_node(nursery, "b")
            c, _ = await start_node(nursery, "c")
            async with b.subscribe() as b_events, c.subscribe() as c_events:
                await b.join([a.address])
                await c.join([a.address])
                for node, events in ((b, b_events), (c, c_events)):
                    await until(events, lambda n=node: alive_names(n) == {"a", "b", "c"})  # type: ignore[misc]
                b_messages, c_messages = b.messages(), c.messages()
                await a.update_meta(b"v1")
                await a.broadcast(b"first")
                await a.broadcast(b"second")
                for node, events in ((b, b_events), (c, c_events)):
                    updated = await until_event(events, MemberUpdated, "a")
                    assert updated.member.meta == b"v1"  # type: ignore[union-attr]
                    assert node.member("a").meta == b"v1"  # type: ignore[union-attr]
            for stream in (b_messages, c_messages):
                received = []
                while b"second" not in received:
                    message = await stream.receive()
                    assert message.source == "a"
                    received.append(message.payload)
                while b"first" not in received:  # order is not promised, only once each
                    received.append((await stream.receive()).payload)
                assert sorted(received) == [b"first", b"second"]
            with pytest.raises(swimgossip.MetadataTooLarge):
                await a.update_meta(b"x" * (FAST.meta_max_size + 1))
            nursery.cancel_scope.cancel()


async def test_restarted_node_rejoins_alive() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a")
            b, b_scope = await start_node(nursery, "b")
            async with a.subscribe() as events:
                await b.join([a.address])
                await until_event(events, MemberJoined, "b")
                b_scope.cancel()
                failed = await until_event(events, MemberFailed, "b")
                assert isinstance(failed, MemberFailed)
                b2, _ = await start_node(nursery, "b")
                await b2.join([a.address])
                await until(
                    events,
                    lambda: a.member("b").status is Status.ALIVE,  # type: ignore[union-attr]
                )
            member = a.member("b")
            assert member is not None and member.address == b2.address
            # the new process refuted its old death: it is alive at a higher incarnation
            assert member.incarnation > failed.member.incarnation
            assert b2.member("b").incarnation == member.incarnation  # type: ignore[union-attr]
            nursery.cancel_scope.cancel()


async def test_join_unreachable_seeds_says_why() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with trio.fail_after(PATIENCE):
        async with swimgossip.open_node("a", bind="127.0.0.1:0", config=FAST) as a:
            seeds = [f"127.0.0.1:{closed_port}", "no-such-host.invalid:7946"]
            with pytest.raises(swimgossip.JoinError) as info, trio.fail_after(3):
                await a.join(seeds)  # retries until shortly before the caller's deadline
            reasons = info.value.reasons
            assert "refused" in reasons[seeds[0]]
            assert "resolve" in reasons[seeds[1]]
            assert seeds[0] in str(info.value)


async def test_body_exception_is_not_wrapped_and_serve_node_starts() -> None:
    with pytest.raises(KeyError), trio.fail_after(PATIENCE):
        async with swimgossip.open_node("a", bind="127.0.0.1:0", config=FAST):
            raise KeyError("mine")
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            serve = functools.partial(swimgossip.serve_node, "s", bind="127.0.0.1:0", config=FAST)
            node: swimgossip.Node = await nursery.start(serve)
            assert node.running and node.name == "s"
            await node.leave()  # ends serve_node, so the nursery exits by itself


@pytest.mark.real_network
async def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"::1 not available: {exc}")
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a", bind="[::1]:0")
            b, _ = await start_node(nursery, "b", bind="[::1]:0")
            assert a.address.startswith("[::1]:")
            async with a.subscribe() as events:
                assert await b.join([a.address]) == 1
                await until(events, lambda: alive_names(a) == {"a", "b"})
            async with b.subscribe() as events:
                await until(events, lambda: alive_names(b) == {"a", "b"})
            nursery.cancel_scope.cancel()


async def test_a_blocked_event_loop_raises_local_health() -> None:
    with trio.fail_after(PATIENCE):
        async with swimgossip.open_node("a", bind="127.0.0.1:0", config=FAST) as a:
            assert a.health == 0
            # The process is starved for longer than a probe interval (FAST: 0.4 s), so at
            # least one probe timer comes due early in the block and runs >= 0.6 s late.
            time.sleep(1.0)
            await poll(lambda: a.metrics()["lag_penalties"] >= 1)
            metrics = a.metrics()
            assert metrics["event_loop_lag_max"] >= 0.3
            assert a.health >= 1


async def test_periodic_push_pull_sends_digests_over_real_streams() -> None:
    """The digest-first push-pull runs over the real stream transport: requests are
    answered with digests, no stream fails and nothing falls back to the full state."""
    config = attrs.evolve(FAST, push_pull_interval=0.3)
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a", config=config)
            b, _ = await start_node(nursery, "b", config=config)
            await b.join([a.address])
            nodes = (a, b)
            await poll(
                lambda: all(n.metrics().get("member_digests_received", 0) >= 2 for n in nodes)
            )
            for node in nodes:
                metrics = node.metrics()
                assert metrics.get("push_pull_digest_fallbacks", 0) == 0
                assert metrics.get("stream_push_pull_failed", 0) == 0
                assert metrics.get("streams_malformed", 0) == 0
            assert alive_names(a) == alive_names(b) == {"a", "b"}
            nursery.cancel_scope.cancel()
