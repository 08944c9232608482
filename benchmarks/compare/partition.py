"""Partition scenario, side by side: 16 agents of each system in one network namespace, the
halves n00-n07 | n08-n15 cut for 60 s with nftables (UDP and TCP), then healed.

How this works. The two halves run under different users (A as root, B as ``nobody``, with
``setpriv``), so one nftables ``output`` rule per side drops every packet a side's sockets
send to the other side's ports: datagrams, and the SYN of any new stream, whatever its
ephemeral source port. Figures per system, from the agents' own event lines:

* ``a_sees_b_failed_s`` / ``b_sees_a_failed_s``: from the cut until every agent of one
  half has reported every agent of the other half failed;
* ``heal_s``: from the heal until every agent has reported every agent of the other half
  joined again (back alive);
* ``same_side_failed``: failed verdicts about an agent of the observer's own half.

Run as root with iproute2, nftables and Serf (apt): ``python benchmarks/compare/partition.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import LocalCluster, NetNamespace
from systems import Serf, Swimgossip, System

N = 16
HALF = N // 2
NOBODY = 65534


class SplitCluster(LocalCluster):
    """A ``LocalCluster`` whose second half runs as ``nobody``."""

    _index = 0

    def _launch(self, index: int, seeds: list[int]) -> Any:
        self._index = index
        return super()._launch(index, seeds)

    def _prefix(self) -> list[str]:
        prefix = super()._prefix()
        if self._index >= HALF:
            prefix += ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        return prefix


def set_cut(ns: NetNamespace, base: int, on: bool) -> None:
    """Drop (or stop dropping) everything each half sends to the other half's ports.

    The packets are marked on the way out (by the sending socket's user) and dropped on the
    way in. Dropping them in the ``output`` hook would make ``sendto`` fail with EPERM: the
    sender would know, which a real partition (a switch, a zone) never tells it. memberlist
    then logs "Failed to send ping" and skips the probe without suspecting anyone, so Serf
    would never see the cut at all.
    """
    a_ports = f"{base}-{base + HALF - 1}"
    b_ports = f"{base + HALF}-{base + N - 1}"
    ruleset = "table inet benchcut\ndelete table inet benchcut\n"
    if on:
        ruleset += (
            "table inet benchcut {\n"
            "  chain output {\n"
            "    type filter hook output priority 0; policy accept;\n"
            f"    meta skuid 0 meta l4proto {{ tcp, udp }} th dport {b_ports} meta mark set 0x5c\n"
            f"    meta skuid {NOBODY} meta l4proto {{ tcp, udp }} th dport {a_ports}"
            " meta mark set 0x5c\n"
            "  }\n"
            "  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n"
            "    meta mark 0x5c counter drop\n"
            "  }\n"
            "}\n"
        )
    subprocess.run([*ns.prefix, "nft", "-f", "-"], input=ruleset, text=True, check=True, timeout=10)


def _all_pairs(
    cluster: LocalCluster, kinds: set[str], observers: list[str], members: list[str], since: float
) -> float | None:
    first: dict[tuple[str, str], float] = {}
    for event in cluster.events(since):
        if event.kind in kinds and event.observer in observers and event.member in members:
            first.setdefault((event.observer, event.member), event.ts)
    if len(first) < len(observers) * len(members):
        return None
    return max(first.values()) - since


def run(system: System, cut_s: float, heal_within: float) -> dict[str, Any]:
    """One cut and heal of ``system``'s 16 agents; the figures of the module comment."""
    with NetNamespace(f"sgcut{os.getpid()}") as ns:
        cluster = SplitCluster(system, N, netns=ns)
        try:
            cluster.start()
            if cluster.wait_converged(timeout=90) is None:
                return {"error": "did not converge before the cut"}
            time.sleep(5.0)
            names = sorted(cluster.agents)
            a, b = names[:HALF], names[HALF:]
            cut_at = time.time()
            set_cut(ns, cluster.base, True)
            time.sleep(cut_s)
            heal_at = time.time()
            set_cut(ns, cluster.base, False)
            deadline = heal_at + heal_within
            healed = None
            while time.time() < deadline and healed is None:
                time.sleep(0.2)
                to_a = _all_pairs(cluster, {"joined", "recovered"}, b, a, heal_at)
                to_b = _all_pairs(cluster, {"joined", "recovered"}, a, b, heal_at)
                if to_a is not None and to_b is not None:
                    healed = max(to_a, to_b)
            side = {n: 0 for n in a} | {n: 1 for n in b}
            same_side = sum(
                1
                for e in cluster.events(cut_at)
                if e.kind == "failed" and e.ts < heal_at + heal_within
                if side.get(e.observer) == side.get(e.member)
            )
            return {
                "a_sees_b_failed_s": _all_pairs(cluster, {"failed"}, a, b, cut_at),
                "b_sees_a_failed_s": _all_pairs(cluster, {"failed"}, b, a, cut_at),
                "heal_s": healed,
                "same_side_failed": same_side,
            }
        finally:
            cluster.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="partition scenario, side by side")
    parser.add_argument("--cut", type=float, default=60.0)
    parser.add_argument("--heal-within", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, Any]]] = {}
    for _ in range(args.runs):
        for system in (Serf(), Swimgossip()):
            why = system.available()
            outcome = {"error": why} if why else run(system, args.cut, args.heal_within)
            results.setdefault(system.name, []).append(outcome)
            print(system.name, json.dumps(outcome), flush=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
