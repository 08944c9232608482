"""What the asyncio and threads doors cost: idle CPU of one node hosted by Trio, by asyncio
(``swimgossip.aio``, Trio as a guest on the loop) and by a thread (``swimgossip.blocking``),
measured side by side in one sitting.

Reported, never asserted: this is not a test. ``python benchmarks/bench_doors.py [--quick]``
(``--rounds``, ``--seconds``, ``--json FILE``); docs/benchmarks.md holds a recorded run.

How. A peer process runs 4 Trio nodes (LAN preset) on 127.0.0.1. Each measured node runs in
its own child process: it joins the peers, waits until it sees all 5 members alive, then
measures its own process CPU time (``time.process_time``: every thread, so the blocking
door's caller thread and Trio's guest I/O thread count) over a fixed window of wall time in
which it does nothing but take part in the protocol (probing and being probed, gossip,
push-pull). The three hosts alternate within each round, the order rotating from round to
round, so load from elsewhere on the machine falls on all of them alike. The load average
is printed before and after. Every loop is bounded: rounds, a window, a join deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

import trio

import swimgossip
import swimgossip.aio
import swimgossip.blocking

DOORS = ("trio", "asyncio", "blocking")
PEERS = 4
JOIN_DEADLINE = 30.0


# ---------------------------------------------------------------------------- children


def _alive(members: list[swimgossip.Member]) -> int:
    return sum(m.status is swimgossip.Status.ALIVE for m in members)


async def _peers_main() -> None:
    """Run PEERS nodes joined together; print the first one's address; stop on stdin EOF."""
    config = swimgossip.Config.lan()
    async with trio.open_nursery() as nursery:
        nodes = []
        for index in range(PEERS):

            async def run(index: int = index, *, task_status: Any) -> None:
                async with swimgossip.open_node(
                    f"peer{index}", bind="127.0.0.1:0", config=config
                ) as node:
                    task_status.started(node)
                    await node.wait_stopped()

            nodes.append(await nursery.start(run))
        for node in nodes[1:]:
            await node.join([nodes[0].address])
        print(nodes[0].address, flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # until the parent closes it
        nursery.cancel_scope.cancel()


def _report(cpu: float, wall: float, alive: int) -> None:
    print(json.dumps({"cpu_seconds": cpu, "wall_seconds": wall, "alive": alive}), flush=True)


def _child(door: str, seed: str, seconds: float) -> None:
    config = swimgossip.Config.lan()
    want = PEERS + 1
    if door == "trio":

        async def trio_main() -> None:
            async with swimgossip.open_node("measured", bind="127.0.0.1:0", config=config) as node:
                with trio.fail_after(JOIN_DEADLINE):
                    await node.join([seed])
                    async with node.subscribe(snapshot=True) as events:
                        async for _ in events:
                            if _alive(node.members()) >= want:
                                break
                cpu0, wall0 = time.process_time(), time.monotonic()
                await trio.sleep(seconds)
                cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
                _report(cpu, wall, _alive(node.members()))

        trio.run(trio_main)
    elif door == "asyncio":

        async def asyncio_main() -> None:
            async with swimgossip.aio.open_node(
                "measured", bind="127.0.0.1:0", config=config
            ) as node:
                async with asyncio.timeout(JOIN_DEADLINE):
                    await node.join([seed])
                    async with node.subscribe(snapshot=True) as events:
                        async for _ in events:
                            if _alive(node.members()) >= want:
                                break
                cpu0, wall0 = time.process_time(), time.monotonic()
                await asyncio.sleep(seconds)
                cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
                _report(cpu, wall, _alive(node.members()))

        asyncio.run(asyncio_main())
    else:
        with swimgossip.blocking.start_node("measured", bind="127.0.0.1:0", config=config) as node:
            node.join([seed], timeout=JOIN_DEADLINE)
            for _ in node.events(timeout=JOIN_DEADLINE, snapshot=True):
                if _alive(node.members()) >= want:
                    break
            cpu0, wall0 = time.process_time(), time.monotonic()
            time.sleep(seconds)  # the measurement window: the caller thread is idle
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            _report(cpu, wall, _alive(node.members()))


# ---------------------------------------------------------------------------- parent


def _measure(door: str, seed: str, seconds: float) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", door, "--seed", seed, "--seconds", str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + JOIN_DEADLINE + 60,
        check=True,
    )
    values: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5 s")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    parser.add_argument("--child", choices=DOORS, help=argparse.SUPPRESS)
    parser.add_argument("--peers", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peers:
        trio.run(_peers_main)
        return
    if args.child:
        _child(args.child, args.seed, args.seconds)
        return
    rounds, seconds = (2, 5.0) if args.quick else (args.rounds, args.seconds)

    load_before = os.getloadavg()
    peers = subprocess.Popen(
        [sys.executable, __file__, "--peers"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert peers.stdout is not None and peers.stdin is not None
    seed = peers.stdout.readline().strip()
    samples: dict[str, list[float]] = {door: [] for door in DOORS}
    try:
        for index in range(rounds):
            order = DOORS[index % 3 :] + DOORS[: index % 3]
            for door in order:
                values = _measure(door, seed, seconds)
                percent = 100 * values["cpu_seconds"] / values["wall_seconds"]
                samples[door].append(percent)
                print(
                    f"round {index + 1}/{rounds} {door:8s} {percent:6.3f} % of a core "
                    f"({values['alive']} alive)",
                    flush=True,
                )
    finally:
        peers.stdin.close()
        peers.wait(timeout=60)
    load_after = os.getloadavg()

    trio_median = statistics.median(samples["trio"])
    summary = {
        door: {
            "median_percent": statistics.median(values),
            "min_percent": min(values),
            "max_percent": max(values),
            "ratio_to_trio": statistics.median(values) / trio_median if trio_median else None,
        }
        for door, values in samples.items()
    }
    print(
        f"\nidle CPU of one node in a {PEERS + 1}-node LAN cluster, {rounds} rounds of "
        f"{seconds:g} s each, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores"
    )
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*load_before))
    print("load average after:  {:.2f} {:.2f} {:.2f}".format(*load_after))
    print("| host | median % of a core | min | max | vs Trio |")
    print("|---|---|---|---|---|")
    for door, row in summary.items():
        print(
            f"| {door} | {row['median_percent']:.3f} | {row['min_percent']:.3f} | "
            f"{row['max_percent']:.3f} | {row['ratio_to_trio']:.2f}x |"
        )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {"summary": summary, "samples": samples, "load": [load_before, load_after]},
                out,
                indent=2,
            )


if __name__ == "__main__":
    main()
