"""Table-driven tests of the core's pure maths and small value types.

The expected numbers are hashicorp/memberlist's (suspicion.go, util.go, awareness.go and
their tests; DefaultLANConfig / DefaultWANConfig / DefaultLocalConfig), so a drift from the
reference implementation shows up here first.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from swimgossip.core._sync import push_pull_interval
from swimgossip.core.awareness import Awareness
from swimgossip.core.broadcast import retransmit_limit
from swimgossip.core.config import PRESETS, Config
from swimgossip.core.errors import ConfigError
from swimgossip.core.member import Status, supersedes
from swimgossip.core.suspicion import (
    Suspicion,
    expected_confirmations,
    suspicion_max_timeout,
    suspicion_min_timeout,
    suspicion_timeout,
)

# ---------------------------------------------------------------------------- supersedes

_STATUS_PAIRS = [(new, old) for new in Status for old in Status]


@pytest.mark.parametrize(("new", "old"), _STATUS_PAIRS)
def test_supersedes_equal_incarnation_follows_rank(new: Status, old: Status) -> None:
    # left > dead > suspect > alive; an equal claim carries no news.
    rank = [Status.ALIVE, Status.SUSPECT, Status.DEAD, Status.LEFT]
    assert supersedes(5, new, 5, old) is (rank.index(new) > rank.index(old))


@pytest.mark.parametrize(("new", "old"), _STATUS_PAIRS)
def test_supersedes_higher_incarnation_always_wins(new: Status, old: Status) -> None:
    assert supersedes(6, new, 5, old) is True


@pytest.mark.parametrize(("new", "old"), _STATUS_PAIRS)
def test_supersedes_lower_incarnation_never_wins(new: Status, old: Status) -> None:
    assert supersedes(4, new, 5, old) is False


def test_supersedes_is_a_strict_order() -> None:
    claims = [(inc, status) for inc in range(3) for status in Status]
    for a in claims:
        assert not supersedes(*a, *a)  # irreflexive
        for b in claims:
            if a != b:  # total: exactly one of two distinct claims wins
                assert supersedes(*a, *b) != supersedes(*b, *a)


def test_status_gone_and_wire_values() -> None:
    assert [s.is_gone for s in Status] == [False, False, True, True]
    assert [int(s) for s in Status] == [0, 1, 2, 3]


# ---------------------------------------------------------------------------- suspicion


@pytest.mark.parametrize(
    ("mult", "n", "interval", "expected"),
    [
        (4, 100, 1.0, 8.0),  # memberlist LAN, N=100: 8 s
        (4, 1, 1.0, 4.0),  # log10 is floored at 1
        (4, 0, 1.0, 4.0),  # an empty estimate does not break the log
        (4, 10, 1.0, 4.0),
        (4, 1000, 1.0, 12.0),
        (6, 100, 5.0, 60.0),  # WAN
        (3, 100, 1.0, 6.0),  # Local
        (4, 50, 0.5, 4 * math.log10(50) * 0.5),
    ],
)
def test_suspicion_min_timeout(mult: int, n: int, interval: float, expected: float) -> None:
    assert suspicion_min_timeout(mult, n, interval) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("low", "mult", "expected"), [(8.0, 6, 48.0), (4.0, 1, 4.0), (2.0, 15, 30.0)]
)
def test_suspicion_max_timeout(low: float, mult: int, expected: float) -> None:
    assert suspicion_max_timeout(low, mult) == pytest.approx(expected)


def test_lan_bounds_for_a_hundred_members_are_memberlists() -> None:
    cfg = Config.lan()
    low = suspicion_min_timeout(cfg.suspicion_mult, 100, cfg.probe_interval)
    high = suspicion_max_timeout(low, cfg.suspicion_max_timeout_mult)
    assert low == pytest.approx(8.0)
    assert high == pytest.approx(48.0)
    assert expected_confirmations(cfg.suspicion_mult, 100) == 2


@pytest.mark.parametrize(
    ("mult", "n", "expected"),
    [
        (4, 100, 2),
        (4, 4, 2),  # two members besides the suspect and us
        (4, 3, 0),  # too small to supply two confirmations
        (4, 1, 0),
        (6, 100, 4),
        (3, 100, 1),
        (2, 100, 0),
        (1, 100, 0),  # never negative
    ],
)
def test_expected_confirmations(mult: int, n: int, expected: int) -> None:
    assert expected_confirmations(mult, n) == expected


@pytest.mark.parametrize(
    ("confirmations", "expected"),
    [
        (0, 48.0),  # a fresh suspicion waits the ceiling
        (1, 48.0 - 40.0 * math.log(2) / math.log(3)),  # ~22.76 s
        (2, 8.0),  # K confirmations: the floor
        (3, 8.0),  # more than expected: never below the floor
        (10, 8.0),
    ],
)
def test_suspicion_timeout_lan_hundred(confirmations: int, expected: float) -> None:
    assert suspicion_timeout(confirmations, 2, 8.0, 48.0) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("confirmations", "elapsed", "remaining"),
    # memberlist's TestSuspicion_remainingSuspicionTime (k=3, min 2 s, max 30 s); memberlist
    # floors to the millisecond, hence the tolerance.
    [(0, 0.0, 30.0), (1, 2.0, 14.0), (2, 3.0, 4.81), (3, 4.0, -2.0), (4, 5.0, -3.0)],
)
def test_suspicion_timeout_memberlist_table(
    confirmations: int, elapsed: float, remaining: float
) -> None:
    timeout = suspicion_timeout(confirmations, 3, 2.0, 30.0)
    assert timeout - elapsed == pytest.approx(remaining, abs=1e-3)


@pytest.mark.parametrize("confirmations", [0, 1, 5])
def test_suspicion_timeout_without_expected_confirmations_is_the_floor(
    confirmations: int,
) -> None:
    assert suspicion_timeout(confirmations, 0, 8.0, 48.0) == 8.0


def test_suspicion_timeout_shrinks_monotonically_and_stays_in_bounds() -> None:
    timeouts = [suspicion_timeout(c, 4, 5.0, 30.0) for c in range(8)]
    assert timeouts == sorted(timeouts, reverse=True)
    assert all(5.0 <= t <= 30.0 for t in timeouts)
    assert timeouts[0] == 30.0
    assert timeouts[4] == pytest.approx(5.0)


def _suspicion(expected: int = 2) -> Suspicion:
    return Suspicion(
        incarnation=3,
        by="origin",
        started=100.0,
        min_timeout=8.0,
        max_timeout=48.0,
        expected=expected,
        token=1,
    )


def test_suspicion_confirm_counts_only_new_independent_sources() -> None:
    suspicion = _suspicion(expected=2)
    assert suspicion.deadline == pytest.approx(148.0)
    assert suspicion.confirm("origin") is False  # the originator is not a confirmation
    assert suspicion.confirm("b") is True
    assert suspicion.confirm("b") is False  # a duplicate is not counted twice
    assert suspicion.confirmed_by == {"b"}
    assert suspicion.deadline == pytest.approx(100.0 + 48.0 - 40.0 * math.log(2) / math.log(3))
    assert suspicion.confirm("c") is True
    assert suspicion.deadline == pytest.approx(108.0)
    assert suspicion.confirm("d") is False  # capped at the expected count
    assert suspicion.confirmed_by == {"b", "c"}
    assert suspicion.deadline == pytest.approx(108.0)


def test_suspicion_without_expected_confirmations_counts_none() -> None:
    suspicion = _suspicion(expected=0)
    assert suspicion.confirm("b") is False
    assert suspicion.confirmed_by == set()
    assert suspicion.deadline == pytest.approx(108.0)


# ---------------------------------------------------------------------------- retransmit


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, 0),
        (1, 4),
        (2, 4),
        (9, 4),
        (10, 8),
        (50, 8),
        (99, 8),
        (100, 12),
        (999, 12),
        (1000, 16),
        (9999, 16),
        (10_000, 20),
    ],
)
def test_retransmit_limit_lan(n: int, expected: int) -> None:
    assert retransmit_limit(4, n) == expected


@pytest.mark.parametrize(("mult", "n", "expected"), [(2, 5, 2), (2, 50, 4), (3, 500, 9)])
def test_retransmit_limit_other_multipliers(mult: int, n: int, expected: int) -> None:
    assert retransmit_limit(mult, n) == expected


# ---------------------------------------------------------------------------- push-pull


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, 30.0),
        (32, 30.0),
        (33, 60.0),
        (64, 60.0),
        (65, 90.0),
        (128, 90.0),
        (129, 120.0),
        (256, 120.0),
        (257, 150.0),
        (1024, 180.0),
    ],
)
def test_push_pull_interval_scales_per_doubling_above_32(n: int, expected: float) -> None:
    assert push_pull_interval(30.0, n) == pytest.approx(expected)


# ---------------------------------------------------------------------------- awareness


def test_awareness_memberlist_table() -> None:
    # memberlist's TestAwareness: (delta, score, scaled 1 s) with max multiplier 8.
    steps = [
        (0, 0, 1.0),
        (-1, 0, 1.0),
        (-10, 0, 1.0),
        (1, 1, 2.0),
        (-1, 0, 1.0),
        (10, 7, 8.0),
        (-1, 6, 7.0),
        (-1, 5, 6.0),
        (-1, 4, 5.0),
        (-1, 3, 4.0),
        (-1, 2, 3.0),
        (-1, 1, 2.0),
        (-1, 0, 1.0),
        (-1, 0, 1.0),
    ]
    awareness = Awareness(8)
    for delta, score, scaled in steps:
        assert awareness.apply_delta(delta) == score
        assert awareness.score == score
        assert awareness.scale(1.0) == pytest.approx(scaled)


@pytest.mark.parametrize("max_multiplier", [1, 2, 8])
def test_awareness_score_stays_in_bounds(max_multiplier: int) -> None:
    awareness = Awareness(max_multiplier)
    for delta in [3, 100, -1, 7, -200, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1]:
        awareness.apply_delta(delta)
        assert 0 <= awareness.score <= max_multiplier - 1
        assert 0.5 <= awareness.scale(0.5) <= 0.5 * max_multiplier


def test_awareness_max_multiplier_one_disables_it() -> None:
    awareness = Awareness(1)
    for _ in range(5):
        assert awareness.apply_delta(1) == 0
    assert awareness.scale(0.5) == 0.5


# ---------------------------------------------------------------------------- config

# Each preset's memberlist numbers, as in PROTOCOL-NOTES' table.
_PRESETS: dict[str, dict[str, Any]] = {
    "lan": {
        "probe_interval": 1.0,
        "probe_timeout": 0.5,
        "indirect_checks": 3,
        "suspicion_mult": 4,
        "suspicion_max_timeout_mult": 6,
        "retransmit_mult": 4,
        "gossip_interval": 0.2,
        "gossip_nodes": 3,
        "gossip_to_the_dead_time": 30.0,
        "push_pull_interval": 30.0,
        "stream_timeout": 10.0,
        "awareness_max_multiplier": 8,
        "udp_payload_size": 1400,
        "meta_max_size": 512,
    },
    "wan": {
        "probe_interval": 5.0,
        "probe_timeout": 3.0,
        "indirect_checks": 3,
        "suspicion_mult": 6,
        "suspicion_max_timeout_mult": 6,
        "retransmit_mult": 4,
        "gossip_interval": 0.5,
        "gossip_nodes": 4,
        "gossip_to_the_dead_time": 60.0,
        "push_pull_interval": 60.0,
        "stream_timeout": 30.0,
        "awareness_max_multiplier": 8,
        "udp_payload_size": 1400,
        "meta_max_size": 512,
    },
    "local": {
        "probe_interval": 1.0,
        "probe_timeout": 0.2,
        "indirect_checks": 1,
        "suspicion_mult": 3,
        "suspicion_max_timeout_mult": 6,
        "retransmit_mult": 2,
        "gossip_interval": 0.1,
        "gossip_nodes": 3,
        "gossip_to_the_dead_time": 15.0,
        "push_pull_interval": 15.0,
        "stream_timeout": 1.0,
        "awareness_max_multiplier": 8,
        "udp_payload_size": 1400,
        "meta_max_size": 512,
    },
}


@pytest.mark.parametrize("preset", sorted(_PRESETS))
def test_config_presets_hold_memberlists_numbers(preset: str) -> None:
    config = getattr(Config, preset)()
    actual = {field: getattr(config, field) for field in _PRESETS[preset]}
    assert actual == _PRESETS[preset]


def test_config_default_is_lan_and_presets_take_changes() -> None:
    assert Config() == Config.lan()
    wan = Config.wan(gossip_nodes=7)
    assert wan.gossip_nodes == 7
    assert wan.probe_interval == 5.0
    assert Config.local().evolve(indirect_checks=2).indirect_checks == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("probe_interval", 0),
        ("probe_interval", -1.0),
        ("probe_interval", math.inf),
        ("probe_timeout", math.nan),
        ("probe_timeout", 5.0),  # not shorter than probe_interval (5 s on WAN)
        ("probe_timeout", 10.0),
        ("gossip_interval", "0.2"),
        ("push_pull_interval", 0.0),
        ("stream_timeout", -5),
        ("reap_timeout", 0),
        ("leave_timeout", None),
        ("indirect_checks", -1),
        ("indirect_checks", 1.5),
        ("indirect_checks", True),
        ("suspicion_mult", 0),
        ("suspicion_max_timeout_mult", 0),
        ("retransmit_mult", 0),
        ("gossip_nodes", 0),
        ("awareness_max_multiplier", 0),
        ("udp_payload_size", 511),
        ("udp_payload_size", 65_001),
        ("meta_max_size", -1),
        ("meta_max_size", 64 * 1024 + 1),
        ("max_members", 1),
        ("stream_fallback", 1),
        ("suspicion_floor", -0.5),
        ("suspicion_floor", math.inf),
        ("suspicion_floor", True),
    ],
)
@pytest.mark.parametrize("preset", ["lan", "fast", "wan", "local"])
def test_config_invalid_value_raises_naming_the_field(
    preset: str, field: str, value: object
) -> None:
    with pytest.raises(ConfigError) as caught:
        getattr(Config, preset)(**{field: value})
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert isinstance(caught.value, ValueError)


def test_fast_preset_halves_the_probe_period_and_keeps_a_stall_tolerant_floor() -> None:
    fast, lan = Config.fast(), Config.lan()
    assert (fast.probe_interval, fast.probe_timeout, fast.gossip_interval) == (0.5, 0.2, 0.1)
    assert fast.suspicion_floor == 3.5 and lan.suspicion_floor == 0.0
    # Everything else is LAN's, so the two differ only in timing.
    same = {"indirect_checks", "suspicion_mult", "retransmit_mult", "gossip_nodes"}
    assert {f: getattr(fast, f) for f in same} == {f: getattr(lan, f) for f in same}
    assert sorted(PRESETS) == ["fast", "lan", "local", "wan"]
    assert all(PRESETS[name]() == getattr(Config, name)() for name in PRESETS)


def test_config_probe_timeout_must_be_shorter_than_the_interval() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.lan(probe_interval=2.0, probe_timeout=2.0)
    assert caught.value.field == "probe_timeout"
    assert Config.lan(probe_interval=2.0, probe_timeout=1.5).probe_timeout == 1.5


def test_config_refuses_a_bool_duration() -> None:
    # True is an int > 0; it must not pass for a duration of one second.
    with pytest.raises(ConfigError) as caught:
        Config.lan(push_pull_interval=True)
    assert caught.value.field == "push_pull_interval"


def test_config_evolve_validates_again() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.lan().evolve(gossip_nodes=0)
    assert caught.value.field == "gossip_nodes"


@pytest.mark.parametrize(
    "changes",
    [
        {"indirect_checks": 0},
        {"awareness_max_multiplier": 1},
        {"udp_payload_size": 512, "meta_max_size": 384},
        {"udp_payload_size": 65_000},
        {"meta_max_size": 0},
        {"max_members": 2},
        {"probe_timeout": 0.999},
        {"suspicion_floor": 0},
        {"suspicion_floor": 0.0},
    ],
)
def test_config_boundary_values_are_accepted(changes: dict[str, Any]) -> None:
    config = Config.lan(**changes)
    assert {field: getattr(config, field) for field in changes} == changes
