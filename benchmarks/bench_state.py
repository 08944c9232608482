"""Member state figures in the simulator (issue 13). Reported, never asserted.

``python benchmarks/bench_state.py [--quick]``. Every loop is bounded (fixed sizes, fixed
virtual windows) and every seed is fixed.

1. Bytes of the state exchange in a converged cluster (N members, 20 keys of 32 bytes
   each): what the digest-first exchange sends (measured: ``state_bytes_sent``, every
   request, reply and push, over a fixed virtual window after convergence), against what a
   full-state exchange would send at the same cadence (both sides' whole state, each way;
   computed by encoding it).
   At N = 1,000 the cluster is not converged by gossip (20,000 keys spread epidemically
   to 1,000 members is 20 M applications: hours in the simulator) but seeded converged:
   every engine's state part is filled directly with the same 20 keys per member (shared
   immutable entries, so 1,000 copies cost dicts, not values), then the exchanges run
   over the window as in a cluster that converged by itself (``--seeded`` at N = 100
   checks the two ways give the same bytes).
2. Time for one write to reach every member (median and last), gossip only (the exchange
   interval is set far beyond the window), LAN preset.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from swimgossip.core import codec
from swimgossip.core._state import Entry
from swimgossip.core.config import Config
from swimgossip.core.messages import StateDelta, StateSync
from swimgossip.testing.simulator import Simulation

SEED = 3
KEYS = 20
VALUE = 32


def seed_converged(sim: Simulation) -> None:
    """Fill every engine's state part as if 20 keys per member had converged (benchmark
    only: it reaches into the private ``MemberState``)."""
    names = sorted(sim.nodes)
    keys = [f"key{k:02d}" for k in range(KEYS)]
    value = bytes(VALUE)
    owned: dict[str, tuple[int, dict[str, Entry]]] = {}
    for name in names:
        state = sim.nodes[name].engine._state
        base = state._version
        owned[name] = (base + KEYS, {k: Entry(base + i + 1, value) for i, k in enumerate(keys)})
    for name in names:
        state = sim.nodes[name].engine._state
        for owner, (version, entries) in owned.items():
            state._data[owner] = dict(entries)
            if owner == name:
                state._version = version
            else:
                state._synced[owner] = version


def exchange_bytes(n: int, window: float, *, seeded: bool = False) -> dict[str, float]:
    config = Config.lan(state_sync_interval=10.0)
    sim = Simulation(config=config, seed=SEED)
    sim.add_cluster(n, prejoined=True)
    if seeded:
        sim.run_for(1.0)
        seed_converged(sim)
        sim.run_for(20.0)  # every member past its first exchange
    else:
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
        "seeded": float(seeded),
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
    parser.add_argument(
        "--exchange-only", action="store_true", help="only the exchange bytes (N = 100, 1,000)"
    )
    args = parser.parse_args()
    sizes = [100] if args.quick else [100, 1000]
    print(f"load average before: {os.getloadavg()}")
    if not args.exchange_only:
        for n in sizes:
            started = time.perf_counter()
            print("convergence", convergence(n), f"({time.perf_counter() - started:.1f} s wall)")
    runs = [(100, False), (100, True)] + [(n, True) for n in sizes if n > 100]
    for n, seeded in runs:
        started = time.perf_counter()
        figures = exchange_bytes(n, 60.0, seeded=seeded)
        print("exchange", figures, f"({time.perf_counter() - started:.1f} s wall)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
