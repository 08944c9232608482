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

import json
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

import swimgossip
from swimgossip import Config, Node, Status
from swimgossip.net.serf import QueryReceived, UserEventReceived

pytestmark = [
    pytest.mark.real_network,
    pytest.mark.skipif(
        shutil.which("serf") is None,
        reason="the serf binary is missing (apt-get install serf): cannot test against Go",
    ),
]

#: Seconds for any one wait on the cluster.
DEADLINE = 40.0
POLL = 0.25
AGENTS = ("go1", "go2", "go3")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Agent:
    """One ``serf agent`` process on loopback, with its RPC address."""

    def __init__(self, name: str, log_dir: Path, *, join: str | None, handler: str = "") -> None:
        self.name = name
        self.port = _free_port()
        self.rpc = f"127.0.0.1:{_free_port()}"
        cmd = [
            "serf",
            "agent",
            f"-node={name}",
            f"-bind=127.0.0.1:{self.port}",
            f"-rpc-addr={self.rpc}",
            "-profile=local",
            "-tag",
            f"role={name}",
        ]
        if join is not None:
            cmd.append(f"-join={join}")
        if handler:
            cmd.append(f"-event-handler={handler}")
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    async def serf(self, command: str, *args: str) -> str:
        done = await trio.run_process(
            ["serf", command, f"-rpc-addr={self.rpc}", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        return done.stdout.decode(errors="replace") if done.returncode == 0 else ""

    async def members(self) -> dict[str, dict[str, object]]:
        out = await self.serf("members", "-format=json")
        return {m["name"]: m for m in json.loads(out)["members"]} if out else {}


async def wait_for_serf(agent: Agent, want: dict[str, str], tags: dict[str, object]) -> None:
    """Poll ``serf members`` until it shows every ``want`` status and ``tags`` (bounded)."""
    seen: dict[str, dict[str, object]] = {}
    with trio.move_on_after(DEADLINE):
        for _ in range(int(DEADLINE / POLL)):
            seen = await agent.members()
            if all(seen.get(n, {}).get("status") == s for n, s in want.items()) and all(
                seen.get(n, {}).get("tags") == t for n, t in tags.items()
            ):
                return
            await trio.sleep(POLL)
    raise AssertionError(f"serf members at {agent.name}: {seen}, wanted {want} {tags}")


async def wait_alive(node: Node, names: set[str]) -> None:
    """Until ``node`` holds every one of ``names`` alive (bounded, event driven)."""
    with trio.fail_after(DEADLINE):
        async with node.subscribe() as events:
            while not names <= {m.name for m in node.members(status=Status.ALIVE)}:
                await events.receive()


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    started: list[Agent] = []
    yield started
    for agent in started:
        agent.kill()


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
    go1 = Agent("go1", tmp_path, join=None)
    agents.append(go1)
    await wait_for_serf(go1, {"go1": "alive"}, {})
    agents.append(Agent("go2", tmp_path, join=go1.address, handler=f"user:hello=cat >> {received}"))
    agents.append(Agent("go3", tmp_path, join=go1.address))
    go2, go3 = agents[1], agents[2]
    everyone = {*AGENTS, "py1", "py2"}
    py2_port = _free_port()
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
            assert await go3.serf("event", "deploy", "v1.2")
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
            out = await go3.serf("query", "-timeout=3s", "whoami", "x")
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
            detailed = await go1.serf("members", "-detailed")
            (line,) = [x for x in detailed.splitlines() if x.startswith("py2 ")]
            assert "dc=two" in line and "role=db" in line  # Go prints a map: any order

        # py2 left gracefully -> "left", not "failed"
        await wait_for_serf(go1, {"py2": "left", "py1": "alive"}, {})
        await wait_for_serf(go3, {"py2": "left"}, {})

        # restarted on the same port -> alive again, with its tags
        async with ours(nursery, "py2", go3.address, {"role": "db"}, py2_port) as again:
            await wait_for_serf(go1, {"py2": "alive"}, {"py2": {"role": "db"}})
            await wait_alive(again, everyone)
            assert again.metrics().get("packets_malformed", 0) == 0
        nursery.cancel_scope.cancel()
