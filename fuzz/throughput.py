"""Measure PacketSigner throughput and the replay cache's memory (not a test; no asserts).

    .venv/bin/python fuzz/throughput.py [--count N] [--size BYTES]

Prints, per mode: wrap + unwrap round trips per second on one core for a payload of
``--size`` bytes; then how fast garbage is refused (what a flood costs) and the bytes of
memory one replay-cache entry takes. docs/security.md quotes these numbers.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

from swimgossip.security import AuthenticationError, Keyring, PacketSigner, SecurityMode
from swimgossip.security._replay import ReplayGuard


class _TickingClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 0.000_01
        return self.now


def round_trips(mode: SecurityMode, count: int, size: int) -> tuple[float, float, float]:
    """Return (wraps/s, unwraps/s, round trips/s) for ``count`` packets of ``size`` bytes."""
    ring = Keyring([os.urandom(32)])
    clock = _TickingClock()
    sender = PacketSigner(ring, mode, clock=clock)
    receiver = PacketSigner(ring, mode, clock=clock, replay_cache_size=count + 1)
    payload = b"\x01" + os.urandom(size - 1)
    start = time.perf_counter()
    packets = [sender.wrap(payload) for _ in range(count)]
    middle = time.perf_counter()
    for packet in packets:
        receiver.unwrap(packet)
    end = time.perf_counter()
    return count / (middle - start), count / (end - middle), count / (end - start)


def refusals(count: int) -> dict[str, float]:
    """Refusals per second for kinds of flood a node without the key can send."""
    ring = Keyring([os.urandom(32)])
    receiver = PacketSigner(ring, SecurityMode.SEALED, label="prod")
    forged = bytearray(PacketSigner(ring, SecurityMode.SEALED, label="prod").wrap(bytes(200)))
    forged[-1] ^= 1
    floods = {
        "wrong label": b"\xb0\x03dev" + bytes(200),
        "unsigned": b"\xb0\x04prod\x01" + bytes(200),
        "unknown key": b"\xb0\x04prod\xa3" + bytes(240),
        "forged (known key id)": bytes(forged),
    }
    rates = {}
    for name, data in floods.items():
        start = time.perf_counter()
        for _ in range(count):
            try:  # noqa: SIM105 (suppress() would add its own cost to the timing)
                receiver.unwrap(data)
            except AuthenticationError:
                pass
        rates[name] = count / (time.perf_counter() - start)
    return rates


def cache_bytes_per_entry(entries: int = 100_000) -> float:
    tracemalloc.start()
    guard = ReplayGuard(window_ms=30_000, capacity=entries)
    before = tracemalloc.get_traced_memory()[0]
    for n in range(entries):
        guard.admit(os.urandom(12), 1_700_000_000_000 + n // 10, 1_700_000_000_000)
    used = tracemalloc.get_traced_memory()[0] - before
    assert len(guard) == entries
    tracemalloc.stop()
    return used / entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=200)
    args = parser.parse_args()
    print(f"{args.size}-byte payloads, {args.count} packets, one core:")
    for mode in (SecurityMode.OFF, SecurityMode.REQUIRED, SecurityMode.SEALED):
        wraps, unwraps, trips = round_trips(mode, args.count, args.size)
        print(
            f"  {mode.value:>8}: wrap {wraps:>9,.0f}/s  unwrap {unwraps:>9,.0f}/s  "
            f"wrap+unwrap {trips:>9,.0f}/s"
        )
    print("refusals per second (sealed receiver with a label):")
    for name, rate in refusals(args.count).items():
        print(f"  {name:>22}: {rate:>9,.0f}/s")
    print(f"replay cache: {cache_bytes_per_entry():.0f} bytes per entry")


if __name__ == "__main__":
    main()
