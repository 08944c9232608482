"""Cold start in CPU seconds, as ratios to ``import trio`` alone (issue 16).

Measures, in fresh interpreters with cached bytecode, alternating the commands so that
load changes hit them alike:

- ``python -c "import trio"`` (the floor),
- ``python -c "import swimgossip"``,
- ``python -m swimgossip agent --bind 127.0.0.1:0`` until it logs that it is running
  (its sockets are bound), read from ``/proc/PID/stat`` (utime + stime) at that moment.

CPU seconds (user + system) rather than wall time: other jobs share the cores. Every
child has a deadline; every loop is bounded. Reports the median and the minimum of each,
the ratios, and the load average.

    python benchmarks/bench_start.py [--runs 15] [--quick] [--json FILE]
    python benchmarks/bench_start.py --old-src /tmp/old/src   # also an older tree, alternating

``--old-src`` puts another copy of ``src/`` first on ``PYTHONPATH`` (e.g. from
``git archive <commit> src | tar -x -C /tmp/old``) and runs it in turn with this one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

_TICK = os.sysconf("SC_CLK_TCK")
_DEADLINE = 30.0
# Cached bytecode, as an installed package has it: without this, a shell that sets
# PYTHONDONTWRITEBYTECODE would measure compiling swimgossip's sources on every start
# (about 0.13 CPU s here) against trio's precompiled site-packages.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _env(src: str | None) -> dict[str, str]:
    if src is None:
        return _ENV
    return {**_ENV, "PYTHONPATH": os.pathsep.join(filter(None, [src, _ENV.get("PYTHONPATH")]))}


def _child_cpu(argv: list[str], src: str | None = None) -> float:
    """CPU seconds of one child that runs to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, timeout=_DEADLINE, stdout=subprocess.DEVNULL, env=_env(src))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _agent_cpu(src: str | None = None) -> float:
    """CPU seconds of one agent from exec until it reports running (sockets bound)."""
    argv = [sys.executable, "-m", "swimgossip", "agent", "--name", "b"]
    argv += ["--bind", "127.0.0.1:0", "--log-level", "info"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(src)
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + _DEADLINE
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                raise RuntimeError("the agent exited before it was running")
            if "running at" in line:
                with open(f"/proc/{proc.pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / _TICK
        raise RuntimeError("the agent did not report running in time")
    finally:
        proc.kill()
        proc.wait(timeout=_DEADLINE)


def measure(runs: int, old_src: str | None = None) -> dict[str, dict[str, float]]:
    py = sys.executable
    cases: dict[str, Callable[[], float]] = {
        "import trio": lambda: _child_cpu([py, "-c", "import trio"]),
        "import swimgossip": lambda: _child_cpu([py, "-c", "import swimgossip"]),
        "agent until bound": _agent_cpu,
    }
    if old_src is not None:
        cases["old: import swimgossip"] = lambda: _child_cpu(
            [py, "-c", "import swimgossip"], old_src
        )
        cases["old: agent until bound"] = lambda: _agent_cpu(old_src)
    for probe in cases.values():  # warm the bytecode caches
        probe()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, probe in cases.items():
            samples[name].append(probe())
    return {
        name: {"median": statistics.median(v), "min": min(v), "runs": len(v)}
        for name, v in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 runs of each")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--old-src", metavar="DIR", help="another src/ tree to run in turn")
    args = parser.parse_args()
    runs = 5 if args.quick else max(1, min(args.runs, 100))
    load_before = os.getloadavg()
    results = measure(runs, args.old_src)
    load_after = os.getloadavg()
    floor = results["import trio"]["median"]
    print(f"cold start, CPU s (user + system), {runs} alternating runs of each")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    print(f"{'what':<24} {'median s':>9} {'min s':>7} {'median / import trio':>21}")
    for name, row in results.items():
        ratio = row["median"] / floor if floor else float("nan")
        row["ratio"] = ratio
        print(f"{name:<24} {row['median']:>9.3f} {row['min']:>7.3f} {ratio:>21.2f}")
    if args.json:
        payload = {"results": results, "load": [load_before[0], load_after[0]]}
        with open(args.json, "w") as out:
            json.dump(payload, out, indent=2)


if __name__ == "__main__":
    main()
