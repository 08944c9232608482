"""Broadcasts too large for a datagram go on streams, one per member (``_broadcasts.py``):
delivered once, acknowledged, bounded by ``MAX_RELIABLE_BROADCAST`` with a typed error."""

from __future__ import annotations

import random

import pytest
from wire import address_of, of_type

from swimgossip.core._broadcasts import MAX_RELIABLE_BROADCAST
from swimgossip.core.codec import decode_stream
from swimgossip.core.config import Config
from swimgossip.core.engine import Engine
from swimgossip.core.errors import MessageTooLarge
from swimgossip.core.inputs import StreamFailure
from swimgossip.core.member import Member, Status
from swimgossip.core.messages import Ack
from swimgossip.core.outputs import (
    SendDatagram,
    StreamPurpose,
    StreamReply,
    StreamRequest,
    UserDelivery,
)


def cluster(names: str) -> dict[str, Engine]:
    engines = {
        n: Engine(name=n, address=address_of(n), config=Config.lan(), rng=random.Random(n))
        for n in names
    }
    view = {
        n: Member(name=n, address=address_of(n), status=Status.ALIVE, incarnation=0) for n in names
    }
    for e in engines.values():
        e.install_view(view, [n for n in names if n != e.name])
        e.start(0.0)
    return engines


def test_a_large_broadcast_goes_on_one_stream_per_member_and_is_delivered_once() -> None:
    engines = cluster("abc")
    payload = bytes(range(256)) * 160  # 40 KiB
    out = engines["a"].broadcast(payload, 1.0)
    assert of_type(out, SendDatagram) == []
    requests = of_type(out, StreamRequest)
    assert sorted(r.address for r in requests) == [address_of("b"), address_of("c")]
    assert {r.purpose for r in requests} == {StreamPurpose.BROADCAST}
    for request in requests:
        name = "b" if request.address == address_of("b") else "c"
        served = engines[name].receive_stream(request.payload, address_of("a"), 7, 1.0)
        assert of_type(served, UserDelivery) == [UserDelivery(source="a", payload=payload)]
        (reply,) = of_type(served, StreamReply)
        assert type(decode_stream(reply.payload)) is Ack
        again = engines[name].receive_stream(request.payload, address_of("a"), 8, 1.0)
        assert of_type(again, UserDelivery) == []  # a duplicate: answered, not delivered
        engines["a"].stream_reply(request.token, reply.payload, 1.1)
    assert engines["a"].counters["user_broadcasts_stream_acked"] == 2
    engines["a"].stream_failed(requests[0].token, StreamFailure.TIMED_OUT, 2.0)
    assert engines["a"].counters["user_broadcasts_stream_failed"] == 0  # already settled


def test_a_failed_stream_is_counted_and_an_oversized_broadcast_raises() -> None:
    engines = cluster("ab")
    out = engines["a"].broadcast(bytes(5000), 1.0)
    (request,) = of_type(out, StreamRequest)
    engines["a"].stream_failed(request.token, StreamFailure.REFUSED, 1.5)
    assert engines["a"].counters["user_broadcasts_stream_failed"] == 1
    engines["a"].broadcast(bytes(MAX_RELIABLE_BROADCAST), 2.0)  # the bound itself is fine
    with pytest.raises(MessageTooLarge) as info:
        engines["a"].broadcast(bytes(MAX_RELIABLE_BROADCAST + 1), 2.0)
    assert info.value.limit == MAX_RELIABLE_BROADCAST
    small = engines["a"].broadcast(b"small", 3.0)
    assert of_type(small, StreamRequest) == []  # a small one is still gossiped
