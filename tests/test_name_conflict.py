"""Two processes under one name (issue 15 finding 3, issue 17 point 1), end to end: the
join is refused with a ``JoinError`` naming the holder, the seed reports the conflict as
an event, a metric and a warning, and the agent exits 1 saying so."""

from __future__ import annotations

import logging

import pytest
import trio

from cli_helpers import free_port, run, spawned
from swimgossip import Config, JoinError, MemberConflict, open_node
from swimgossip.testing import open_cluster


async def test_a_join_under_a_taken_name_raises_join_error_and_the_seed_reports_it(
    autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="swimgossip")
    async with open_cluster(3, seed=15) as cluster:
        await cluster.wait_converged()
        seed = cluster.node("n0")
        transport = cluster.network.transport("impostor")
        async with seed.subscribe() as seed_events:
            async with open_node("n1", transport=transport, config=Config.lan(), seed=1) as twin:
                with trio.fail_after(60), pytest.raises(JoinError) as caught:
                    await twin.join(["n0:7946"])
            assert caught.value.conflict is not None
            assert caught.value.conflict.address == "n1:7946"
            assert "name 'n1' is held by a live member at n1:7946" in str(caught.value)
            with trio.fail_after(60):  # the seed reports the conflict (an event, no sleep)
                async for event in seed_events:
                    if type(event) is MemberConflict:
                        break
        assert seed.member("n1").address == "n1:7946"  # the live member keeps its name
        assert seed.metrics()["name_conflicts"] >= 1
        conflicts = [e for e in cluster.events["n0"] if type(e) is MemberConflict]
        assert [(c.member.name, c.address) for c in conflicts] == [("n1", "impostor:7946")]
        assert "name conflict" in caplog.text
        assert cluster.node("n1").member("n1").incarnation == 0  # no incarnation war


async def test_invalid_names_are_refused_by_open_node(autojump_clock: object) -> None:
    with pytest.raises(ValueError, match="name"):
        async with open_node("", bind="127.0.0.1:0"):
            pass


def test_agent_under_a_taken_name_exits_1_saying_so() -> None:
    with spawned() as start:
        first = start("agent", "--name", "web-1", "--bind", "127.0.0.1:0")
        seed = first.expect_event("joined", "web-1", 30)
        result = run(
            "agent", "--name", "web-1", "--bind", f"127.0.0.1:{free_port()}",
            "--join", seed["address"], "--join-timeout", "10",
            timeout=60,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert "name 'web-1' is held by a live member at " + seed["address"] in last
        first.expect(lambda r: r.get("event") == "conflict", 30, "a conflict event")
