"""Real ``serf agent`` s (Go) on 127.0.0.1, for the tests that speak to the real thing.

``NEEDS_SERF`` is such a module's ``pytestmark``: the ``real_network`` marker and a skip,
with the reason, where the ``serf`` binary is missing (in CI, ``CI=true``, that skip is a
failure: ci_guard). ``Agent`` runs one agent, logging to a file, killed by its pid;
``serf`` runs the CLI once (bounded). ``wait_for_serf`` polls ``serf members`` (an external
process: bounded in count and time) and ``wait_alive`` waits on one of our nodes' events.
``Listener`` is a bare memberlist member's sockets (TCP and UDP on one port) and
``read_push_pull`` reads an agent's push-pull from it, for the tests that play a member by
hand.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import trio

from cli_helpers import free_port
from swimgossip import Node, Status
from swimgossip.net.memberlist import (
    MsgpackError,
    PushPull,
    WireError,
    decode_push_pull,
    decrypt_stream,
)

__all__ = [
    "DEADLINE",
    "NEEDS_SERF",
    "POLL",
    "Agent",
    "Listener",
    "agents",
    "free_port",
    "read_push_pull",
    "serf",
    "serf_members",
    "wait_alive",
    "wait_for_serf",
]

NEEDS_SERF = [
    pytest.mark.real_network,
    pytest.mark.skipif(
        shutil.which("serf") is None,
        reason="the serf binary is missing (apt-get install serf): cannot test against Go",
    ),
]

#: Seconds for any one wait on the agents (failure detection is ~5-10 s with -profile=local).
DEADLINE = 40.0
POLL = 0.25


def serf(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``serf ARGS`` once and wait for it (at most ``timeout`` seconds)."""
    return subprocess.run(["serf", *args], capture_output=True, text=True, timeout=timeout)


def serf_members(rpc: str) -> dict[str, dict[str, object]]:
    """``serf members`` at the agent whose RPC address is ``rpc``: name -> its JSON record
    (``status``, ``tags``...); empty if the agent does not answer."""
    done = serf("members", f"-rpc-addr={rpc}", "-format=json")
    if done.returncode != 0:
        return {}
    return {m["name"]: m for m in json.loads(done.stdout)["members"]}


class Agent:
    """One ``serf agent`` process on loopback, its output in ``log_dir/NAME.log``.

    Args:
        join: the address to ``-join``, if any.
        key: the ``-encrypt`` key (base64, as ``serf keygen`` prints it), if any.
        tags: ``-tag`` pairs.
        handler: an ``-event-handler``, if any.
        profile: the ``-profile`` (None: Serf's default, ``lan``).
        debug: ``-log-level=debug``.
    """

    def __init__(
        self,
        name: str,
        log_dir: Path,
        *,
        join: str | None = None,
        key: str | None = None,
        tags: Mapping[str, str] | None = None,
        handler: str | None = None,
        profile: str | None = "local",
        debug: bool = False,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.rpc = f"127.0.0.1:{free_port()}"
        cmd = ["serf", "agent", f"-node={name}", f"-bind=127.0.0.1:{self.port}"]
        cmd.append(f"-rpc-addr={self.rpc}")
        if profile is not None:
            cmd.append(f"-profile={profile}")
        if debug:
            cmd.append("-log-level=debug")
        for tag, value in (tags or {}).items():
            cmd += ["-tag", f"{tag}={value}"]
        if join is not None:
            cmd.append(f"-join={join}")
        if key is not None:
            cmd.append(f"-encrypt={key}")
        if handler is not None:
            cmd.append(f"-event-handler={handler}")
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        """kill -9, and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def tail(self) -> str:
        """The end of its log."""
        return self.log.read_text(errors="replace")[-3000:]

    async def run(self, command: str, *args: str) -> str:
        """``serf COMMAND -rpc-addr=ITS ARGS``: its output, or "" if it failed."""
        done = await trio.run_process(
            ["serf", command, f"-rpc-addr={self.rpc}", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        return done.stdout.decode(errors="replace") if done.returncode == 0 else ""

    async def members(self) -> dict[str, dict[str, object]]:
        """``serf_members`` here, from a thread."""
        return await trio.to_thread.run_sync(serf_members, self.rpc)


async def wait_for_serf(
    agent: Agent, want: Mapping[str, str], tags: Mapping[str, object] | None = None
) -> None:
    """Poll ``serf members`` at ``agent`` until it shows every ``want`` status and every
    ``tags`` (name -> tags), at most ``DEADLINE`` seconds."""
    tags = tags or {}
    seen: dict[str, dict[str, object]] = {}
    with trio.move_on_after(DEADLINE):
        for _ in range(int(DEADLINE / POLL)):
            seen = await agent.members()
            if all(seen.get(n, {}).get("status") == s for n, s in want.items()) and all(
                seen.get(n, {}).get("tags") == t for n, t in tags.items()
            ):
                return
            await trio.sleep(POLL)  # polling an external process
    raise AssertionError(
        f"serf members at {agent.name}: {seen}, wanted {want} {tags}\n{agent.tail()}"
    )


async def wait_alive(node: Node, names: set[str]) -> None:
    """Until ``node`` holds every one of ``names`` alive (bounded, event driven)."""
    with trio.fail_after(DEADLINE):
        async with node.subscribe() as events:
            while not names <= {m.name for m in node.members(status=Status.ALIVE)}:
                await events.receive()


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    """A list to put the test's agents in; each is killed when the test ends."""
    started: list[Agent] = []
    yield started
    for agent in started:
        agent.kill()


class Listener:
    """A TCP listener and a UDP socket on one loopback port, like a memberlist node."""

    def __init__(self) -> None:
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.port: int = self.tcp.getsockname()[1]
        self.tcp.listen(4)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))

    def close(self) -> None:
        self.tcp.close()
        self.udp.close()


def read_push_pull(
    conn: socket.socket, keys: list[bytes] | None, *, deadline: float = 20.0
) -> tuple[bytes, PushPull]:
    """Read an agent's push-pull from ``conn`` until it decodes (bounded in bytes and
    time): the raw bytes, and the push-pull (decrypted with ``keys`` if given)."""
    buf = b""
    end = time.monotonic() + deadline
    while time.monotonic() < end and len(buf) < 1 << 20:
        conn.settimeout(max(0.1, end - time.monotonic()))
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
        try:
            plain = decrypt_stream(keys, buf)[0] if keys is not None else buf
            return buf, decode_push_pull(plain)
        except MsgpackError:
            continue  # truncated so far
        except WireError as exc:
            if "truncated" in str(exc):
                continue
            raise
    raise AssertionError(f"no whole push-pull from the agent ({len(buf)} bytes)")
