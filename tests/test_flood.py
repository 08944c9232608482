"""A flood of garbage and unauthenticated datagrams at one member of a keyed cluster.

Three signed nodes (``Config.local()``) run on 127.0.0.1 in this process; a separate Python
process sends 50,000 datagrams at one of them, paced over about 3 s: random bytes, plain
packets, forgeries carrying the cluster's key id, packets of another label or an unknown key,
truncated envelopes, and one authentic packet replayed thousands of times. The node must
stay alive and keep probing during the flood, nobody may be declared failed, and the
process's resident memory may grow by at most ``RSS_BOUND`` (the replay cache admits only
authenticated packets, so it holds one entry for the whole flood).

The flood is bounded by count; the pacing is best effort (a slow machine just takes longer),
and nothing asserts on timing. The numbers of a run are printed (``pytest -s``).
"""

from __future__ import annotations

import os
import random
import sys

import trio

from node_helpers import PATIENCE, alive_names, poll, start_node
from swimgossip import Config, Keyring, MemberFailed, Node, NodeEvent, parse_address
from swimgossip.security import PacketSigner, SecurityMode

KEY = bytes(range(32))
DATAGRAMS = 50_000
#: Seconds the sender spreads the flood over.
SPREAD = 3.0
#: Most the process's resident memory may grow during the flood and its aftermath.
RSS_BOUND = 20 * 1024 * 1024

_SENDER = r"""
import socket, sys, time
host, port, count, spread = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
packets = [bytes.fromhex(line) for line in sys.stdin.read().split()]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = time.monotonic()
sent = 0
for i in range(count):
    if i % 250 == 0:
        ahead = start + spread * i / count - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    try:
        sock.sendto(packets[i % len(packets)], (host, port))
        sent += 1
    except OSError:
        pass
print(sent, round(time.monotonic() - start, 2))
"""


def _flood_packets(rng: random.Random) -> list[bytes]:
    """The mix the sender cycles through."""
    ours = PacketSigner(Keyring([KEY]), SecurityMode.REQUIRED)
    genuine = ours.wrap(b"\x01" + rng.randbytes(40))  # authentic: replayed over and over
    packets = [genuine] * 20
    for _ in range(40):
        signed = ours.wrap(rng.randbytes(rng.randrange(1, 600)))
        packets.append(signed[:-1] + bytes([signed[-1] ^ 1]))  # forged with our key id
        packets.append(rng.randbytes(rng.randrange(1, 1400)))  # garbage
        packets.append(b"\x01" + rng.randbytes(rng.randrange(0, 300)))  # plain
        packets.append(signed[: rng.randrange(1, 41)])  # truncated envelope
    other_key = PacketSigner(Keyring([bytes(32)]), SecurityMode.REQUIRED)
    other_label = PacketSigner(Keyring([KEY]), SecurityMode.REQUIRED, label="elsewhere")
    for _ in range(20):
        packets.append(other_key.wrap(rng.randbytes(100)))
        packets.append(other_label.wrap(rng.randbytes(100)))
    rng.shuffle(packets)
    return packets


def _rss() -> int:
    """This process's resident set size in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_flood_of_unauthenticated_datagrams() -> None:
    rng = random.Random(50_000)
    packets = _flood_packets(rng)
    failed: list[NodeEvent] = []
    with trio.fail_after(4 * PATIENCE):
        async with trio.open_nursery() as nursery:
            nodes = [
                (await start_node(nursery, name, config=Config.local(), keyring=Keyring([KEY])))[0]
                for name in ("a", "b", "c")
            ]
            target = nodes[0]

            async def record(node: Node) -> None:
                async with node.subscribe() as events:
                    async for event in events:
                        if type(event) is MemberFailed:
                            failed.append(event)

            for node in nodes:
                nursery.start_soon(record, node)
            for node in nodes[1:]:
                await node.join([target.address])
            await poll(lambda: all(alive_names(n) == {"a", "b", "c"} for n in nodes))

            rss_before, rss_peak = _rss(), _rss()
            before = target.metrics()
            host, port = parse_address(target.address)
            sender = [sys.executable, "-c", _SENDER, host, str(port), str(DATAGRAMS), str(SPREAD)]
            done = trio.Event()
            outcome: list[str] = []

            async def flood() -> None:
                result = await trio.run_process(
                    sender, stdin="\n".join(p.hex() for p in packets).encode(), capture_stdout=True
                )
                outcome.append(result.stdout.decode().strip())
                done.set()

            nursery.start_soon(flood)
            while not done.is_set():
                rss_peak = max(rss_peak, _rss())
                with trio.move_on_after(0.1):
                    await done.wait()
            during = target.metrics()
            # afterwards: the node keeps probing and the cluster stays whole
            await poll(lambda: target.metrics()["probes"] >= during["probes"] + 2)
            rss_peak = max(rss_peak, _rss())
            after = target.metrics()
            nursery.cancel_scope.cancel()

    sent, seconds = outcome[0].split()

    def grew(counter: str) -> float:
        return after[counter] - before[counter]

    growth = rss_peak - rss_before
    print(
        f"\nflood: {sent} datagrams sent in {seconds} s; the target received "
        f"{grew('packets_in'):.0f} datagrams and refused {grew('auth_failures'):.0f} "
        f"({grew('auth_rejected_replay'):.0f} replays, {grew('auth_rejected_forged'):.0f} "
        f"forged); probes during the flood: {during['probes'] - before['probes']:.0f}; "
        f"peak RSS growth {growth / 1e6:.1f} MB; replay cache entries "
        f"{before['auth_replay_cache_entries']:.0f} -> {after['auth_replay_cache_entries']:.0f}"
    )
    assert int(sent) == DATAGRAMS
    # most arrive on loopback (the kernel may drop some when the node falls behind)
    assert grew("auth_failures") >= DATAGRAMS // 20
    assert grew("auth_rejected_replay") >= 1 and grew("auth_rejected_forged") >= 1
    assert during["probes"] > before["probes"]  # probing went on during the flood
    assert not failed, failed
    assert after["members_alive"] == 3
    assert growth < RSS_BOUND, f"RSS grew by {growth / 1e6:.1f} MB"
    # the replay cache holds authenticated nonces only: the flood added at most one
    assert after["auth_replay_cache_entries"] - before["auth_replay_cache_entries"] <= 1 + (
        after["auth_accepted_signed"] - before["auth_accepted_signed"]
    )
