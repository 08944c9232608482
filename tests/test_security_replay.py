"""Tests for the replay guard (swimgossip.security._replay) and its bounds, alone and behind a
signer."""

from __future__ import annotations

import pytest

from swimgossip.security import (
    AuthenticationError,
    Keyring,
    PacketSigner,
    RejectReason,
    SecurityMode,
)
from swimgossip.security._replay import DEFAULT_REPLAY_CACHE_SIZE, Freshness, ReplayGuard

NOW = 1_700_000_000_000  # ms
FRESH, STALE, FUTURE, REPLAY, FORGOTTEN = (
    Freshness.FRESH,
    Freshness.STALE,
    Freshness.FUTURE,
    Freshness.REPLAY,
    Freshness.FORGOTTEN,
)


def nonce(number: int) -> bytes:
    return number.to_bytes(12, "big")


def test_window_and_duplicates() -> None:
    guard = ReplayGuard(window_ms=30_000, capacity=100)
    assert guard.admit(nonce(1), NOW, NOW) is FRESH
    assert guard.admit(nonce(1), NOW, NOW) is REPLAY
    assert guard.admit(nonce(1), NOW, NOW + 30_000) is REPLAY  # still inside the window
    assert guard.admit(nonce(1), NOW, NOW + 30_001) is STALE
    assert guard.admit(nonce(2), NOW + 30_001, NOW) is FUTURE
    assert guard.admit(nonce(3), NOW - 30_000, NOW) is FRESH
    assert guard.admit(nonce(4), NOW + 30_000, NOW) is FRESH
    assert len(guard) == 3


def test_entries_expire_by_timestamp() -> None:
    guard = ReplayGuard(window_ms=1_000, capacity=100)
    for number in range(10):
        assert guard.admit(nonce(number), NOW + number * 100, NOW) is FRESH
    # a future-stamped entry outlives the ones stamped earlier
    assert guard.admit(nonce(99), NOW + 1_000, NOW) is FRESH
    assert guard.admit(nonce(100), NOW + 1_999, NOW + 1_999) is FRESH  # prunes what expired
    assert len(guard) == 2  # stamps up to NOW + 998 expired; NOW + 1_000 and + 1_999 remain
    assert guard.admit(nonce(99), NOW + 1_000, NOW + 1_999) is REPLAY
    assert guard.evictions == 0


def test_full_cache_never_lets_a_replay_through() -> None:
    guard = ReplayGuard(window_ms=30_000, capacity=3)
    for number in range(3):
        assert guard.admit(nonce(number), NOW + number, NOW) is FRESH
    # full: a packet older than everything cached is refused, nothing is evicted
    assert guard.admit(nonce(10), NOW - 5, NOW) is FORGOTTEN
    assert guard.evictions == 0
    # a newer one evicts the oldest (stamp NOW) and raises the floor to it
    assert guard.admit(nonce(3), NOW + 3, NOW) is FRESH
    assert guard.evictions == 1
    assert len(guard) == 3
    # the evicted packet, replayed, is refused although its nonce was forgotten
    assert guard.admit(nonce(0), NOW, NOW) is FORGOTTEN
    # the ones still cached are refused as plain replays
    assert guard.admit(nonce(2), NOW + 2, NOW) is REPLAY


def test_bounded_under_100k_distinct_packets() -> None:
    guard = ReplayGuard(window_ms=30_000, capacity=DEFAULT_REPLAY_CACHE_SIZE)
    # 100,000 distinct packets within one second: far above the cache's rate
    verdicts = [guard.admit(nonce(n), NOW + n // 100, NOW) for n in range(100_000)]
    assert verdicts.count(FRESH) == 100_000
    assert len(guard) == DEFAULT_REPLAY_CACHE_SIZE
    assert guard.evictions == 100_000 - DEFAULT_REPLAY_CACHE_SIZE
    # every one of them replayed is refused, cached or not
    assert all(guard.admit(nonce(n), NOW + n // 100, NOW) is not FRESH for n in range(100_000))


def test_steady_rate_below_capacity_never_evicts() -> None:
    guard = ReplayGuard(window_ms=30_000, capacity=2_100)
    # 50 packets per second for 10 minutes, stamped by a clock 10 s ahead of ours: each
    # entry lives 10 + 30 s, so about 2,000 are held at a time
    for n in range(30_000):
        now = NOW + n * 20
        assert guard.admit(nonce(n), now + 10_000, now) is FRESH
    assert guard.evictions == 0
    assert len(guard) <= 50 * 40 + 1


@pytest.mark.parametrize(("window", "capacity"), [(-1, 10), (10, 0)])
def test_invalid_settings(window: int, capacity: int) -> None:
    with pytest.raises(ValueError):
        ReplayGuard(window_ms=window, capacity=capacity)


class SteppingClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("mode", [SecurityMode.REQUIRED, SecurityMode.SEALED])
def test_signer_cache_stays_bounded(mode: SecurityMode) -> None:
    clock = SteppingClock()
    ring = Keyring([bytes(32)])
    sender = PacketSigner(ring, mode, clock=clock)
    receiver = PacketSigner(ring, mode, clock=clock, replay_cache_size=1_024)
    kept = []
    for n in range(20_000):
        clock.now += 0.001  # 1,000 packets per second: ~30x what 1,024 entries cover
        packet = sender.wrap(b"\x01")
        assert receiver.unwrap(packet) == b"\x01"
        if n % 2_000 == 0:
            kept.append(packet)
    stats = receiver.stats()
    assert stats.replay_cache_entries <= 1_024
    assert stats.replay_cache_evictions == 20_000 - 1_024
    assert stats.accepted == 20_000
    for packet in kept:  # replays of old and recent packets alike are refused
        with pytest.raises(AuthenticationError) as info:
            receiver.unwrap(packet)
        assert info.value.reason is RejectReason.REPLAY
