"""A tiny swim-protocol node for the side-by-side harness (runs in its own virtualenv).

Prints the same JSON event lines as ``swimgossip agent``. swim-protocol reports status
changes (ONLINE / SUSPECT / OFFLINE) and metadata through ``Members.listener``; this
runner turns them into joined / suspected / failed / recovered / updated lines.
Member names are addresses (``127.0.0.1:PORT``), as swim-protocol requires; the harness
maps them back. SIGUSR1 sets the metadata key ``v`` to the current time (scenario 6).

Matched settings: ping every 1 s, ping timeout 0.5 s, 3 ping-reqs with 0.5 s more to wait
(one protocol period in all), dissemination every 0.2 s (to one member: swim-protocol has
no fan-out knob), and a fixed suspicion timeout (no Lifeguard) passed by the harness as
memberlist's suspicion floor: 4 * max(1, log10(N)) * 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from contextlib import AsyncExitStack

from swimprotocol.members import Member, Members
from swimprotocol.status import Status
from swimprotocol.udp import UdpConfig, UdpTransport
from swimprotocol.worker import Worker


def emit(event: str, member: Member) -> None:
    record = {
        "ts": time.time(),
        "event": event,
        "member": member.name,
        "address": member.name,
        "meta": {k: v.decode(errors="replace") for k, v in member.metadata.items()},
    }
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    config = UdpConfig(
        local_name=args.bind,
        peers=args.join,
        secret="swimgossip-bench",
        local_metadata={"v": b"0"},
        ping_interval=1.0,
        ping_timeout=0.5,
        ping_req_count=3,
        ping_req_timeout=0.5,
        suspect_timeout=args.suspect_timeout,
        sync_interval=0.2,
    )
    members = Members(config)
    worker = Worker(config, members)
    transport = UdpTransport(config, worker)
    seen: dict[str, Status] = {}
    metas: dict[str, dict[str, bytes]] = {}

    def on_change(member: Member) -> None:
        before = seen.get(member.name)
        status = member.status
        if status != before:
            seen[member.name] = status
            if status == Status.ONLINE:
                emit("recovered" if before == Status.SUSPECT else "joined", member)
            elif status == Status.SUSPECT:
                emit("suspected", member)
            elif status == Status.OFFLINE and before is not None:
                emit("failed", member)
        meta = dict(member.metadata)
        if member.name in metas and meta != metas[member.name] and status != Status.OFFLINE:
            emit("updated", member)
        metas[member.name] = meta

    async def on_notify(member: Member) -> None:
        on_change(member)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    def bump() -> None:
        local = members.local
        members.update(local, new_metadata=dict(local.metadata) | {"v": repr(time.time()).encode()})

    loop.add_signal_handler(signal.SIGUSR1, bump)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(transport)
        await stack.enter_async_context(worker)
        await stack.enter_async_context(members.listener.on_notify(on_notify))
        emit("joined", members.local)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--join", action="append", default=[])
    parser.add_argument("--suspect-timeout", type=float, default=4.0)
    asyncio.run(main(parser.parse_args()))
