"""Count the Python bytecodes the simulator executes over one window: a deterministic cost.

Wall and CPU times on the shared 2-core machines vary by up to 2x between runs of the same
code; the number of bytecodes executed does not. Compare two versions of the code by
running this script under each (``PYTHONPATH=<other checkout>/src``), same arguments.
C code (msgpack, heapq) is not counted, so read it as the cost of our Python.

    python benchmarks/count_bytecodes.py --nodes 1000 --start 32 --end 34

Bounded: one prejoined cluster, one window of virtual time (tracing makes it ~50x slower).
"""

from __future__ import annotations

import argparse
import collections
import sys
from types import FrameType
from typing import Any

from swimgossip.core.config import Config
from swimgossip.testing.simulator import Simulation


def count(nodes: int, start: float, end: float) -> collections.Counter[str]:
    """Bytecodes executed per function while ``nodes`` prejoined nodes run [start, end)."""
    sim = Simulation(config=Config.lan(), seed=1)
    sim.add_cluster(nodes, prejoined=True)
    sim.run_until(start)
    counts: collections.Counter[str] = collections.Counter()

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call":
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
        elif event == "opcode":
            code = frame.f_code
            counts[f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_name}"] += 1
        return tracer

    sys.settrace(tracer)
    try:
        sim.run_until(end)
    finally:
        sys.settrace(None)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--start", type=float, default=32.0, help="virtual s (32: steady)")
    parser.add_argument("--end", type=float, default=34.0)
    parser.add_argument("--top", type=int, default=20, help="functions to list")
    args = parser.parse_args()
    counts = count(args.nodes, args.start, args.end)
    print(f"{sum(counts.values())} bytecodes, {args.nodes} nodes, t = {args.start}..{args.end}")
    for name, value in counts.most_common(args.top):
        print(f"  {value:>10}  {name}")


if __name__ == "__main__":
    main()
