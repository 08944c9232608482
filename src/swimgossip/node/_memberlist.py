"""``open_node(wire="memberlist")``: the parts a node needs to be a memberlist member.

The engine and the runtime are the ordinary ones; this builds what differs and holds it
for the ``Node``:

- ``MemberlistWire`` (the engine's byte format, where the delegate meets the packets) and
  ``MemberlistTransport`` (memberlist's datagram and stream envelopes: label, AES-GCM,
  streams without our frames) around the node's own UDP socket and TCP listener;
- the delegate's join / leave / update hooks, called from the runtime for each event;
- the gossip ticker: every ``config.gossip_interval``, while the delegate has broadcasts,
  a datagram of them to ``config.gossip_nodes`` random live members (memberlist's
  ``gossip()``; the engine's own gossip rounds carry them too, in the room left);
- ``Node.send`` as memberlist's ``SendBestEffort`` (a ``userMsg`` datagram) and
  ``SendReliable`` (a ``userMsg`` stream: TCP delivery, no application ack, as in Go);
  ``Node.install_key`` / ``use_key`` / ``remove_key`` on the ``MemberlistKeyring``.

The security layer's signer is left OFF without a label: memberlist's own envelope
(``MemberlistTransport``) replaces it, and our keyring cannot be used in this mode.
"""

from __future__ import annotations

import logging
import random
from collections import Counter

import attrs
import trio

from ..core.config import Config
from ..core.engine import Engine
from ..core.errors import ConfigError, MessageTooLarge, UnknownMember
from ..core.member import Status
from ..net._udp import UdpTransport
from ..net.memberlist import Delegate, GuardedDelegate, MemberlistKeyring, NoDelegate
from ..net.memberlist._crypto import encrypted_length
from ..net.memberlist._transport import MemberlistTransport
from ..net.memberlist._wire import MemberlistWire
from ..net.memberlist.codec import MessageType, add_label
from ..security import KeyringError
from .errors import SendFailed

__all__ = ["MemberlistMode"]

logger = logging.getLogger("swimgossip")

#: Room ``join_packet`` may use beyond the messages (``core.wire.PACKET_HEADER``).
_PACKET_HEADER = 4


@attrs.define(eq=False)
class MemberlistMode:
    """The memberlist wire mode of one node (see the module docstring)."""

    wire: MemberlistWire
    transport: MemberlistTransport
    delegate: Delegate
    keyring: MemberlistKeyring | None

    @classmethod
    def build(
        cls,
        udp: UdpTransport,
        *,
        config: Config,
        delegate: Delegate | None,
        keyring: MemberlistKeyring | None,
        label: bytes | str,
        meta: bytes,
        counters: Counter[str],
        wire_type: type[MemberlistWire] = MemberlistWire,
    ) -> tuple[MemberlistMode, bytes, int]:
        """The parts, the meta to announce (the delegate's if there is one) and the bytes
        the envelope takes from each datagram. ``wire_type``: ``SerfWire`` in serf mode."""
        text = label.decode() if isinstance(label, bytes) else label
        overhead = len(add_label(b"", text))
        if keyring is not None:
            overhead += encrypted_length(1, 0)
        if delegate is None:
            delegate = NoDelegate(meta)
        else:
            delegate = GuardedDelegate(delegate, counters)
            meta = delegate.node_meta(config.meta_max_size)
        budget = config.udp_payload_size - overhead - _PACKET_HEADER
        wire = wire_type(budget=budget, delegate=delegate, counters=counters)
        transport = MemberlistTransport(
            udp, delegate, keyring=keyring, label=text, counters=counters
        )
        return cls(wire, transport, delegate, keyring), meta, overhead

    def keys(self) -> MemberlistKeyring:
        """The keyring. ``ConfigError`` if the node was started without one."""
        if self.keyring is None:
            raise ConfigError("memberlist_keyring", "this node was started without a keyring")
        return self.keyring

    def install_key(self, key: bytes) -> None:
        """Decrypt with ``key`` too. ``KeyringError`` if it is not 16, 24 or 32 bytes."""
        try:
            self.keys().install(key)
        except ValueError as exc:
            raise KeyringError(str(exc)) from None

    def use_key(self, key: bytes) -> None:
        """Encrypt with the installed ``key``. ``KeyringError`` if it is not installed."""
        try:
            self.keys().use(key)
        except KeyError:
            raise KeyringError("the key is not installed: install_key() it first") from None

    def remove_key(self, key: bytes) -> None:
        """Stop accepting ``key``. ``KeyringError`` for the primary key."""
        try:
            self.keys().remove(key)
        except ValueError as exc:
            raise KeyringError(str(exc)) from None

    async def send(self, engine: Engine, name: str, payload: bytes, *, reliable: bool) -> None:
        """A ``userMsg`` to the live member ``name`` (see the module docstring)."""
        member = engine.member(name)
        if member is None or name == engine.name or member.status.is_gone:
            raise UnknownMember(name, "not a live member")
        if reliable:
            try:
                with trio.fail_after(engine.config.stream_timeout):
                    await self.transport.send_user_stream(member.address, payload)
            except (OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
                raise SendFailed(name, str(exc) or type(exc).__name__) from exc
            return
        if len(payload) + 1 > self.wire.budget:
            raise MessageTooLarge(len(payload), self.wire.budget - 1)
        await self.transport.send_datagram(member.address, bytes((MessageType.USER,)) + payload)

    async def send_user_datagram(self, address: str, payload: bytes) -> None:
        """A ``userMsg`` datagram to ``address`` (member or not: Serf acks a query to the
        querier's address). ``OSError`` if it cannot be sent."""
        await self.transport.send_datagram(address, bytes((MessageType.USER,)) + payload)

    async def gossip(self, engine: Engine, rng: random.Random) -> None:
        """Send the delegate's broadcasts every gossip interval (forever)."""
        config = engine.config
        while True:
            await trio.sleep(config.gossip_interval)
            peers = [
                m.address
                for m in engine.members()
                if m.name != engine.name and m.status in (Status.ALIVE, Status.SUSPECT)
            ]
            for address in rng.sample(peers, min(config.gossip_nodes, len(peers))):
                packet = self.wire.user_packet()
                if packet is None:
                    break
                try:
                    await self.transport.send_datagram(address, packet)
                except OSError as exc:
                    logger.debug("%s: user gossip to %s failed: %s", engine.name, address, exc)
