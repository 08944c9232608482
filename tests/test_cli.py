"""The other subcommands (keygen, demo, simulate) and the CLI's pure helpers.

The agent and members commands, as real processes, are in ``test_cli_agent.py``.
"""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path

import pytest
import trio

from cli_helpers import run
from swimgossip import (
    MemberFailed,
    MemberJoined,
    MemberSuspected,
    StateChanged,
    Status,
    open_node,
)
from swimgossip.cli import main
from swimgossip.cli._agent import event_record
from swimgossip.cli._format import decode_meta, encode_meta, format_table, member_record
from swimgossip.cli._simulate import Progress, trace_run
from swimgossip.cli._status import check_loopback, fetch_status, serve_status, status_record
from swimgossip.cli.errors import StatusError
from swimgossip.core.member import Member
from swimgossip.node import EventsLost

# ---------------------------------------------------------------------- keygen, demo


def test_keygen_prints_one_32_byte_base64_key() -> None:
    result = run("keygen", timeout=30)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert len(base64.b64decode(lines[0], validate=True)) == 32
    assert run("keygen", timeout=30).stdout != result.stdout


def test_demo_detects_the_crash_and_exits_0() -> None:
    result = run("demo", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "detection time:" in result.stdout
    for step in ("crashing node-7", "node-7 suspected", "node-7 failed", "leaves gracefully"):
        assert step in result.stdout
    assert "rejoin" in result.stdout and result.stdout.rstrip().endswith("ok")
    assert "\x1b[" not in result.stdout  # no terminal: plain lines, no live table


# ---------------------------------------------------------------------- simulate

REPORT_KEYS = {
    "nodes",
    "killed",
    "detection_s",
    "first_suspicion_s",
    "false_positives",
    "partitioned_verdicts",
    "suspicions_by_paused_node",
    "converged_s",
    "messages_per_node_per_s",
    "bytes_per_node_per_s",
    "dissemination_s",
    "virtual_s",
    "wall_s",
    "seed",
    "preset",
    "loss",
}


def test_simulate_json_keys_are_stable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--nodes", "6", "--duration", "10", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == REPORT_KEYS
    assert report["nodes"] == 6 and len(report["killed"]) == 1


def test_simulate_rejects_impossible_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--nodes", "3", "--kill", "2"]) == 2
    assert "--nodes" in capsys.readouterr().err


def test_simulate_plot_writes_a_png_or_says_matplotlib_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "run.png"
    status = main(["simulate", "--nodes", "8", "--duration", "10", "--plot", str(target)])
    if importlib.util.find_spec("matplotlib") is None:
        assert status == 2
        assert "pip install 'swimgossip[plot]'" in capsys.readouterr().err
        assert not target.exists()
    else:
        assert status == 0
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trace_run_times_every_survivor() -> None:
    trace = trace_run(nodes=8, kill=1, loss=0.0, duration=15.0, seed=3, preset="lan")
    assert trace.running == 7
    assert len(trace.dissemination) == 7 and trace.dissemination[0] == 0.0
    assert trace.dissemination == sorted(trace.dissemination)
    assert len(trace.detection) + trace.undetected == 7  # one victim, 7 survivors
    assert all(t > 0 for t in trace.detection)


def test_progress_line_shows_a_bar_or_a_spinner() -> None:
    import io

    progress = Progress("simulating", io.StringIO(), width=10)
    assert progress.line(0.0) == "simulating |   0.0 s"
    progress.update(0.5)
    assert progress.line(2.0) == "simulating [#####.....]  50%   2.0 s"


# ---------------------------------------------------------------------- formatting


def test_meta_pairs_round_trip_as_compact_json() -> None:
    meta = encode_meta([("role", "web"), ("zone", "eu-1")])
    assert meta == b'{"role":"web","zone":"eu-1"}'
    assert decode_meta(meta) == {"role": "web", "zone": "eu-1"}
    assert encode_meta([]) == b"" and decode_meta(b"") == {}
    assert decode_meta(b"not json \xff") == "not json \\xff"


def _member(name: str, status: Status = Status.ALIVE, meta: bytes = b"") -> Member:
    return Member(
        name=name, address=f"127.0.0.1:{len(name)}", status=status, incarnation=2, meta=meta
    )


def test_event_records_carry_provenance_for_suspicion_and_failure() -> None:
    joined = event_record(MemberJoined(member=_member("a", meta=b'{"k":"v"}')), 1.5)
    assert joined == {
        "ts": 1.5,
        "event": "joined",
        "member": "a",
        "address": "127.0.0.1:1",
        "status": "alive",
        "incarnation": 2,
        "meta": {"k": "v"},
    }
    suspected = event_record(MemberSuspected(member=_member("b", Status.SUSPECT), by="c"), 2.0)
    assert suspected["event"] == "suspected" and suspected["by"] == "c"
    assert "confirmations" not in suspected
    failed = event_record(
        MemberFailed(member=_member("b", Status.DEAD), by="c", confirmations=3), 3
    )
    assert (failed["status"], failed["by"], failed["confirmations"]) == ("dead", "c", 3)
    lost = event_record(EventsLost(count=7, members=()), 4.0)
    assert lost == {"ts": 4.0, "event": "events_lost", "count": 7}


def test_member_table_is_aligned_with_a_header() -> None:
    records = [member_record(_member("web-1", meta=b'{"role":"web"}')), member_record(_member("b"))]
    lines = format_table(records).splitlines()
    assert lines[0].split() == ["Name", "Address", "Status", "Incarnation", "Meta"]
    assert lines[1].split() == ["web-1", "127.0.0.1:5", "alive", "2", "role=web"]
    assert lines[2].split() == ["b", "127.0.0.1:1", "alive", "2"]
    assert {line.index("127.0.0.1") for line in lines[1:]} == {lines[0].index("Address")}


def test_state_changes_are_agent_lines_and_a_table_column() -> None:
    changed = StateChanged(member="web-1", key="port", value=b"8080", version=7, seq=3)
    assert event_record(changed, 1.0) == {
        "ts": 1.0,
        "event": "state",
        "member": "web-1",
        "key": "port",
        "value": "8080",
        "version": 7,
    }
    deleted = StateChanged(member="web-1", key="port", value=None, version=8)
    assert event_record(deleted, 2.0)["value"] is None
    records = [
        {**member_record(_member("web-1")), "state": {"port": "8080", "ready": "1"}},
        {**member_record(_member("b")), "state": {}},
    ]
    lines = format_table(records).splitlines()
    assert lines[0].split() == ["Name", "Address", "Status", "Incarnation", "Meta", "State"]
    assert lines[1].split()[-1] == "port=8080,ready=1"
    assert lines[1].index("port=") == lines[0].index("State")
    assert len(lines[2].split()) == 4  # no meta, no state


# ---------------------------------------------------------------------- status endpoint


def test_status_endpoint_is_loopback_only() -> None:
    assert check_loopback("127.0.0.1:80") == ("127.0.0.1", 80)
    assert check_loopback("[::1]:80") == ("::1", 80)
    assert check_loopback("localhost:80") == ("localhost", 80)
    for address in ("0.0.0.0:80", "10.1.2.3:80", "example.com:80"):
        with pytest.raises(ValueError, match="loopback"):
            check_loopback(address)


async def _raw_request(address: str, request: bytes) -> bytes:
    host, _, port = address.rpartition(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(request)
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


async def test_status_endpoint_answers_members_metrics_and_errors() -> None:
    async with open_node("solo", bind="127.0.0.1:0") as node, trio.open_nursery() as nursery:
        where = await nursery.start(serve_status, node, "127.0.0.1:0")
        members = await trio.to_thread.run_sync(fetch_status, where, "/members")
        assert members == [{**member_record(m), "state": {}} for m in node.members()]
        await node.set_state("port", b"8080")
        await node.set_state("raw", b"\xff")
        members = await trio.to_thread.run_sync(fetch_status, where, "/members")
        assert members == [status_record(node, m) for m in node.members()]
        assert members[0]["state"] == {"port": "8080", "raw": "\\xff"}
        metrics = await trio.to_thread.run_sync(fetch_status, where, "/metrics.json")
        assert metrics["members_alive"] == 1
        with pytest.raises(StatusError, match="404"):
            await trio.to_thread.run_sync(fetch_status, where, "/nope")

        reply = await _raw_request(where, b"DELETE /members HTTP/1.0\r\n\r\n")
        assert reply.startswith(b"HTTP/1.0 405 ")
        reply = await _raw_request(where, b"nonsense\r\n\r\n")
        assert reply.startswith(b"HTTP/1.0 400 ")
        reply = await _raw_request(where, b"GET /" + b"x" * 9000)
        assert reply.startswith(b"HTTP/1.0 400 ")
        nursery.cancel_scope.cancel()
