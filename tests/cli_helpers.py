"""Run ``python -m swimgossip`` as real processes and read their output with deadlines.

``Process`` reads stdout and stderr on threads, so a test waits for an expected line with
a bounded deadline (never a sleep) and a chatty process never blocks on a full pipe.
``spawned()`` kills whatever is still running when the test ends.
"""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Record = dict[str, Any]


class Process:
    """One ``python -m swimgossip ...`` child; stdout lines parsed as JSON when they are."""

    def __init__(
        self, *args: str, prefix: tuple[str, ...] = (), command: tuple[str, ...] | None = None
    ) -> None:
        """Start ``python -m swimgossip ARGS``, run through ``prefix`` if given (e.g.
        ``ip netns exec NS``); ``command`` replaces ``python -m swimgossip``."""
        self.args = args
        program = (sys.executable, "-m", "swimgossip") if command is None else command
        self.popen = subprocess.Popen(
            [*prefix, *program, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._out = threading.Thread(target=self._pump_stdout, daemon=True)
        self._err = threading.Thread(target=self._pump_stderr, daemon=True)
        self._out.start()
        self._err.start()

    def _pump_stdout(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _pump_stderr(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.stderr.append(line.rstrip("\n"))

    @property
    def records(self) -> list[Record]:
        """Every stdout line so far that is a JSON object."""
        out = []
        for line in self.lines:
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
        return out

    def expect(self, predicate: Callable[[Record], bool], timeout: float, what: str) -> Record:
        """The first event line (already read or to come) matching ``predicate``.

        Raises:
            AssertionError: none within ``timeout`` seconds, or stdout closed first.
        """
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            records = self.records
            for record in records[seen:]:
                if predicate(record):
                    return record
            seen = len(records)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                self._queue.put(None)  # stay closed for later calls
                raise AssertionError(f"{self.name}: stdout closed before {what}\n{self.dump()}")
            self.lines.append(line)
        raise AssertionError(f"{self.name}: no {what} within {timeout} s\n{self.dump()}")

    def expect_event(self, event: str, member: str, timeout: float) -> Record:
        return self.expect(
            lambda r: r.get("event") == event and r.get("member") == member,
            timeout,
            f"{event!r} for {member}",
        )

    def wait(self, timeout: float) -> int:
        """Wait for the exit status; the pumps finish reading first."""
        status = self.popen.wait(timeout=timeout)
        self._out.join(timeout=5)
        self._err.join(timeout=5)
        for _ in range(self._queue.qsize()):  # what the pumps left
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return status

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=10)

    @property
    def name(self) -> str:
        return " ".join(self.args[:3])

    def dump(self) -> str:
        return "stdout:\n" + "\n".join(self.lines) + "\nstderr:\n" + "\n".join(self.stderr)


@contextmanager
def spawned() -> Iterator[Callable[..., Process]]:
    """Yield a ``start(*args)`` function; every process it started is killed at the end."""
    started: list[Process] = []

    def start(*args: str) -> Process:
        process = Process(*args)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.kill()


def run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``python -m swimgossip ...`` to completion (killed after ``timeout``)."""
    return subprocess.run(
        [sys.executable, "-m", "swimgossip", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


#: Ports ``free_port`` tries before it gives up.
FREE_PORT_ATTEMPTS = 100


def free_port() -> int:
    """A loopback port free for both TCP and UDP right now (closed again at once).

    Raises:
        RuntimeError: none of ``FREE_PORT_ATTEMPTS`` ports the system picked for TCP was
            free for UDP too.
    """
    taken: list[int] = []
    for _ in range(FREE_PORT_ATTEMPTS):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    taken.append(port)
                    continue
                return port
    raise RuntimeError(
        f"free_port: no loopback port free for both TCP and UDP in {FREE_PORT_ATTEMPTS}"
        f" attempts (UDP taken on {taken[:5]}...)"
    )
