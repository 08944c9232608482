"""The public runtime: ``open_node`` / ``serve_node`` and the ``Node`` handle.

``open_node`` binds the transport (``net._udp``), builds the engine, starts the runtime
(``_runtime``: the one task that owns the engine) in a nursery, and yields a ``Node``.
Leaving the ``async with`` normally leaves the cluster gracefully (at most
``config.leave_timeout``), and so does a ``KeyboardInterrupt`` raised in the body (it then
propagates); if the enclosing scope is cancelled, or the body raises anything else, the node
stops at once without leaving, which is exactly what a crash looks like to the others. The
body's own exception comes out as it was raised, never wrapped in an ExceptionGroup. With
``handle_signals=True`` a task turns SIGTERM / SIGINT into cancelling the body (a scope of
our own around the ``yield``) followed by a graceful leave.

``Node`` methods that change state (join, update_meta, broadcast, leave) hand work to the
runtime and wait for it; the security methods (``install_key``, ``use_key``, ``remove_key``,
``reload_keys``, ``set_security``) act at once, from the next packet on; reads (members,
member, health, metrics) look at the engine directly, which is safe because nothing in
between can be half-done on one Trio thread.
Callbacks (``on_event`` / ``listen``) run in one task per node, in order, fed by an
ordinary subscription; a callback that raises is logged with its traceback and skipped.
The memberlist and Serf wire modes (``wire=``) are one part, ``MemberlistMode``
(``_memberlist``), which ``open_node`` builds and starts and the methods that differ in
those modes (keys, label, join, update_meta, send, leave, ``node.serf``) call.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Unpack, overload

import attrs
import trio

from ..core.config import Config
from ..core.engine import Engine
from ..core.errors import ConfigError
from ..core.inputs import (
    BroadcastCommand,
    LeaveCommand,
    SendCommand,
    SetStateCommand,
    UpdateMetaCommand,
)
from ..core.member import Member, Status
from ..core.tags import encode_tags, matches_tags
from ..net import HostResolver, Transport, advertised_address, open_udp_transport
from ..security import (
    DEFAULT_REPLAY_CACHE_SIZE,
    DEFAULT_REPLAY_WINDOW,
    SIGNATURE_OVERHEAD,
    Keyring,
    PacketSigner,
    SecurityMode,
)
from ._callbacks import (
    Callbacks,
    EventCallback,
    FullEventCallback,
    KindCallbacks,
    ListenCallbacks,
)
from ._events import (
    DirectMessageStream,
    EventHub,
    FullSubscription,
    MessageStream,
    Subscription,
)
from ._joining import Joiner, SeedResolver
from ._metrics import collect_metrics, metrics_text
from ._runtime import Runtime
from .errors import SendFailed

if TYPE_CHECKING:  # the memberlist and Serf modes load with wire="memberlist" / "serf" only
    from ..net.memberlist import Delegate, MemberlistKeyring
    from ._memberlist import MemberlistMode, MemberlistOptions
    from ._serf import SerfHandle

__all__ = ["Node", "open_node", "serve_node"]

logger = logging.getLogger("swimgossip")

_DEFAULT_BUFFER = 1024


@attrs.frozen(kw_only=True)
class _SignerSettings:
    """What every ``PacketSigner`` of a node shares, whatever its mode."""

    label: bytes | str
    replay_window: float
    replay_cache_size: int

    def signer(self, keyring: Keyring | None, mode: SecurityMode) -> PacketSigner:
        return PacketSigner(
            keyring,
            mode,
            label=self.label,
            replay_window=self.replay_window,
            replay_cache_size=self.replay_cache_size,
        )


@attrs.define(eq=False)
class Node:
    """A running cluster member. Get one from ``open_node`` or ``serve_node``.

    ``keyring`` is the ``Keyring`` passed to ``open_node``, used live: the key methods below
    change it, and so change every node sharing that object (``swimgossip.testing`` may give
    one keyring to several nodes).
    """

    name: str
    address: str
    config: Config
    keyring: Keyring | None
    _settings: _SignerSettings
    _engine: Engine
    _runtime: Runtime
    _transport: Transport
    _nursery: trio.Nursery
    _callbacks: Callbacks = attrs.field(init=False)
    _callback_task: bool = False
    _left: bool = False
    _resolve_seed: SeedResolver | None = None
    #: The memberlist wire mode (``open_node(wire="memberlist")`` or ``"serf"``), or None.
    _memberlist: MemberlistMode | None = None
    #: The signal that made the node leave (``open_node(handle_signals=True)``), or None.
    stop_signal: signal.Signals | None = None

    def __attrs_post_init__(self) -> None:
        self._callbacks = Callbacks(self.name, self._count_callback_error)

    def _count_callback_error(self) -> None:
        """One more ``callback_errors`` (the doors' callbacks count here too)."""
        self._runtime.counters["callback_errors"] += 1

    # ------------------------------------------------------------------ reading

    def members(
        self,
        *,
        status: Status | Iterable[Status] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> list[Member]:
        """The members this node knows (itself included), by name.

        Args:
            status: only members with this status (or one of these); default: every
                status, dead and left included.
            tags: only members whose tags (``Member.tags``) hold every one of these
                key/value pairs.
        """
        members = self._engine.members()
        if status is not None:
            wanted = {status} if isinstance(status, Status) else set(status)
            members = [m for m in members if m.status in wanted]
        if tags:
            members = [m for m in members if matches_tags(m.tags, tags)]
        return members

    def alive(self, *, tags: Mapping[str, str] | None = None) -> list[Member]:
        """The members held alive (itself included), by name; ``tags`` filters as in
        ``members``."""
        return self.members(status=Status.ALIVE, tags=tags)

    def member(self, name: str) -> Member | None:
        """What this node holds about ``name``, or None."""
        return self._engine.member(name)

    @property
    def health(self) -> int:
        """Lifeguard local health score: 0 is healthy; timeouts scale by ``health + 1``."""
        return self._engine.health

    @property
    def running(self) -> bool:
        """False once the node has left or stopped."""
        return not self._runtime.stopped

    def metrics(self) -> dict[str, float]:
        """A snapshot of counters (engine and runtime), queue depths, lag and health."""
        return collect_metrics(self._engine, self._runtime)

    def metrics_text(self) -> str:
        """``metrics()`` in the Prometheus text exposition format (``swimgossip_*``
        counters ending in ``_total``, gauges, HELP and TYPE lines); serve it at
        ``/metrics`` (the agent's ``--status`` endpoint does)."""
        return metrics_text(self.metrics())

    @property
    def security(self) -> SecurityMode:
        """The security mode in force (see ``set_security``)."""
        return self._runtime.signer.mode

    @property
    def label(self) -> bytes:
        """The cluster label, ``b""`` for none (memberlist's label in memberlist mode)."""
        if self._memberlist is not None:
            return self._memberlist.label
        return self._runtime.signer.label

    # ------------------------------------------------------------------ security

    def install_key(self, key: bytes) -> None:
        """Accept packets made with ``key`` too (on the shared ``keyring``); does nothing if
        it is installed already.

        In memberlist mode, this, ``use_key`` and ``remove_key`` act on the
        ``memberlist_keyring`` (memberlist's ``AddKey`` / ``UseKey`` / ``RemoveKey``).

        Raises:
            KeyringError: ``key`` is not a 16, 24 or 32-byte key.
            ConfigError: this node has no keyring.
        """
        if self._memberlist is not None:
            self._memberlist.install_key(key)
            return
        self._keys().install(key)

    def use_key(self, key: bytes) -> None:
        """Send with the installed ``key`` from the next packet on (on the shared
        ``keyring``); the old primary key stays installed.

        Raises:
            KeyringError: ``key`` is not installed.
            ConfigError: this node has no keyring.
        """
        if self._memberlist is not None:
            self._memberlist.use_key(key)
            return
        self._keys().use(key)

    def remove_key(self, key: bytes) -> None:
        """Refuse packets made with ``key`` from now on (on the shared ``keyring``).

        Raises:
            KeyringError: ``key`` is the primary key or is not installed.
            ConfigError: this node has no keyring.
        """
        if self._memberlist is not None:
            self._memberlist.remove_key(key)
            return
        self._keys().remove(key)

    def reload_keys(self, path: str | os.PathLike[str]) -> tuple[str, ...]:
        """Replace the keys of the shared ``keyring`` with those of the key file at
        ``path`` (its first key primary), all or nothing. Returns the new key ids.

        Raises:
            KeyringError: the file is invalid (the keys are unchanged).
            OSError: the file cannot be read (the keys are unchanged).
            ConfigError: this node has no keyring.
        """
        keys = self._keys()
        keys.reload(path)
        return keys.key_ids

    def set_security(self, mode: SecurityMode) -> None:
        """Switch the security mode from the next packet on (one step of the migration
        runbook in docs/security.md). The new mode starts with an empty replay cache;
        ``metrics()`` keeps counting across the switch.

        Raises:
            ConfigError: ``mode`` needs a keyring and this node has none.
        """
        if mode is not self.security:
            self._runtime.replace_signer(self._settings.signer(self.keyring, mode))
            logger.info("%s: security mode is now %s", self.name, mode.value)

    def _keys(self) -> Keyring:
        if self.keyring is None:
            raise ConfigError("keyring", "this node was started without a keyring")
        return self.keyring

    @property
    def serf(self) -> SerfHandle:
        """Serf's side of a node opened with ``wire="serf"``: user events
        (``user_event``, ``events()``), tags, queries. ``ConfigError`` in other modes."""
        if self._memberlist is None:
            raise ConfigError("wire", "node.serf needs open_node(wire='serf')")
        return self._memberlist.serf_handle(self.update_tags)

    # ------------------------------------------------------------------ subscribing

    @overload
    def subscribe(
        self, *, snapshot: bool = False, buffer: int = ..., state: Literal[False] = False
    ) -> Subscription: ...
    @overload
    def subscribe(
        self, *, snapshot: bool = False, buffer: int = ..., state: Literal[True]
    ) -> FullSubscription: ...
    @overload
    def subscribe(
        self, *, snapshot: bool = False, buffer: int = ..., state: bool
    ) -> Subscription | FullSubscription: ...
    def subscribe(
        self, *, snapshot: bool = False, buffer: int = _DEFAULT_BUFFER, state: bool = False
    ) -> Subscription | FullSubscription:
        """Stream membership events; use as ``async with node.subscribe() as events``.

        Args:
            snapshot: first yield a ``MemberJoined`` per current member (not dead or left),
                taken atomically with subscribing (with ``state``, each followed by a
                ``StateChanged(snapshot=True)`` per key that member holds).
            buffer: events held for a slow reader; beyond it the reader gets
                ``EventsLost`` and a fresh snapshot.
            state: also yield ``StateChanged`` events, in the one order (and ``seq``)
                of the membership events: a ``FullSubscription``.
        """
        return self._runtime.hub.subscribe(snapshot=snapshot, capacity=buffer, state=state)

    def messages(self, *, buffer: int = _DEFAULT_BUFFER) -> MessageStream:
        """Application broadcasts from other members (``UserDelivery``: source, payload)
        received from now on. Iterate it with ``async for``; ``close()`` when done."""
        return self._runtime.hub.open_messages(capacity=buffer)

    @overload
    def on_event(
        self, callback: EventCallback, *, state: Literal[False] = False
    ) -> Callable[[], None]: ...
    @overload
    def on_event(
        self, callback: FullEventCallback, *, state: Literal[True]
    ) -> Callable[[], None]: ...
    @overload
    def on_event(self, callback: FullEventCallback, *, state: bool) -> Callable[[], None]: ...
    def on_event(self, callback: Any, *, state: bool = False) -> Callable[[], None]:
        """Call ``callback(event)`` (sync or async) for every event from now on, in order;
        with ``state=True`` the ``StateChanged`` events too (``subscribe(state=True)``).

        Returns a function that unregisters it. Exceptions are logged, never raised.
        """
        remove = self._callbacks.add(callback, state=state)
        if not self._callback_task:
            self._callback_task = True
            subscription = self.subscribe(buffer=64 * _DEFAULT_BUFFER, state=True)
            self._nursery.start_soon(self._run_callbacks, subscription)
        return remove

    def listen(self, **callbacks: Unpack[ListenCallbacks]) -> Callable[[], None]:
        """Register callbacks by event kind; each gets its own event class, so a typed
        callback type-checks (``def on_fail(event: MemberFailed) -> None``). A callback may
        be sync or async (an awaitable result is awaited); callbacks run in order in one
        task, and one that raises is logged and skipped.

        ``on_restart`` gets the ``MemberJoined`` events with ``restarted=True`` (a member
        whose process restarted: its boot id changed), after ``on_join``, which gets every
        ``MemberJoined``. ``on_message`` gets the application broadcasts of ``messages()``
        (``UserDelivery``) and ``on_direct`` the direct messages of ``direct_messages()``
        (``DirectDelivery``), each in a task of its own. ``on_state`` gets the
        ``StateChanged`` events in the one order of the others (``subscribe(state=True)``).
        Returns a function that unregisters them all.
        """
        kinds = KindCallbacks(**callbacks)
        remove_events = self.on_event(kinds.events(), state=kinds.state)
        feeds = kinds.open_streams(self, buffer=64 * _DEFAULT_BUFFER)
        for stream, callback in feeds:
            self._nursery.start_soon(self._run_message_callback, stream, callback)

        def remove() -> None:
            remove_events()
            for stream, _ in feeds:
                stream.close()

        return remove

    async def _run_message_callback(
        self, stream: AsyncIterator[object], callback: Callable[[Any], object]
    ) -> None:
        async for message in stream:
            await self._callbacks.call(callback, message, "message")

    async def _run_callbacks(self, subscription: FullSubscription) -> None:
        async for event in subscription:
            for callback in self._callbacks.for_event(event):
                await self._callbacks.call(callback, event)

    # ------------------------------------------------------------------ acting

    async def join(self, seeds: Sequence[str]) -> int:
        """Join the cluster through ``seeds``; returns how many answered.

        A seed is "host:port", "[v6]:port", or "host" (port 7946). A host name that
        resolves to several addresses (a Kubernetes headless service, a DNS round robin)
        joins through all of them (with the node's own UDP transport; another transport
        resolves a seed to one address).

        Retries with backoff until a seed answers; with a caller deadline
        (``trio.fail_after``) until shortly before it, otherwise a few times. If every seed
        refuses this node's primary key as unknown (a member that was down while the
        cluster rotated that key out) and the keyring holds other keys, each is tried as
        primary in turn; the one that joins stays primary (logged at WARNING), and if none
        does the original primary is restored.

        Raises:
            JoinError: no seed answered; ``reasons`` says why, per seed.
            NotRunning: the node has left.
        """
        joiner = Joiner(
            name=self.name,
            address=self.address,
            keyring=self.keyring,
            engine=self._engine,
            runtime=self._runtime,
            transport=self._transport,
            resolve_seed=self._resolve_seed,
        )
        if self._memberlist is not None:
            return await self._memberlist.join(joiner.join, seeds)
        return await joiner.join(seeds)

    async def update_meta(self, meta: bytes) -> None:
        """Announce new metadata to the cluster.

        Raises:
            MetadataTooLarge: over ``config.meta_max_size``.
            ValueError: (serf mode) the tags exceed Serf's 512 bytes encoded.
            NotRunning: the node has left.

        In serf mode the metadata is tags (anything else is announced as no tags), kept
        with keys sorted as they come back from Serf's encoding.
        """
        if self._memberlist is not None:
            await self._memberlist.update_meta(self._runtime, meta)
            return
        await self._runtime.call(UpdateMetaCommand(meta=meta))

    async def update_tags(self, tags: Mapping[str, str]) -> None:
        """Announce ``tags`` as this node's metadata (``core/tags.py``'s encoding),
        replacing the metadata it had.

        Raises:
            ConfigError: a key is empty or holds ``=``.
            MetadataTooLarge: encoded, they are over ``config.meta_max_size``.
            NotRunning: the node has left.
        """
        await self.update_meta(encode_tags(tags))

    async def set_state(self, key: str, value: bytes) -> None:
        """Write this node's state ``key`` (a str) to ``value`` (bytes): the next version
        of our counter, gossiped to every member, who see it in ``state(our name)``.

        Raises:
            StateLimitExceeded: over a ``Config.state_*`` limit; nothing changed.
            TypeError, ValueError: a key that is not a str of 1 to 256 characters, or a
                value that is not bytes.
            NotRunning: the node has left.
        """
        await self._runtime.call(SetStateCommand(key=key, value=value))

    async def delete_state(self, key: str) -> None:
        """Delete this node's state ``key`` (a tombstone, reaped after
        ``Config.state_tombstone_grace``); nothing happens for a key we do not hold.

        Raises:
            StateLimitExceeded: ``Config.state_tombstones_max`` deleted keys are held.
            NotRunning: the node has left.
        """
        await self._runtime.call(SetStateCommand(key=key, value=None))

    def state(self, name: str) -> Mapping[str, bytes]:
        """A read-only copy of member ``name``'s state (ours under our own name); empty
        for a member we hold no state of."""
        return MappingProxyType(self._runtime.engine.state(name))

    def state_version(self, name: str) -> int:
        """The highest state version we hold from member ``name`` (0: none)."""
        return self._runtime.engine.state_version(name)

    async def broadcast(self, payload: bytes) -> None:
        """Gossip ``payload`` to every member's ``messages()`` (once each, best effort).
        A payload too large for half a datagram goes to each member held alive over a
        stream instead (same signing and sealing), up to 64 KiB.

        Raises:
            MessageTooLarge: over 64 KiB (``MAX_RELIABLE_BROADCAST``).
            NotRunning: the node has left.
        """
        await self._runtime.call(BroadcastCommand(payload=payload))

    async def send(self, member: Member | str, payload: bytes, *, reliable: bool = False) -> None:
        """Send ``payload`` to one member (a ``Member`` or its name); it arrives in that
        node's ``direct_messages()``, signed or sealed like every packet.

        Best effort (default): one datagram, no answer; it must fit in the datagram budget
        (``config.udp_payload_size`` minus headers, like ``broadcast``'s doubled). With
        ``reliable=True`` it goes over a stream (at most 64 KiB, ``MAX_RELIABLE_PAYLOAD``)
        and this returns once the member confirmed delivery, within
        ``config.stream_timeout``.

        In memberlist mode it is a memberlist ``userMsg`` for the member's delegate:
        ``SendBestEffort`` (one datagram) or, reliable, ``SendReliable`` (over TCP,
        delivered to the member's socket with no confirmation, as in Go).

        Raises:
            UnknownMember: no such member, or it is failed or left, or it is this node.
            MessageTooLarge: ``payload`` does not fit; nothing was sent.
            SendFailed: (reliable) the member did not confirm; ``reason`` says why.
            NotRunning: the node has left.
        """
        name = member if isinstance(member, str) else member.name
        if self._memberlist is not None:
            await self._memberlist.send(self._engine, name, payload, reliable=reliable)
            return
        if not reliable:
            await self._runtime.call(SendCommand(target=name, payload=payload, reliable=False))
            return
        outcome = await self._runtime.send_reliable(name, payload)
        if not outcome.ok:
            raise SendFailed(name, outcome.reason)

    def direct_messages(self, *, buffer: int = _DEFAULT_BUFFER) -> DirectMessageStream:
        """Direct messages sent to this node (``DirectDelivery``: ``source``, the sender's
        name; ``payload``; ``reliable``) from now on. Iterate with ``async for``;
        ``close()`` when done. When ``buffer`` is full the oldest is dropped (counted)."""
        return self._runtime.hub.open_direct(capacity=buffer)

    async def leave(self) -> None:
        """Leave gracefully: gossip our departure, wait for it to go out (at most
        ``config.leave_timeout``), then stop. Calling it again does nothing."""
        if self._left:
            return
        self._left = True
        runtime = self._runtime
        if self._memberlist is not None and not runtime.stopped:
            await self._memberlist.before_leave(self.config.leave_timeout / 2)
        with trio.move_on_after(self.config.leave_timeout) as scope:
            if not runtime.stopped:
                await runtime.call(LeaveCommand())
                await runtime.leave_complete.wait()
        if scope.cancelled_caught:
            logger.warning(
                "%s: leave not confirmed within %ss", self.name, self.config.leave_timeout
            )
        runtime.stop()

    async def wait_stopped(self) -> None:
        """Wait until the node has left or stopped."""
        await self._runtime.finished.wait()


@asynccontextmanager
async def open_node(
    name: str,
    *,
    bind: str = "0.0.0.0:7946",
    advertise: str | None = None,
    config: Config | None = None,
    keyring: Keyring | None = None,
    security: SecurityMode | None = None,
    label: bytes | str = b"",
    replay_window: float | None = None,
    replay_cache_size: int | None = None,
    meta: bytes = b"",
    tags: Mapping[str, str] | None = None,
    seed: int | None = None,
    transport: Transport | None = None,
    resolver: HostResolver | None = None,
    handle_signals: bool = False,
    wire: str = "own",
    delegate: Delegate | None = None,
    memberlist_keyring: MemberlistKeyring | None = None,
) -> AsyncIterator[Node]:
    """Run a cluster member for the duration of the ``async with`` block.

    With ``handle_signals=True`` SIGTERM and SIGINT are a request to leave: the block's
    body is cancelled, the node leaves gracefully (at most ``config.leave_timeout``) and
    the ``async with`` ends normally; ``node.stop_signal`` says which signal it was. This
    installs Trio signal handlers, so it needs the main thread. Without it, a
    ``KeyboardInterrupt`` raised in the body (Ctrl-C) still leaves gracefully before it
    propagates; any other exception, or cancellation from outside, stops the node at once.

    Args:
        name: this member's unique name.
        bind: local "host:port" / "[v6]:port" for UDP and TCP; port 0 picks one.
        advertise: the address others should use, if not the bound one.
        config: protocol tunables (default ``Config.lan()``).
        keyring: sign and verify every packet with these keys; the node uses this object
            live (``Node.install_key``... change it).
        security: signing policy; default ``REQUIRED`` with a keyring, else ``OFF``.
        label: the cluster label (at most 255 bytes; ``str`` is UTF-8 encoded), in every
            mode: packets and streams with another label are refused and counted.
        replay_window: seconds a signed packet's timestamp may differ from this node's
            clock (default 30).
        replay_cache_size: the most nonces the replay guard remembers (default 65,536).
        meta: initial application metadata (raw bytes).
        tags: initial tags instead of ``meta`` (string pairs, encoded as ``core/tags.py``
            says; ``Member.tags`` reads them back).
        seed: seed for the engine's RNG (default: random).
        transport: an open transport to use instead of binding UDP/TCP sockets at
            ``bind`` (``swimgossip.testing`` passes its in-memory network here); the
            caller keeps ownership of it.
        resolver: resolves a seed's host name to its IP addresses (default: the system's,
            ``getaddrinfo``); for service discovery of your own, and for tests. Used with
            the node's own UDP transport.
        handle_signals: leave gracefully on SIGTERM / SIGINT (see above).
        wire: ``"own"`` (our format, the default) or ``"memberlist"``: speak
            hashicorp/memberlist's protocol and join a Serf / Consul / memberlist pool as
            a full member (docs/protocol.md, "memberlist wire mode", lists what differs;
            state, application broadcasts and our direct messages are refused with
            ``WireUnsupported``). Needs the node's own sockets (no ``transport``).
        delegate: (memberlist mode) the layer above, ``swimgossip.net.memberlist.Delegate``:
            its meta, user messages, push-pull user state and join/leave/update hooks.
        memberlist_keyring: (memberlist mode) encrypt with memberlist's AES-GCM and these
            keys (``MemberlistKeyring([parse_serf_key(text)])`` for Serf's ``-encrypt``);
            ``label`` is memberlist's label. ``keyring`` and ``security`` are not used.

    Raises:
        OSError: ``bind`` cannot be bound.
        ConfigError, MetadataTooLarge: invalid arguments (also: both ``meta`` and
            ``tags``).
        RuntimeError: ``handle_signals`` outside the main thread.
    """
    config = Config.lan() if config is None else config
    if tags is not None:
        if meta:
            raise ConfigError("tags", "give meta or tags, not both (tags are metadata)")
        meta = encode_tags(tags)
    if security is None:
        security = SecurityMode.OFF if keyring is None else SecurityMode.REQUIRED
    if wire not in ("own", "memberlist", "serf"):
        raise ConfigError("wire", f"wire is 'own', 'memberlist' or 'serf', not {wire!r}")
    options: MemberlistOptions | None = None
    if wire != "own":
        from ._memberlist import MemberlistOptions

        options = MemberlistOptions.check(
            wire,
            name=name,
            meta=meta,
            keyring=keyring,
            security=security,
            transport=transport,
            delegate=delegate,
            memberlist_keyring=memberlist_keyring,
        )
        config = options.limit(config)
    elif delegate is not None or memberlist_keyring is not None:
        raise ConfigError("wire", "delegate and memberlist_keyring need wire='memberlist'")
    settings = _SignerSettings(
        label=label if options is None else b"",
        replay_window=DEFAULT_REPLAY_WINDOW if replay_window is None else replay_window,
        replay_cache_size=(
            DEFAULT_REPLAY_CACHE_SIZE if replay_cache_size is None else replay_cache_size
        ),
    )
    signer = settings.signer(keyring, security)
    # Room for an envelope even under OFF when a keyring allows a later set_security().
    overhead = signer.overhead
    if keyring is not None and security is SecurityMode.OFF:
        overhead += SIGNATURE_OVERHEAD
    async with AsyncExitStack() as stack:
        resolve_seed: SeedResolver | None = None
        mode: MemberlistMode | None = None
        counters: Counter[str] = Counter()
        if transport is None:
            udp = await stack.enter_async_context(open_udp_transport(bind, resolver=resolver))
            transport, address = udp, advertised_address(udp, advertise)
            resolve_seed = udp.resolve_all
            if options is not None:
                from ._memberlist import MemberlistMode

                mode, meta, overhead = MemberlistMode.build(
                    udp, options, config=config, label=label, meta=meta, counters=counters
                )
                transport = mode.transport
        else:
            address = advertise if advertise is not None else transport.address
        rng = random.Random(seed)
        engine = Engine(
            name=name,
            address=address,
            config=config,
            rng=rng,
            meta=meta,
            envelope_overhead=overhead,
            # The floor of our state versions: a restart starts above the last run's.
            state_epoch=time.time_ns() // 1000,
            **({} if mode is None else {"wire": mode.wire}),
        )
        runtime = Runtime(
            engine,
            transport,
            signer,
            EventHub(engine.members, engine.state_snapshot),
            counters,
        )
        if mode is not None:
            mode.attach(runtime)
        body_error: BaseException | None = None
        body_scope = trio.CancelScope()  # cancelled by handle_signals only
        async with trio.open_nursery() as nursery:
            await nursery.start(runtime.run)
            node = Node(
                name,
                address,
                config,
                keyring,
                settings,
                engine,
                runtime,
                transport,
                nursery,
                resolve_seed=resolve_seed,
                memberlist=mode,
            )
            if mode is not None:
                mode.start(nursery, engine, seed)
            if handle_signals:
                await nursery.start(_leave_on_signal, node, body_scope)
            leave = False
            with body_scope:
                try:
                    yield node
                except trio.Cancelled:
                    raise  # a crash: stop at once, no leave (unless it is our signal)
                except KeyboardInterrupt as exc:
                    body_error, leave = exc, True  # Ctrl-C: leave, then let it propagate
                except BaseException as exc:
                    body_error = exc
                else:
                    leave = True
            if leave or body_scope.cancelled_caught:
                await node.leave()
            runtime.stop()
            if mode is not None:
                mode.close()
            nursery.cancel_scope.cancel()
        if body_error is not None:
            raise body_error


async def _leave_on_signal(
    node: Node, body: trio.CancelScope, *, task_status: trio.TaskStatus[None]
) -> None:
    """Wait for SIGTERM / SIGINT, then cancel the body of ``open_node`` (which leaves)."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for signum in signals:
            node.stop_signal = signal.Signals(signum)
            logger.info("%s: %s received, leaving", node.name, node.stop_signal.name)
            body.cancel()
            return


async def serve_node(
    name: str,
    *,
    bind: str = "0.0.0.0:7946",
    advertise: str | None = None,
    config: Config | None = None,
    keyring: Keyring | None = None,
    security: SecurityMode | None = None,
    label: bytes | str = b"",
    replay_window: float | None = None,
    replay_cache_size: int | None = None,
    meta: bytes = b"",
    tags: Mapping[str, str] | None = None,
    seed: int | None = None,
    transport: Transport | None = None,
    resolver: HostResolver | None = None,
    handle_signals: bool = False,
    wire: str = "own",
    delegate: Delegate | None = None,
    memberlist_keyring: MemberlistKeyring | None = None,
    task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a node until it leaves; for ``node = await nursery.start(serve_node, name, ...)``.

    Takes the same keyword arguments as ``open_node``. Cancelling the task is a crash (no
    leave); call ``await node.leave()`` to leave gracefully, which also ends this task.
    With ``handle_signals=True``, SIGTERM or SIGINT leaves gracefully and ends the task.
    """
    async with open_node(
        name,
        bind=bind,
        advertise=advertise,
        config=config,
        keyring=keyring,
        security=security,
        label=label,
        replay_window=replay_window,
        replay_cache_size=replay_cache_size,
        meta=meta,
        tags=tags,
        seed=seed,
        transport=transport,
        resolver=resolver,
        handle_signals=handle_signals,
        wire=wire,
        delegate=delegate,
        memberlist_keyring=memberlist_keyring,
    ) as node:
        task_status.started(node)
        await node.wait_stopped()
