"""A tiny kinship node for the side-by-side harness (runs in kinship's own virtualenv).

Prints the same JSON event lines as ``swimgossip agent``: {"ts", "event", "member",
"address", "incarnation", "meta"}. SIGUSR1 sets the metadata key ``v`` to the current
time (scenario 6); SIGTERM / SIGINT leave and exit. Plaintext, as every system in the
harness runs unencrypted, and memberlist's LAN timing (kinship's ``Config.lan()`` is
already that; the values are passed explicitly so the matching is visible).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

import kinship

NAMES = {
    "MemberJoined": "joined",
    "MemberSuspect": "suspected",
    "MemberDead": "failed",
    "MemberLeft": "left",
    "MemberRecovered": "recovered",
    "MemberUpdated": "updated",
}


def emit(event: str, member: object | None = None, **extra: object) -> None:
    record: dict[str, object] = {"ts": time.time(), "event": event}
    if member is not None:
        record.update(
            member=member.name,  # type: ignore[attr-defined]
            address=member.addr,  # type: ignore[attr-defined]
            incarnation=member.incarnation,  # type: ignore[attr-defined]
            meta=dict(member.meta),  # type: ignore[attr-defined]
        )
    record.update(extra)
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    config = kinship.Config.lan(
        name=args.name,
        bind=args.bind,
        seeds=args.join,
        meta={"v": "0"},
        insecure_plaintext=True,
        probe_interval=1.0,
        probe_timeout=0.5,
        indirect_checks=3,
        suspicion_mult=4,
        suspicion_max_mult=6,
        retransmit_mult=4,
        gossip_interval=0.2,
        gossip_nodes=3,
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with kinship.Cluster(config) as cluster:
        events = cluster.events()
        emit("joined", cluster.local)
        for member in cluster.members():
            if member.name != args.name:
                emit("joined", member)

        pending: set[asyncio.Task[None]] = set()

        def bump() -> None:
            task = loop.create_task(cluster.update_meta(v=repr(time.time())))
            pending.add(task)
            task.add_done_callback(pending.discard)

        loop.add_signal_handler(signal.SIGUSR1, bump)

        async def pump() -> None:
            async for event in events:
                name = NAMES.get(type(event).__name__)
                if name is not None:
                    emit(name, event.member)

        task = loop.create_task(pump())
        await stop.wait()
        task.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--join", action="append", default=[])
    asyncio.run(main(parser.parse_args()))
