"""memberlist messages <-> the engine's (net/memberlist/translate): each mapping and each
semantic difference it handles (addresses, dead-by-itself is a leave, no boot id)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimgossip.core import messages as core
from swimgossip.core.member import Member, Status
from swimgossip.net import memberlist as ml
from swimgossip.net.memberlist.translate import (
    DEFAULT_VSN,
    from_memberlist,
    from_push_pull,
    to_memberlist,
    to_push_pull,
)

LOCAL = b"\x7f\x00\x00\x01"
V6 = bytes(15) + b"\x01"

PAIRS: list[tuple[ml.Message, core.Message]] = [
    (ml.Ping(seq_no=9, node="b"), core.Ping(seq=9, target="b")),
    (ml.Ack(seq_no=9), core.Ack(seq=9)),
    (ml.Nack(seq_no=9), core.Nack(seq=9)),
    (
        ml.IndirectPing(seq_no=4, target=LOCAL, port=7946, node="c", nack=True),
        core.PingReq(seq=4, target="c", target_address="127.0.0.1:7946", nack=True),
    ),
    (
        ml.Alive(incarnation=2, node="b", addr=V6, port=1, meta=b"m", vsn=DEFAULT_VSN),
        core.Alive(name="b", address="[::1]:1", incarnation=2, meta=b"m"),
    ),
    (
        ml.Suspect(incarnation=3, node="b", sender="a"),
        core.Suspect(name="b", incarnation=3, source="a"),
    ),
    (ml.Dead(incarnation=3, node="b", sender="a"), core.Dead(name="b", incarnation=3, source="a")),
    # memberlist's graceful leave is a dead message about oneself
    (ml.Dead(incarnation=5, node="b", sender="b"), core.Left(name="b", incarnation=5)),
]


@pytest.mark.parametrize(("theirs", "ours"), PAIRS)
def test_each_message_maps_both_ways(theirs: ml.Message, ours: core.Message) -> None:
    assert from_memberlist(theirs) == ours
    assert to_memberlist(ours) == theirs


def test_the_boot_id_is_dropped_and_vsn_is_ours_to_choose() -> None:
    alive = core.Alive(name="b", address="127.0.0.1:1", incarnation=1, meta=b"", boot=77)
    out = to_memberlist(alive, vsn=bytes((1, 5, 2, 2, 5, 5)))
    assert isinstance(out, ml.Alive) and out.vsn == bytes((1, 5, 2, 2, 5, 5))
    back = from_memberlist(out)
    assert isinstance(back, core.Alive) and back.boot == 0


def test_what_has_no_counterpart_maps_to_none() -> None:
    assert from_memberlist(ml.UserMessage(payload=b"serf")) is None
    assert from_memberlist(ml.ErrorResponse(error="x")) is None
    assert to_memberlist(core.UserMessage(source="a", id=1, payload=b"x")) is None


def test_addresses_must_be_ip_literals() -> None:
    with pytest.raises(ValueError, match="needs an IP address"):
        to_memberlist(core.Alive(name="b", address="db.example:1", incarnation=1, meta=b""))
    with pytest.raises(ml.WireError, match="not IPv4 or IPv6"):
        from_memberlist(ml.Alive(incarnation=1, node="b", addr=b"\x01\x02", port=1))


def test_push_pull_maps_states_and_takes_the_source_from_the_caller() -> None:
    theirs = ml.PushPull(
        join=True,
        nodes=(
            ml.PushNodeState(
                name="b", addr=LOCAL, port=2, meta=b"", incarnation=1, state=3, vsn=DEFAULT_VSN
            ),
        ),
        user_state=b"serf",
    )
    ours = from_push_pull(theirs, source="go1")
    member = Member(name="b", address="127.0.0.1:2", status=Status.LEFT, incarnation=1)
    assert ours == core.PushPull(source="go1", join=True, members=(member,))
    assert to_push_pull(ours, user_state=b"serf") == theirs
    bad = ml.PushPull(
        join=False,
        nodes=(
            ml.PushNodeState(
                name="b", addr=LOCAL, port=2, meta=b"", incarnation=1, state=7, vsn=b""
            ),
        ),
    )
    with pytest.raises(ml.WireError, match="unknown memberlist node state 7"):
        from_push_pull(bad, source="go1")


@given(
    st.integers(0, 2**32 - 1),
    st.text(min_size=1, max_size=20),
    st.text(min_size=1, max_size=20),
    st.ip_addresses(),
    st.integers(1, 65535),
)
def test_claims_round_trip_through_memberlist_bytes(
    incarnation: int, name: str, source: str, ip: object, port: int
) -> None:
    address = f"[{ip}]:{port}" if ":" in str(ip) else f"{ip}:{port}"
    claims: list[core.Message] = [
        core.Alive(name=name, address=address, incarnation=incarnation, meta=b"x"),
        core.Suspect(name=name, incarnation=incarnation, source=source),
        core.Left(name=name, incarnation=incarnation),
    ]
    for claim in claims:
        wire = to_memberlist(claim)
        assert wire is not None
        (decoded,), _ = ml.decode_packet(ml.encode_message(wire))
        assert from_memberlist(decoded) == claim
