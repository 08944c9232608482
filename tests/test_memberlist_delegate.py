"""Two of our nodes in memberlist wire mode on loopback: the delegate's hooks end to end
(meta, user state by push-pull, user messages sent and piggybacked, join / leave /
update), a crash detected, keys rotated live, and what the mode refuses."""

from __future__ import annotations

from typing import Any

import pytest
import trio

import swimgossip
from node_helpers import PATIENCE, alive_names, poll, start_node, until, until_event
from swimgossip import ConfigError, JoinError, KeyringError, Member, MemberFailed, WireUnsupported
from swimgossip.net.memberlist import MemberlistKeyring, NoDelegate

KEY_A = bytes(range(16))
KEY_B = bytes(range(32))


class Layer(NoDelegate):
    """A stand-in for a layer above: records every hook, has a broadcast queue."""

    def __init__(self, name: str) -> None:
        super().__init__(f"meta-of-{name}".encode())
        self.name = name
        self.queue: list[bytes] = []
        self.messages: list[bytes] = []
        self.states: list[tuple[bytes, bool]] = []
        self.joined: list[str] = []
        self.left: list[tuple[str, str]] = []
        self.updated: list[str] = []

    def notify_message(self, payload: bytes) -> None:
        self.messages.append(payload)

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        out = [b for b in self.queue if len(b) + overhead <= limit][:1]
        self.queue = [b for b in self.queue if b not in out]
        return out

    def local_state(self, join: bool) -> bytes:
        return f"state-of-{self.name}".encode()

    def merge_remote_state(self, state: bytes, join: bool) -> None:
        self.states.append((state, join))

    def notify_join(self, member: Member) -> None:
        self.joined.append(member.name)

    def notify_leave(self, member: Member) -> None:
        self.left.append((member.name, member.status.name))

    def notify_update(self, member: Member) -> None:
        self.updated.append(member.name)


def options(layer: Layer, key: bytes | None = KEY_A) -> dict[str, Any]:
    keyring = None if key is None else MemberlistKeyring([key])
    return {"wire": "memberlist", "delegate": layer, "memberlist_keyring": keyring}


async def test_the_delegate_sees_state_messages_and_membership_end_to_end() -> None:
    one, two = Layer("a"), Layer("b")
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a", **options(one))
            b, crash_b = await start_node(nursery, "b", **options(two))
            async with a.subscribe() as events:
                await b.join([a.address])
                await until(events, lambda: alive_names(a) == {"a", "b"})
            member_b = a.member("b")
            assert member_b is not None and member_b.meta == b"meta-of-b"
            assert (b"state-of-b", True) in one.states  # b's join push-pull
            assert (b"state-of-a", False) in two.states  # a's answer
            assert "b" in one.joined and "a" in two.joined
            # a user message, best effort then reliable (a stream)
            await a.send("b", b"direct")
            await a.send("b", b"over-tcp", reliable=True)
            await poll(lambda: b"direct" in two.messages and b"over-tcp" in two.messages)
            # a broadcast waiting in the layer's queue goes out with the gossip ticker
            one.queue.append(b"gossiped")
            await poll(lambda: b"gossiped" in two.messages)
            # meta changes are updates
            await b.update_meta(b"new-meta")
            await poll(lambda: "b" in one.updated)
            # refused in this mode, with the reason
            with pytest.raises(WireUnsupported, match="member state"):
                await a.set_state("k", b"v")
            with pytest.raises(WireUnsupported, match="memberlist"):
                await a.broadcast(b"ours")
            # a crash: failed, and the layer hears of it
            async with a.subscribe() as events:
                crash_b.cancel()
                await until_event(events, MemberFailed, "b")
            assert ("b", "DEAD") in one.left
            nursery.cancel_scope.cancel()


async def test_keys_rotate_live_and_another_key_is_refused() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a", **options(Layer("a")))
            b, _ = await start_node(nursery, "b", **options(Layer("b")))
            await b.join([a.address])
            for node in (a, b):
                node.install_key(KEY_B)
            for node in (a, b):
                node.use_key(KEY_B)
            for node in (a, b):
                node.remove_key(KEY_A)
            with pytest.raises(KeyringError, match="primary"):
                a.remove_key(KEY_B)
            with pytest.raises(KeyringError, match="not installed"):
                a.use_key(KEY_A)
            with pytest.raises(KeyringError, match="16, 24 or 32"):
                a.install_key(b"short")
            c, _ = await start_node(nursery, "c", **options(Layer("c"), KEY_B))
            async with a.subscribe() as events:
                await c.join([b.address])
                await until(events, lambda: alive_names(a) == {"a", "b", "c"})
            stale, _ = await start_node(nursery, "stale", **options(Layer("s"), KEY_A))
            with pytest.raises(JoinError, match="key we do not hold"), trio.move_on_after(3):
                await stale.join([a.address])
            assert a.metrics()["memberlist_decrypt_failed"] >= 1
            nursery.cancel_scope.cancel()


async def test_the_mode_refuses_our_keyring_and_unknown_wires() -> None:
    keyring = swimgossip.Keyring([bytes(32)])
    with pytest.raises(ConfigError, match="memberlist_keyring"):
        async with swimgossip.open_node(
            "a", bind="127.0.0.1:0", wire="memberlist", keyring=keyring
        ):
            pass
    with pytest.raises(ConfigError, match="'own', 'memberlist' or 'serf'"):
        async with swimgossip.open_node("a", bind="127.0.0.1:0", wire="serfish"):
            pass
    with pytest.raises(ConfigError, match="need wire='memberlist'"):
        async with swimgossip.open_node("a", bind="127.0.0.1:0", delegate=NoDelegate()):
            pass
    with pytest.raises(ConfigError, match="binds its own UDP and TCP sockets"):
        async with swimgossip.open_node(
            "a",
            wire="serf",
            transport=object(),  # type: ignore[arg-type]
        ):
            pass
    with pytest.raises(ConfigError, match="security modes do not apply"):
        async with swimgossip.open_node(
            "a", bind="127.0.0.1:0", wire="memberlist", security=swimgossip.SecurityMode.REQUIRED
        ):
            pass


class Broken(Layer):
    def notify_message(self, payload: bytes) -> None:
        raise RuntimeError("a bug in the layer above")


async def test_a_raising_hook_is_logged_and_counted_and_the_node_goes_on() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a", **options(Layer("a")))
            b, _ = await start_node(nursery, "b", **options(Broken("b")))
            await b.join([a.address])
            await a.send("b", b"boom")
            await poll(lambda: b.metrics().get("delegate_errors", 0) >= 1)
            await a.send("b", b"again", reliable=True)
            await poll(lambda: b.metrics().get("delegate_errors", 0) >= 2)
            assert b.running and alive_names(b) == {"a", "b"}
            nursery.cancel_scope.cancel()


async def test_a_peer_with_another_label_refuses_and_the_join_says_why() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a", **options(Layer("a"), None), label="blue")
            b, _ = await start_node(nursery, "b", **options(Layer("b"), None), label="red")
            with (
                pytest.raises(JoinError, match="refused our stream: stream with label 'red'"),
                trio.move_on_after(3),
            ):
                await b.join([a.address])
            assert a.metrics()["memberlist_label_mismatch"] >= 1
            assert a.label == b"blue"
            nursery.cancel_scope.cancel()


class Big(Layer):
    def local_state(self, join: bool) -> bytes:
        return bytes(range(256)) * (16 * 1024)  # 4 MiB: read over many chunks


@pytest.mark.parametrize("key", [None, KEY_A], ids=["plain", "encrypted"])
async def test_a_large_user_state_crosses_a_stream_whole(key: bytes | None) -> None:
    one, two = Layer("a"), Big("b")
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a", **options(one, key))
            b, _ = await start_node(nursery, "b", **options(two, key))
            await b.join([a.address])
            assert [state for state, _ in one.states] == [two.local_state(True)]
            nursery.cancel_scope.cancel()
