"""swimgossip nodes in serf mode (``open_node(wire="serf")``) in a cluster of real
``serf agent`` s (Go), on 127.0.0.1 only.

Three ``serf agent -profile=local`` processes and two of our nodes (``Config.local()``)
form one cluster. Then: ``serf members`` lists ours alive with their tags, ours list all
five alive with the agents' tags; a ``serf event`` sent at one agent arrives at both of
ours as ``UserEventReceived``; an event of ours reaches an agent's event handler; ``serf
query`` counts both of ours as acks and gets py1's answer; a tag change of ours shows in
``serf members -detailed``; a graceful leave of ours is ``left`` (not ``failed``) in
Serf; the same node restarted on the same port is ``alive`` again with its tags.

Every wait is bounded (``trio.fail_after``; polls of ``serf members``, an external
process, are bounded in count and time); agents are killed by their pid. Needs the
``serf`` binary: skipped with the reason where it is missing, and in CI (``CI=true``)
that skip is a failure (ci_guard).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

import swimgossip
from serf_helpers import (
    DEADLINE,
    NEEDS_SERF,
    POLL,
    Agent,
    free_port,
    wait_alive,
    wait_for_serf,
)
from swimgossip import Config, Node
from swimgossip.net.serf import QueryReceived, UserEventReceived

pytestmark = NEEDS_SERF

AGENTS = ("go1", "go2", "go3")


@asynccontextmanager
async def ours(
    nursery: trio.Nursery, name: str, seed: str, tags: dict[str, str], port: int
) -> AsyncIterator[Node]:
    """One of our nodes in serf mode on ``port``, joined to ``seed``; left on exit."""
    ready: trio.MemorySendChannel[Node]
    ready, receive = trio.open_memory_channel[Node](1)
    done = trio.Event()

    async def run() -> None:
        async with swimgossip.open_node(
            name, bind=f"127.0.0.1:{port}", config=Config.local(), wire="serf", tags=tags
        ) as node:
            await node.join([seed])
            await ready.send(node)
            await done.wait()

    nursery.start_soon(run)
    with trio.fail_after(DEADLINE):
        node = await receive.receive()
    try:
        yield node
    finally:
        done.set()
        with trio.fail_after(DEADLINE):
            await node.wait_stopped()


async def first_event(node: Node, stream: swimgossip.SerfEventStream) -> UserEventReceived:
    with trio.fail_after(DEADLINE):
        async for event in stream:
            if isinstance(event, UserEventReceived):
                return event
    raise AssertionError(f"{node.name}: the event stream ended")


async def answer_queries(node: Node, stream: swimgossip.SerfEventStream) -> None:
    async for event in stream:
        if isinstance(event, QueryReceived) and event.query.name == "whoami":
            await node.serf.respond(event, f"{node.name} here".encode())


async def test_serf_agents_see_our_tags_events_leave_and_restart(
    agents: list[Agent], tmp_path: Path
) -> None:
    received = tmp_path / "hello.txt"
    go1 = Agent("go1", tmp_path, tags={"role": "go1"})
    agents.append(go1)
    await wait_for_serf(go1, {"go1": "alive"})
    hello = f"user:hello=cat >> {received}"
    agents.append(Agent("go2", tmp_path, join=go1.address, tags={"role": "go2"}, handler=hello))
    agents.append(Agent("go3", tmp_path, join=go1.address, tags={"role": "go3"}))
    go2, go3 = agents[1], agents[2]
    everyone = {*AGENTS, "py1", "py2"}
    py2_port = free_port()
    async with (
        trio.open_nursery() as nursery,
        ours(nursery, "py1", go1.address, {"role": "web", "dc": "one"}, 0) as py1,
    ):
        async with ours(nursery, "py2", go2.address, {"role": "db"}, py2_port) as py2:
            await wait_for_serf(
                go1,
                dict.fromkeys(everyone, "alive"),
                {"py1": {"role": "web", "dc": "one"}, "py2": {"role": "db"}},
            )
            await wait_alive(py1, everyone)
            await wait_alive(py2, everyone)
            go2_member = py1.member("go2")
            assert go2_member is not None and dict(go2_member.tags) == {"role": "go2"}

            # serf event at a Go agent -> both of ours
            streams = (py1.serf.events(), py2.serf.events())
            assert await go3.run("event", "deploy", "v1.2")
            for node, stream in zip((py1, py2), streams, strict=True):
                event = await first_event(node, stream)
                assert (event.name, event.payload) == ("deploy", b"v1.2")

            # an event of ours -> a Go agent's event handler
            await py1.serf.user_event("hello", b"from-py1")
            with trio.fail_after(DEADLINE):
                while not (received.exists() and b"from-py1" in received.read_bytes()):
                    await trio.sleep(POLL)

            # serf query: both of ours ack, py1 also answers
            nursery.start_soon(answer_queries, py1, py1.serf.events())
            out = await go3.run("query", "-timeout=3s", "whoami", "x")
            assert "Ack from 'py1'" in out and "Ack from 'py2'" in out, out
            assert "Response from 'py1': py1 here" in out, out

            # a tag change of ours -> serf members -detailed
            await py2.serf.set_tags({"role": "db", "dc": "two"})
            await wait_for_serf(go1, {"py2": "alive"}, {"py2": {"role": "db", "dc": "two"}})
            # our own alive, echoed by Go peers with Serf's tags, is not refuted in a loop
            for node in (py1, py2):
                me = node.member(node.name)
                assert me is not None and me.incarnation <= 2, me
                assert node.metrics().get("refutations", 0) <= 2
            detailed = await go1.run("members", "-detailed")
            (line,) = [x for x in detailed.splitlines() if x.startswith("py2 ")]
            assert "dc=two" in line and "role=db" in line  # Go prints a map: any order

        # py2 left gracefully -> "left", not "failed"
        await wait_for_serf(go1, {"py2": "left", "py1": "alive"})
        await wait_for_serf(go3, {"py2": "left"})

        # restarted on the same port -> alive again, with its tags
        async with ours(nursery, "py2", go3.address, {"role": "db"}, py2_port) as again:
            await wait_for_serf(go1, {"py2": "alive"}, {"py2": {"role": "db"}})
            await wait_alive(again, everyone)
            assert again.metrics().get("packets_malformed", 0) == 0
        nursery.cancel_scope.cancel()
