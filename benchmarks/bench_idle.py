"""Idle CPU per agent and join convergence of real agents, this tree against an older one.

How this works. Starts N ``swimgossip agent`` processes (default 32, LAN preset) with the
side-by-side harness's ``LocalCluster`` (``benchmarks/compare/cluster.py``: the seed, then
all others at once, joining it), records the seconds from the last launch until every
agent has reported every other joined, waits 5 s, then reads every agent's CPU time
(utime + stime) over a ``--seconds`` window: CPU seconds per agent per minute. With
``--old-src DIR`` (a copy of an older ``src/``, e.g. ``git archive <commit> src | tar -x
-C /tmp/old``) the two trees alternate, ``--rounds`` times each, in one sitting. Bytecode
is cached (``PYTHONDONTWRITEBYTECODE`` is unset for the agents). Every wait is bounded;
every agent is killed in a ``finally``.

With ``--one-by-one`` each agent starts once the previous one reported itself (no start
waits on another's interpreter), the last one 2 s after the others converged: the
convergence is then one agent's start-up (reported as ``last_startup_s``) and its join.

    python benchmarks/bench_idle.py [--nodes 32] [--seconds 60] [--rounds 2] [--old-src DIR]
        [--one-by-one]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "compare"))

from cluster import LocalCluster
from systems import Swimgossip


def one_round(n: int, seconds: float, src: str | None, one_by_one: bool = False) -> dict[str, Any]:
    env = dict(os.environ)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if src is not None:
        os.environ["PYTHONPATH"] = src
    cluster = LocalCluster(Swimgossip(), n)
    try:
        cluster.start(one_by_one=one_by_one)
        converged = cluster.wait_converged(timeout=120)
        if converged is None:
            return {"converged_s": None}
        startup = cluster.last_startup_s
        time.sleep(5)
        load = os.getloadavg()[0]
        agents = list(cluster.agents.values())
        before = [a.cpu_seconds() for a in agents]
        time.sleep(seconds)
        after = [a.cpu_seconds() for a in agents]
        per_minute = [(b - a) * 60 / seconds for a, b in zip(before, after, strict=True)]
        return {
            "converged_s": round(converged, 2),
            **({"last_startup_s": round(startup, 2)} if startup is not None else {}),
            "cpu_per_agent_per_min": round(statistics.mean(per_minute), 4),
            "max_agent": round(max(per_minute), 4),
            "load": round(load, 2),
        }
    finally:
        cluster.close()
        os.environ.clear()
        os.environ.update(env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="16 agents, 20 s, 1 round")
    parser.add_argument("--old-src", metavar="DIR")
    parser.add_argument(
        "--one-by-one",
        action="store_true",
        help="start each agent after the previous one reported itself; the last one after "
        "2 s more: convergence is then that one agent's start-up and join",
    )
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    n, seconds, rounds = args.nodes, min(args.seconds, 600.0), max(1, min(args.rounds, 10))
    if args.quick:
        n, seconds, rounds = 16, 20.0, 1
    trees: list[tuple[str, str | None]] = [("new", None)]
    if args.old_src:
        trees.append(("old", args.old_src))
    print(f"{n} idle agents (LAN preset), {seconds:g} s window, {rounds} round(s) per tree")
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in trees}
    for _ in range(rounds):
        for name, src in trees:
            row = one_round(n, seconds, src, args.one_by_one)
            results[name].append(row)
            print(f"{name}: {row}", flush=True)
    for name, rows in results.items():
        cpu = [r["cpu_per_agent_per_min"] for r in rows if r.get("converged_s") is not None]
        join = [r["converged_s"] for r in rows if r.get("converged_s") is not None]
        if cpu:
            print(
                f"{name}: idle CPU {statistics.median(cpu):.3f} s per agent per minute "
                f"(median of {len(cpu)}); join convergence {statistics.median(join):.2f} s "
                f"from the last launch; load {[r['load'] for r in rows]}"
            )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
