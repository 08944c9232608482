"""Direct send (issue 17, point 6): one member to another, best effort (a datagram) or
reliable (a stream, confirmed), signed or sealed like everything else, bounded, with typed
errors. Real nodes on the in-memory network in virtual time; one engine-level test."""

from __future__ import annotations

import random

import pytest
import trio

from node_helpers import PATIENCE, start_node
from swimgossip import (
    Config,
    DirectDelivery,
    Keyring,
    MemberLeft,
    MessageTooLarge,
    SecurityMode,
    SendFailed,
    UnknownMember,
)
from swimgossip.core import Engine
from swimgossip.core._direct import MAX_RELIABLE_PAYLOAD
from swimgossip.core.messages import DirectMessage
from swimgossip.testing import open_cluster


@pytest.mark.parametrize("security", [SecurityMode.OFF, SecurityMode.SEALED])
async def test_best_effort_and_reliable_sends_arrive_with_their_sender(
    autojump_clock: object, security: SecurityMode
) -> None:
    keyring = Keyring([bytes(range(32))]) if security is not SecurityMode.OFF else None
    async with open_cluster(3, seed=5, keyring=keyring, security=security) as cluster:
        sender, receiver = cluster.node("n1"), cluster.node("n0")
        async with receiver.direct_messages() as inbox:
            with trio.fail_after(30):
                await sender.send("n0", b"fire and forget")
                first = await inbox.receive()
                await sender.send(receiver.member("n0") or "n0", b"confirmed", reliable=True)
                second = await inbox.receive()
        assert first == DirectDelivery(source="n1", payload=b"fire and forget", reliable=False)
        assert second == DirectDelivery(source="n1", payload=b"confirmed", reliable=True)
        assert cluster.node("n2").metrics().get("direct_received", 0) == 0  # only n0 got them
        assert sender.metrics()["direct_sent"] == 1
        assert receiver.metrics()["direct_received"] == 2


async def test_errors_are_typed_and_nothing_is_sent(autojump_clock: object) -> None:
    async with open_cluster(2, seed=9) as cluster:
        node = cluster.node("n0")
        with pytest.raises(UnknownMember, match="no such member"):
            await node.send("nobody", b"x")
        with pytest.raises(UnknownMember, match="this node"):
            await node.send("n0", b"x", reliable=True)
        budget = node.config.udp_payload_size
        with pytest.raises(MessageTooLarge):
            await node.send("n1", bytes(budget))
        with pytest.raises(MessageTooLarge):
            await node.send("n1", bytes(MAX_RELIABLE_PAYLOAD + 1), reliable=True)
        assert node.metrics().get("direct_sent", 0) == 0

        async with node.subscribe() as events:
            await cluster.leave("n1")
            with trio.fail_after(30):
                while not isinstance(await events.receive(), MemberLeft):
                    pass
        with pytest.raises(UnknownMember, match="left"):
            await node.send("n1", b"x")


async def test_a_reliable_send_to_a_crashed_member_fails_within_the_stream_timeout(
    autojump_clock: object,
) -> None:
    config = Config.local(suspicion_mult=6)  # the crash is not detected before the send
    async with open_cluster(2, seed=4, config=config) as cluster:
        node = cluster.node("n0")
        await cluster.crash("n1")
        start = trio.current_time()
        with pytest.raises(SendFailed) as info:
            await node.send("n1", b"anyone?", reliable=True)
        assert info.value.member == "n1" and "not delivered" in info.value.reason
        assert trio.current_time() - start <= config.stream_timeout + 0.5


def test_a_direct_message_for_another_name_is_counted_and_dropped() -> None:
    engine = Engine(name="b", address="b:1", config=Config.local(), rng=random.Random(1))
    engine.start(0.0)
    wrong = DirectMessage(source="a", target="c", id=1, payload=b"p")
    assert engine.receive_message(wrong, "a:1", 1.0) == []
    assert engine.counters["direct_misaddressed"] == 1
    right = DirectMessage(source="a", target="b", id=2, payload=b"p")
    outputs = engine.receive_message(right, "a:1", 1.0)
    assert outputs == [DirectDelivery(source="a", payload=b"p", reliable=False)]


async def test_signed_reliable_send_over_loopback() -> None:
    keyring = Keyring([bytes(range(32))])
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a", keyring=keyring)
            b, _ = await start_node(nursery, "b", keyring=keyring)
            await b.join([a.address])
            async with a.direct_messages() as inbox:
                await b.send("a", b"x" * 60_000, reliable=True)  # far over a datagram
                got = await inbox.receive()
                await b.send("a", b"small")
                small = await inbox.receive()
            assert (got.source, len(got.payload), got.reliable) == ("b", 60_000, True)
            assert (small.source, small.payload, small.reliable) == ("b", b"small", False)
            nursery.cancel_scope.cancel()


async def test_listen_on_direct_gets_direct_messages(autojump_clock: object) -> None:
    async with open_cluster(2, seed=6) as cluster:
        got: list[DirectDelivery] = []
        arrived = trio.Event()

        async def on_direct(message: DirectDelivery) -> None:
            got.append(message)
            arrived.set()

        remove = cluster.node("n0").listen(on_direct=on_direct)
        with trio.fail_after(30):
            await cluster.node("n1").send("n0", b"ping me back", reliable=True)
            await arrived.wait()
        remove()
        assert got == [DirectDelivery(source="n1", payload=b"ping me back", reliable=True)]
