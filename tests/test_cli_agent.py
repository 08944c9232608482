"""``swimgossip agent`` and ``swimgossip members`` as real processes on 127.0.0.1.

Every wait is for an expected output line or exit, with a deadline; every process is
killed when its test ends.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable

from cli_helpers import Process, free_port, run, spawned

JOIN_WITHIN = 15.0
#: The local preset's suspicion timeout is 3 to 18 s for 3 nodes; allow for a slow CI.
DETECT_WITHIN = 45.0


def _start_cluster(start: Callable[..., Process], names: list[str], *extra: str) -> list[Process]:
    """Start ``names`` as agents (the first is the seed) and wait until all see all."""
    first = start("agent", "--name", names[0], "--bind", "127.0.0.1:0", *extra)
    seed = first.expect_event("joined", names[0], JOIN_WITHIN)["address"]
    agents = [first]
    for name in names[1:]:
        agents.append(
            start("agent", "--name", name, "--bind", "127.0.0.1:0", "--join", seed, *extra)
        )
    for agent in agents:
        for name in names:
            agent.expect_event("joined", name, JOIN_WITHIN)
    return agents


def test_three_agents_join_then_survivors_report_a_kill_9() -> None:
    with spawned() as start:
        a, b, c = _start_cluster(start, ["a", "b", "c"], "--preset", "local")
        joined = a.expect_event("joined", "b", 0)
        assert set(joined) >= {"ts", "event", "member", "address", "incarnation", "status", "meta"}
        assert joined["status"] == "alive" and isinstance(joined["ts"], float)

        c.popen.send_signal(signal.SIGKILL)
        for survivor in (a, b):
            failed = survivor.expect_event("failed", "c", DETECT_WITHIN)
            assert failed["status"] == "dead"
            assert isinstance(failed["by"], str) and isinstance(failed["confirmations"], int)


def test_sigterm_leaves_gracefully_and_exits_0() -> None:
    with spawned() as start:
        a, b, c = _start_cluster(start, ["a", "b", "c"], "--preset", "local")
        c.popen.send_signal(signal.SIGTERM)
        assert c.wait(timeout=20) == 0, c.dump()
        for survivor in (a, b):
            assert survivor.expect_event("left", "c", JOIN_WITHIN)["status"] == "left"
        a.popen.send_signal(signal.SIGINT)
        assert a.wait(timeout=20) == 0, a.dump()


def test_members_prints_the_table_from_the_status_endpoint() -> None:
    status = f"127.0.0.1:{free_port()}"
    with spawned() as start:
        first = start(
            "agent", "--name", "web-1", "--bind", "127.0.0.1:0", "--status", status,
            "--meta", "role=web", "--meta", "zone=a", "--label", "demo-cluster",
        )  # fmt: skip
        seed = first.expect_event("joined", "web-1", JOIN_WITHIN)
        assert seed["meta"] == {"role": "web", "zone": "a"}
        start(
            "agent", "--name", "db-1", "--bind", "127.0.0.1:0", "--join", seed["address"],
            "--meta", "role=db", "--label", "demo-cluster",
        )  # fmt: skip
        first.expect_event("joined", "db-1", JOIN_WITHIN)

        table = run("members", "--status", status, timeout=30)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split() == ["Name", "Address", "Status", "Incarnation", "Meta"]
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        assert rows["web-1"][1:] == [seed["address"], "alive", "0", "role=web,zone=a"]
        assert rows["db-1"][2:] == ["alive", "0", "role=db"]
        web = next(line for line in lines if line.startswith("web-1"))
        assert web.index(seed["address"]) == lines[0].index("Address")  # aligned

        as_json = run("members", "--status", status, "--json", timeout=30)
        assert as_json.returncode == 0, as_json.stderr
        records = json.loads(as_json.stdout)
        assert [r["name"] for r in records] == ["db-1", "web-1"]


def test_agent_state_spreads_and_members_shows_it() -> None:
    status = f"127.0.0.1:{free_port()}"
    with spawned() as start:
        first = start(
            "agent", "--name", "web-1", "--bind", "127.0.0.1:0", "--status", status,
            "--preset", "local", "--state", "port=8080", "--state", "ready=1",
        )  # fmt: skip
        seed = first.expect_event("joined", "web-1", JOIN_WITHIN)
        second = start(
            "agent", "--name", "db-1", "--bind", "127.0.0.1:0", "--join", seed["address"],
            "--preset", "local", "--state", "shards=1,4,7",
        )  # fmt: skip
        # Each sees the other's keys as "state" lines, after the member's "joined" line.
        for agent, member, key, value in [
            (first, "db-1", "shards", "1,4,7"),
            (second, "web-1", "port", "8080"),
        ]:
            line = agent.expect(
                lambda r, m=member, k=key: (
                    r.get("event") == "state" and r["member"] == m and r["key"] == k
                ),
                JOIN_WITHIN,
                f"{member}'s {key}",
            )
            assert line["value"] == value and line["version"] > 0
            records = agent.records
            joined = next(
                i for i, r in enumerate(records) if r["event"] == "joined" and r["member"] == member
            )
            assert joined < records.index(line)

        table = run("members", "--status", status, timeout=30)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split() == ["Name", "Address", "Status", "Incarnation", "Meta", "State"]
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        assert rows["web-1"][-1] == "port=8080,ready=1"
        assert rows["db-1"][-1] == "shards=1,4,7"
        as_json = json.loads(run("members", "--status", status, "--json", timeout=30).stdout)
        assert {r["name"]: r["state"] for r in as_json} == {
            "db-1": {"shards": "1,4,7"},
            "web-1": {"port": "8080", "ready": "1"},
        }


def test_members_without_an_endpoint_exits_1() -> None:
    result = run("members", "--status", f"127.0.0.1:{free_port()}", timeout=30)
    assert result.returncode == 1
    assert "cannot reach the status endpoint" in result.stderr


def test_join_to_a_dead_port_exits_1_naming_the_seed() -> None:
    seed = f"127.0.0.1:{free_port()}"
    result = run(
        "agent", "--name", "lonely", "--bind", "127.0.0.1:0", "--join", seed,
        "--join-timeout", "2",
        timeout=30,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("swimgossip agent: error: could not join within 2 s")
    assert seed in last


def _assert_one_line_error(result: object, *needles: str) -> None:
    assert getattr(result, "returncode", None) == 2
    lines = getattr(result, "stderr", "").strip().splitlines()
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0]


def test_bad_flags_exit_2_with_one_line() -> None:
    cases = [
        (["agent", "--name", "x", "--bind", "127.0.0.1:0", "--bogus"], "--bogus"),
        (["agent", "--name", "x", "--bind", "nowhere"], "--bind"),
        (["agent", "--bind", "127.0.0.1:0"], "--name"),
        (["agent", "--name", "x", "--bind", "127.0.0.1:0", "--meta", "novalue"], "KEY=VALUE"),
        (["agent", "--name", "x", "--bind", "127.0.0.1:0", "--state", "novalue"], "KEY=VALUE"),
        (["agent", "--name", "x", "--bind", "127.0.0.1:0", "--state", "k" * 300 + "=v"], "--state"),
        (["agent", "--name", "x", "--bind", "127.0.0.1:0", "--join-timeout", "-1"], "seconds"),
        (["agent", "--name", "x", "--bind", "127.0.0.1:0", "--status", "0.0.0.0:0"], "loopback"),
        (["frobnicate"], "invalid choice"),
    ]
    for args, needle in cases:
        _assert_one_line_error(run(*args, timeout=30), needle)


def test_unreadable_or_invalid_key_file_exits_2(tmp_path: object) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path))
    missing = directory / "missing.keys"
    result = run(
        "agent", "--name", "x", "--bind", "127.0.0.1:0", "--key-file", str(missing), timeout=30
    )
    _assert_one_line_error(result, "--key-file", str(missing))

    bad = directory / "bad.keys"
    bad.write_text("# a comment\nnot base64!\n")
    result = run(
        "agent", "--name", "x", "--bind", "127.0.0.1:0", "--key-file", str(bad), timeout=30
    )
    _assert_one_line_error(result, "--key-file", "line 2")


def test_agents_sharing_a_keygen_key_file_join(tmp_path: object) -> None:
    from pathlib import Path

    key = run("keygen", timeout=30)
    assert key.returncode == 0
    path = Path(str(tmp_path)) / "cluster.keys"
    path.write_text(key.stdout)
    with spawned() as start:
        _start_cluster(start, ["k1", "k2"], "--preset", "local", "--key-file", str(path))


def _expect_stderr(process: Process, needle: str, timeout: float) -> str:
    """The first stderr line containing ``needle``; polls the pump's list until a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(process.stderr):
            if needle in line:
                return line
        time.sleep(0.05)
    raise AssertionError(f"{process.name}: no stderr line with {needle!r}\n{process.dump()}")


def test_label_is_applied_and_a_mismatch_says_so() -> None:
    with spawned() as start:
        prod = start("agent", "--name", "p1", "--bind", "127.0.0.1:0", "--label", "prod")
        seed = prod.expect_event("joined", "p1", JOIN_WITHIN)["address"]
        result = run(
            "agent", "--name", "s1", "--bind", "127.0.0.1:0", "--label", "staging",
            "--join", seed, "--join-timeout", "3",
            timeout=30,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert "label" in last and "'staging'" in last and "'prod'" in last
        assert "NOT applied" not in result.stderr


def test_sealed_agents_join_and_sighup_reloads_the_key_file(tmp_path: object) -> None:
    from pathlib import Path

    from swimgossip.security import encode_key, key_id

    key_a, key_b = bytes(range(32)), bytes(range(1, 33))
    path = Path(str(tmp_path)) / "cluster.keys"
    path.write_text(encode_key(key_a) + "\n")
    with spawned() as start:
        k1, k2 = _start_cluster(
            start, ["k1", "k2"], "--preset", "local", "--key-file", str(path),
            "--security", "sealed",
        )  # fmt: skip
        _expect_stderr(k1, "security sealed", JOIN_WITHIN)
        path.write_text(f"{encode_key(key_b)}\n{encode_key(key_a)}\n")
        k1.popen.send_signal(signal.SIGHUP)
        line = _expect_stderr(k1, "reloaded", JOIN_WITHIN)
        assert f"key ids {key_id(key_b)}, {key_id(key_a)}" in line
        path.write_text("not a key\n")
        k1.popen.send_signal(signal.SIGHUP)
        line = _expect_stderr(k1, "not reloaded", JOIN_WITHIN)
        assert "line 1" in line and f"keeping key ids {key_id(key_b)}, {key_id(key_a)}" in line
        assert k1.popen.poll() is None and k2.popen.poll() is None  # SIGHUP did not kill


def test_security_without_a_key_file_exits_2() -> None:
    result = run(
        "agent", "--name", "x", "--bind", "127.0.0.1:0", "--security", "required", timeout=30
    )
    _assert_one_line_error(result, "--security required needs --key-file")


def test_sighup_rereads_the_meta_file_and_the_cluster_sees_it(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "meta"
    path.write_text("# this node's role\nrole=web\n")
    with spawned() as start:
        a = start(
            "agent", "--name", "a", "--bind", "127.0.0.1:0", "--preset", "local",
            "--meta-file", str(path), "--meta", "dc=1",
        )  # fmt: skip
        seed = a.expect_event("joined", "a", JOIN_WITHIN)["address"]
        b = start("agent", "--name", "b", "--bind", "127.0.0.1:0", "--preset", "local",
                  "--join", seed)  # fmt: skip
        seen = b.expect_event("joined", "a", JOIN_WITHIN)
        assert seen["meta"] == {"role": "web", "dc": "1"}
        path.write_text("role=db\n")
        a.popen.send_signal(signal.SIGHUP)
        updated = b.expect(
            lambda r: r.get("event") == "updated" and r.get("member") == "a",
            JOIN_WITHIN,
            "b sees a's new metadata",
        )
        assert updated["meta"] == {"role": "db", "dc": "1"}
        path.write_text("no equals sign\n")
        a.popen.send_signal(signal.SIGHUP)
        _expect_stderr(a, "metadata not changed", JOIN_WITHIN)
        assert a.popen.poll() is None
