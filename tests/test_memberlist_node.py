"""swimgossip nodes in memberlist wire mode in a cluster of real ``serf agent`` s (Go).

On 127.0.0.1 only: three ``serf agent -profile=local`` processes and two of our nodes
(``open_node(wire="memberlist")``, ``Config.local()``) form one cluster: ``serf members``
lists ours alive and ours list all five alive; a kill -9 of an agent is a ``MemberFailed``
at both of ours; a crash of one of ours (cancelled, no leave) is ``failed`` in ``serf
members``, and alive again once restarted at its address. The same runs with ``-encrypt``
(a key from ``serf keygen``) and our nodes holding that key; a node with another key is
refused and says why, and counts it.

Every wait is bounded (``trio.fail_after``; polls of ``serf members`` are bounded in count
and time); agents are killed by their pid. Needs the ``serf`` binary (Debian's ``serf``,
which .ci/run installs): skipped with the reason where it is missing, and in CI
(``CI=true``) that skip is a failure (ci_guard).
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
from swimgossip import Config, JoinError, MemberFailed, Node, Status
from swimgossip.net.memberlist import MemberlistKeyring, parse_serf_key

pytestmark = [
    pytest.mark.real_network,
    pytest.mark.skipif(
        shutil.which("serf") is None,
        reason="the serf binary is missing (apt-get install serf): cannot test against Go",
    ),
]

#: Seconds for any one wait on the cluster (failure detection is ~5-10 s here).
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

    def __init__(self, name: str, log_dir: Path, *, join: str | None, key: str | None) -> None:
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
            "-log-level=debug",
        ]
        if join is not None:
            cmd.append(f"-join={join}")
        if key is not None:
            cmd.append(f"-encrypt={key}")
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        """kill -9, and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _serf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["serf", *args], capture_output=True, text=True, timeout=10)


async def serf_members(agent: Agent) -> dict[str, str]:
    """``serf members`` at ``agent``: name -> status ("alive", "failed", "left"...)."""
    done = await trio.to_thread.run_sync(_serf, "members", f"-rpc-addr={agent.rpc}", "-format=json")
    if done.returncode != 0:
        return {}
    return {m["name"]: m["status"] for m in json.loads(done.stdout)["members"]}


async def wait_for_serf(agent: Agent, want: dict[str, str]) -> None:
    """Poll ``serf members`` until it shows every ``want`` status (bounded)."""
    seen: dict[str, str] = {}
    with trio.move_on_after(DEADLINE):
        for _ in range(int(DEADLINE / POLL)):
            seen = await serf_members(agent)
            if all(seen.get(name) == status for name, status in want.items()):
                return
            await trio.sleep(POLL)
    raise AssertionError(f"serf members at {agent.name}: {seen}, wanted {want}\n{agent.tail()}")


async def wait_alive(node: Node, names: set[str]) -> None:
    """Until ``node`` holds every one of ``names`` alive (bounded, event driven)."""
    with trio.fail_after(DEADLINE):
        async with node.subscribe() as events:
            while not names <= {m.name for m in node.members(status=Status.ALIVE)}:
                await events.receive()


@pytest.fixture
def agents_dir(tmp_path: Path) -> Iterator[list[Agent]]:
    started: list[Agent] = []
    yield started
    for agent in started:
        agent.kill()


async def start_agents(started: list[Agent], log_dir: Path, key: str | None) -> list[Agent]:
    first = Agent(AGENTS[0], log_dir, join=None, key=key)
    started.append(first)
    await wait_for_serf(first, {first.name: "alive"})
    for name in AGENTS[1:]:
        started.append(Agent(name, log_dir, join=first.address, key=key))
    await wait_for_serf(first, dict.fromkeys(AGENTS, "alive"))
    return started


@asynccontextmanager
async def ours(
    nursery: trio.Nursery, name: str, seed: str, key: bytes | None, bind: str = "127.0.0.1:0"
) -> AsyncIterator[tuple[Node, trio.CancelScope]]:
    """One of our nodes in memberlist mode, joined to ``seed``; cancel the scope to crash it
    (no leave)."""
    scope = trio.CancelScope()
    ready: trio.MemorySendChannel[Node]
    ready, receive = trio.open_memory_channel[Node](1)

    async def run() -> None:
        keyring = None if key is None else MemberlistKeyring([key])
        with scope:
            async with swimgossip.open_node(
                name,
                bind=bind,
                config=Config.local(),
                wire="memberlist",
                memberlist_keyring=keyring,
            ) as node:
                await node.join([seed])
                await ready.send(node)
                await trio.sleep_forever()

    nursery.start_soon(run)
    with trio.fail_after(DEADLINE):
        node = await receive.receive()
    yield node, scope


async def wait_failed(node: Node, name: str) -> None:
    with trio.fail_after(DEADLINE):
        async with node.subscribe(snapshot=True) as events:
            while True:
                event = await events.receive()
                if isinstance(event, MemberFailed) and event.member.name == name:
                    return


async def run_cluster(started: list[Agent], log_dir: Path, key_text: str | None) -> None:
    key = None if key_text is None else parse_serf_key(key_text)
    go1, _, go3 = await start_agents(started, log_dir, key_text)
    async with (
        trio.open_nursery() as nursery,
        ours(nursery, "py1", go1.address, key) as (py1, _),
    ):
        async with ours(nursery, "py2", go1.address, key) as (py2, crash_py2):
            everyone = {*AGENTS, "py1", "py2"}
            # One cluster: Serf lists ours alive, ours list all five alive.
            await wait_for_serf(go1, dict.fromkeys(everyone, "alive"))
            await wait_for_serf(go3, {"py1": "alive", "py2": "alive"})
            await wait_alive(py1, everyone)
            await wait_alive(py2, everyone)
            # kill -9 of a Go agent: both of ours declare it failed.
            async with trio.open_nursery() as waits:
                waits.start_soon(wait_failed, py1, "go3")
                waits.start_soon(wait_failed, py2, "go3")
                go3.kill()
            # A crash of ours (no leave): Serf declares it failed.
            crash_py2.cancel()
            await wait_for_serf(go1, {"py2": "failed", "py1": "alive"})
            # Restarted at its address (memberlist lets only a left member move), it
            # learns that it was declared dead, refutes, and is alive again in Serf.
            async with ours(nursery, "py2", go1.address, key, bind=py2.address):
                await wait_for_serf(go1, {"py2": "alive"})
            counters = py1.metrics()
            # Go peers echo our alive without a boot id: not a previous process to refute
            # (before that was understood, each echo cost a refutation: 18-29 at a join).
            assert counters.get("refutations", 0) <= 2, counters
            assert counters.get("packets_malformed", 0) == 0
            assert counters.get("memberlist_decrypt_failed", 0) == 0
        nursery.cancel_scope.cancel()


async def test_ours_and_serf_agents_form_one_cluster_and_detect_crashes(
    agents_dir: list[Agent], tmp_path: Path
) -> None:
    await run_cluster(agents_dir, tmp_path, None)


async def test_the_same_cluster_encrypted_with_a_serf_keygen_key(
    agents_dir: list[Agent], tmp_path: Path
) -> None:
    key = (await trio.to_thread.run_sync(_serf, "keygen")).stdout.strip()
    await run_cluster(agents_dir, tmp_path, key)


async def test_a_node_with_another_key_is_refused_and_says_why(
    agents_dir: list[Agent], tmp_path: Path
) -> None:
    key = (await trio.to_thread.run_sync(_serf, "keygen")).stdout.strip()
    other = parse_serf_key((await trio.to_thread.run_sync(_serf, "keygen")).stdout.strip())
    go1 = Agent("go1", tmp_path, join=None, key=key)
    agents_dir.append(go1)
    await wait_for_serf(go1, {"go1": "alive"})
    async with swimgossip.open_node(
        "py1",
        bind="127.0.0.1:0",
        config=Config.local(),
        wire="memberlist",
        memberlist_keyring=MemberlistKeyring([other]),
    ) as node:
        # Our join: the agent cannot decrypt it and answers with an error sealed under its
        # key, which we cannot open either; the join retries until its deadline is near,
        # then says why it failed.
        with (
            pytest.raises(JoinError, match="encrypts with a key we do not hold") as refused,
            trio.fail_after(DEADLINE),
            trio.move_on_after(6),
        ):
            await node.join([go1.address])
        assert go1.address in refused.value.reasons
        # The agent's join of us: we cannot decrypt it; refused and counted.
        done = await trio.to_thread.run_sync(_serf, "join", f"-rpc-addr={go1.rpc}", node.address)
        assert done.returncode != 0
        assert node.metrics()["memberlist_decrypt_failed"] >= 1
        assert "py1" not in await serf_members(go1)
