"""docs/fastapi.md's service, for real: its app under uvicorn on 127.0.0.1, a second replica
in another process joining it, ``/members`` read over HTTP with httpx, and the second
replica's shutdown seen as a graceful leave.

Waiting is for conditions (a server answering, a member listed) with a deadline; nothing
asserts on how fast it went.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PATIENCE = 30.0


def _app_source() -> str:
    text = (ROOT / "docs" / "fastapi.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    return next(block for block in blocks if "FastAPI(lifespan=lifespan)" in block)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(what: str, check: Callable[[], Any]) -> Any:
    """``check()`` until it returns something true, within PATIENCE (every 50 ms)."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        try:
            result = check()
        except httpx.TransportError:
            result = None
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


class Replica:
    """One uvicorn process serving the example app."""

    def __init__(self, app_dir: pathlib.Path, name: str, seeds: str = "") -> None:
        self.name = name
        self.port = _free_port()
        env = {
            **os.environ,
            "SWIM_NAME": name,
            "SWIM_BIND": "127.0.0.1:0",
            "SWIM_SEEDS": seeds,
            "PYTHONPATH": str(app_dir),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"],
            cwd=app_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def members(self) -> dict[str, str]:
        reply = httpx.get(f"http://127.0.0.1:{self.port}/members", timeout=5)
        reply.raise_for_status()
        return {m["name"]: m["status"] for m in reply.json()}

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)

    def address(self) -> str:
        reply = httpx.get(f"http://127.0.0.1:{self.port}/members", timeout=5)
        return str(next(m["address"] for m in reply.json() if m["name"] == self.name))

    def stop(self) -> str:
        """SIGTERM (uvicorn shuts down, the lifespan leaves); returns its output."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            output, _ = self.process.communicate(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return output


@pytest.fixture
def app_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    (tmp_path / "app.py").write_text(_app_source())
    return tmp_path


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    started: list[Replica] = []
    yield started
    for replica in started:
        replica.stop()


def test_two_fastapi_replicas_see_each_other_and_a_shutdown_is_a_leave(
    app_dir: pathlib.Path, replicas: list[Replica]
) -> None:
    first = Replica(app_dir, "web-1")
    replicas.append(first)
    assert _wait_for("web-1 to serve", first.members) == {"web-1": "alive"}

    second = Replica(app_dir, "web-2", seeds=first.address())
    replicas.append(second)
    both = {"web-1": "alive", "web-2": "alive"}
    assert _wait_for("web-2 to join", lambda: second.members() == both)
    assert _wait_for("web-1 to see web-2", lambda: first.members() == both)

    metrics = first.get("/metrics")
    assert metrics.status_code == 200
    assert 'swimgossip_members{status="alive"} 2' in metrics.text

    # uvicorn shuts down on SIGTERM (the lifespan block ends: a graceful leave), then
    # raises the signal again for its parent: exit status 0 or -SIGTERM, no traceback
    left = {"web-1": "alive", "web-2": "left"}
    for replica in (second, first):
        output = replica.stop()
        assert replica.process.returncode in (0, -signal.SIGTERM), output
        assert "Traceback" not in output, output
        if replica is second:
            assert _wait_for("web-1 to see web-2 leave", lambda: first.members() == left)
