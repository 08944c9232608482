"""The messages a user reads when something is wrong (issue 17, point 8), one test each.

Real processes and sockets on 127.0.0.1 only; every wait has a deadline.
"""

from __future__ import annotations

import importlib.metadata
import pathlib
import socket

import pytest
import trio

import swimgossip
from cli_helpers import free_port, run
from node_helpers import PATIENCE, start_node
from swimgossip import Keyring

ROOT = pathlib.Path(__file__).resolve().parent.parent


async def _serve_http_once(listener: trio.SocketListener) -> None:
    """Answer every connection like a web server would, then close it."""
    while True:
        stream = await listener.accept()
        async with stream:
            await stream.send_all(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


async def test_joining_a_port_that_is_not_swimgossip_says_so() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            port = listeners[0].socket.getsockname()[1]
            nursery.start_soon(_serve_http_once, listeners[0])
            node, _ = await start_node(nursery, "lost")
            seed = f"127.0.0.1:{port}"
            with pytest.raises(swimgossip.JoinError) as info, trio.fail_after(2):
                await node.join([seed])
            reason = info.value.reasons[seed]
            assert f"{seed} does not speak swimgossip" in reason, reason
            assert "does not speak swimgossip" in str(info.value)
            nursery.cancel_scope.cancel()


async def test_the_wrong_key_message_says_authentication_failed_once() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            seed, _ = await start_node(nursery, "a", keyring=Keyring([bytes(range(32))]))
            wrong, _ = await start_node(nursery, "b", keyring=Keyring([bytes(range(1, 33))]))
            with pytest.raises(swimgossip.JoinError) as info, trio.fail_after(2):
                await wrong.join([seed.address])
            message = str(info.value)
            assert message.count("authentication failed") == 1, message
            assert "unknown key" in message
            nursery.cancel_scope.cancel()


def test_a_failed_join_prints_no_event_line_before_the_error() -> None:
    seed = f"127.0.0.1:{free_port()}"
    result = run(
        "agent", "--name", "lonely", "--bind", "127.0.0.1:0", "--join", seed,
        "--join-timeout", "1",
        timeout=30,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stdout == "", result.stdout  # no "joined" line for itself
    assert "could not join" in result.stderr.splitlines()[-1]


def test_a_status_port_in_use_is_reported_before_the_node_says_it_runs() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        status = f"127.0.0.1:{taken.getsockname()[1]}"
        result = run(
            "agent", "--name", "x", "--bind", "127.0.0.1:0", "--status", status, timeout=30
        )
    assert result.returncode == 1, result.stderr
    assert "running at" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"swimgossip agent: error: --status {status}"), last
    assert result.stdout == ""


def test_top_level_help_is_plain_text() -> None:
    result = run("--help", timeout=30)
    assert result.returncode == 0
    assert "``" not in result.stdout, result.stdout
    assert "SWIM + Lifeguard" in result.stdout and "--version" in result.stdout


def test_version_comes_from_one_place() -> None:
    result = run("--version", timeout=30)
    assert result.returncode == 0
    assert result.stdout.strip() == f"swimgossip {swimgossip.__version__}"
    assert importlib.metadata.version("swimgossip") == swimgossip.__version__


def test_simulate_errors_name_the_subcommand() -> None:
    result = run("simulate", "--nodes", "0", timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith("swimgossip simulate: error: need --nodes >= 2"), result.stderr


def test_the_testing_guide_says_to_set_trio_mode() -> None:
    guide = (ROOT / "docs" / "testing.md").read_text()
    assert "trio_mode = true" in guide
    assert "async def functions are not natively supported" in guide
