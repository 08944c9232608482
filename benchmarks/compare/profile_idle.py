"""Profile one idle ``swimgossip agent`` in a converged cluster with py-spy.

How this works. Starts N agents (default 32) with the harness's ``LocalCluster``, waits
for convergence and 5 s more, then samples one agent (n05) with ``py-spy record --format
raw`` for the given seconds and prints (a) the functions where samples landed (own time)
and (b) the functions on the stack of most samples (inclusive), plus the CPU seconds the
agent used meanwhile. py-spy is installed into benchmarks/.peers/tools when missing.
``--strace`` counts the agent's system calls over the window instead (``strace -c``): wake-ups
(``epoll_wait``) and sends per second, steadier than CPU time on a shared machine.

    python benchmarks/compare/profile_idle.py [--nodes 32] [--seconds 30] [--strace]
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import LocalCluster
from systems import PEERS, Swimgossip


def py_spy() -> Path:
    tool = PEERS / "tools" / "bin" / "py-spy"
    if not tool.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS / "tools")], check=True)
        subprocess.run(
            [str(PEERS / "tools" / "bin" / "pip"), "install", "-q", "py-spy"], check=True
        )
    return tool


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--strace", action="store_true", help="count the agent's system calls instead (strace -c)"
    )
    args = parser.parse_args()
    tool = Path("/usr/bin/strace") if args.strace else py_spy()
    cluster = LocalCluster(Swimgossip(), args.nodes)
    try:
        cluster.start()
        if cluster.wait_converged(timeout=90) is None:
            print("did not converge", file=sys.stderr)
            return 1
        time.sleep(5)
        agent = cluster.agents["n05"]
        cpu_before = agent.cpu_seconds()
        if args.strace:  # a deterministic-ish count: system calls (wake-ups) per second
            counted = subprocess.run(
                # timeout sends SIGINT after the window: strace then detaches and reports.
                ["timeout", "-s", "INT", str(args.seconds), str(tool), "-c", "-fp", str(agent.pid)],
                capture_output=True,
                text=True,
                timeout=args.seconds + 60,
                check=False,
            )
            used = agent.cpu_seconds() - cpu_before
            print(
                f"agent n05 of {args.nodes}, idle, under strace: {used:.2f} CPU s in "
                f"{args.seconds} s; system calls (per second = calls / {args.seconds}):"
            )
            print(counted.stderr)
            return 0
        with tempfile.NamedTemporaryFile(suffix=".txt") as out:
            subprocess.run(
                [
                    str(tool),
                    "record",
                    f"--pid={agent.pid}",
                    f"--duration={args.seconds}",
                    "--rate=1000",
                    "--format=raw",
                    f"--output={out.name}",
                    "--nonblocking",
                ],
                check=True,
                capture_output=True,
                timeout=args.seconds + 60,
            )
            stacks = Path(out.name).read_text().splitlines()
        used = agent.cpu_seconds() - cpu_before
    finally:
        cluster.close()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in stacks:
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
            if " (" in f
            else f
            for f in stack.split(";")
        ]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    print(
        f"agent n05 of {args.nodes}, idle: {used:.2f} CPU s in {args.seconds} s "
        f"= {used / args.seconds * 60:.3f} CPU s per minute; {total} samples of active "
        "Python stacks (idle waits are not sampled)"
    )
    print("\nown samples:")
    for frame, count in own.most_common(args.top):
        print(f"{count / max(total, 1):6.1%}  {frame}")
    print("\ninclusive samples:")
    for frame, count in inclusive.most_common(args.top):
        print(f"{count / max(total, 1):6.1%}  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
