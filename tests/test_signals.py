"""Signals leave gracefully (issue 17, point 2): a real process on 127.0.0.1 running
``open_node`` gets SIGTERM or SIGINT, and its peer (an agent process) sees ``left``, never
``suspected`` or ``failed``. Every wait is for an output line, with a deadline."""

from __future__ import annotations

import signal
import sys

import pytest

from cli_helpers import Process, spawned

WITHIN = 20.0

#: A service: joins the seed, says it is ready, and runs until stopped.
SERVICE = """
import json, sys
import trio
import swimgossip

name, seed, mode = sys.argv[1:4]

def say(**record):
    print(json.dumps(record), flush=True)

async def main():
    config = swimgossip.Config.local(leave_timeout=5.0)
    async with swimgossip.open_node(
        name, bind="127.0.0.1:0", config=config, handle_signals=mode == "handle"
    ) as node:
        await node.join([seed])
        say(event="ready", member=name)
        await trio.sleep_forever()
    signum = node.stop_signal
    say(event="ended", member=name, signal=None if signum is None else signum.name)

try:
    trio.run(main)
except KeyboardInterrupt:
    say(event="interrupted", member=name)
    sys.exit(130)
"""


def _service(start_peer: Process, name: str, mode: str) -> Process:
    seed = start_peer.expect_event("joined", "peer", WITHIN)["address"]
    return Process(name, seed, mode, command=(sys.executable, "-c", SERVICE))


@pytest.mark.parametrize(
    ("mode", "signum", "outcome", "status"),
    [
        ("handle", signal.SIGTERM, {"event": "ended", "signal": "SIGTERM"}, 0),
        ("handle", signal.SIGINT, {"event": "ended", "signal": "SIGINT"}, 0),
        # No handler: Ctrl-C is a KeyboardInterrupt in the block, which still leaves.
        ("default", signal.SIGINT, {"event": "interrupted"}, 130),
    ],
)
def test_a_signalled_service_leaves_and_its_peer_sees_left(
    mode: str, signum: signal.Signals, outcome: dict[str, str], status: int
) -> None:
    with spawned() as start:
        peer = start("agent", "--name", "peer", "--bind", "127.0.0.1:0", "--preset", "local")
        service = _service(peer, "svc", mode)
        try:
            service.expect_event("ready", "svc", WITHIN)
            peer.expect_event("joined", "svc", WITHIN)
            service.popen.send_signal(signum)
            try:
                left = peer.expect_event("left", "svc", WITHIN)
            except AssertionError as exc:  # say what the service did, too
                raise AssertionError(
                    f"{exc}\nservice exit status {service.popen.poll()}\n{service.dump()}"
                ) from None
            assert left["status"] == "left"
            assert service.wait(timeout=WITHIN) == status, service.dump()
            ended = service.expect(lambda r: r.get("event") != "ready", 0, "the end line")
            assert {key: ended[key] for key in outcome} == outcome, service.dump()
        finally:
            service.kill()
        about_svc = [r["event"] for r in peer.records if r.get("member") == "svc"]
        assert about_svc == ["joined", "left"], peer.dump()
