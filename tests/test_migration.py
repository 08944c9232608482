"""Key rotation, live security migration and cluster labels on real nodes in virtual time.

The production runtime over the toolkit's in-memory network (``open_cluster``) under
``MockClock(autojump_threshold=0)``, as in tests/test_scenarios.py. Each runbook of
docs/security.md is applied node by node with a few virtual seconds between nodes, while
the cluster runs; the verdict that matters is that nobody is ever declared failed.
"""

from __future__ import annotations

import pytest
import trio

from swimgossip import Config, JoinError, Keyring, MemberFailed
from swimgossip.security import SecurityMode
from swimgossip.testing import Cluster, open_cluster
from swimgossip.testing.simulator import RecordedEvent, Simulation

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
LOCAL = Config.local()
BUDGET = 900.0
#: Virtual seconds between two nodes' changes, and after the last node of a step.
BETWEEN_NODES = 3.0
SETTLE = 20.0


def failed_verdicts(cluster: Cluster) -> list[RecordedEvent]:
    return [r for r in cluster.history if type(r.event) is MemberFailed]


def total(cluster: Cluster, counter: str) -> float:
    return sum(node.metrics()[counter] for node in cluster.nodes)


def key_failures(cluster: Cluster) -> float:
    """Packets refused for their key or signature (not the network's duplicates)."""
    reasons = ("unknown_key", "forged", "unsigned", "unsealed", "label", "truncated")
    return sum(total(cluster, f"auth_rejected_{reason}") for reason in reasons)


async def test_rolling_key_rotation_gives_no_failed_verdict(autojump_clock: object) -> None:
    with trio.fail_after(BUDGET):
        async with open_cluster(
            5, seed=71, config=LOCAL, keyring=lambda name: Keyring([KEY_A])
        ) as cluster:
            steps = [("install", KEY_B), ("use", KEY_B), ("remove", KEY_A)]
            for step, key in steps:
                for node in cluster.nodes:
                    getattr(node, f"{step}_key")(key)
                    await trio.sleep(BETWEEN_NODES)
                await trio.sleep(SETTLE)
                assert cluster.converged(), cluster.missing()
            assert all(node.keyring is not None for node in cluster.nodes)
            assert {node.keyring.keys for node in cluster.nodes if node.keyring} == {(KEY_B,)}
            assert total(cluster, "auth_failures") == 0
            assert not failed_verdicts(cluster)
            # a member that missed the whole rotation is refused, and told why
            with pytest.raises(JoinError) as info:
                await cluster.start("stale", join=["n0"], keyring=lambda name: Keyring([KEY_A]))
            assert "unknown key" in next(iter(info.value.reasons.values()))


MIGRATION = [
    SecurityMode.SIGN_ACCEPT_UNSIGNED,
    SecurityMode.REQUIRED,
    SecurityMode.SEAL_ACCEPT_SIGNED,
    SecurityMode.SEALED,
]


async def test_live_migration_off_to_sealed_gives_no_failed_verdict(
    autojump_clock: object,
) -> None:
    with trio.fail_after(BUDGET):
        async with open_cluster(
            5, seed=72, config=LOCAL, keyring=Keyring([KEY_A]), security=SecurityMode.OFF
        ) as cluster:
            assert total(cluster, "auth_accepted_unsigned") > 0
            for mode in MIGRATION:
                for node in cluster.nodes:
                    node.set_security(mode)
                    await trio.sleep(BETWEEN_NODES)
                await trio.sleep(SETTLE)
                assert cluster.converged(), (mode, cluster.missing())
            assert {node.security for node in cluster.nodes} == {SecurityMode.SEALED}
            before = {name: cluster.node(name).metrics() for name in cluster.names}
            await trio.sleep(SETTLE)
            for name in cluster.names:
                after = cluster.node(name).metrics()
                assert after["auth_accepted_sealed"] > before[name]["auth_accepted_sealed"]
                for form in ("unsigned", "signed"):  # nothing but sealed any more
                    key = f"auth_accepted_{form}"
                    assert after[key] == before[name][key]
            # no step ever refused a packet: every pair could always talk
            assert total(cluster, "auth_failures") == 0
            assert not failed_verdicts(cluster)


async def test_skipping_a_migration_step_is_refused_and_counted(autojump_clock: object) -> None:
    """The control experiment: OFF straight to SEALED on one node cuts it off."""
    with trio.fail_after(BUDGET):
        async with open_cluster(
            3, seed=73, config=LOCAL, keyring=Keyring([KEY_A]), security=SecurityMode.OFF
        ) as cluster:
            cluster.node("n2").set_security(SecurityMode.SEALED)
            await trio.sleep(SETTLE)
            assert cluster.node("n2").metrics()["auth_rejected_unsigned"] > 0


async def test_wrong_label_cannot_join_and_is_counted(autojump_clock: object) -> None:
    with trio.fail_after(BUDGET):
        async with open_cluster(
            3, seed=74, config=LOCAL, keyring=Keyring([KEY_A]), label="prod"
        ) as cluster:
            with pytest.raises(JoinError) as info:
                await cluster.start("other", join=["n0"], label="staging")
            reason = next(iter(info.value.reasons.values()))
            assert "label" in reason and "'staging'" in reason
            assert cluster.node("n0").metrics()["auth_rejected_label"] >= 1
            await trio.sleep(SETTLE)
            assert all(n.member("other") is None for n in cluster.nodes if n.name != "other")
            assert not failed_verdicts(cluster)


@pytest.mark.parametrize("mode", [SecurityMode.REQUIRED, SecurityMode.SEALED])
def test_simulation_runs_signed_or_sealed(mode: SecurityMode) -> None:
    sim = Simulation(config=LOCAL, seed=6, keyring=Keyring([KEY_A]), security_mode=mode)
    sim.add_cluster(4)
    assert sim.run_until_converged(30.0)
    assert sim.counters["rejected_unauthenticated"] == 0


async def test_rolling_key_rotation_under_loss_and_duplication_with_traffic(
    autojump_clock: object,
) -> None:
    """Issue 15: the rotation runbook node by node while 15 % of datagrams are lost and
    10 % duplicated, with broadcasts flowing between the steps: no failed verdict, no
    authentication failure after the last step, every node on the new key alone."""
    with trio.fail_after(BUDGET):
        async with open_cluster(
            5, seed=72, config=Config.lan(), keyring=lambda name: Keyring([KEY_A])
        ) as cluster:
            cluster.network.set_loss(0.15)
            cluster.network.set_duplication(0.10)
            delivered: list[tuple[str, bytes]] = []

            async def traffic() -> None:
                number = 0
                while True:
                    await trio.sleep(1.0)
                    number += 1
                    await cluster.nodes[number % len(cluster.nodes)].broadcast(b"%d" % number)

            async def receive(node: object) -> None:
                async with node.messages() as stream:  # type: ignore[attr-defined]
                    async for message in stream:
                        delivered.append((node.name, message.payload))  # type: ignore[attr-defined]

            async with trio.open_nursery() as background:
                for node in cluster.nodes:
                    background.start_soon(receive, node)
                background.start_soon(traffic)
                for step, key in [("install", KEY_B), ("use", KEY_B), ("remove", KEY_A)]:
                    for node in cluster.nodes:
                        getattr(node, f"{step}_key")(key)
                        await trio.sleep(BETWEEN_NODES)
                    await trio.sleep(SETTLE)
                after_last_step = key_failures(cluster)
                await trio.sleep(SETTLE)
                assert key_failures(cluster) == after_last_step == 0
                background.cancel_scope.cancel()
            # The network's duplicates are authentic replays: refused as such, only.
            assert total(cluster, "auth_rejected_replay") > 0
            assert total(cluster, "auth_failures") == total(cluster, "auth_rejected_replay")
            assert {node.keyring.keys for node in cluster.nodes if node.keyring} == {(KEY_B,)}
            assert not failed_verdicts(cluster)
            assert cluster.converged(), cluster.missing()
            assert len(delivered) > 100
            assert len(delivered) == len(set(delivered))  # never twice at one node
