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

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

import swimgossip
from serf_helpers import DEADLINE, NEEDS_SERF, Agent, serf, wait_alive, wait_for_serf
from swimgossip import Config, JoinError, MemberFailed, Node
from swimgossip.net.memberlist import MemberlistKeyring, parse_serf_key

pytestmark = NEEDS_SERF

AGENTS = ("go1", "go2", "go3")


async def start_agents(started: list[Agent], log_dir: Path, key: str | None) -> list[Agent]:
    first = Agent(AGENTS[0], log_dir, key=key, debug=True)
    started.append(first)
    await wait_for_serf(first, {first.name: "alive"})
    for name in AGENTS[1:]:
        started.append(Agent(name, log_dir, join=first.address, key=key, debug=True))
    await wait_for_serf(first, dict.fromkeys(AGENTS, "alive"))
    return started


async def serf_keygen() -> str:
    return (await trio.to_thread.run_sync(serf, "keygen")).stdout.strip()


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
    agents: list[Agent], tmp_path: Path
) -> None:
    await run_cluster(agents, tmp_path, None)


async def test_the_same_cluster_encrypted_with_a_serf_keygen_key(
    agents: list[Agent], tmp_path: Path
) -> None:
    key = await serf_keygen()
    await run_cluster(agents, tmp_path, key)


async def test_a_node_with_another_key_is_refused_and_says_why(
    agents: list[Agent], tmp_path: Path
) -> None:
    key = await serf_keygen()
    other = parse_serf_key(await serf_keygen())
    go1 = Agent("go1", tmp_path, key=key, debug=True)
    agents.append(go1)
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
        assert await go1.run("join", node.address) == ""  # it failed
        assert node.metrics()["memberlist_decrypt_failed"] >= 1
        assert "py1" not in await go1.members()
