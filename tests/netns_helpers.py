"""A private lab network of Linux network namespaces, and agents running inside it.

How this works. ``open_lab(n)`` creates ``n + 1`` namespaces named ``sgtest-<pid>-<run>-*``:
one holds only a bridge (``br0``); each of the ``n`` members is joined to it by a veth pair
(``eth0`` inside the member, ``v<i>`` on the bridge) and gets ``10.213.0.<i>/24``. Nothing
is added to the caller's namespace, so the addresses collide with nothing and two runs at
once do not see each other. Each member namespace holds one nftables table (``inet
sgtest``) with an ``input`` chain: faults are rules in that chain (every rule counts what
it drops), and ``heal`` flushes them. Leaving the block kills every process started in the
lab and deletes every namespace, even when the test failed; namespaces left by a test
process that was killed outright are deleted by the next ``open_lab``.

``NetnsAgent`` is ``cli_helpers.Process`` started under ``ip netns exec`` (which execs, so
the child's pid is the Python process: signals reach the agent itself) and, where util-linux
has ``setpriv --pdeathsig``, killed by the kernel if the test process dies (a CI timeout),
plus ``read_pending`` to take in every line printed so far. ``view`` folds an agent's event
lines into what it believes now: member name -> status.

``unavailable()`` says why the lab cannot run here (not root, no ``ip`` / ``nft``, no
namespaces in this container), or ``None``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from cli_helpers import Process, Record

#: The UDP and TCP port every agent binds inside its own namespace.
PORT = 7946
SUBNET = "10.213.0"
_TABLE = "inet sgtest"
_CHAIN = f"{_TABLE} input"
_RULESET = """
table inet sgtest {
    chain input {
        type filter hook input priority 0; policy accept;
    }
}
"""
_runs = itertools.count()


def _tool(name: str) -> str | None:
    """``name`` on PATH, or in the sbin directories a non-login root shell may lack."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _run(*command: str, stdin: str | None = None) -> str:
    """Run a command to completion (30 s at most); its stdout.

    Raises:
        RuntimeError: it exited non-zero (the message has the command and its stderr).
    """
    result = subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=30, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip() or result.returncode}")
    return result.stdout


def unavailable() -> str | None:
    """Why network-namespace tests cannot run here, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "needs root (creates network namespaces and nftables rules)"
    ip, nft = _tool("ip"), _tool("nft")
    if ip is None or nft is None:
        missing = " and ".join(n for n, p in (("ip", ip), ("nft", nft)) if p is None)
        return f"{missing} not installed (apt-get install iproute2 nftables)"
    probe = f"sgtest-{os.getpid()}-probe"
    try:
        _run(ip, "netns", "add", probe)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot create a network namespace here (no CAP_SYS_ADMIN?): {exc}"
    try:
        _run(ip, "-n", probe, "link", "add", "br0", "type", "bridge")
        _run(ip, "netns", "exec", probe, nft, "-f", "-", stdin=_RULESET)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"namespaces work but bridges or nftables do not: {exc}"
    finally:
        subprocess.run([ip, "netns", "del", probe], capture_output=True, timeout=30, check=False)
    return None


class NetnsAgent(Process):
    """``python -m swimgossip ARGS`` run inside network namespace ``namespace`` (and killed
    with the test process when ``setpriv`` is there); every reading method is the base
    class's."""

    def __init__(self, namespace: str, member: str, *args: str) -> None:
        self.member = member
        ip, setpriv = _tool("ip"), _tool("setpriv")
        assert ip is not None
        orphan_guard = [setpriv, "--pdeathsig", "KILL"] if setpriv else []
        super().__init__(*args, prefix=(ip, "netns", "exec", namespace, *orphan_guard))

    def read_pending(self) -> None:
        """Take in every stdout line the agent has printed so far, without waiting."""
        for _ in range(self._queue.qsize()):  # what is there now, not what keeps coming
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return
            if line is None:
                self._queue.put(None)  # stay closed
                return
            self.lines.append(line)

    def tail(self, count: int = 15) -> str:
        """The last lines of stdout and stderr, for failure messages."""
        return (
            f"--- {self.member} stdout (last {count}):\n"
            + "\n".join(self.lines[-count:])
            + f"\n--- {self.member} stderr (last {count}):\n"
            + "\n".join(self.stderr[-count:])
        )


def view(records: Sequence[Record]) -> dict[str, str]:
    """Member name -> status, as the agent that printed ``records`` believes now."""
    members: dict[str, str] = {}
    for record in records:
        if "member" in record and "status" in record:
            members[record["member"]] = record["status"]
    return members


class Lab:
    """The namespaces of one ``open_lab`` block; use through ``open_lab``."""

    def __init__(self, size: int) -> None:
        ip, nft = _tool("ip"), _tool("nft")
        assert ip is not None and nft is not None, unavailable()
        self._ip, self._nft = ip, nft
        prefix = f"sgtest-{os.getpid()}-{next(_runs)}"
        self.bridge_namespace = f"{prefix}-br"
        self.names = [f"n{i}" for i in range(1, size + 1)]
        self.namespaces = {name: f"{prefix}-{name}" for name in self.names}
        self.agents: dict[str, NetnsAgent] = {}
        self._created: list[str] = []

    def address(self, name: str) -> str:
        """``ip:port`` of member ``name`` (``n1`` is ``10.213.0.1:7946``)."""
        return f"{SUBNET}.{self.names.index(name) + 1}:{PORT}"

    def _create(self) -> None:
        ip, bridge = self._ip, self.bridge_namespace
        _run(ip, "netns", "add", bridge)
        self._created.append(bridge)
        _run(ip, "-n", bridge, "link", "add", "br0", "type", "bridge")
        _run(ip, "-n", bridge, "link", "set", "br0", "up")
        for index, name in enumerate(self.names, start=1):
            namespace = self.namespaces[name]
            _run(ip, "netns", "add", namespace)
            self._created.append(namespace)
            _run(ip, "-n", bridge, "link", "add", f"v{index}", "type", "veth",
                 "peer", "name", "eth0", "netns", namespace)  # fmt: skip
            _run(ip, "-n", bridge, "link", "set", f"v{index}", "master", "br0", "up")
            _run(ip, "-n", namespace, "link", "set", "lo", "up")
            _run(ip, "-n", namespace, "addr", "add", f"{SUBNET}.{index}/24", "dev", "eth0")
            _run(ip, "-n", namespace, "link", "set", "eth0", "up")
            self._nft_in(name, "-f", "-", stdin=_RULESET)

    def _destroy(self) -> None:
        for agent in self.agents.values():
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                agent.kill()  # SIGKILL also ends a SIGSTOPped process
        for namespace in reversed(self._created):
            subprocess.run(
                [self._ip, "netns", "del", namespace], capture_output=True, timeout=30, check=False
            )

    def _nft_in(self, name: str, *args: str, stdin: str | None = None) -> str:
        return _run(self._ip, "netns", "exec", self.namespaces[name], self._nft, *args, stdin=stdin)

    # -------------------------------------------------------------- agents

    def start(self, name: str, *extra: str, join: str | None = None) -> NetnsAgent:
        """Start ``swimgossip agent`` for member ``name`` (joining ``join`` if given)."""
        args = ["agent", "--name", name, "--bind", self.address(name), *extra]
        if join is not None:
            args += ["--join", self.address(join)]
        agent = NetnsAgent(self.namespaces[name], name, *args)
        self.agents[name] = agent
        return agent

    def start_cluster(self, timeout: float, *extra: str) -> None:
        """Start every member at once and wait until each sees every one alive.

        ``n1`` is the seed; the others join it, retrying (``--join-timeout``) until it is
        up, so no agent waits for another's interpreter to start.
        """
        seed = self.names[0]
        self.start(seed, *extra)
        for name in self.names[1:]:
            self.start(name, *extra, "--join-timeout", f"{timeout:g}", join=seed)
        self.wait_converged(timeout, "every member alive")

    def running(self) -> list[str]:
        """The members whose agent process is still running."""
        return [name for name, agent in self.agents.items() if agent.popen.poll() is None]

    # -------------------------------------------------------------- observing

    def views(self, observers: Sequence[str]) -> dict[str, dict[str, str]]:
        """Each observer's current view (after taking in what it has printed)."""
        out = {}
        for name in observers:
            agent = self.agents[name]
            agent.read_pending()
            out[name] = view(agent.records)
        return out

    @staticmethod
    def all_alive(names: Sequence[str]) -> Callable[[str, dict[str, str]], bool]:
        """A view condition: exactly ``names`` are alive (others may be dead / left)."""
        expected = set(names)

        def holds(observer: str, members: dict[str, str]) -> bool:
            return {m for m, s in members.items() if s == "alive"} == expected

        return holds

    def wait_views(
        self,
        observers: Sequence[str],
        condition: Callable[[str, dict[str, str]], bool],
        timeout: float,
        what: str,
    ) -> float:
        """Poll until ``condition(observer, view)`` holds for every observer at once.

        Returns:
            The seconds it took.

        Raises:
            AssertionError: not within ``timeout`` seconds, or an observer's process
                exited; the message has every view and the observers' last lines.
        """
        started = time.monotonic()
        deadline = started + timeout
        while True:
            views = self.views(observers)
            if all(condition(name, views[name]) for name in observers):
                return time.monotonic() - started
            dead = [n for n in observers if self.agents[n].popen.poll() is not None]
            if dead or time.monotonic() >= deadline:
                why = f"agents {dead} exited" if dead else f"not within {timeout} s"
                details = "\n".join(f"{n}: {views[n]}" for n in observers)
                tails = "\n".join(self.agents[n].tail() for n in observers)
                raise AssertionError(f"{what}: {why}\nviews:\n{details}\n{tails}")
            time.sleep(0.2)

    def wait_converged(self, timeout: float, what: str) -> float:
        """Wait until every running agent sees exactly the running agents alive."""
        running = self.running()
        return self.wait_views(running, self.all_alive(running), timeout, what)

    def events(
        self, event: str, *, about: Sequence[str] | None = None, since: float = 0.0
    ) -> list[Record]:
        """Every ``event`` line printed so far by any agent with ``ts >= since`` (a
        ``time.time()``), about one of ``about`` if given, each tagged with ``observer``."""
        found = []
        for name, agent in self.agents.items():
            agent.read_pending()
            for record in agent.records:
                if (
                    record.get("event") == event
                    and record["ts"] >= since
                    and (about is None or record["member"] in about)
                ):
                    found.append({"observer": name, **record})
        return sorted(found, key=lambda r: r["ts"])

    # -------------------------------------------------------------- faults

    def set_udp_loss(self, percent: int) -> None:
        """Every member drops ``percent`` % of the agent datagrams it receives, at random.

        A first rule counts every agent datagram that arrives (``counters()["seen"]``).
        """
        udp = ["udp", "dport", str(PORT)]
        for name in self.names:
            self._nft_in(name, "add", "rule", *_CHAIN.split(), *udp, "counter")
            self._nft_in(
                name, "add", "rule", *_CHAIN.split(),
                *udp, "numgen", "random", "mod", "100", "<", str(percent), "counter", "drop",
            )  # fmt: skip

    def partition(self, *groups: Sequence[str]) -> None:
        """Members of different groups receive nothing (UDP or TCP) from each other."""
        for group in groups:
            others = [self.address(n).split(":")[0] for g in groups if g is not group for n in g]
            for name in group:
                self._nft_in(
                    name, "add", "rule", *_CHAIN.split(),
                    "ip", "saddr", "{", ", ".join(others), "}", "counter", "drop",
                )  # fmt: skip

    def heal(self) -> None:
        """Remove every fault rule."""
        for name in self.names:
            self._nft_in(name, "flush", "chain", *_CHAIN.split())

    def counters(self) -> dict[str, int]:
        """Packets counted by the fault rules now in place, over all members: ``dropped``
        by the dropping rules and ``seen`` by the counting-only ones."""
        totals = {"seen": 0, "dropped": 0}
        for name in self.names:
            for line in self._nft_in(name, "list", "chain", *_CHAIN.split()).splitlines():
                counted = re.search(r"counter packets (\d+)", line)
                if counted:
                    totals["dropped" if line.rstrip().endswith("drop") else "seen"] += int(
                        counted.group(1)
                    )
        return totals


def _remove_stale_namespaces(ip: str) -> None:
    """Delete the ``sgtest-<pid>-*`` namespaces of test processes that no longer exist."""
    listing = subprocess.run(
        [ip, "netns", "list"], capture_output=True, text=True, timeout=30, check=False
    )
    for line in listing.stdout.splitlines():
        found = re.match(r"(sgtest-(\d+)-\S+)", line)
        if found is None or int(found.group(2)) == os.getpid():
            continue
        try:
            os.kill(int(found.group(2)), 0)
        except ProcessLookupError:
            subprocess.run(
                [ip, "netns", "del", found.group(1)], capture_output=True, timeout=30, check=False
            )
        except PermissionError:
            pass  # that process is alive


@contextmanager
def open_lab(size: int) -> Iterator[Lab]:
    """A lab of ``size`` members ``n1``... (no agents yet); torn down on leaving."""
    lab = Lab(size)
    _remove_stale_namespaces(lab._ip)
    try:
        lab._create()
        yield lab
    finally:
        lab._destroy()
