"""Tests for the replay guard (swimgossip.security._replay) and its bounds, alone and behind a
signer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


# ------------------------------------------------------------ wall-clock steps (issue 15)


def test_a_clock_step_forward_then_back_never_lets_a_replay_through() -> None:
    """The packet of a forgotten nonce is refused even when the wall clock comes back to
    where that packet is inside the window again (the floor rises on expiry too)."""
    guard = ReplayGuard(window_ms=1_000, capacity=3)
    assert guard.admit(nonce(0), NOW, NOW) is FRESH
    assert guard.admit(nonce(1), NOW, NOW) is FRESH
    assert guard.admit(nonce(2), NOW, NOW) is FRESH
    assert guard.admit(nonce(3), NOW + 900, NOW) is FRESH  # full: evicts nonce 0
    # The wall clock steps 1.5 s forward, long enough to expire the entries stamped NOW.
    assert guard.admit(nonce(4), NOW + 1_500, NOW + 1_500) is FRESH
    assert len(guard) == 2  # room again
    # ... and back: every packet stamped NOW is inside the window again, and forgotten.
    for number in range(3):
        assert guard.admit(nonce(number), NOW, NOW + 100) is FORGOTTEN
    assert guard.admit(nonce(3), NOW + 900, NOW + 100) is REPLAY
    assert guard.admit(nonce(5), NOW + 100, NOW + 100) is FRESH  # genuine traffic goes on


def test_an_entry_expired_by_a_forward_step_is_refused_after_the_step_back() -> None:
    """Expiry alone (no eviction) raises the floor: a packet forgotten because the wall
    clock ran ahead cannot come back as fresh when the clock returns."""
    guard = ReplayGuard(window_ms=1_000, capacity=100)
    assert guard.admit(nonce(0), NOW, NOW, 0) is FRESH
    assert guard.admit(nonce(1), NOW + 2_000, NOW + 2_000, 1_500) is FRESH
    assert len(guard) == 1 and guard.evictions == 0  # nonce 0 expired, not evicted
    assert guard.admit(nonce(0), NOW, NOW + 100, 1_600) is FORGOTTEN
    assert guard.admit(nonce(2), NOW + 100, NOW + 100, 1_600) is FRESH


def test_the_monotonic_hold_remembers_across_a_short_wall_clock_step() -> None:
    """With the monotonic clock the guard forgets nothing over a wall-clock step shorter
    than the window: a replay is caught from memory, and nothing genuine is refused."""
    guard = ReplayGuard(window_ms=1_000, capacity=100)
    mono = 5_000
    assert guard.admit(nonce(0), NOW, NOW, mono) is FRESH
    # The wall clock jumps 10 s forward for 100 ms of real time, then back.
    assert guard.admit(nonce(1), NOW + 10_000, NOW + 10_000, mono + 50) is FRESH
    assert len(guard) == 2  # nonce 0 is held: admitted less than a window ago
    assert guard.admit(nonce(0), NOW, NOW + 100, mono + 100) is REPLAY
    assert guard.admit(nonce(2), NOW + 50, NOW + 100, mono + 100) is FRESH


@given(
    capacity=st.integers(1, 4),
    steps=st.lists(
        st.tuples(st.integers(0, 7), st.integers(-3_000, 3_000), st.integers(0, 1_500)),
        max_size=40,
    ),
)
def test_no_packet_is_ever_accepted_twice_whatever_the_clocks_do(
    capacity: int, steps: list[tuple[int, int, int]]
) -> None:
    """Eight packets (a nonce and its fixed stamp each), replayed in any order while the
    wall clock jumps both ways and the monotonic clock advances: each is FRESH at most once."""
    guard = ReplayGuard(window_ms=1_000, capacity=capacity)
    stamps = [NOW + 250 * number - 1_000 for number in range(8)]
    accepted: set[int] = set()
    mono = 0
    for number, wall_offset, mono_step in steps:
        mono += mono_step
        verdict = guard.admit(nonce(number), stamps[number], NOW + wall_offset, mono)
        if verdict is FRESH:
            assert number not in accepted, f"packet {number} accepted twice"
            accepted.add(number)
        assert len(guard) <= capacity


@pytest.mark.parametrize("mode", [SecurityMode.REQUIRED, SecurityMode.SEALED])
def test_signer_refuses_a_replay_after_the_wall_clock_steps_forward_and_back(
    mode: SecurityMode,
) -> None:
    """``PacketSigner`` reads a wall clock that steps (NTP) and a monotonic one that does
    not: a packet captured before a step forward then back is never accepted again."""
    wall, mono = SteppingClock(), SteppingClock()
    ring = Keyring([bytes(32)])
    sender = PacketSigner(ring, mode, clock=wall)
    receiver = PacketSigner(ring, mode, clock=wall, monotonic=mono, replay_window=1.0)
    captured = sender.wrap(b"\x01")
    assert receiver.unwrap(captured) == b"\x01"
    wall.now += 60.0  # the step forward, held for 2 s of real time
    mono.now += 2.0
    assert receiver.unwrap(sender.wrap(b"\x01")) == b"\x01"  # expires the captured one
    wall.now -= 59.9  # and back, 0.1 s after the capture
    mono.now += 0.1
    with pytest.raises(AuthenticationError) as info:
        receiver.unwrap(captured)
    assert info.value.reason is RejectReason.REPLAY
    assert receiver.unwrap(sender.wrap(b"\x01")) == b"\x01"
