"""Member state on real nodes (issue 13): UDP and TCP on 127.0.0.1, ``Config.local()``.

Three nodes write keys, one a 40 KiB value (larger than any datagram: it travels on the
state exchange's stream), one deletes a key; every node's ``state()`` ends equal to the
writer's, and the ``StateChanged`` events arrive in ``seq`` order."""

from __future__ import annotations

import pytest
import trio

from node_helpers import PATIENCE, start_node
from swimgossip import (
    Config,
    Keyring,
    MessageTooLarge,
    Node,
    SecurityMode,
    StateChanged,
    StateLimitExceeded,
)

CONFIG = Config.local(state_sync_interval=0.3)


def converged(nodes: list[Node]) -> bool:
    return all(other.state(node.name) == node.state(node.name) for node in nodes for other in nodes)


async def test_state_spreads_to_every_node_on_loopback() -> None:
    async with trio.open_nursery() as nursery:
        nodes = [(await start_node(nursery, f"s{i}", config=CONFIG))[0] for i in range(3)]
        with trio.fail_after(PATIENCE):
            for node in nodes[1:]:
                await node.join([nodes[0].address])
        seen: list[StateChanged] = []
        stream = nodes[2].state_changes()
        for i, node in enumerate(nodes):
            await node.set_state("role", f"r{i}".encode())
        await nodes[0].set_state("blob", bytes(range(256)) * 160)  # 40 KiB
        await nodes[1].set_state("gone", b"soon")
        await nodes[1].delete_state("gone")
        with pytest.raises(StateLimitExceeded):
            await nodes[0].set_state("huge", bytes(CONFIG.state_value_max + 1))
        with trio.fail_after(PATIENCE):
            while not converged(nodes):
                # The last change may land on another node than the one we read: wait for
                # s2's next event or a short while, whichever is first, then look again.
                with trio.move_on_after(0.05):
                    seen.append(await stream.receive())
        stream.close()
        assert nodes[2].state("s0") == {"blob": bytes(range(256)) * 160, "role": b"r0"}
        assert nodes[1].state("s1") == {"role": b"r1"}
        assert nodes[0].state("s1") == {"role": b"r1"}
        assert nodes[0].state_version("s1") == nodes[1].state_version("s1") > 0
        assert [e.seq for e in seen] == sorted(e.seq for e in seen)
        assert any(e.member == "s0" and e.key == "blob" for e in seen)
        with pytest.raises(TypeError):
            nodes[0].state("s0")["role"] = b"x"  # type: ignore[index]
        nursery.cancel_scope.cancel()


async def test_a_broadcast_larger_than_a_datagram_arrives_sealed_on_loopback() -> None:
    keyring = Keyring([bytes(range(32))])
    options = {"config": CONFIG, "keyring": keyring, "security": SecurityMode.SEALED}
    async with trio.open_nursery() as nursery:
        a, _ = await start_node(nursery, "a", **options)
        b, _ = await start_node(nursery, "b", **options)
        with trio.fail_after(PATIENCE):
            await b.join([a.address])
            async with b.messages() as inbox:
                await a.broadcast(bytes(range(256)) * 160)  # 40 KiB
                message = await inbox.receive()
        assert message.source == "a" and message.payload == bytes(range(256)) * 160
        with pytest.raises(MessageTooLarge):
            await a.broadcast(bytes(64 * 1024 + 1))
        nursery.cancel_scope.cancel()
