"""Tests of the piggyback queue: invalidation by key, send order, retirement, byte budget.

The hypothesis tests drive a queue with random pushes, takes and discards next to a small
reference model (key -> payload, push order, transmissions) and check every take against it.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimgossip.core.broadcast import BroadcastQueue


def _payload(tag: int, size: int) -> bytes:
    """A unique payload of exactly ``size`` bytes (``size`` >= 4)."""
    return tag.to_bytes(4, "big") + b"x" * (size - 4)


def test_newer_message_under_the_same_key_replaces_the_older() -> None:
    queue = BroadcastQueue(max_items=10)
    queue.push("a", b"alive-1")
    queue.push("b", b"other")
    queue.push("a", b"alive-2")
    assert len(queue) == 2
    taken = queue.take(budget=1000, limit=5)
    assert b"alive-1" not in taken
    assert taken == [b"alive-2", b"other"]


def test_replacement_resets_the_transmit_count() -> None:
    queue = BroadcastQueue(max_items=10)
    queue.push("a", b"old")
    queue.take(budget=1000, limit=5)
    queue.take(budget=1000, limit=5)
    assert queue.transmits("a") == 2
    queue.push("a", b"new")
    assert queue.transmits("a") == 0


def test_fewest_sent_first_then_newest_first() -> None:
    queue = BroadcastQueue(max_items=10)
    queue.push("a", b"a")
    queue.push("b", b"b")
    assert queue.take(budget=1000, limit=5) == [b"b", b"a"]  # newest first among equals
    queue.push("c", b"c")
    queue.push("d", b"d")
    # c and d were never sent; d is the newest. a and b were sent once; b is newer.
    assert queue.take(budget=1000, limit=5) == [b"d", b"c", b"b", b"a"]


def test_fewest_sent_first_across_budget_limited_takes() -> None:
    queue = BroadcastQueue(max_items=10)
    for key in "abcd":
        queue.push(key, _payload(ord(key), 20))
    first = queue.take(budget=40, limit=5)  # room for two
    second = queue.take(budget=40, limit=5)  # the two unsent ones go before any repeat
    assert len(first) == len(second) == 2
    assert set(first).isdisjoint(second)
    assert all(queue.transmits(key) == 1 for key in "abcd")


def test_message_is_retired_after_limit_transmissions() -> None:
    queue = BroadcastQueue(max_items=10)
    queue.push("a", b"payload")
    for sent in range(1, 4):
        assert queue.take(budget=1000, limit=3) == [b"payload"]
        if sent < 3:
            assert queue.transmits("a") == sent
            assert "a" in queue
    assert "a" not in queue
    assert queue.transmits("a") is None
    assert len(queue) == 0
    assert queue.take(budget=1000, limit=3) == []


def test_budget_is_respected_exactly() -> None:
    queue = BroadcastQueue(max_items=10)
    for tag in range(5):
        queue.push(tag, _payload(tag, 100))
    taken = queue.take(budget=300, limit=5)
    assert len(taken) == 3
    assert sum(map(len, taken)) == 300  # exactly full: an equal cost still fits
    assert len(queue.take(budget=299, limit=5)) == 2


def test_overhead_counts_against_the_budget() -> None:
    queue = BroadcastQueue(max_items=10)
    for tag in range(5):
        queue.push(tag, _payload(tag, 100))
    taken = queue.take(budget=300, limit=5, overhead=2)
    assert len(taken) == 2
    assert sum(len(p) + 2 for p in taken) <= 300


def test_too_large_message_is_skipped_and_smaller_ones_still_go() -> None:
    queue = BroadcastQueue(max_items=10)
    queue.push("small-old", _payload(1, 30))
    queue.push("huge", _payload(2, 500))  # newest: first in line, but it does not fit
    queue.push("small-new", _payload(3, 40))
    taken = queue.take(budget=100, limit=5)
    assert taken == [_payload(3, 40), _payload(1, 30)]
    assert queue.transmits("huge") == 0  # skipped, not counted, still queued
    assert queue.take(budget=1000, limit=5)[0] == _payload(2, 500)


def test_empty_queue_or_no_budget_takes_nothing() -> None:
    queue = BroadcastQueue(max_items=10)
    assert queue.take(budget=1000, limit=5) == []
    queue.push("a", b"abc")
    assert queue.take(budget=0, limit=5) == []
    assert queue.take(budget=-10, limit=5) == []
    assert queue.transmits("a") == 0


def test_discard_and_transmits() -> None:
    queue = BroadcastQueue(max_items=10)
    assert queue.transmits("a") is None
    queue.push("a", b"a")
    queue.push("b", b"b")
    assert queue.transmits("a") == 0
    queue.discard("a")
    queue.discard("missing")  # no-op
    assert "a" not in queue
    assert queue.transmits("a") is None
    assert queue.take(budget=1000, limit=5) == [b"b"]
    assert queue.transmits("b") == 1


def test_full_queue_drops_the_most_sent_oldest_first() -> None:
    queue = BroadcastQueue(max_items=3)
    for key in "abc":
        queue.push(key, key.encode())
    queue.take(budget=1000, limit=10)  # all sent once
    queue.push("b", b"b2")  # b is fresh again
    queue.push("d", b"d")  # full: a and c were sent once; a is older
    assert len(queue) == 3
    assert "a" not in queue
    assert all(key in queue for key in "bcd")


def test_pushing_an_existing_key_into_a_full_queue_drops_nothing_else() -> None:
    queue = BroadcastQueue(max_items=2)
    queue.push("a", b"a")
    queue.push("b", b"b")
    queue.push("a", b"a2")
    assert "a" in queue
    assert "b" in queue


# ---------------------------------------------------------------------------- properties


@attrs.define
class _Model:
    payload: bytes
    order: int
    transmits: int = 0


_keys = st.integers(min_value=0, max_value=11)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), _keys, st.integers(min_value=4, max_value=80)),
        st.tuples(
            st.just("take"),
            st.integers(min_value=-5, max_value=400),
            st.integers(min_value=1, max_value=4),
            st.integers(min_value=0, max_value=5),
        ),
        st.tuples(st.just("discard"), _keys),
    ),
    max_size=80,
)


@given(max_items=st.integers(min_value=1, max_value=8), ops=_ops)
def test_queue_matches_its_model(max_items: int, ops: list[tuple[Any, ...]]) -> None:
    queue = BroadcastQueue(max_items=max_items)
    model: dict[int, _Model] = {}
    counter = 0
    for op in ops:
        if op[0] == "push":
            _, key, size = op
            counter += 1
            model.pop(key, None)
            if len(model) >= max_items:  # the most sent, oldest among equals, goes
                victim = max(model, key=lambda k: (model[k].transmits, -model[k].order))
                del model[victim]
            model[key] = _Model(payload=_payload(counter, size), order=counter)
            queue.push(key, model[key].payload)
        elif op[0] == "discard":
            model.pop(op[1], None)
            queue.discard(op[1])
        else:
            _, budget, limit, overhead = op
            order = sorted(model, key=lambda k: (model[k].transmits, -model[k].order))
            taken = queue.take(budget, limit, overhead)
            by_payload = {m.payload: k for k, m in model.items()}
            taken_keys = [by_payload[p] for p in taken]  # only queued messages go
            # The byte budget holds, overhead included.
            assert sum(len(p) + overhead for p in taken) <= max(budget, 0)
            # Fewest sent first, newest first among equals; no duplicates.
            assert taken_keys == [k for k in order if k in taken_keys]
            # Greedy: a message left behind did not fit (unless under 16 bytes were left,
            # where the queue stops looking).
            left = budget - sum(len(p) + overhead for p in taken)
            if budget > 0 and left >= 16:
                assert all(
                    len(model[k].payload) + overhead > left for k in order if k not in taken_keys
                )
            for key in taken_keys:
                model[key].transmits += 1
                if model[key].transmits >= limit:
                    del model[key]
        assert len(queue) == len(model) <= max_items
        for key in range(12):
            expected = model[key].transmits if key in model else None
            assert queue.transmits(key) == expected
            assert (key in queue) == (key in model)


@given(
    max_items=st.integers(min_value=1, max_value=50),
    keys=st.lists(st.integers(min_value=0, max_value=10_000), max_size=400),
)
def test_max_items_bound_holds_under_many_pushes(max_items: int, keys: list[int]) -> None:
    queue = BroadcastQueue(max_items=max_items)
    for index, key in enumerate(keys):
        queue.push(key, _payload(index, 8))
        assert len(queue) <= max_items
        assert key in queue  # the newest push is always kept
    assert len(queue) == min(max_items, len(set(keys)))


def test_take_never_sorts_the_whole_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """A datagram's piggyback costs O(taken log n): a queue of 20,000 updates (a large
    cluster after a partition) is never sorted per datagram (issue 15, side note)."""
    from swimgossip.core import broadcast

    def no_sorting(*args: object, **kwargs: object) -> object:
        raise AssertionError("take() sorted the whole queue")

    queue = BroadcastQueue(max_items=20_000)
    for i in range(20_000):
        queue.push(i, b"x" * 40)
    monkeypatch.setattr(broadcast, "sorted", no_sorting, raising=False)
    taken = [queue.take(1400, limit=3) for _ in range(200)]
    assert all(len(batch) == 35 for batch in taken)
    # Newest first among the never-sent: the first datagram carries the last 35 pushed.
    assert taken[0] == [b"x" * 40] * 35 and queue.transmits(19_999) == 1
    assert queue.transmits(0) == 0


def test_skipping_too_large_messages_is_bounded() -> None:
    from swimgossip.core.broadcast import MAX_SKIPPED

    queue = BroadcastQueue(max_items=1000)
    queue.push("small", b"s" * 20)
    for i in range(MAX_SKIPPED + 10):
        queue.push(i, b"L" * 500)  # newer, so ahead of "small"
    assert queue.take(100, limit=5) == []  # gave up after MAX_SKIPPED too-large ones
    assert len(queue) == MAX_SKIPPED + 11
