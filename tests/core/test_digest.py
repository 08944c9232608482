"""Tests of the digest-first push-pull: table digests, the three legs, the fallback.

Streams are run by hand, as in test_sync.py: each request's payload goes to the other
engine's ``receive_stream`` and its reply back to ``stream_reply``.
"""

from __future__ import annotations

import random
import types
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire import address_of, make_engine, of_type

from swimgossip.core import codec
from swimgossip.core.codec import decode_stream, encode_stream
from swimgossip.core.config import Config
from swimgossip.core.digest import (
    TableDigest,
    bucket_of,
    buckets_for,
    differing_buckets,
    is_digest_size,
    row_hash,
)
from swimgossip.core.engine import Engine
from swimgossip.core.errors import DecodeError
from swimgossip.core.inputs import StreamFailure
from swimgossip.core.member import Member, Status
from swimgossip.core.messages import Ack, MemberSync, PushPull
from swimgossip.core.outputs import Output, StreamPurpose, StreamReply, StreamRequest
from swimgossip.core.table import MemberTable
from swimgossip.core.timers import PushPullTick, SuspicionTimeout

# ---------------------------------------------------------------- the digest


def test_row_hash_is_deterministic_and_covers_every_field() -> None:
    base = Member(name="a", address="x:1", status=Status.ALIVE, incarnation=3, meta=b"m", boot=9)
    assert row_hash(base) == row_hash(Member(**_fields(base)))
    variants = [
        {"name": "b"},
        {"address": "x:2"},
        {"status": Status.SUSPECT},
        {"incarnation": 4},
        {"meta": b"n"},
        {"boot": 8},
        # Length-prefixed: moving a byte from one field to the next changes the hash.
        {"name": "ax", "address": ":1"},
    ]
    hashes = {row_hash(Member(**{**_fields(base), **change})) for change in variants}
    assert len(hashes) == len(variants) and row_hash(base) not in hashes


def _fields(member: Member) -> dict[str, Any]:
    return {
        "name": member.name,
        "address": member.address,
        "status": member.status,
        "incarnation": member.incarnation,
        "meta": member.meta,
        "boot": member.boot,
    }


def test_known_values_pin_the_wire_definition() -> None:
    member = Member(name="n1", address="10.0.0.1:7946", status=Status.ALIVE, incarnation=0)
    # Pinned: another process (or version) must compute the same digest for the same row.
    assert bucket_of("n1") == 236 and bucket_of("n1", 64) == 236 % 64
    assert row_hash(member) == 0xA182885B744D4225
    digest = TableDigest.of([member])
    assert digest.folded(1) == row_hash(member).to_bytes(8, "little")


def test_buckets_for_and_digest_sizes() -> None:
    assert [buckets_for(n) for n in (0, 1, 8, 15, 16, 17, 1000, 10_000, 10**6)] == [
        1,
        1,
        1,
        1,
        2,
        2,
        64,
        1024,
        1024,
    ]
    assert [is_digest_size(8 * b) for b in (1, 2, 64, 1024)] == [True] * 4
    assert [is_digest_size(s) for s in (0, 7, 9, 24, 8 * 2048, 8 * 1000)] == [False] * 6


@st.composite
def table_operations(draw: st.DrawFn) -> list[tuple[str, Member]]:
    names = [f"m{i}" for i in range(12)]
    ops = []
    for _ in range(draw(st.integers(min_value=0, max_value=30))):
        name = draw(st.sampled_from(names))
        if draw(st.integers(0, 4)) == 0:
            ops.append(
                ("remove", Member(name=name, address="", status=Status.ALIVE, incarnation=0))
            )
            continue
        stored = Member(
            name=name,
            address=draw(st.sampled_from(["x:1", "x:2"])),
            status=draw(st.sampled_from(list(Status))),
            incarnation=draw(st.integers(min_value=0, max_value=2**64 - 1)),
            meta=draw(st.binary(max_size=4)),
            boot=draw(st.integers(min_value=0, max_value=2**64 - 1)),
        )
        ops.append(("store", stored))
    return ops


@settings(max_examples=100, deadline=None)
@given(table_operations(), st.integers(min_value=0, max_value=10))
def test_the_kept_digest_equals_one_computed_from_scratch(
    ops: list[tuple[str, Member]], level: int
) -> None:
    table = MemberTable(local_name="m0", max_members=100)
    for op, member in ops:
        if op == "store":
            table.store(member, 1.0)
        else:
            table.remove(member.name)
        assert table.digest == TableDigest.of(table)
    # A folded digest is the XOR of the row hashes by bucket at that level.
    buckets = 1 << level
    expected = [0] * buckets
    for member in table:
        expected[bucket_of(member.name, buckets)] ^= row_hash(member)
    assert table.digest.folded(buckets) == b"".join(v.to_bytes(8, "little") for v in expected)


def test_differing_buckets_names_exactly_the_buckets_of_the_rows_that_differ() -> None:
    rows = [
        Member(name=f"m{i}", address=f"a{i}", status=Status.ALIVE, incarnation=0)
        for i in range(100)
    ]
    ours = TableDigest.of(rows)
    changed = [rows[0], Member(name="m7", address="a7", status=Status.DEAD, incarnation=0)]
    theirs = TableDigest.of([changed[1] if m.name == "m7" else m for m in rows])
    theirs.add(Member(name="new", address="n", status=Status.ALIVE, incarnation=0))
    buckets = 16
    differing = differing_buckets(ours.folded(buckets), theirs.folded(buckets))
    assert differing == sorted({bucket_of("m7", buckets), bucket_of("new", buckets)})


# ---------------------------------------------------------------- the exchange

A, B = address_of("a"), address_of("b")


def member(name: str, status: Status = Status.ALIVE, incarnation: int = 0) -> Member:
    return Member(name=name, address=address_of(name), status=status, incarnation=incarnation)


def give(engine: Engine, *members: Member, now: float = 0.5) -> None:
    """Merge ``members`` into ``engine`` through a full push-pull from a stranger."""
    state = encode_stream(PushPull(source="zz", join=False, members=members))
    engine.receive_stream(state, address_of("z"), 1, now)


def requests(outputs: list[Output]) -> list[StreamRequest]:
    return [o for o in of_type(outputs, StreamRequest) if o.purpose is StreamPurpose.PUSH_PULL]


def digest_exchange(a: Engine, b: Engine, now: float) -> dict[str, int]:
    """``a``'s periodic push-pull, whatever peer it picked, run with ``b``: every leg.
    Returns the bytes of each leg."""
    (request,) = requests(a.handle_timer(PushPullTick(), now))
    sizes = {"request": len(request.payload)}
    (reply,) = of_type(b.receive_stream(request.payload, a.address, 7, now), StreamReply)
    sizes["reply"] = len(reply.payload)
    pushes = requests(a.stream_reply(request.token, reply.payload, now))
    for push in pushes:
        sizes["push"] = len(push.payload)
        (ack,) = of_type(b.receive_stream(push.payload, a.address, 8, now), StreamReply)
        assert decode_stream(ack.payload) == Ack(seq=0)
        assert a.stream_reply(push.token, ack.payload, now) is not None
    return sizes


def full_exchange(a: Engine, b: Engine, now: float) -> None:
    state = encode_stream(a.local_state())
    (reply,) = of_type(b.receive_stream(state, a.address, 9, now), StreamReply)
    msg = decode_stream(reply.payload)
    assert type(msg) is PushPull
    a.receive_stream(reply.payload, b.address, 10, now)  # merges the same way as a reply


def table(engine: Engine) -> dict[str, Member]:
    return {m.name: m for m in engine.iter_members()}


def test_a_converged_pair_moves_only_the_digests() -> None:
    a, b = make_engine("a"), make_engine("b", seed=1)
    others = [member(f"n{i}") for i in range(200)]
    # Each holds the other's own row as the other announces it (boot ids and all).
    give(a, b.local_member, *others)
    give(b, a.local_member, *others)
    assert table(a) == table(b)
    sizes = digest_exchange(a, b, 1.0)
    assert set(sizes) == {"request", "reply"}  # no push: nothing differed
    assert sizes["request"] < 300 and sizes["reply"] < 300
    assert len(encode_stream(a.local_state())) > 20 * sizes["reply"]
    assert a.counters["member_digests_received"] == 0 and b.counters["member_digests_received"] == 1


def test_only_the_differing_buckets_travel_both_ways() -> None:
    a, b = make_engine("a"), make_engine("b", seed=1)
    others = [member(f"n{i}") for i in range(200)]
    give(a, b.local_member, *others, member("only-a"))
    give(b, a.local_member, *others, member("only-b"))
    sizes = digest_exchange(a, b, 1.0)
    assert set(sizes) == {"request", "reply", "push"}
    assert table(a) == table(b)
    assert "only-a" in table(b) and "only-b" in table(a)
    assert sizes["reply"] < len(encode_stream(b.local_state())) / 4


def _suspicion_timeouts(outputs: list[Output]) -> list[SuspicionTimeout]:
    from swimgossip.core.outputs import ScheduleTimer

    return [o.timer for o in of_type(outputs, ScheduleTimer) if type(o.timer) is SuspicionTimeout]


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from([f"n{i}" for i in range(24)]),
        st.sampled_from(list(Status)),
        st.integers(min_value=0, max_value=3),
    ),
    max_size=30,
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[list[Member]], list[list[Member]]]:
    """For a few members, a chain of claims (each superseding the one before: suspected,
    failed, left, back at a higher incarnation) and how far along it each engine got."""
    seen_a: list[list[Member]] = []
    seen_b: list[list[Member]] = []
    for i in range(draw(st.integers(min_value=1, max_value=8))):
        name, incarnation, status = f"n{i}", 0, Status.ALIVE
        chain = [member(name)]
        for step in draw(st.lists(st.sampled_from(list(Status)), max_size=5)):
            if step is Status.ALIVE:
                incarnation += 1
            elif step <= status:
                continue  # would not supersede
            if step is Status.SUSPECT and status.is_gone:
                continue
            back = status.is_gone and step is Status.ALIVE
            status = step
            chain.append(member(name, status, incarnation))
            if back:
                # Back after leaving or failing: the chain ends there. A suspicion of it
                # at the new incarnation would be refused by a member still holding it
                # gone (merge_state's rule, as memberlist's), which learns it back only
                # from the member's own refutation: no member here to refute.
                break
        seen_a.append(chain[: draw(st.integers(min_value=1, max_value=len(chain)))])
        seen_b.append(chain[: draw(st.integers(min_value=1, max_value=len(chain)))])
    return seen_a, seen_b


@settings(max_examples=60, deadline=None)
@given(histories())
def test_digest_exchanges_alone_converge_two_differing_tables(
    seen: tuple[list[list[Member]], list[list[Member]]],
) -> None:
    """Any differences (deaths, suspicions, leaves, incarnations) end, by digest exchanges
    and the suspicion timers they start, in equal tables."""
    cfg = Config.lan()
    a, b = make_engine("a", cfg), make_engine("b", cfg, seed=1)
    now = 0.5
    for engine, chains in ((a, seen[0]), (b, seen[1])):
        peer = b if engine is a else a
        give(engine, peer.local_member, now=now)
        for chain in chains:
            for claim in chain:
                give(engine, claim, now=now)
    timers: list[tuple[Engine, SuspicionTimeout]] = []
    rounds = 0
    while rounds < 12:  # bounded: each round either converges or fires timers
        rounds += 1
        now += 1.0
        for first, second in ((a, b), (b, a)):
            outputs: list[Output] = []
            (request,) = requests(first.handle_timer(PushPullTick(), now))
            served = second.receive_stream(request.payload, first.address, 7, now)
            (reply,) = of_type(served, StreamReply)
            outputs += served
            answered = first.stream_reply(request.token, reply.payload, now)
            outputs += answered
            timers += [(first, t) for t in _suspicion_timeouts(answered)]
            timers += [(second, t) for t in _suspicion_timeouts(served)]
            for push in requests(answered):
                served = second.receive_stream(push.payload, first.address, 8, now)
                timers += [(second, t) for t in _suspicion_timeouts(served)]
                (ack,) = of_type(served, StreamReply)
                first.stream_reply(push.token, ack.payload, now)
        if table(a) == table(b):
            break
        # Let every suspicion run out (the members are not there to refute).
        now += 60.0
        for engine, timer in timers:
            engine.handle_timer(timer, now)
        timers = []
    assert table(a) == table(b), f"not converged after {rounds} rounds"


@settings(max_examples=60, deadline=None)
@given(rows_strategy, rows_strategy)
def test_one_digest_exchange_ends_where_a_full_one_does(
    rows_a: list[tuple[str, Status, int]], rows_b: list[tuple[str, Status, int]]
) -> None:
    """The merges are ``merge_state``'s, so tables end as after a full push-pull (except
    for rows in buckets that were equal, which a full exchange re-sends for nothing)."""
    results = []
    for use_digest in (True, False):
        a, b = make_engine("a"), make_engine("b", seed=1)
        base = [member(f"n{i}") for i in range(24)]
        for engine, rows in ((a, rows_a), (b, rows_b)):
            peer = b if engine is a else a
            give(engine, peer.local_member, *base)
            for name, status, incarnation in rows:
                give(engine, member(name, status, incarnation))
        if use_digest:
            digest_exchange(a, b, 1.0)
        else:
            full_exchange(a, b, 1.0)
        results.append((table(a), table(b)))
    assert results[0] == results[1]


# ---------------------------------------------------------------- fallback and limits


def old_wire() -> Any:
    """Our codec as an older swimgossip sees it: a ``MemberSync`` is an unknown type."""

    def decode_stream_old(data: bytes, known: Any = None) -> Any:
        message = codec.decode_stream(data, known)
        if type(message) is MemberSync:
            raise DecodeError("unknown message type 14")
        return message

    names = ["MAX_DATAGRAM_MESSAGES", "NAME", "CARRIES_STATE", "encode_message"]
    names += ["join_packet", "encode_stream", "decode_packet"]
    wire = types.SimpleNamespace(**{name: getattr(codec, name) for name in names})
    wire.CARRIES_DIGESTS = False
    wire.decode_stream = decode_stream_old
    return wire


def test_a_peer_that_does_not_understand_digests_gets_the_full_push_pull() -> None:
    cfg = Config.lan()
    a = make_engine("a", cfg)
    b = Engine(name="b", address=B, config=cfg, rng=random.Random(1), wire=old_wire())
    give(a, member("b"), member("only-a"))
    give(b, member("a"), member("only-b"))
    (request,) = requests(a.handle_timer(PushPullTick(), 1.0))
    assert type(decode_stream(request.payload)) is MemberSync
    assert b.receive_stream(request.payload, A, 7, 1.0) == []  # closes the stream
    assert b.counters["streams_malformed"] == 1
    # The runtime sees the stream closed without a reply: a broken connection.
    (full,) = requests(a.stream_failed(request.token, StreamFailure.BROKEN, 1.1))
    assert full.address == request.address
    assert type(decode_stream(full.payload)) is PushPull
    assert a.counters["push_pull_digest_fallbacks"] == 1
    (reply,) = of_type(b.receive_stream(full.payload, A, 8, 1.1), StreamReply)
    a.stream_reply(full.token, reply.payload, 1.2)
    assert "only-b" in table(a) and "only-a" in table(b)
    # That peer keeps getting the full push-pull for a while, then digests are tried again.
    later = requests(a.handle_timer(PushPullTick(), 2.0))
    assert [type(decode_stream(r.payload)) for r in later] == [PushPull]
    again = requests(a.handle_timer(PushPullTick(), 2.0 + 10 * cfg.push_pull_interval))
    assert [type(decode_stream(r.payload)) for r in again] == [MemberSync]


def test_an_unreachable_peer_is_not_sent_the_full_push_pull() -> None:
    a = make_engine("a")
    give(a, member("b"))
    (request,) = requests(a.handle_timer(PushPullTick(), 1.0))
    for failure in (StreamFailure.TIMED_OUT, StreamFailure.REFUSED):
        assert requests(a.stream_failed(request.token, failure, 1.1)) == []
        (request,) = requests(a.handle_timer(PushPullTick(), 2.0))
        assert type(decode_stream(request.payload)) is MemberSync
    assert a.counters["push_pull_digest_fallbacks"] == 0


def test_a_wire_without_digests_sends_the_full_push_pull() -> None:
    wire = old_wire()
    a = Engine(name="a", address=A, config=Config.lan(), rng=random.Random(0), wire=wire)
    give(a, member("b"))
    (request,) = requests(a.handle_timer(PushPullTick(), 1.0))
    assert type(decode_stream(request.payload)) is PushPull


@pytest.mark.parametrize(
    "message",
    [
        MemberSync(source="x", push=False, digest=bytes(24), members=()),  # 3 buckets
        MemberSync(source="x", push=False, digest=bytes(8 * 2048), members=()),  # too many
        MemberSync(source="x", push=False, digest=b"", members=()),
        MemberSync(source="x", push=True, digest=bytes(8), members=()),  # a push: none
        MemberSync(
            source="x", push=True, digest=b"", members=(member("c"),), suspected_by=("", "")
        ),
    ],
)
def test_a_malformed_member_sync_is_a_counted_drop(message: MemberSync) -> None:
    b = make_engine("b")
    assert b.receive_stream(encode_stream(message), A, 1, 1.0) == []
    assert b.counters["streams_malformed"] == 1
    with pytest.raises(DecodeError):
        decode_stream(encode_stream(message))


def test_a_digest_request_carrying_rows_is_refused() -> None:
    b = make_engine("b")
    request = MemberSync(source="x", push=False, digest=bytes(8), members=(member("c"),))
    assert b.receive_stream(encode_stream(request), A, 1, 1.0) == []
    assert b.counters["streams_unexpected"] == 1 and b.member("c") is None


def test_too_many_rows_is_a_counted_drop() -> None:
    rows = [[f"m{i}", "a", 0, 0, b"", 0] for i in range(codec.MAX_STREAM_MEMBERS + 1)]
    import msgpack

    payload = bytes([codec.VERSION]) + msgpack.packb([[14, "x", True, b"", rows, []]])
    b = make_engine("b")
    assert b.receive_stream(payload, A, 1, 1.0) == []
    assert b.counters["streams_malformed"] == 1


def test_a_push_merges_like_a_full_state_and_is_acked() -> None:
    b = make_engine("b")
    give(b, member("c"))
    push = MemberSync(
        source="a",
        push=True,
        digest=b"",
        members=(member("c", Status.SUSPECT), member("d")),
        suspected_by=("e", ""),
    )
    (reply,) = of_type(b.receive_stream(encode_stream(push), A, 3, 1.0), StreamReply)
    assert decode_stream(reply.payload) == Ack(seq=0)
    assert b.member("c").status is Status.SUSPECT and b.member("d") is not None
    suspicion = b._membership.suspicion_of("c")
    assert suspicion is not None and suspicion.by == "e"
