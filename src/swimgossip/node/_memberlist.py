"""``open_node(wire="memberlist")`` and ``wire="serf"``: the one owner of a node's
memberlist wire mode. ``Node`` and ``open_node`` hold a ``MemberlistMode`` (None on our own
wire) and call a few methods on it; everything the mode changes is here.

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
  ``Node.install_key`` / ``use_key`` / ``remove_key`` on the ``MemberlistKeyring``;
- in serf mode, Serf's layer as the delegate (``SerfDelegate``, node/_serf.py): its join
  intent around ``Node.join``, its leave intent before memberlist's leave, tags kept as
  Serf's encoding gives them back, the task that sends its query acks and relays.

``MemberlistOptions.check`` refuses, before anything is bound, what the mode cannot do
(our keyring and security modes, a transport of the caller's, a delegate in serf mode);
what the engine cannot carry on this wire (state, application broadcasts, our direct
messages) the wire refuses with ``WireUnsupported`` (net/memberlist/_wire.py).

The security layer's signer is left OFF without a label: memberlist's own envelope
(``MemberlistTransport``) replaces it, and our keyring cannot be used in this mode.
"""

from __future__ import annotations

import functools
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs
import trio

from ..core.config import Config
from ..core.engine import Engine
from ..core.errors import ConfigError, MessageTooLarge, UnknownMember
from ..core.inputs import UpdateMetaCommand
from ..core.member import Status
from ..core.tags import decode_tags
from ..net._udp import UdpTransport
from ..net.memberlist import (
    Delegate,
    GuardedDelegate,
    MemberlistKeyring,
    NoDelegate,
    notify_delegate,
)
from ..net.memberlist._crypto import encrypted_length
from ..net.memberlist._transport import MemberlistTransport
from ..net.memberlist._wire import MemberlistWire
from ..net.memberlist.codec import MessageType, add_label
from ..security import KeyringError, SecurityMode
from ._runtime import Runtime
from .errors import SendFailed

if TYPE_CHECKING:  # Serf's layer loads with wire="serf" only
    from ._serf import SerfDelegate, SerfHandle

__all__ = ["MemberlistMode", "MemberlistOptions"]

logger = logging.getLogger("swimgossip")

#: Room ``join_packet`` may use beyond the messages (``core.wire.PACKET_HEADER``).
_PACKET_HEADER = 4

#: memberlist's ``MetaMaxSize``: Serf refuses a member with more (and so does the engine).
META_MAX_SIZE = 512


@attrs.frozen(kw_only=True)
class MemberlistOptions:
    """``open_node``'s arguments for the memberlist wire, checked before anything is bound.

    ``serf`` is Serf's layer behind the delegate hooks (``wire="serf"``), else None.
    """

    delegate: Delegate | None
    keyring: MemberlistKeyring | None
    serf: SerfDelegate | None

    @classmethod
    def check(
        cls,
        wire: str,
        *,
        name: str,
        meta: bytes,
        keyring: object,
        security: SecurityMode,
        transport: object,
        delegate: Delegate | None,
        memberlist_keyring: MemberlistKeyring | None,
    ) -> MemberlistOptions:
        """The options of ``wire`` (``"memberlist"`` or ``"serf"``).

        Raises:
            ConfigError: what the mode cannot do: our ``keyring`` or a security mode, a
                ``transport`` (it binds its own sockets), a ``delegate`` in serf mode,
                tags Serf cannot carry.
        """
        serf = None
        if wire == "serf":
            if delegate is not None:
                raise ConfigError("delegate", "serf mode's delegate is Serf's layer itself")
            from ..net.serf import SerfLayer
            from ._serf import SerfDelegate

            try:
                serf = SerfDelegate(SerfLayer(name, tags=decode_tags(meta)))
            except ValueError as exc:
                raise ConfigError("tags", str(exc)) from None
            delegate = serf
        if keyring is not None or security is not SecurityMode.OFF:
            raise ConfigError(
                "keyring",
                "memberlist mode encrypts with memberlist_keyring=MemberlistKeyring(...); "
                "our keyring and security modes do not apply",
            )
        if transport is not None:
            raise ConfigError("transport", "memberlist mode binds its own UDP and TCP sockets")
        return cls(delegate=delegate, keyring=memberlist_keyring, serf=serf)

    @staticmethod
    def limit(config: Config) -> Config:
        """``config`` with memberlist's 512-byte meta limit."""
        return attrs.evolve(config, meta_max_size=min(config.meta_max_size, META_MAX_SIZE))


@attrs.define(eq=False)
class MemberlistMode:
    """The memberlist wire mode of one node (see the module docstring)."""

    wire: MemberlistWire
    transport: MemberlistTransport
    delegate: Delegate
    keyring: MemberlistKeyring | None
    #: Serf's layer (``wire="serf"``), or None.
    serf: SerfDelegate | None = None

    @classmethod
    def build(
        cls,
        udp: UdpTransport,
        options: MemberlistOptions,
        *,
        config: Config,
        label: bytes | str,
        meta: bytes,
        counters: Counter[str],
    ) -> tuple[MemberlistMode, bytes, int]:
        """The parts, the meta to announce (the delegate's if there is one) and the bytes
        the envelope takes from each datagram."""
        text = label.decode() if isinstance(label, bytes) else label
        keyring = options.keyring
        overhead = len(add_label(b"", text))
        if keyring is not None:
            overhead += encrypted_length(1, 0)
        delegate: Delegate
        if options.delegate is None:
            delegate = NoDelegate(meta)
        else:
            delegate = GuardedDelegate(options.delegate, counters)
            meta = delegate.node_meta(config.meta_max_size)
        wire_type = MemberlistWire
        if options.serf is not None:
            from ..net.serf._wire import SerfWire

            wire_type = SerfWire
        budget = config.udp_payload_size - overhead - _PACKET_HEADER
        wire = wire_type(budget=budget, delegate=delegate, counters=counters)
        transport = MemberlistTransport(
            udp, delegate, keyring=keyring, label=text, counters=counters
        )
        return cls(wire, transport, delegate, keyring, options.serf), meta, overhead

    # --- open_node's side --------------------------------------------------------------

    def attach(self, runtime: Runtime) -> None:
        """Call the delegate's join / leave / update hooks for each of the runtime's
        membership events."""
        runtime.on_event = functools.partial(notify_delegate, self.delegate)

    def start(self, nursery: trio.Nursery, engine: Engine, seed: int | None) -> None:
        """Start the mode's tasks: the gossip ticker, and Serf's sends in serf mode."""
        gossip_rng = random.Random(None if seed is None else seed + 1)
        nursery.start_soon(self.gossip, engine, gossip_rng)
        if self.serf is not None:
            nursery.start_soon(self.serf.run_sends, self.send_user_datagram)

    def close(self) -> None:
        """The node stopped: end Serf's event streams."""
        if self.serf is not None:
            self.serf.close()

    # --- Node's side -------------------------------------------------------------------

    @property
    def label(self) -> bytes:
        """memberlist's label."""
        return self.transport.label.encode()

    def serf_handle(
        self, update_tags: Callable[[Mapping[str, str]], Awaitable[None]]
    ) -> SerfHandle:
        """``node.serf``. ``ConfigError`` if this is not serf mode."""
        if self.serf is None:
            raise ConfigError("wire", "node.serf needs open_node(wire='serf')")
        from ._serf import SerfHandle

        return SerfHandle(self.serf, update_tags)

    async def join(
        self, join: Callable[[Sequence[str]], Awaitable[int]], seeds: Sequence[str]
    ) -> int:
        """``join(seeds)``; in serf mode inside Serf's join (``SerfDelegate.join``)."""
        if self.serf is None:
            return await join(seeds)
        return await self.serf.join(join, seeds)

    async def update_meta(self, runtime: Runtime, meta: bytes) -> None:
        """Announce ``meta``; in serf mode, as tags in the form Serf gives them back."""
        if self.serf is not None:
            meta = self.serf.canonical_meta(meta)
        await runtime.call(UpdateMetaCommand(meta=meta))
        if self.serf is not None:
            self.serf.tags_announced(meta)

    async def before_leave(self, timeout: float) -> None:
        """In serf mode, Serf's leave intent first, so that Serf records "left", not
        "failed" (at most ``timeout``)."""
        if self.serf is not None:
            await self.serf.announce_leave(timeout)

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
