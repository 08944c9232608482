"""kill -9 of a Go ``serf agent``: how soon our memberlist-mode node declares it failed,
next to how soon the other Go agents do, in one run.

How this works. On 127.0.0.1: ``--agents`` ``serf agent -profile=lan`` processes (go1
first, the others join it) and one swimgossip node in memberlist mode (``Config.lan()``,
memberlist's LAN numbers, in this process) joined to go1. Once everyone lists everyone
alive and ``--steady`` seconds passed, the last agent gets SIGKILL. Then, at once:

- our node: the ``MemberFailed`` event's arrival (``trio.current_time()``);
- each surviving Go agent: ``serf members`` polled every ``--poll`` seconds from its own
  thread until the victim shows ``failed`` (Serf's log has whole seconds only, and its
  member events are coalesced before event handlers run; the member list is not), so a
  Go figure is late by at most one poll plus one ``serf members`` call (~20 ms).

Prints each detection time in seconds after the kill, and the ratio of ours to the mean
of the Go agents' (below 1: ours was faster), with the machine's load average. One run:
the spread between runs is large (where in the probe round the kill lands, Lifeguard's
confirmations), so read it as one sample, not a mean.

    python benchmarks/bench_memberlist_detection.py [--agents 3] [--steady 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

import swimgossip
from swimgossip import Config, MemberFailed, Status


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _members(rpc: str) -> dict[str, str]:
    done = subprocess.run(
        ["serf", "members", f"-rpc-addr={rpc}", "-format=json"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if done.returncode != 0:
        return {}
    return {m["name"]: m["status"] for m in json.loads(done.stdout)["members"]}


def _poll_failed(rpc: str, victim: str, poll: float, limit: float) -> float | None:
    """monotonic time at which ``victim`` showed failed at ``rpc`` (None: not in time)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if _members(rpc).get(victim) == "failed":
            return time.monotonic()
        time.sleep(poll)
    return None


async def run(agents: int, steady: float, poll: float, limit: float) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="ml-detect-"))
    names = [f"go{i}" for i in range(1, agents + 1)]
    ports = {n: _free_port() for n in names}
    rpcs = {n: f"127.0.0.1:{_free_port()}" for n in names}
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str, join: str | None) -> None:
        cmd = ["serf", "agent", f"-node={name}", f"-bind=127.0.0.1:{ports[name]}"]
        cmd += [f"-rpc-addr={rpcs[name]}", "-profile=lan"]
        if join:
            cmd.append(f"-join=127.0.0.1:{ports[join]}")
        with (workdir / f"{name}.log").open("wb") as out:
            processes[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    try:
        start(names[0], None)
        with trio.fail_after(30):
            while _members(rpcs[names[0]]).get(names[0]) != "alive":
                await trio.sleep(0.1)
        for name in names[1:]:
            start(name, names[0])
        async with swimgossip.open_node(
            "py1", bind="127.0.0.1:0", config=Config.lan(), wire="memberlist"
        ) as node:
            with trio.fail_after(30):
                await node.join([f"127.0.0.1:{ports[names[0]]}"])
            everyone = {*names, "py1"}
            with trio.fail_after(60):
                while not (
                    {m.name for m in node.members(status=Status.ALIVE)} == everyone
                    and all(
                        set(_members(rpcs[n])) == everyone
                        and set(_members(rpcs[n]).values()) == {"alive"}
                        for n in names
                    )
                ):
                    await trio.sleep(0.2)
            await trio.sleep(steady)
            victim, observers = names[-1], names[:-1]
            ours: float | None = None
            go: dict[str, float | None] = {}

            async def watch_ours() -> None:
                nonlocal ours
                async with node.subscribe() as events:
                    async for event in events:
                        if isinstance(event, MemberFailed) and event.member.name == victim:
                            ours = time.monotonic()
                            return

            async def watch_go(name: str) -> None:
                go[name] = await trio.to_thread.run_sync(
                    _poll_failed, rpcs[name], victim, poll, limit
                )

            killed = 0.0
            with trio.move_on_after(limit + 5):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(watch_ours)
                    for name in observers:
                        nursery.start_soon(watch_go, name)
                    await trio.sleep(0.5)  # the watchers are subscribed and polling
                    killed = time.monotonic()
                    processes[victim].kill()
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
    after = {n: (None if t is None else round(t - killed, 2)) for n, t in go.items()}
    ours_after = None if ours is None else round(ours - killed, 2)
    go_times = [t for t in after.values() if t is not None]
    ratio = None
    if ours_after is not None and go_times:
        ratio = round(ours_after / (sum(go_times) / len(go_times)), 2)
    return {
        "agents": agents,
        "steady_s": steady,
        "swimgossip_py1_s": ours_after,
        "serf_agents_s": after,
        "ratio_ours_to_go_mean": ratio,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=3, help="serf agents (the last is killed)")
    parser.add_argument("--steady", type=float, default=10.0, help="seconds before the kill")
    parser.add_argument("--poll", type=float, default=0.1, help="serf members poll interval")
    parser.add_argument("--limit", type=float, default=60.0, help="most seconds to wait")
    args = parser.parse_args()
    if shutil.which("serf") is None:
        sys.exit("the serf binary is missing (apt-get install serf)")
    result = trio.run(run, args.agents, args.steady, args.poll, args.limit)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
