"""The four systems behind one small adapter each, and the installation of the peers.

How this works. An adapter turns (name, port, seeds, cluster size) into a command line and
turns one line of that process's output into an ``Event`` (or nothing). Every system is
made to print, or is read for, the same five verdicts: joined, suspected, failed,
recovered, updated. Timestamps: swimgossip and the two Python runners print their own
``ts`` (float seconds); Serf's log has whole seconds only, so Serf lines are stamped by
the harness when they arrive on the pipe (a reader thread per process; sub-millisecond
on an idle machine, and the same clock as ``time.time()``).

Serf is read from its log at ``-log-level=info`` (not event-handler scripts, which would
fork a shell per event and add their own delay): ``serf: EventMemberJoin: NAME ADDR``,
``serf: EventMemberFailed: NAME ADDR``, ``serf: EventMemberUpdate: NAME``,
``serf: EventMemberLeave: NAME ADDR`` and ``memberlist: Suspect NAME has failed, no acks
received`` (logged by the member whose probe failed; suspicions learned by gossip are not
logged by memberlist, so Serf's "first suspicion" is the first prober's). All the lines
the harness needs are INFO; debug would only add log-writing cost to Serf's CPU figure.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PEERS = ROOT / "benchmarks" / ".peers"
RUNNERS = HERE / "runners"
SWIMGOSSIP_PYTHON = Path(sys.executable)

PEER_PACKAGES = {"kinship": "kinship==0.4.0", "swim-protocol": "swim-protocol==0.6.3"}


@dataclass(frozen=True)
class Event:
    """One verdict printed by one agent about one member."""

    ts: float
    observer: str
    kind: str  # joined | suspected | failed | recovered | updated | left
    member: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def suspicion_floor(n: int, mult: int = 4, probe_interval: float = 1.0) -> float:
    """memberlist's suspicion minimum: ``mult * max(1, log10(N)) * probe_interval``."""
    return mult * max(1.0, math.log10(max(n, 1))) * probe_interval


class System:
    """The adapter interface. ``name`` is what the tables print."""

    name = ""
    #: Can this system change a member's metadata at runtime from outside the process?
    can_update_meta = False
    why_no_meta = ""

    def available(self) -> str | None:
        """None when runnable, else the reason it is not."""
        raise NotImplementedError

    def command(self, name: str, port: int, seeds: list[int], n: int) -> list[str]:
        raise NotImplementedError

    def rpc_port(self, port: int) -> int | None:
        return None

    def parse(self, line: str, arrived: float) -> tuple[str, str, dict[str, Any], float] | None:
        """(kind, member, extra, ts) from one output line, or None."""
        raise NotImplementedError

    def update_meta(self, pid: int, port: int, netns_prefix: list[str]) -> None:
        raise NotImplementedError(self.why_no_meta)


def _parse_json(line: str, arrived: float) -> tuple[str, str, dict[str, Any], float] | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    kind = record.get("event")
    member = record.get("member")
    if not isinstance(kind, str) or not isinstance(member, str):
        return None
    ts = record.get("ts")
    return kind, member, record, float(ts) if isinstance(ts, int | float) else arrived


class Swimgossip(System):
    name = "swimgossip"
    #: The agent re-reads --meta-file on SIGHUP and announces the new metadata.
    can_update_meta = True
    preset = "lan"

    def available(self) -> str | None:
        probe = subprocess.run(
            [str(SWIMGOSSIP_PYTHON), "-m", "swimgossip", "agent", "--help"],
            capture_output=True,
            timeout=60,
        )
        return None if probe.returncode == 0 else "`python -m swimgossip agent` is missing"

    @staticmethod
    def _meta_file(port: int) -> Path:
        folder = PEERS / "swimgossip-meta"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{port}.meta"

    def command(self, name: str, port: int, seeds: list[int], n: int) -> list[str]:
        meta_file = self._meta_file(port)
        meta_file.write_text("v=0\n")
        cmd = [str(SWIMGOSSIP_PYTHON), "-m", "swimgossip", "agent", "--name", name]
        cmd += ["--bind", f"127.0.0.1:{port}", "--preset", self.preset]
        cmd += ["--meta-file", str(meta_file)]
        for seed in seeds:
            cmd += ["--join", f"127.0.0.1:{seed}"]
        return [*cmd, "--log-level", "warning"]

    def parse(self, line: str, arrived: float) -> tuple[str, str, dict[str, Any], float] | None:
        return _parse_json(line, arrived)

    def update_meta(self, pid: int, port: int, netns_prefix: list[str]) -> None:
        self._meta_file(port).write_text(f"v={time.time():.3f}\n")
        os.kill(pid, signal.SIGHUP)


class SwimgossipFast(Swimgossip):
    """swimgossip with its ``fast`` preset (probe 0.5 s, suspicion floor 3.5 s)."""

    name = "swimgossip-fast"
    preset = "fast"


class Serf(System):
    name = "serf"
    can_update_meta = True
    _join = re.compile(r"serf: EventMemberJoin: (\S+)")
    _failed = re.compile(r"serf: EventMemberFailed: (\S+)")
    _left = re.compile(r"serf: EventMemberLeave: (\S+)")
    _update = re.compile(r"serf: EventMemberUpdate: (\S+)")
    _suspect = re.compile(r"memberlist: Suspect (\S+) has failed")
    _marked = re.compile(r"memberlist: Marking (\S+) as failed.*\((\d+) peer confirmations\)")

    def available(self) -> str | None:
        if shutil.which("serf") is None:
            return "the `serf` command is missing (apt-get install serf)"
        return None

    def rpc_port(self, port: int) -> int | None:
        return port + 5000

    def command(self, name: str, port: int, seeds: list[int], n: int) -> list[str]:
        cmd = ["serf", "agent", "-node", name, "-bind", f"127.0.0.1:{port}"]
        cmd += ["-rpc-addr", f"127.0.0.1:{port + 5000}", "-tag", "v=0", "-log-level=info"]
        for seed in seeds:
            cmd += ["-join", f"127.0.0.1:{seed}"]
        return cmd

    def parse(self, line: str, arrived: float) -> tuple[str, str, dict[str, Any], float] | None:
        for pattern, kind in (
            (self._failed, "failed"),
            (self._suspect, "suspected"),
            (self._join, "joined"),
            (self._update, "updated"),
            (self._left, "left"),
        ):
            match = pattern.search(line)
            if match:
                return kind, match.group(1), {}, arrived
        match = self._marked.search(line)
        if match:
            return "marked", match.group(1), {"confirmations": int(match.group(2))}, arrived
        return None

    def update_meta(self, pid: int, port: int, netns_prefix: list[str]) -> None:
        subprocess.run(
            [
                *netns_prefix,
                "serf",
                "tags",
                f"-rpc-addr=127.0.0.1:{port + 5000}",
                f"-set=v={time.time():.3f}",
            ],
            check=True,
            capture_output=True,
            timeout=10,
        )


class Kinship(System):
    name = "kinship"
    can_update_meta = True

    @property
    def python(self) -> Path:
        return PEERS / "kinship" / "bin" / "python"

    def available(self) -> str | None:
        return None if self.python.exists() else "kinship's virtualenv could not be made"

    def command(self, name: str, port: int, seeds: list[int], n: int) -> list[str]:
        cmd = [str(self.python), str(RUNNERS / "kinship_runner.py"), "--name", name]
        cmd += ["--bind", f"127.0.0.1:{port}"]
        for seed in seeds:
            cmd += ["--join", f"127.0.0.1:{seed}"]
        return cmd

    def parse(self, line: str, arrived: float) -> tuple[str, str, dict[str, Any], float] | None:
        return _parse_json(line, arrived)

    def update_meta(self, pid: int, port: int, netns_prefix: list[str]) -> None:
        os.kill(pid, 10)  # SIGUSR1: the runner sets v=<now>


class SwimProtocol(Kinship):
    name = "swim-protocol"

    @property
    def python(self) -> Path:
        return PEERS / "swim-protocol" / "bin" / "python"

    def available(self) -> str | None:
        return None if self.python.exists() else "swim-protocol's virtualenv could not be made"

    def command(self, name: str, port: int, seeds: list[int], n: int) -> list[str]:
        # swim-protocol's failure detector needs one peer from the start (it asserts a
        # probe target exists), so the seed is given the second member as its peer.
        peers = seeds or [port + 1]
        cmd = [str(self.python), str(RUNNERS / "swimprotocol_runner.py")]
        cmd += ["--bind", f"127.0.0.1:{port}", "--suspect-timeout", f"{suspicion_floor(n):.3f}"]
        for peer in peers:
            cmd += ["--join", f"127.0.0.1:{peer}"]
        return cmd


ALL_SYSTEMS: list[System] = [Swimgossip(), SwimgossipFast(), Serf(), Kinship(), SwimProtocol()]


def install_peers(log: Any) -> None:
    """Install Serf (Debian) and the two PyPI peers (one virtualenv each) if missing.

    Never raises: a peer that cannot be installed is reported by ``available()``.
    """
    if shutil.which("serf") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing serf with apt-get ...")
        try:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
            subprocess.run(
                ["apt-get", "install", "-y", "-qq", "serf"], capture_output=True, timeout=600
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log(f"serf install failed: {exc}")
    for peer, requirement in PEER_PACKAGES.items():
        venv = PEERS / peer
        if (venv / "bin" / "python").exists() and (venv / ".installed").exists():
            continue
        log(f"installing {requirement} into {venv} ...")
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300
            )
            subprocess.run(
                [str(venv / "bin" / "pip"), "install", "--quiet", requirement],
                check=True,
                timeout=600,
            )
            (venv / ".installed").write_text(requirement + "\n")
        except (OSError, subprocess.SubprocessError) as exc:
            log(f"{requirement}: install failed: {exc}")
            shutil.rmtree(venv / "bin", ignore_errors=True)
