"""Join as the protocol sees it: N nodes join through 3 seeds at once, in the simulator.

How this works. Three seeds start first (``n1`` and ``n2`` join ``n0``) and get one virtual
second to converge. Then every other node starts at the same virtual instant and joins
through the three seeds (a join storm). The run goes on in steps of 0.1 virtual s until
every node holds all N members alive (``Membership.active_count``, read from the engine;
O(1) per node, so the check itself is not O(N^2)), and reports:

- virtual seconds from the storm until the last node knew every other,
- bytes moved until then: datagrams and stream payloads (join and push-pull exchanges,
  both ways), total and per node,
- wall and CPU seconds the simulation took, peak RSS, the load average.

LAN preset, seed 1 (``--seed``; one seed cannot tell two trees apart: the last member to
learn of another is a matter of chance), no loss. Bounded: ``--max-virtual`` virtual
seconds, ``--max-seconds`` wall seconds and ``--max-rss-gb`` per size; a size that hits a
bound is reported as stopped, with how far it got.

    python benchmarks/bench_join.py [--nodes 1000,10000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from typing import Any

from swimgossip.core.config import Config
from swimgossip.core.outputs import StreamReply, StreamRequest
from swimgossip.testing.simulator import SimNode, Simulation

_SEEDS = 3


class _CountingSimulation(Simulation):
    """The simulator, also counting the bytes of stream payloads (requests and replies)."""

    stream_bytes = 0

    def _open_stream(self, node: SimNode, request: StreamRequest) -> None:
        self.stream_bytes += len(request.payload)
        super()._open_stream(node, request)

    def _reply_stream(self, node: SimNode, reply: StreamReply) -> None:
        self.stream_bytes += len(reply.payload)
        super()._reply_stream(node, reply)


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def join_storm(
    n: int, max_virtual: float, max_seconds: float, max_rss_gb: float, seed: int = 1
) -> dict[str, Any]:
    sim = _CountingSimulation(config=Config.lan(), seed=seed)
    seeds = [f"n{i}" for i in range(_SEEDS)]
    sim.add_node(seeds[0])
    for name in seeds[1:]:
        sim.add_node(name, join=[seeds[0]])
    sim.run_for(1.0)
    bytes_before = sum(node.sent_bytes for node in sim.nodes.values()) + sim.stream_bytes
    wall0, cpu0 = time.perf_counter(), time.process_time()
    storm_at = sim.now
    for i in range(_SEEDS, n):
        sim.add_node(f"n{i}", join=seeds)
    result: dict[str, Any] = {"nodes": n, "converged": False}
    stopped = ""
    while not stopped:
        sim.run_for(0.1)
        if all(node.engine._membership.active_count == n for node in sim.nodes.values()):
            result["converged"] = True
            break
        if sim.now - storm_at >= max_virtual:
            stopped = f"not converged after {max_virtual:g} virtual s"
        elif time.perf_counter() - wall0 > max_seconds:
            stopped = f"over the {max_seconds:g} wall s budget"
        elif _rss_gb() > max_rss_gb:
            stopped = f"over {max_rss_gb:g} GB RSS"
    moved = sum(node.sent_bytes for node in sim.nodes.values()) + sim.stream_bytes - bytes_before
    known = [node.engine._membership.active_count for node in sim.nodes.values()]
    result.update(
        stopped=stopped,
        virtual_s=round(sim.now - storm_at, 3),
        bytes=moved,
        bytes_per_node=round(moved / n),
        stream_bytes=sim.stream_bytes,
        min_known=min(known),
        wall_s=round(time.perf_counter() - wall0, 2),
        cpu_s=round(time.process_time() - cpu0, 2),
        peak_rss_gb=round(_rss_gb(), 2),
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="1000,10000", help="comma-separated sizes")
    parser.add_argument("--quick", action="store_true", help="1,000 nodes only")
    parser.add_argument("--seed", type=int, default=1, help="the simulation's seed")
    parser.add_argument("--max-virtual", type=float, default=120.0)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--max-rss-gb", type=float, default=6.0)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    sizes = [1000] if args.quick else [int(x) for x in args.nodes.split(",")]
    print(f"join storm through {_SEEDS} seeds, LAN preset, seed 1")
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    results = []
    for n in sizes:
        row = join_storm(n, args.max_virtual, args.max_seconds, args.max_rss_gb, args.seed)
        results.append(row)
        state = "all know all" if row["converged"] else f"STOPPED ({row['stopped']})"
        print(
            f"N={n:>6}: {state} after {row['virtual_s']} virtual s; "
            f"{row['bytes'] / 1e6:.1f} MB moved ({row['bytes_per_node']} B per node, "
            f"streams {row['stream_bytes'] / 1e6:.1f} MB); least-informed node knows "
            f"{row['min_known']}; {row['wall_s']} wall s, {row['cpu_s']} CPU s, "
            f"peak RSS {row['peak_rss_gb']} GB; load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    sys.exit(main())
