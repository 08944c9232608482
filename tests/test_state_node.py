"""Member state on real nodes (issue 13): UDP and TCP on 127.0.0.1, ``Config.local()``.

Five nodes write keys, one a 40 KiB value (larger than any datagram: it travels on the
state exchange's stream), one deletes a key, one crashes and a new process restarts under
its name and address (without one of its old keys); every node's ``state()`` ends equal to
the writer's, and one node's
``subscribe(state=True)`` gives membership and state events in one ``seq`` order."""

from __future__ import annotations

import pytest
import trio

from node_helpers import PATIENCE, start_node
from swimgossip import (
    Config,
    EventsLost,
    FullEvent,
    Keyring,
    MemberJoined,
    MessageTooLarge,
    Node,
    SecurityMode,
    StateChanged,
    StateLimitExceeded,
)

CONFIG = Config.local(state_sync_interval=0.3)


def converged(writers: list[Node], readers: list[Node]) -> bool:
    return all(r.state(w.name) == w.state(w.name) for w in writers for r in readers)


def restarted(events: list[FullEvent], name: str) -> bool:
    return any(
        isinstance(e, MemberJoined) and e.restarted and e.member.name == name for e in events
    )


def check_order(events: list[FullEvent]) -> None:
    """One ``seq`` order; a member's ``MemberJoined`` before its first ``StateChanged``;
    each key's versions rising."""
    seqs = [e.seq for e in events if not isinstance(e, EventsLost)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    joined: set[str] = set()
    versions: dict[tuple[str, str], int] = {}
    for event in events:
        if isinstance(event, MemberJoined):
            joined.add(event.member.name)
        elif isinstance(event, StateChanged) and event.member != "s1":
            assert event.member in joined, f"state of {event.member} before it joined"
            assert event.version > versions.get((event.member, event.key), 0)
            versions[event.member, event.key] = event.version


async def test_five_nodes_writes_a_large_value_a_delete_a_crash_and_a_restart() -> None:
    blob = bytes(range(256)) * 160  # 40 KiB: larger than any datagram, on the stream path
    async with trio.open_nursery() as nursery:
        started = [await start_node(nursery, f"s{i}", config=CONFIG) for i in range(5)]
        nodes = [node for node, _ in started]
        seen: list[FullEvent] = []
        async with nodes[1].subscribe(state=True) as events:  # s1 watches from the start
            with trio.fail_after(PATIENCE):
                for node in nodes[1:]:
                    await node.join([nodes[0].address])
            for i, node in enumerate(nodes):
                await node.set_state("role", f"r{i}".encode())
            await nodes[0].set_state("blob", blob)
            await nodes[4].set_state("first run only", b"x")  # the restart forgets it
            await nodes[2].set_state("gone", b"soon")
            await nodes[2].delete_state("gone")
            with pytest.raises(StateLimitExceeded):
                await nodes[0].set_state("huge", bytes(CONFIG.state_value_max + 1))
            with trio.fail_after(PATIENCE):
                while not converged(nodes, nodes):
                    # The last change may land on another node than s1: wait for s1's
                    # next event or a short while, whichever is first, then look again.
                    with trio.move_on_after(0.05):
                        seen.append(await events.receive())
            assert all(n.state("s0") == {"blob": blob, "role": b"r0"} for n in nodes)
            assert all(n.state("s2") == {"role": b"r2"} for n in nodes)
            assert nodes[3].state_version("s2") == nodes[2].state_version("s2") > 0
            # s4 crashes (no leave) and a new process takes its name and address.
            address = nodes[4].address
            started[4][1].cancel()
            with trio.fail_after(PATIENCE):
                while nodes[4].running:
                    await nodes[4].wait_stopped()
                again, _ = await start_node(nursery, "s4", config=CONFIG, bind=address)
                await again.set_state("role", b"r4 again")
                await again.join([nodes[0].address])
                alive = [*nodes[:4], again]
                while not converged(alive, alive) or not restarted(seen, "s4"):
                    with trio.move_on_after(0.05):
                        seen.append(await events.receive())
            # Every copy equals the new process's state: its previous run's extra key is
            # superseded by a tombstone (the new run's first exchange brings it back).
            assert all(n.state("s4") == {"role": b"r4 again"} for n in alive)
        check_order(seen)
        changes = [(e.member, e.key, e.value) for e in seen if isinstance(e, StateChanged)]
        assert ("s0", "blob", blob) in changes
        assert ("s2", "gone", None) in changes
        assert ("s4", "first run only", None) in changes
        assert changes.index(("s4", "role", b"r4")) < changes.index(("s4", "role", b"r4 again"))
        assert [e.member.name for e in seen if isinstance(e, MemberJoined) and e.restarted] == [
            "s4"
        ]
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
