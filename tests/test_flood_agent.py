"""The flood of ``test_flood.py``, at a real ``swimgossip agent`` process.

Three signed agents (``--preset local``) run on 127.0.0.1; the target serves its status
endpoint. A separate process sends 50,000 garbage, forged, replayed and foreign datagrams
at the target's port. Asserted from outside, as an operator would see it: the agent keeps
running and probing (``/metrics.json``), no agent prints ``failed`` for anyone, the agent
counted what it refused, and its resident memory (``/proc/PID/statm``) grows by at most
``RSS_BOUND``. Bounded by count; nothing asserts on timing.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from cli_helpers import free_port, spawned
from swimgossip.cli._status import fetch_status
from swimgossip.security import encode_key
from test_flood import _SENDER, DATAGRAMS, KEY, RSS_BOUND, SPREAD, _flood_packets

JOIN_WITHIN = 60.0


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _metrics(status: str) -> dict[str, float]:
    values: dict[str, float] = fetch_status(status, "/metrics.json")
    return values


def _until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_flood_at_a_real_agent(tmp_path: Path) -> None:
    keys = tmp_path / "cluster.keys"
    keys.write_text(encode_key(KEY) + "\n")
    port, status = free_port(), f"127.0.0.1:{free_port()}"
    common = ("--preset", "local", "--key-file", str(keys))
    with spawned() as start:
        target = start(
            "agent", "--name", "a", "--bind", f"127.0.0.1:{port}", "--status", status, *common
        )
        target.expect_event("joined", "a", JOIN_WITHIN)
        others = [
            start("agent", "--name", name, "--bind", "127.0.0.1:0",
                  "--join", f"127.0.0.1:{port}", *common)
            for name in ("b", "c")
        ]  # fmt: skip
        for agent in [target, *others]:
            for name in ("a", "b", "c"):
                agent.expect_event("joined", name, JOIN_WITHIN)

        pid = target.popen.pid
        before, rss_before = _metrics(status), _rss(pid)
        packets = _flood_packets(random.Random(50_000))
        sender = subprocess.Popen(
            [sys.executable, "-c", _SENDER, "127.0.0.1", str(port), str(DATAGRAMS), str(SPREAD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert sender.stdin is not None
            sender.stdin.write("\n".join(p.hex() for p in packets))
            sender.stdin.close()
            rss_peak = rss_before
            deadline = time.monotonic() + 120
            while sender.poll() is None:
                assert time.monotonic() < deadline, "the sender did not finish"
                rss_peak = max(rss_peak, _rss(pid))
                time.sleep(0.05)
        finally:
            sender.kill()
        during = _metrics(status)
        # the agent keeps probing after the flood, and stays up
        _until(lambda: _metrics(status)["probes"] >= during["probes"] + 2, JOIN_WITHIN, "probes")
        rss_peak = max(rss_peak, _rss(pid))
        after = _metrics(status)
        assert target.popen.poll() is None

        refused = after["auth_failures"] - before["auth_failures"]
        growth = rss_peak - rss_before
        print(f"\nagent flood: refused {refused:.0f}, RSS +{growth / 2**20:.1f} MB")
        assert refused > 1000  # most of the flood arrived and was refused, not processed
        # Only the first copy of the one authentic packet (garbage inside) reached the
        # decoder; its thousands of replays were refused by the replay guard.
        assert after["packets_malformed"] - before["packets_malformed"] <= 1
        assert growth <= RSS_BOUND
        for agent in [target, *others]:
            assert not [r for r in agent.records if r.get("event") == "failed"], agent.dump()
