"""Scenario 5 (swimgossip only): one metadata update in a simulated cluster of N nodes.

How this works. ``Simulation`` with ``add_cluster(N, prejoined=True)`` (a converged
view, no join storm), LAN preset with push-pull pushed out of the window
(``push_pull_interval=3600``) so that only gossip and probe piggybacking carry the update:
that is what SWIM's lambda*log(N) bound is about. After 2 virtual seconds of warm-up, node
n0 changes its metadata; the run goes on in 0.1 s steps until every other node has emitted
``MemberUpdated`` for n0, or 30 virtual seconds pass. Prints one JSON object: virtual
seconds to reach the first / median / last node, the same in gossip rounds (200 ms),
lambda*log10(N) with lambda = retransmit_mult = 4, and wall seconds per virtual second
of the dissemination window. Run as a child process so the parent can bound its time.
"""

from __future__ import annotations

import json
import math
import resource
import statistics
import sys
import time

from swimgossip.core.config import Config
from swimgossip.core.events import MemberUpdated
from swimgossip.testing.simulator import Simulation


def main(n: int) -> dict[str, object]:
    config = Config.lan(push_pull_interval=3600.0)
    wall = time.perf_counter()
    sim = Simulation(config=config, seed=1)
    sim.add_cluster(n, prejoined=True)
    sim.run_for(2.0)
    setup_wall = time.perf_counter() - wall
    origin = "n0"
    start = sim.now
    scanned = len(sim.events)
    reached: dict[str, float] = {}
    sim.update_meta(origin, b'{"v":"1"}')
    wall = time.perf_counter()
    while len(reached) < n - 1 and sim.now - start < 30.0:
        sim.run_for(0.1)
        for record in sim.events[scanned:]:
            event = record.event
            if (
                isinstance(event, MemberUpdated)
                and event.member.name == origin
                and record.observer != origin
            ):
                reached.setdefault(record.observer, record.time - start)
        scanned = len(sim.events)
    window_wall = time.perf_counter() - wall
    virtual = sim.now - start
    times = sorted(reached.values())
    rounds = [t / config.gossip_interval for t in times]
    return {
        "nodes": n,
        "reached": len(reached),
        "of": n - 1,
        "first_s": times[0] if times else None,
        "median_s": statistics.median(times) if times else None,
        "last_s": times[-1] if len(times) == n - 1 else None,
        "last_rounds": rounds[-1] if len(times) == n - 1 else None,
        "median_rounds": statistics.median(rounds) if rounds else None,
        "lambda_log10_n": config.retransmit_mult * math.log10(n),
        "setup_wall_s": setup_wall,
        "wall_per_virtual_s": window_wall / virtual if virtual else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
