"""``swimgossip agent --wire serf`` against a real, encrypted ``serf agent`` on 127.0.0.1.

The agent joins with ``--tag`` pairs and ``--key-file`` holding the key ``serf keygen``
made (the Go agent runs with ``-encrypt`` of it): its JSON lines say ``joined`` for both,
``serf members`` lists it alive with its tags, a ``serf event`` is a ``user_event`` line,
and SIGTERM exits 0 with Serf recording ``left``. A key file without a valid key exits 2.
Every wait is bounded; processes are killed at the end. Needs the ``serf`` binary (skip
with the reason; a failure in CI, ci_guard).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from cli_helpers import run, spawned
from serf_helpers import NEEDS_SERF, Agent, serf, serf_members

pytestmark = NEEDS_SERF

WITHIN = 30.0


def wait_member(rpc: str, name: str, status: str) -> dict[str, object]:
    end = time.monotonic() + WITHIN
    seen: dict[str, dict[str, object]] = {}
    while time.monotonic() < end:
        seen = serf_members(rpc)
        if seen.get(name, {}).get("status") == status:
            return seen[name]
        time.sleep(0.25)  # polling an external process: bounded in time
    raise AssertionError(f"{name} not {status} in serf members: {seen}")


def test_the_agent_joins_an_encrypted_serf_cluster_with_tags_events_and_leave(
    tmp_path: Path,
) -> None:
    key = serf("keygen").stdout.strip()
    key_file = tmp_path / "serf.key"
    key_file.write_text(key + "\n")
    go = Agent("go1", tmp_path, key=key, tags={"role": "go"})
    port, rpc = go.port, go.rpc
    try:
        wait_member(rpc, "go1", "alive")
        with spawned() as start:
            py = start(
                "agent", "--name", "py1", "--bind", "127.0.0.1:0", "--preset", "local",
                "--wire", "serf", "--join", f"127.0.0.1:{port}", "--tag", "role=web",
                "--tag", "dc=one", "--key-file", str(key_file),
            )  # fmt: skip
            assert py.expect_event("joined", "py1", WITHIN)["meta"] == {"dc": "one", "role": "web"}
            assert py.expect_event("joined", "go1", WITHIN)["meta"] == {"role": "go"}
            assert wait_member(rpc, "py1", "alive")["tags"] == {"role": "web", "dc": "one"}

            assert serf("event", f"-rpc-addr={rpc}", "deploy", "v1.2").returncode == 0
            event = py.expect(lambda r: r.get("event") == "user_event", WITHIN, "a user_event")
            assert (event["name"], event["payload"], event["ltime"]) == ("deploy", "v1.2", 1)

            py.popen.send_signal(signal.SIGTERM)
            assert py.wait(timeout=WITHIN) == 0, py.dump()
            wait_member(rpc, "py1", "left")
    finally:
        go.kill()


def test_a_key_file_without_a_serf_key_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not base64!\n")
    done = run(
        "agent", "--name", "py1", "--bind", "127.0.0.1:0", "--wire", "serf",
        "--key-file", str(bad), timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--key-file" in done.stderr and "base64" in done.stderr
