"""Whole-cluster behaviour in virtual time, through the deterministic simulator.

Every run is seeded; a failing assertion names the seed (rerun the same call to replay).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from swimgossip.core.config import Config
from swimgossip.core.events import MemberFailed, MemberJoined, MemberLeft, MemberSuspected
from swimgossip.core.member import Status
from swimgossip.security import Keyring, generate_key
from swimgossip.testing.scenario import run_scenario
from swimgossip.testing.simulator import Simulation


def failed_verdicts(sim: Simulation, about: str | None = None) -> list[tuple[str, str]]:
    return [
        (r.observer, r.event.member.name)
        for r in sim.events
        if type(r.event) is MemberFailed and (about is None or r.event.member.name == about)
    ]


def test_a_crash_in_100_nodes_is_detected_by_every_survivor_within_the_bound() -> None:
    report = run_scenario(nodes=100, kill=1, seed=7, duration=60.0)
    seed = f"seed={report.seed}"
    assert report.detection_s["undetected"] == 0, seed
    # memberlist's bound for N=100 on LAN: suspicion max 48 s, plus the probe periods.
    assert report.detection_s["last"] is not None and report.detection_s["last"] < 48.0, seed
    assert report.false_positives == 0, seed
    assert report.dissemination_s is not None, seed


def test_ten_percent_loss_for_300_seconds_gives_no_false_positive() -> None:
    report = run_scenario(nodes=100, kill=0, loss=0.1, duration=300.0, seed=3)
    assert report.false_positives == 0, f"seed={report.seed}"


@pytest.mark.parametrize("seed", [11])
def test_a_periodically_paused_node_causes_no_failed_verdict(seed: int) -> None:
    report = run_scenario(nodes=50, kill=0, pause_every=(10.0, 3.0), duration=200.0, seed=seed)
    assert report.false_positives == 0, f"seed={seed}"


def test_lifeguard_multiplier_reduces_suspicions_raised_by_a_slow_node() -> None:
    """Lifeguard's slow member: its receive path stalls 3 s every 10 s while its timers run.

    With the local health multiplier it raises markedly fewer suspicions than without,
    and neither run ends with a failed verdict about a healthy member.
    """
    runs = {
        multiplier: run_scenario(
            nodes=50,
            kill=0,
            stall_every=(10.0, 3.0),
            duration=200.0,
            seed=5,
            config=Config.lan(awareness_max_multiplier=multiplier),
        )
        for multiplier in (8, 1)
    }
    with_lifeguard = runs[8].suspicions_by_paused_node
    without = runs[1].suspicions_by_paused_node
    assert with_lifeguard is not None and without is not None
    assert without >= 2 * max(with_lifeguard, 1), (with_lifeguard, without)
    assert runs[8].false_positives == 0


def test_partition_then_heal_merges_back_with_no_member_left_dead() -> None:
    sim = Simulation(config=Config.local(), seed=21)
    sim.add_cluster(5)
    assert sim.run_until_converged(30.0), "seed=21"
    left, right = ["n0", "n1"], ["n2", "n3", "n4"]
    sim.partition(left, right)
    sim.run_for(60.0)
    for observer in left:
        for member in right:
            assert sim.nodes[observer].engine.member(member).status == Status.DEAD  # type: ignore[union-attr]
    sim.heal()
    assert sim.run_until_converged(Config.local().push_pull_interval * 3), "seed=21"


def test_partition_longer_than_reaping_still_merges_back_through_reconnect() -> None:
    config = Config.local(reap_timeout=20.0, reconnect_interval=5.0)
    sim = Simulation(config=config, seed=22)
    sim.add_cluster(4)
    assert sim.run_until_converged(30.0)
    sim.partition(["n0", "n1"], ["n2", "n3"])
    sim.run_for(120.0)
    assert sim.nodes["n0"].engine.member("n3") is None  # reaped
    sim.heal()
    assert sim.run_until_converged(60.0), "seed=22"


def test_graceful_leave_is_reported_as_left_not_failed() -> None:
    sim = Simulation(config=Config.local(), seed=4)
    sim.add_cluster(6)
    assert sim.run_until_converged(30.0)
    sim.leave("n3")
    sim.run_for(30.0)
    assert "n3" in sim.left
    lefts = {r.observer for r in sim.events if type(r.event) is MemberLeft}
    assert lefts >= {"n0", "n1", "n2", "n4", "n5"}
    assert failed_verdicts(sim, "n3") == []


def test_crash_and_restart_with_the_same_name_rejoins_once() -> None:
    sim = Simulation(config=Config.local(), seed=9)
    sim.add_cluster(5)
    assert sim.run_until_converged(30.0)
    sim.crash("n2")
    sim.run_for(40.0)
    assert len(failed_verdicts(sim, "n2")) == 4
    start = len(sim.events)
    sim.add_node("n2", join=["n0"])
    assert sim.run_until_converged(30.0), "seed=9"
    rejoined = [
        r.observer
        for r in sim.events[start:]
        if type(r.event) is MemberJoined and r.event.member.name == "n2" and r.observer != "n2"
    ]
    assert sorted(rejoined) == ["n0", "n1", "n3", "n4"]  # exactly once each
    for name in sim.running():
        names = [m.name for m in sim.nodes[name].engine.members()]
        assert len(names) == len(set(names))


def test_signed_cluster_works_and_a_wrong_key_stays_out() -> None:
    sim = Simulation(config=Config.local(), seed=5, keyring=Keyring([generate_key()]))
    sim.add_cluster(4)
    assert sim.run_until_converged(30.0)
    sim.keyring = Keyring([generate_key()])  # the next node signs with another key
    sim.add_node("intruder", join=["n0"])
    sim.run_for(10.0)
    assert sim.counters["rejected_unauthenticated"] > 0
    for name in ("n0", "n1", "n2", "n3"):
        member = sim.nodes[name].engine.member("intruder")
        assert member is None or member.status != Status.ALIVE


def test_same_seed_same_run() -> None:
    def run() -> list[tuple[float, str, str, str]]:
        sim = Simulation(config=Config.lan(), seed=33)
        sim.add_cluster(12)
        sim.set_loss(0.2)
        sim.run_for(20.0)
        sim.crash("n4")
        sim.run_for(30.0)
        return [
            (r.time, r.observer, type(r.event).__name__, r.event.member.name) for r in sim.events
        ]

    first = run()
    assert first == run()
    assert any(kind == "MemberSuspected" for _, _, kind, _ in first)


def test_suspicion_carries_provenance_and_confirmations() -> None:
    sim = Simulation(config=Config.lan(), seed=8)
    sim.add_cluster(30)
    assert sim.run_until_converged(30.0)
    sim.crash("n7")
    sim.run_for(60.0)
    verdicts = [r.event for r in sim.events if type(r.event) is MemberFailed]
    assert verdicts and all(v.member.name == "n7" for v in verdicts)
    assert all(v.by in sim.nodes for v in verdicts)
    assert max(v.confirmations for v in verdicts) >= 1
    suspicions = [r.event for r in sim.events if type(r.event) is MemberSuspected]
    assert suspicions and all(s.by != "n7" for s in suspicions)


def test_simulate_command_prints_the_documented_json() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "swimgossip",
            "simulate",
            "--nodes",
            "20",
            "--kill",
            "1",
            "--duration",
            "30",
            "--seed",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout)
    for key in (
        "nodes",
        "killed",
        "detection_s",
        "false_positives",
        "messages_per_node_per_s",
        "bytes_per_node_per_s",
        "dissemination_s",
        "virtual_s",
        "wall_s",
        "seed",
    ):
        assert key in report
    assert set(report["detection_s"]) >= {"first", "median", "last"}
    assert report["nodes"] == 20 and len(report["killed"]) == 1 and report["seed"] == 2


def test_simulate_command_rejects_bad_arguments() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "swimgossip", "simulate", "--loss", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "loss" in result.stderr


def test_partition_heal_with_digest_first_push_pulls() -> None:
    """The periodic push-pull sends digests, then the rows of the buckets that differ:
    after a heal they carry the other side's rows, and the views converge."""
    sim = Simulation(config=Config.local(), seed=23)
    sim.add_cluster(12)
    assert sim.run_until_converged(30.0), "seed=23"
    sim.partition([f"n{i}" for i in range(5)], [f"n{i}" for i in range(5, 12)])
    sim.run_for(60.0)
    sim.heal()
    assert sim.run_until_converged(Config.local().push_pull_interval * 3), "seed=23"
    engines = [node.engine for node in sim.nodes.values()]
    assert sum(e.counters["member_digests_received"] for e in engines) > 0
    assert sum(e.counters["member_pushes_received"] for e in engines) > 0
    assert sum(e.counters["push_pull_digest_fallbacks"] for e in engines) == 0
    # Converged: every table holds the same rows, so every digest is the same.
    digests = {e._membership.table.digest.folded(1024) for e in engines}
    assert len(digests) == 1
