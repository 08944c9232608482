"""A memberlist-mode node in a Serf cluster under 10 % UDP loss, in network namespaces.

Four namespaces on a bridge (``netns_helpers.open_lab``): ``serf agent`` s in n1, n2, n3,
and ``swimgossip agent --wire memberlist`` in n4, all with memberlist's LAN timings, joined
through n1. Once all four see each other alive (our agent's event lines; ``serf members``
inside n1), every member drops 10 % of the UDP datagrams it receives (nftables, at random)
for 60 s: no failed verdict about anyone, neither from our agent (its ``failed`` lines)
nor from a Go agent (``EventMemberFailed`` in its log), and both sides still list all four
alive after it. The 60 s is the fault schedule itself; every other wait is a bounded poll.

Skipped (with the reason) unless root with ``ip`` and ``nft``, namespaces allowed and the
``serf`` binary installed; in CI (``CI=true``) such a skip is a failure (ci_guard).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_helpers import Lab, open_lab, unavailable

LOSS_PERCENT = 10
LOSS_FOR = 60.0
JOIN_WITHIN = 60.0
GO = ("n1", "n2", "n3")
OURS = "n4"
RPC = "127.0.0.1:7373"

_why_not = unavailable() or (None if shutil.which("serf") else "the serf binary is missing")
pytestmark = [
    pytest.mark.real_network,
    pytest.mark.skipif(_why_not is not None, reason=f"real network: {_why_not}"),
]


class SerfInLab:
    """``serf agent`` s inside the lab's namespaces (killed at the end)."""

    def __init__(self, lab: Lab, log_dir: Path) -> None:
        self.lab = lab
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, join: str | None) -> None:
        cmd = ["ip", "netns", "exec", self.lab.namespaces[name], "serf", "agent"]
        cmd += [f"-node={name}", f"-bind={self.lab.address(name)}", f"-rpc-addr={RPC}"]
        cmd += ["-profile=lan", "-log-level=info"]
        if join is not None:
            cmd.append(f"-join={self.lab.address(join)}")
        with (self.log_dir / f"{name}.log").open("wb") as out:
            self.processes[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    def members(self, name: str) -> dict[str, str]:
        cmd = ["ip", "netns", "exec", self.lab.namespaces[name]]
        cmd += ["serf", "members", f"-rpc-addr={RPC}", "-format=json"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        if done.returncode != 0:
            return {}
        return {m["name"]: m["status"] for m in json.loads(done.stdout)["members"]}

    def wait_members(self, name: str, want: dict[str, str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        while time.monotonic() < deadline:
            seen = self.members(name)
            if all(seen.get(k) == v for k, v in want.items()):
                return
            time.sleep(0.25)
        raise AssertionError(f"serf members in {name}: {seen}, wanted {want}\n{self.log(name)}")

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def kill_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Lab, SerfInLab]]:
    with open_lab(4) as lab:
        serf = SerfInLab(lab, tmp_path)
        try:
            yield lab, serf
        finally:
            serf.kill_all()


def test_a_memberlist_node_in_a_serf_cluster_under_udp_loss_sees_no_failure(
    lab: tuple[Lab, SerfInLab],
) -> None:
    net, serf = lab
    everyone = [*GO, OURS]
    serf.start("n1", None)
    serf.wait_members("n1", {"n1": "alive"}, JOIN_WITHIN)
    for name in GO[1:]:
        serf.start(name, "n1")
    net.start(OURS, "--wire", "memberlist", "--preset", "lan", "--join-timeout", "60", join="n1")
    net.wait_views([OURS], net.all_alive(everyone), JOIN_WITHIN, "our agent sees all four")
    serf.wait_members("n1", dict.fromkeys(everyone, "alive"), JOIN_WITHIN)
    logged = {name: len(serf.log(name)) for name in GO}
    since = time.time()
    net.set_udp_loss(LOSS_PERCENT)
    time.sleep(LOSS_FOR)  # the fault schedule
    counted = net.counters()
    net.heal()
    assert counted["dropped"] > 0.05 * counted["seen"] > 0, counted
    ours_failed = net.events("failed", since=since)
    assert ours_failed == [], f"our agent's failed verdicts: {ours_failed}"
    for name in GO:
        failures = [
            line for line in serf.log(name)[logged[name] :].splitlines() if "MemberFailed" in line
        ]
        assert failures == [], f"{name}: {failures}"
    for name in GO:
        assert serf.members(name) == dict.fromkeys(everyone, "alive")
    assert {m for m, s in net.views([OURS])[OURS].items() if s == "alive"} == set(everyone)
