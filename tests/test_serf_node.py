"""Serf mode's glue, without the network: ``SerfWire`` translates meta both ways (and our
own meta survives the round trip byte for byte, so it is never refuted in a loop), and
``SerfDelegate`` routes the layer's outputs (bounded event streams, bounded sends, the
leave intent's completion)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import trio

import swimgossip
from swimgossip.core import messages as core
from swimgossip.core.member import Member, Status
from swimgossip.net.memberlist import Alive, PushNodeState, PushPull, decode_packet
from swimgossip.net.memberlist import codec as ml
from swimgossip.net.serf import SerfLayer, UserEvent, encode_serf_message
from swimgossip.net.serf._wire import SerfWire, canonical_meta
from swimgossip.node._serf import MAX_PENDING_SENDS, SerfDelegate
from test_serf_messages import GO_QUERY, GO_TAGS


def wire() -> SerfWire:
    return SerfWire(budget=1400, delegate=SerfDelegate(SerfLayer("py1")))


def test_our_alive_goes_out_with_serf_tags() -> None:
    alive = core.Alive(name="py1", address="127.0.0.1:7946", incarnation=0, meta=b'{"role":"web"}')
    raw = wire().encode_message(alive)[2:]  # behind its compound length
    (sent,), _ = decode_packet(raw)
    assert isinstance(sent, Alive) and sent.meta == GO_TAGS


def test_a_go_alive_and_push_pull_come_in_with_our_tags() -> None:
    raw = ml.encode_message(
        Alive(incarnation=1, node="go1", addr=b"\x7f\0\0\1", port=7946, meta=GO_TAGS, vsn=b"")
    )
    (alive,) = wire().decode_packet(raw)
    assert isinstance(alive, core.Alive) and alive.meta == b'{"role":"web"}'
    node = PushNodeState(
        name="go1", addr=b"\x7f\0\0\1", port=7946, meta=GO_TAGS, incarnation=1, state=0, vsn=b""
    )
    pushed = wire().decode_stream(ml.encode_push_pull(PushPull(join=False, nodes=(node,))))
    assert isinstance(pushed, core.PushPull)
    assert dict(pushed.members[0].tags) == {"role": "web"}


def test_our_push_pull_goes_out_with_serf_tags() -> None:
    me = Member(
        name="py1", address="127.0.0.1:7946", status=Status.ALIVE, incarnation=0,
        meta=b'{"dc":"one"}',
    )  # fmt: skip
    raw = wire().encode_stream(core.PushPull(source="py1", join=True, members=(me,)))
    decoded = ml.decode_push_pull(raw)
    assert decoded.nodes[0].meta == b"\xff\x81\xa2dc\xa3one"
    assert decoded.user_state[:1] == b"\x02"  # Serf's push-pull state rides along


@pytest.mark.parametrize(
    ("meta", "canonical"),
    [
        (b'{"role":"web","dc":"one"}', b'{"dc":"one","role":"web"}'),
        (b"", b""),
        (b"raw bytes", b""),
    ],
)
def test_canonical_meta_is_what_comes_back_through_serf(meta: bytes, canonical: bytes) -> None:
    assert canonical_meta(meta) == canonical
    assert canonical_meta(canonical) == canonical
    alive = core.Alive(name="py1", address="127.0.0.1:1", incarnation=0, meta=canonical)
    w = wire()
    (back,) = w.decode_packet(w.encode_message(alive)[2:])
    assert isinstance(back, core.Alive) and back.meta == canonical


async def test_events_are_routed_to_bounded_streams() -> None:
    delegate = SerfDelegate(SerfLayer("py1"))
    stream = swimgossip.SerfHandle(delegate, update_tags).events(buffer=2)
    other = swimgossip.SerfHandle(delegate, update_tags).events()
    assert isinstance(stream, swimgossip.SerfEventStream)
    for index in range(3):
        delegate.notify_message(encode_serf_message(UserEvent(ltime=index, name=f"e{index}")))
    assert stream.dropped == 1 and other.dropped == 0 and delegate.events.dropped == 1
    assert [(await stream.receive()).name for _ in range(2)] == ["e1", "e2"]  # type: ignore[union-attr]
    stream.close()
    with pytest.raises(trio.EndOfChannel):
        await stream.receive()
    delegate.close()  # the node stopped: what is held is still read, then the end
    assert [event.name async for event in other] == ["e0", "e1", "e2"]  # type: ignore[union-attr]
    late = swimgossip.SerfHandle(delegate, update_tags).events()
    with pytest.raises(trio.EndOfChannel):
        await late.receive()


async def update_tags(tags: Mapping[str, str]) -> None:
    raise AssertionError("not called")


async def test_query_acks_are_sent_and_the_queue_is_bounded() -> None:
    delegate = SerfDelegate(SerfLayer("py1"))
    delegate.notify_message(GO_QUERY)
    assert [d.address for d in delegate.sends] == ["127.0.0.1:53949"]
    sent: list[tuple[str, bytes]] = []
    done = trio.CancelScope()

    async def send(address: str, payload: bytes) -> None:
        sent.append((address, payload))
        if len(sent) == 2:
            raise OSError("unreachable")  # dropped, counted, the task goes on
        if len(sent) == MAX_PENDING_SENDS:
            done.cancel()

    for _ in range(MAX_PENDING_SENDS + 5):
        delegate.queue_send(delegate.sends[0])
    assert len(delegate.sends) == MAX_PENDING_SENDS and delegate.sends_dropped == 6
    with done:
        await delegate.run_sends(send)
    assert len(sent) == MAX_PENDING_SENDS and delegate.sends_dropped == 7
    assert not delegate.sends


async def test_leave_sent_is_set_once_the_intent_went_out() -> None:
    delegate = SerfDelegate(SerfLayer("py1"))
    delegate.notify_join(
        Member(name="go1", address="127.0.0.1:1", status=Status.ALIVE, incarnation=1)
    )
    delegate.start_leave()
    assert not delegate.leave_sent.is_set()
    for _ in range(10):
        delegate.get_broadcasts(3, 1400)
    assert delegate.leave_sent.is_set()
    alone = SerfDelegate(SerfLayer("py2"))
    alone.start_leave()  # nobody to tell
    assert alone.leave_sent.is_set()


async def test_serf_mode_refuses_a_delegate_of_its_own_and_node_serf_needs_it() -> None:
    from swimgossip import ConfigError
    from swimgossip.net.memberlist import NoDelegate

    with pytest.raises(ConfigError, match="serf mode's delegate"):
        async with swimgossip.open_node(
            "a", bind="127.0.0.1:0", wire="serf", delegate=NoDelegate()
        ):
            pass
    async with swimgossip.open_node("a", bind="127.0.0.1:0") as node:
        with pytest.raises(ConfigError, match="wire='serf'"):
            node.serf  # noqa: B018
