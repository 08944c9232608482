"""Signed clusters over real sockets: wrong or missing keys cannot join, forgeries are counted,
and a rolling key rotation causes no failure."""

from __future__ import annotations

import pytest
import trio

import swimgossip
from node_helpers import PATIENCE, alive_names, poll, start_node, until
from swimgossip import Keyring, MemberFailed, NodeEvent, parse_address
from swimgossip.security import PacketSigner, SecurityMode

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))


async def test_wrong_key_and_unsigned_nodes_cannot_join() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a", keyring=Keyring([KEY_A]))
            wrong, _ = await start_node(nursery, "wrong", keyring=Keyring([KEY_B]))
            plain, _ = await start_node(nursery, "plain")
            for intruder in (wrong, plain):
                with pytest.raises(swimgossip.JoinError) as info, trio.fail_after(3):
                    await intruder.join([a.address])
                assert "authentication" in info.value.reasons[a.address]
            assert alive_names(a) == {"a"}
            assert a.metrics()["auth_failures"] >= 2
            nursery.cancel_scope.cancel()


async def test_forged_datagrams_are_counted_and_dropped() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a", keyring=Keyring([KEY_A]))
            host, port = parse_address(a.address)
            with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as sock:
                await sock.sendto(b"\x01garbage, unsigned", (host, port))
                genuine = PacketSigner(Keyring([KEY_A]), SecurityMode.REQUIRED).wrap(
                    b"\x01\x91\x92\x02\x01"
                )
                forged = genuine[:-1] + bytes([genuine[-1] ^ 1])  # one bit of the tag flipped
                await sock.sendto(forged, (host, port))
                await sock.sendto(b"", (host, port))
            await poll(lambda: a.metrics()["auth_failures"] >= 3)
            metrics = a.metrics()
            assert metrics["auth_rejected_unsigned"] >= 1
            assert metrics["auth_rejected_forged"] >= 1
            assert a.running
            nursery.cancel_scope.cancel()


async def test_key_rotation_causes_no_failure() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            nodes = [
                (await start_node(nursery, name, keyring=Keyring([KEY_A])))[0]
                for name in ("a", "b", "c")
            ]
            a = nodes[0]
            async with a.subscribe() as events:
                for node in nodes[1:]:
                    await node.join([a.address])
                await until(events, lambda: alive_names(a) == {"a", "b", "c"})
                for step in ("install", "use", "remove"):
                    for node in nodes:
                        assert node.keyring is not None
                        if step == "install":
                            node.keyring.install(KEY_B)
                        elif step == "use":
                            node.keyring.use(KEY_B)
                        else:
                            node.keyring.remove(KEY_A)
                # the cluster keeps talking under the new key: a metadata change goes round
                await a.update_meta(b"rotated")
                for node in nodes[1:]:
                    async with node.subscribe() as theirs:
                        await until(
                            theirs,
                            lambda n=node: n.member("a").meta == b"rotated",  # type: ignore[misc]
                        )
                seen: list[NodeEvent] = []
                while events.lost == 0 and events.buffered:  # drain what a saw meanwhile
                    seen.append(await events.receive())
            assert not any(type(e) is MemberFailed for e in seen)
            # nobody failed (a transient suspicion, refuted, is not a failure: FAST's
            # 0.8 s suspicion floor can see one on a loaded machine)
            for node in nodes:
                assert {m.name for m in node.members() if not m.status.is_gone} == {"a", "b", "c"}
            nursery.cancel_scope.cancel()
