"""Member state figures in the simulator (issue 13). Reported, never asserted.

``python benchmarks/bench_state.py [--quick]``. Every loop is bounded (fixed sizes, fixed
virtual windows) and every seed is fixed.

1. Bytes of the state exchange in a converged cluster (N members, 20 keys of 32 bytes
   each): what the digest-first exchange sends (measured: ``state_bytes_sent``, every
   request, reply and push, over a fixed virtual window after convergence), against what a
   full-state exchange would send at the same cadence (both sides' whole state, each way;
   computed by encoding it).
2. Time for one write to reach every member (median and last), gossip only (the exchange
   interval is set far beyond the window), LAN preset.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from swimgossip.core import codec
from swimgossip.core.config import Config
from swimgossip.core.messages import StateDelta, StateSync
from swimgossip.testing.simulator import Simulation

SEED = 3
KEYS = 20
VALUE = 32


def exchange_bytes(n: int, window: float) -> dict[str, float]:
    config = Config.lan(state_sync_interval=10.0)
    sim = Simulation(config=config, seed=SEED)
    sim.add_cluster(n, prejoined=True)
    for name in sorted(sim.nodes):
        for k in range(KEYS):
            sim.set_state(name, f"key{k:02d}", bytes(VALUE))
    sim.run_for(60.0)  # gossip, then at least one exchange each: converged
    names = sorted(sim.nodes)
    first = sim.nodes[names[0]].engine
    converged = all(sim.nodes[x].engine.state(y) == first.state(y) for x in names for y in names)
    before = sum(node.engine.counters["state_bytes_sent"] for node in sim.nodes.values())
    exchanges = sum(node.engine.counters["state_exchanges"] for node in sim.nodes.values())
    sim.run_for(window)
    sent = sum(node.engine.counters["state_bytes_sent"] for node in sim.nodes.values()) - before
    exchanges = sum(n.engine.counters["state_exchanges"] for n in sim.nodes.values()) - exchanges
    # Without digests: each exchange carries the whole state both ways.
    deltas = tuple(
        StateDelta(owner=name, key=f"key{k:02d}", version=2**50, value=bytes(VALUE), deleted=False)
        for name in names
        for k in range(KEYS)
    )
    full = len(
        codec.encode_stream(
            StateSync(source=names[0], push=False, owners=(), versions=(), deltas=deltas)
        )
    )
    without = 2 * full * exchanges
    return {
        "n": n,
        "converged": float(converged),
        "exchanges": exchanges,
        "digest_bytes_per_node_per_s": sent / n / window,
        "full_bytes_per_node_per_s": without / n / window,
        "ratio": without / sent if sent else float("inf"),
    }


def convergence(n: int) -> dict[str, float]:
    config = Config.lan(state_sync_interval=3600.0)
    sim = Simulation(config=config, seed=SEED)
    sim.add_cluster(n, prejoined=True)
    sim.run_for(1.0)
    start = sim.now
    sim.set_state("n0", "role", b"db")
    sim.run_for(30.0)
    reached = {
        observer: at - start
        for at, observer, event in sim.state_events
        if event.member == "n0" and event.key == "role" and observer != "n0"
    }
    times = sorted(reached.values())
    return {
        "n": n,
        "reached": len(times),
        "median_s": statistics.median(times) if times else float("nan"),
        "last_s": times[-1] if len(times) == n - 1 else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="N = 100 only")
    args = parser.parse_args()
    sizes = [100] if args.quick else [100, 1000]
    print(f"load average before: {os.getloadavg()}")
    for n in sizes:
        started = time.perf_counter()
        print("convergence", convergence(n), f"({time.perf_counter() - started:.1f} s wall)")
    started = time.perf_counter()
    print("exchange", exchange_bytes(100, 60.0), f"({time.perf_counter() - started:.1f} s wall)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
