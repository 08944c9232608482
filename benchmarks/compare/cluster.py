"""Agent processes on loopback (or in a network namespace), their events, their costs.

How this works. ``LocalCluster`` starts N processes of one system: the seed first (waits
for its own ``joined`` line), then the rest all at once, each joining through the seed.
One reader thread per process turns output lines into ``Event`` values (see
``systems.py``) and appends them to that agent's list; scenarios read those lists.
Every wait is bounded by a deadline; ``close()`` SIGKILLs every process it started (by
its own pid, after SIGCONT in case a scenario left one stopped) and is called from a
``finally``. ``NetNamespace`` creates a namespace with only ``lo`` up, installs an
nftables table that drops a random share of every packet entering ``lo`` (UDP and TCP),
and deletes the namespace in its ``__exit__``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import IO

from systems import Event, System

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PORTS = itertools.count(0)


def next_base_port(n: int) -> int:
    """A fresh block of ports for each cluster (avoids TIME_WAIT and stragglers)."""
    return 21000 + (next(_PORTS) % 40) * 100


@dataclass
class Agent:
    name: str
    port: int
    process: subprocess.Popen[str]
    events: list[Event] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        """user + system CPU time of the process, from /proc/PID/stat."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")


class NetNamespace:
    """A network namespace with only ``lo``, and nftables random loss on it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.created = False

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def __enter__(self) -> NetNamespace:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "add", self.name], check=True, timeout=10)
        self.created = True
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True, timeout=10)
        return self

    def set_loss(self, percent: int) -> None:
        """Drop ``percent`` % of all packets entering lo (0 removes the rule)."""
        ruleset = "table inet benchloss\ndelete table inet benchloss\n"
        if percent > 0:
            ruleset += (
                "table inet benchloss {\n"
                "  chain input {\n"
                "    type filter hook input priority 0; policy accept;\n"
                f'    iifname "lo" numgen random mod 100 < {percent} counter drop\n'
                "  }\n"
                "}\n"
            )
        subprocess.run(
            [*self.prefix, "nft", "-f", "-"], input=ruleset, text=True, check=True, timeout=10
        )

    def dropped(self) -> str:
        out = subprocess.run(
            [*self.prefix, "nft", "list", "table", "inet", "benchloss"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        for line in out.stdout.splitlines():
            if "counter" in line:
                return line.split("counter", 1)[1].replace("drop", "").strip()
        return ""

    def __exit__(self, *exc: object) -> None:
        if self.created:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)


def available_netns() -> str | None:
    """None if namespaces and nftables work here, else why not."""
    if os.geteuid() != 0:
        return "not root"
    try:
        with NetNamespace(f"sgprobe{os.getpid()}") as ns:
            ns.set_loss(10)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"ip netns / nft unavailable: {exc}"
    return None


class LocalCluster:
    """N agents of one system. Use in ``try: ... finally: cluster.close()``."""

    def __init__(self, system: System, n: int, *, netns: NetNamespace | None = None) -> None:
        self.system = system
        self.n = n
        self.netns = netns
        self.base = next_base_port(n)
        self.agents: dict[str, Agent] = {}
        self.by_address: dict[str, str] = {}
        self.started_at = 0.0
        self.all_started_at = 0.0
        self.last_startup_s: float | None = None

    def _prefix(self) -> list[str]:
        return self.netns.prefix if self.netns else []

    def _launch(self, index: int, seeds: list[int]) -> Agent:
        name = f"n{index:02d}"
        port = self.base + index
        self.by_address[f"127.0.0.1:{port}"] = name
        command = [*self._prefix(), *self.system.command(name, port, seeds, self.n)]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        agent = Agent(name, port, process)
        agent.reader = threading.Thread(target=self._read, args=(agent,), daemon=True)
        agent.reader.start()
        self.agents[name] = agent
        return agent

    def _read(self, agent: Agent) -> None:
        stream: IO[str] = agent.process.stdout  # type: ignore[assignment]
        for line in stream:
            arrived = time.time()
            parsed = self.system.parse(line.strip(), arrived)
            if parsed is None:
                continue
            kind, member, extra, ts = parsed
            member = self.by_address.get(member, member)
            agent.events.append(Event(ts, agent.name, kind, member, extra))

    def _wait_self_report(self, agent: Agent, timeout: float = 20.0) -> float | None:
        """Wait (bounded) until ``agent`` reports itself joined; when it did (epoch s)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for event in list(agent.events):
                if event.kind == "joined" and event.member == agent.name:
                    return event.ts
            if not agent.alive():
                raise RuntimeError(f"{self.system.name}: {agent.name} exited at start")
            time.sleep(0.02)
        return None

    def start(self, timeout: float = 60.0, *, one_by_one: bool = False) -> None:
        """Start the seed, wait until it reports itself, then start the others: all at
        once, or (``one_by_one``) each after the previous one reported itself, so no
        start waits on another's interpreter start-up."""
        self.started_at = time.time()
        seed = self._launch(0, [])
        self._wait_self_report(seed)
        for index in range(1, self.n):
            if one_by_one and index == self.n - 1:
                break
            agent = self._launch(index, [self.base])
            if one_by_one:
                self._wait_self_report(agent)
        if one_by_one:
            time.sleep(2.0)  # let the others converge before the last one starts
            self.all_started_at = time.time()
            last = self._launch(self.n - 1, [self.base])
            reported = self._wait_self_report(last)
            #: Seconds from the last launch until it reported itself (its start-up).
            self.last_startup_s = None if reported is None else reported - self.all_started_at
            return
        self.all_started_at = time.time()

    def wait_converged(self, timeout: float) -> float | None:
        """Seconds from the last launch until every agent has reported every other
        member joined; None if that did not happen within ``timeout``."""
        names = set(self.agents)
        deadline = time.time() + timeout
        while time.time() < deadline:
            done = True
            latest = 0.0
            for agent in self.agents.values():
                seen: dict[str, float] = {}
                for event in list(agent.events):
                    if event.kind == "joined" and event.member not in seen:
                        seen[event.member] = event.ts
                others = names - {agent.name}
                if not others <= seen.keys():
                    done = False
                    break
                latest = max(latest, *(seen[o] for o in others))
            if done:
                return max(0.0, latest - self.all_started_at)
            time.sleep(0.1)
        return None

    def events(self, since: float = 0.0) -> list[Event]:
        out = [e for a in self.agents.values() for e in list(a.events) if e.ts >= since]
        out.sort(key=lambda e: e.ts)
        return out

    def signal(self, name: str, signum: int) -> None:
        os.kill(self.agents[name].pid, signum)

    def close(self) -> None:
        for agent in self.agents.values():
            if agent.alive():
                for signum in (signal.SIGCONT, signal.SIGKILL):
                    try:
                        os.kill(agent.pid, signum)
                    except ProcessLookupError:
                        break
        for agent in self.agents.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                agent.process.wait(timeout=10)
            if agent.reader is not None:
                agent.reader.join(timeout=2)
