"""Tests of the probe order: shuffled round robin, newcomers, removals, random sampling."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimgossip.core.probe import ProbeCycle


def _cycle(names: list[str], seed: int = 1) -> ProbeCycle:
    cycle = ProbeCycle(random.Random(seed))
    for name in names:
        cycle.add(name)
    return cycle


def _always(_name: str) -> bool:
    return True


def _take(cycle: ProbeCycle, count: int) -> list[str]:
    taken = []
    for _ in range(count):
        name = cycle.next(_always)
        assert name is not None
        taken.append(name)
    return taken


NAMES = [f"n{i}" for i in range(12)]


@pytest.mark.parametrize("seed", range(5))
def test_every_pass_visits_every_name_exactly_once(seed: int) -> None:
    cycle = _cycle(NAMES, seed)
    passes = [_take(cycle, len(NAMES)) for _ in range(4)]
    for visited in passes:
        assert sorted(visited) == sorted(NAMES)
    # Reshuffled between passes (12! orders: four equal passes would be a broken shuffle).
    assert len({tuple(p) for p in passes}) > 1


def test_same_seed_same_order() -> None:
    assert _take(_cycle(NAMES, 7), 30) == _take(_cycle(NAMES, 7), 30)
    assert _take(_cycle(NAMES, 7), 30) != _take(_cycle(NAMES, 8), 30)


def test_add_is_idempotent_and_membership_tracks() -> None:
    cycle = _cycle(["a", "b"])
    cycle.add("a")
    assert len(cycle) == 2
    assert "a" in cycle
    assert "z" not in cycle


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("visited_before", [0, 1, 5, 11, 12])
def test_newcomer_is_visited_within_this_pass_or_the_next(seed: int, visited_before: int) -> None:
    cycle = _cycle(NAMES, seed)
    visited = _take(cycle, visited_before)
    cycle.add("new")
    left_in_pass = len(NAMES) - visited_before
    # At most the rest of this pass, then one whole pass that includes the newcomer.
    horizon = _take(cycle, left_in_pass + len(NAMES) + 1)
    assert "new" in horizon
    # The pass under way goes on: no name visited before the insertion comes again.
    rest_of_pass = [name for name in horizon[:left_in_pass] if name != "new"]
    assert len(rest_of_pass) == len(set(rest_of_pass))
    assert set(rest_of_pass).isdisjoint(visited)


def test_newcomers_are_spread_over_positions() -> None:
    # Inserted at random positions: across seeds, a newcomer added mid-pass is sometimes
    # visited in this pass and sometimes only in the next.
    outcomes = set()
    for seed in range(40):
        cycle = _cycle(NAMES, seed)
        _take(cycle, 6)
        cycle.add("new")
        outcomes.add("new" in _take(cycle, 7))
    assert outcomes == {True, False}


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("visited_before", [0, 3, 6, 12])
def test_remove_during_a_pass(seed: int, visited_before: int) -> None:
    cycle = _cycle(NAMES, seed)
    visited = _take(cycle, visited_before)
    rng = random.Random(seed)
    gone = set(rng.sample(NAMES, 3))
    for name in sorted(gone):
        cycle.remove(name)
    cycle.remove("never-there")  # no-op
    assert len(cycle) == len(NAMES) - 3
    assert not any(name in cycle for name in gone)
    if visited_before == len(NAMES):
        visited = []  # the pass was complete: the next call starts a new one
    rest = _take(cycle, len(NAMES) - 3 - len([v for v in visited if v not in gone]))
    # The pass completes with each remaining name exactly once, and no removed name.
    assert sorted([v for v in visited if v not in gone] + rest) == sorted(set(NAMES) - gone)
    assert gone.isdisjoint(rest)
    # Then whole passes over the survivors.
    assert sorted(_take(cycle, len(NAMES) - 3)) == sorted(set(NAMES) - gone)


def test_next_skips_names_that_are_not_probeable() -> None:
    cycle = _cycle(NAMES)
    dead = {"n1", "n2", "n3"}
    seen = [cycle.next(lambda n: n not in dead) for _ in range(3 * len(NAMES))]
    assert dead.isdisjoint(seen)
    assert set(seen) == set(NAMES) - dead


def test_next_returns_none_when_nothing_is_probeable() -> None:
    assert ProbeCycle(random.Random(1)).next(_always) is None
    cycle = _cycle(NAMES)
    assert cycle.next(lambda _n: False) is None
    assert cycle.next(lambda _n: False) is None
    for name in NAMES:
        cycle.remove(name)
    assert cycle.next(_always) is None
    cycle.add("back")
    assert cycle.next(_always) == "back"


def test_install_replaces_the_order_as_given() -> None:
    cycle = _cycle(["x", "y"])
    cycle.install(["c", "a", "b"])
    assert "x" not in cycle
    assert _take(cycle, 3) == ["c", "a", "b"]


def test_next_finds_the_only_probeable_name() -> None:
    # Three members, two of them gone: every period must still probe the one left.
    # (Minimal: with seed 6 the second call already returns None.)
    for seed in range(10):
        cycle = _cycle(["x", "b", "c"], seed)
        results = [cycle.next(lambda n: n == "x") for _ in range(20)]
        assert results == ["x"] * 20, f"seed {seed}: {results}"


# ---------------------------------------------------------------------------- sample


@given(
    population=st.integers(min_value=0, max_value=120),
    count=st.integers(min_value=-1, max_value=12),
    modulus=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_sample_returns_distinct_wanted_names_never_more_than_asked(
    population: int, count: int, modulus: int, seed: int
) -> None:
    names = [f"n{i}" for i in range(population)]
    cycle = _cycle(names, seed)
    wanted = {name for i, name in enumerate(names) if i % modulus == 0}
    chosen = cycle.sample(count, wanted.__contains__)
    assert len(chosen) == len(set(chosen))
    assert len(chosen) <= max(count, 0)
    assert set(chosen) <= wanted
    if population <= 4 * count + 8:  # exhaustive for small populations
        assert len(chosen) == min(max(count, 0), len(wanted))


def test_sample_is_deterministic_for_a_seed() -> None:
    names = [f"n{i}" for i in range(300)]
    for count in (3, 10, 200):
        first = _cycle(names, 5).sample(count, lambda n: n.endswith(("1", "2")))
        again = _cycle(names, 5).sample(count, lambda n: n.endswith(("1", "2")))
        assert first == again


def test_sample_of_a_small_population_is_random() -> None:
    names = [f"n{i}" for i in range(10)]
    picks = {tuple(_cycle(names, seed).sample(2, _always)) for seed in range(30)}
    assert len(picks) > 10


@pytest.mark.parametrize("population", [12, 500])
def test_sample_does_not_disturb_the_pass_under_way(population: int) -> None:
    names = [f"n{i}" for i in range(population)]
    cycle = _cycle(names, 3)
    reference = _cycle(names, 3)
    assert _take(cycle, 5) == _take(reference, 5)
    cycle.sample(3, _always)
    # The rest of the pass is the order already drawn (the rng is only used at its end).
    rest = population - 5
    assert _take(cycle, rest) == _take(reference, rest)


@pytest.mark.parametrize("seed", range(5))
def test_sample_finds_them_in_a_large_population(seed: int) -> None:
    names = [f"n{i}" for i in range(5000)]
    cycle = _cycle(names, seed)
    chosen = cycle.sample(3, _always)
    assert len(set(chosen)) == 3
    half = cycle.sample(4, lambda n: int(n[1:]) % 2 == 0)
    assert len(set(half)) == 4
    assert all(int(n[1:]) % 2 == 0 for n in half)


@pytest.mark.parametrize("seed", range(3))
def test_sample_finds_sparse_wanted_names_in_a_large_population(seed: int) -> None:
    names = [f"n{i}" for i in range(5000)]
    wanted = set(names[::100])  # 50 of 5,000
    chosen = _cycle(names, seed).sample(3, wanted.__contains__)
    assert len(chosen) == 3


def test_add_and_remove_after_install_know_the_installed_names() -> None:
    # install() builds no name set; the first add or remove must still see every name.
    cycle = ProbeCycle(random.Random(3))
    cycle.install(["a", "b", "c"])
    cycle.add("b")  # present already: no duplicate
    assert len(cycle) == 3
    assert "c" in cycle
    cycle.remove("a")
    cycle.add("d")
    assert sorted(_take(cycle, 3)) == ["b", "c", "d"]
    assert "a" not in cycle
