"""Malformed input at the last decoder entry points (issue 15): the plain refusal frame a
peer sends back (``read_refusal``) and the status JSON the CLI reads (``members``). Each
gets arbitrary or hostile bytes and must answer with a clear typed result, never a crash."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimgossip.cli._main import main
from swimgossip.cli._status import fetch_members
from swimgossip.cli.errors import StatusError
from swimgossip.security import PeerRefused, RejectReason, read_refusal
from swimgossip.security._refusals import ERROR_MARKER

# ------------------------------------------------------------------ refusal frames


@given(st.binary(max_size=4096))
def test_any_bytes_are_either_no_refusal_or_a_bounded_peer_refused(frame: bytes) -> None:
    refused = read_refusal(frame, "10.0.0.1:7946")
    if frame[:1] != bytes([ERROR_MARKER]):
        assert refused is None
        return
    assert isinstance(refused, PeerRefused)
    assert len(str(refused)) < 1200  # the text is cut, whatever the frame's size
    assert refused.reason is None or isinstance(refused.reason, RejectReason)


@pytest.mark.parametrize(
    ("frame", "reason", "text"),
    [
        (bytes([ERROR_MARKER]), None, ""),  # the marker alone
        (bytes([ERROR_MARKER]) + b"\xff\xfe\x00", None, "\ufffd\ufffd\x00"),  # not UTF-8
        (bytes([ERROR_MARKER]) + b"no-such-reason\nbody", None, "no-such-reason\nbody"),
        (bytes([ERROR_MARKER]) + b"unknown key\nwho are you", RejectReason.UNKNOWN_KEY, "who"),
        (bytes([ERROR_MARKER]) + b"\n", None, "\n"),
        (bytes([ERROR_MARKER]) + b"x" * 1_000_000, None, "x" * 100),  # huge: cut
    ],
)
def test_malformed_refusal_frames_give_a_clear_refusal(
    frame: bytes, reason: RejectReason | None, text: str
) -> None:
    refused = read_refusal(frame, "10.0.0.1:7946")
    assert refused is not None and refused.reason is reason
    assert "refused by 10.0.0.1:7946" in str(refused)
    assert text in str(refused)


# ------------------------------------------------------------------ the status JSON


@pytest.fixture
def status_server() -> Iterator[tuple[str, list[tuple[int, bytes]]]]:
    """A loopback HTTP server answering each GET with the next (status, body) queued."""
    answers: list[tuple[int, bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answers.pop(0)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "did not answer JSON"),
        (b"\xff\xfe", "did not answer JSON"),
        (b'{"name": "a"}', "did not answer a list of members"),
        (b"[1, 2]", "did not answer a list of members"),
        (b'[{"address": "x"}]', "did not answer a list of members"),
        (b'[{"name": 5, "address": "x", "status": "alive"}]', "did not answer a list of members"),
        (
            b'[{"name": "a", "address": "x", "status": "alive", "meta": [1]}]',
            "did not answer a list",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),  # nesting deep enough to blow the stack
    ],
)
def test_a_malformed_member_table_is_a_clear_status_error(
    status_server: tuple[str, list[tuple[int, bytes]]], body: bytes, why: str
) -> None:
    address, answers = status_server
    answers.append((200, body))
    with pytest.raises(StatusError, match=why):
        fetch_members(address)


def test_members_with_a_malformed_table_exits_1_with_one_line(
    status_server: tuple[str, list[tuple[int, bytes]]], capsys: pytest.CaptureFixture[str]
) -> None:
    address, answers = status_server
    answers.append((200, b'{"members": "nope"}'))
    assert main(["members", "--status", address]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did not answer a list of members" in err[0]


def test_an_oversized_status_body_is_refused(
    status_server: tuple[str, list[tuple[int, bytes]]],
) -> None:
    from swimgossip.cli._status import MAX_STATUS_BODY

    address, answers = status_server
    answers.append((200, b"[" + b" " * MAX_STATUS_BODY + b"]"))
    with pytest.raises(StatusError, match="more than"):
        fetch_members(address)


def test_a_well_formed_table_passes(status_server: tuple[str, list[tuple[int, bytes]]]) -> None:
    address, answers = status_server
    record = {"name": "a", "address": "x:1", "status": "alive", "incarnation": 0, "meta": {}}
    answers.append((200, b'[{"name": "a", "address": "x:1", "status": "alive", '
                   b'"incarnation": 0, "meta": {}}]'))  # fmt: skip
    assert fetch_members(address) == [record]
