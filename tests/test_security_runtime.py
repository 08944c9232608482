"""Security in the running node, over real sockets on 127.0.0.1: join failures say why,
a member that missed a key rotation rejoins when it shares a key, clock skew is logged,
slow / oversized / too many streams are cut off, and the member cap holds.

Every wait is on an event or a counter under a generous ``trio.fail_after``; no test asserts
on how long something took.
"""

from __future__ import annotations

import logging
import time

import attrs
import pytest
import trio

import swimgossip
from node_helpers import FAST, PATIENCE, alive_names, poll, start_node, until
from swimgossip import Keyring, Member, Status, parse_address
from swimgossip.core.codec import decode_stream, encode_stream
from swimgossip.core.messages import PushPull
from swimgossip.net import open_udp_transport
from swimgossip.security import PacketSigner, RejectReason, SecurityMode, read_refusal

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))


async def _join_error(node: swimgossip.Node, seed: swimgossip.Node) -> str:
    """The reason ``node`` gives for failing to join ``seed`` (it retries until shortly
    before the deadline: keep the deadline short, the answer is immediate)."""
    with pytest.raises(swimgossip.JoinError) as info, trio.fail_after(4):
        await node.join([seed.address])
    return info.value.reasons[seed.address]


# ------------------------------------------------------------------ join failure reasons


async def test_join_errors_name_the_reason() -> None:
    with trio.fail_after(4 * PATIENCE):
        async with trio.open_nursery() as nursery:
            seed, _ = await start_node(nursery, "seed", keyring=Keyring([KEY_A]), label="prod")
            cases = {
                "label": dict(keyring=Keyring([KEY_A]), label="staging"),
                "unknown": dict(keyring=Keyring([KEY_B]), label="prod"),
                "plain": dict(label="prod"),
            }
            reasons = {}
            for name, options in cases.items():
                intruder, _ = await start_node(nursery, name, **options)
                reasons[name] = await _join_error(intruder, seed)
            assert "(label, authentication failed there)" in reasons["label"]
            assert "'staging'" in reasons["label"] and "'prod'" in reasons["label"]
            assert (
                "the sender may use a key removed here or not yet installed" in reasons["unknown"]
            )
            assert Keyring([KEY_B]).key_ids[0] in reasons["unknown"]
            assert "(unsigned, authentication failed there)" in reasons["plain"]
            metrics = seed.metrics()
            assert metrics["auth_rejected_label"] >= 1
            assert metrics["auth_rejected_unknown_key"] >= 1
            assert metrics["auth_rejected_unsigned"] >= 1
            assert alive_names(seed) == {"seed"}
            nursery.cancel_scope.cancel()


async def _exchange(address: str, request: bytes) -> bytes:
    async with open_udp_transport("127.0.0.1:0") as client:
        return await client.exchange(address, request)


async def test_clock_skew_is_refused_with_a_hint_and_logged_at_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="swimgossip")
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            seed, _ = await start_node(nursery, "seed", keyring=Keyring([KEY_A]))
            slow_clock = PacketSigner(
                Keyring([KEY_A]), SecurityMode.REQUIRED, clock=lambda: time.time() - 120
            )
            reply = await _exchange(seed.address, slow_clock.wrap(b"\x01anything"))
            refused = read_refusal(reply, seed.address)
            assert refused is not None and refused.reason is RejectReason.STALE
            assert "check NTP" in str(refused)
            assert seed.metrics()["auth_rejected_stale"] == 1
            assert seed.metrics()["auth_clock_skew_warnings"] == 1
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert any("clock skew" in r.getMessage() for r in warnings)
            nursery.cancel_scope.cancel()


# ------------------------------------------------------------------ rotation and rejoin


async def test_member_down_during_a_rotation_rejoins_while_it_shares_a_key() -> None:
    with trio.fail_after(6 * PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a", keyring=Keyring([KEY_A]))
            b, _ = await start_node(nursery, "b", keyring=Keyring([KEY_A]))
            await b.join([a.address])
            # c was down for steps 1 and 2: the cluster sends with B and still accepts A.
            for node in (a, b):
                node.install_key(KEY_B)
                node.use_key(KEY_B)
            late, late_scope = await start_node(nursery, "late", keyring=Keyring([KEY_A]))
            reason = await _join_error(late, a)  # it sends A (accepted) but cannot read B
            assert "authentication failed here, on the reply" in reason
            assert Keyring([KEY_B]).key_ids[0] in reason
            late_scope.cancel()

            c, c_scope = await start_node(nursery, "c", keyring=Keyring([KEY_A, KEY_B]))
            async with a.subscribe() as events:
                await c.join([a.address])
                await until(events, lambda: alive_names(a) == {"a", "b", "c"})
            c_scope.cancel()

            # step 3: A is removed; a member still sending with A is refused as unknown...
            for node in (a, b):
                node.remove_key(KEY_A)
            only_a, _ = await start_node(nursery, "only-a", keyring=Keyring([KEY_A]))
            reason = await _join_error(only_a, a)
            assert "(unknown key, authentication failed there)" in reason
            assert "install the cluster's current key" in reason
            assert only_a.keyring is not None and only_a.keyring.keys == (KEY_A,)

            # ...but one that holds B as well falls back to it and rejoins.
            d, _ = await start_node(nursery, "d", keyring=Keyring([KEY_A, KEY_B]))
            async with a.subscribe() as events:
                await d.join([a.address])
                await until(events, lambda: "d" in alive_names(a))
            assert d.keyring is not None and d.keyring.primary == KEY_B
            nursery.cancel_scope.cancel()


# ------------------------------------------------------------------ streams


async def _wait_closed(stream: trio.SocketStream) -> None:
    """Read until the peer closes (or resets) the connection."""
    try:
        while await stream.receive_some(1024):
            pass
    except trio.BrokenResourceError:
        pass


async def _connect(address: str) -> trio.SocketStream:
    host, port = parse_address(address)
    return await trio.open_tcp_stream(host, port)


async def test_slow_stream_is_cut_at_stream_timeout() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            node, _ = await start_node(nursery, "node", keyring=Keyring([KEY_A]))
            stream = await _connect(node.address)
            async with stream, trio.open_nursery() as trickle:

                async def send_slowly() -> None:
                    await stream.send_all(b"\x00\x00\x01\x00")  # a 256-byte frame...
                    while True:  # ...one byte every 50 ms, forever
                        await trio.sleep(0.05)
                        try:
                            await stream.send_all(b"x")
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            return

                trickle.start_soon(send_slowly)
                await _wait_closed(stream)
                trickle.cancel_scope.cancel()
            await poll(lambda: node.metrics()["streams_timed_out"] >= 1)
            assert node.running
            nursery.cancel_scope.cancel()


async def test_oversized_frame_is_refused_before_its_body() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            node, _ = await start_node(nursery, "node", keyring=Keyring([KEY_A]))
            stream = await _connect(node.address)
            async with stream:
                await stream.send_all(b"\xff\xff\xff\xf0")  # announces 4 GiB, sends nothing
                await _wait_closed(stream)
            await poll(lambda: node.metrics()["streams_oversized"] == 1)
            assert node.running
            nursery.cancel_scope.cancel()


async def test_streams_beyond_the_cap_are_closed_at_once() -> None:
    config = attrs.evolve(FAST, stream_timeout=PATIENCE * 2)  # idle streams stay open
    with trio.fail_after(2 * PATIENCE):
        async with (
            open_udp_transport("127.0.0.1:0", max_streams=4) as transport,
            trio.open_nursery() as nursery,
        ):
            node, _ = await start_node(
                nursery, "node", config=config, transport=transport, keyring=Keyring([KEY_A])
            )
            idle = [await _connect(node.address) for _ in range(4)]
            await poll(lambda: node.metrics().get("streams_accepted", 0) == 4)
            extra = await _connect(node.address)
            await _wait_closed(extra)  # closed by the node, not by a timeout
            assert node.metrics()["streams_refused_busy"] == 1
            for stream in [*idle, extra]:
                await stream.aclose()
            # once the idle ones are gone, the node serves streams again
            peer, _ = await start_node(nursery, "peer", keyring=Keyring([KEY_A]))
            await peer.join([node.address])
            nursery.cancel_scope.cancel()


# ------------------------------------------------------------------ member cap


async def test_push_pull_beyond_max_members_is_refused_and_counted() -> None:
    config = attrs.evolve(FAST, max_members=5)
    signer = PacketSigner(Keyring([KEY_A]), SecurityMode.REQUIRED)
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            node, _ = await start_node(nursery, "node", config=config, keyring=Keyring([KEY_A]))
            flood = tuple(
                Member(name=f"m{i}", address=f"127.0.0.2:{7000 + i}", status=Status.ALIVE,
                       incarnation=1)
                for i in range(20)
            )  # fmt: skip
            request = PushPull(source="m0", join=True, members=flood)
            reply = await _exchange(node.address, signer.wrap(encode_stream(request)))
            answer = decode_stream(signer.unwrap(reply))
            assert isinstance(answer, PushPull) and len(answer.members) <= 5
            assert len(node.members()) == 5
            metrics = node.metrics()
            # a push-pull is read up to max_members entries; unknown ones past the cap refused
            assert metrics["members_refused_full"] >= 1
            assert node.running
            nursery.cancel_scope.cancel()
