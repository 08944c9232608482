"""memberlist's wire as the engine's ``Wire`` (``core/wire.py``): ``MemberlistWire``.

The engine speaks its own messages; this turns them into memberlist's bytes and back
(``translate``, ``codec``), and is where the ``Delegate`` meets the packets:

- ``encode_message`` returns memberlist's message *with* the 2-byte length it takes in a
  compound, so the engine's budget counts the compound framing; ``join_packet`` sends one
  message bare, several as a compound (at most 255), after filling the room left with the
  delegate's broadcasts (``userMsg``, as memberlist's ``getBroadcasts`` does).
- Streams: a push-pull carries the delegate's ``local_state(join)``; a received one hands
  its user state to ``merge_remote_state`` before the engine merges the node states (Go
  merges first: the delegate sees the user state a moment earlier). A stream ``ping``
  (memberlist's TCP fallback probe) and its ``ack`` map to ours.
- Decoding unwraps CRC, compression and compound messages; each ``userMsg`` goes to the
  delegate's ``notify_message``; memberlist errors (``WireError``) become the engine's
  ``DecodeError`` (counted as malformed, dropped), with the reason in the message.
- A message memberlist has no counterpart for (state deltas and syncs, application
  broadcasts, direct messages) raises ``WireUnsupported``: the caller's ``set_state``,
  ``broadcast`` or ``send`` fails and nothing is sent.

Outgoing datagrams are never compressed nor CRC-wrapped (both optional in memberlist);
label and encryption are the transport's (``MemberlistTransport``).
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from collections.abc import Mapping, Sequence

from ...core import messages as core
from ...core.errors import DecodeError, WireUnsupported
from ...core.member import Member
from . import codec as ml
from ._delegate import USER_MESSAGE_OVERHEAD, Delegate, NoDelegate
from .errors import WireError
from .translate import DEFAULT_VSN, from_memberlist, from_push_pull, to_memberlist, to_push_pull

__all__ = ["MemberlistWire"]

logger = logging.getLogger("swimgossip")

_LENGTH = struct.Struct(">H")
#: Our incarnation n is memberlist's n + 1 (memberlist ignores a new node at 0).
INCARNATION_SHIFT = 1
#: The newest memberlist protocol version we speak (memberlist's ProtocolVersionMax).
PROTOCOL_MAX = 5
#: Members whose version bytes are remembered (the oldest is forgotten beyond it).
MAX_REMEMBERED_VERSIONS = 65_536
#: Compound header: type byte and count byte.
_COMPOUND_HEADER = 2


class MemberlistWire:
    """hashicorp/memberlist's wire for ``Engine(wire=...)``.

    Args:
        budget: bytes of a datagram available for messages (the engine's budget: UDP
            payload size less label, encryption and ``PACKET_HEADER``); the delegate's
            broadcasts fill what the engine's messages leave of it.
        delegate: the layer above (``Delegate``); ``NoDelegate()`` by default.
        vsn: the six version bytes our alives and node states announce.
    """

    #: A compound message holds at most 255 messages.
    MAX_DATAGRAM_MESSAGES = 255
    NAME = "memberlist"
    #: memberlist has no member state (see docs/protocol.md).
    CARRIES_STATE = False
    CARRIES_DIGESTS = False

    def __init__(
        self,
        *,
        budget: int,
        delegate: Delegate | None = None,
        vsn: bytes = DEFAULT_VSN,
        counters: Counter[str] | None = None,
    ) -> None:
        self.budget = budget
        self.delegate: Delegate = NoDelegate() if delegate is None else delegate
        self.vsn = vsn
        #: What this wire dropped or handed to the delegate (the node's metrics).
        self.counters: Counter[str] = Counter() if counters is None else counters
        self._versions: dict[str, bytes] = {}

    # ------------------------------------------------------------------ encoding

    def _vsn_of(self, name: str) -> bytes:
        return self._versions.get(name, self.vsn)

    def _remember(self, name: str, vsn: bytes) -> None:
        if vsn and vsn[0] > PROTOCOL_MAX:
            raise WireError(
                f"{name!r} needs memberlist protocol version {vsn[0]} or newer; we speak "
                f"up to {PROTOCOL_MAX}"
            )
        if len(vsn) < 6 or self._versions.get(name) == vsn:
            return
        if len(self._versions) >= MAX_REMEMBERED_VERSIONS and name not in self._versions:
            del self._versions[next(iter(self._versions))]  # the oldest entry
        self._versions[name] = vsn

    def _translate(self, message: core.Message) -> ml.Message:
        vsn = self.vsn
        if isinstance(message, core.Alive):
            vsn = self._vsn_of(message.name)
        translated = to_memberlist(message, vsn=vsn, shift=INCARNATION_SHIFT)
        if translated is None:
            raise WireUnsupported(type(message).__name__, "memberlist")
        return translated

    def encode_message(self, message: core.Message, /) -> bytes:
        """memberlist's bytes for ``message``, behind its 2-byte compound length."""
        body = ml.encode_message(self._translate(message))
        return _LENGTH.pack(len(body)) + body

    def join_packet(self, encoded: Sequence[bytes], /) -> bytes:
        """One datagram: the messages and as many delegate broadcasts as fit."""
        bodies = [e[2:] for e in encoded]
        room = self.budget - sum(len(e) for e in encoded) - _COMPOUND_HEADER
        if room > USER_MESSAGE_OVERHEAD and len(bodies) < self.MAX_DATAGRAM_MESSAGES:
            for payload in self.delegate.get_broadcasts(USER_MESSAGE_OVERHEAD, room):
                cost = len(payload) + USER_MESSAGE_OVERHEAD
                if cost > room or len(bodies) >= self.MAX_DATAGRAM_MESSAGES:
                    self.counters["memberlist_user_broadcasts_dropped"] += 1
                    continue
                room -= cost
                bodies.append(bytes((ml.MessageType.USER,)) + payload)
                self.counters["memberlist_user_messages_out"] += 1
        if len(bodies) == 1:
            return bodies[0]
        return ml.make_compound(bodies)

    def user_packet(self) -> bytes | None:
        """A datagram of the delegate's broadcasts alone (for the gossip ticker), or None
        when it has none."""
        bodies: list[bytes] = []
        room = self.budget - _COMPOUND_HEADER
        for payload in self.delegate.get_broadcasts(USER_MESSAGE_OVERHEAD, room):
            cost = len(payload) + USER_MESSAGE_OVERHEAD
            if cost > room or len(bodies) >= self.MAX_DATAGRAM_MESSAGES:
                self.counters["memberlist_user_broadcasts_dropped"] += 1
                continue
            room -= cost
            bodies.append(bytes((ml.MessageType.USER,)) + payload)
        if not bodies:
            return None
        self.counters["memberlist_user_messages_out"] += len(bodies)
        return bodies[0] if len(bodies) == 1 else ml.make_compound(bodies)

    def encode_stream(self, message: core.Message, /) -> bytes:
        """A push-pull (with the delegate's user state), a stream ping or its ack."""
        if isinstance(message, core.PushPull):
            state = self.delegate.local_state(message.join)
            push_pull = to_push_pull(
                message, user_state=state, vsn_of=self._vsn_of, shift=INCARNATION_SHIFT
            )
            return ml.encode_push_pull(push_pull)
        if isinstance(message, (core.Ping, core.Ack)):
            return ml.encode_message(self._translate(message))
        raise WireUnsupported(f"{type(message).__name__} on a stream", "memberlist")

    # ------------------------------------------------------------------ decoding

    def _engine_message(self, message: ml.Message) -> core.Message | None:
        if isinstance(message, ml.UserMessage):
            self.counters["memberlist_user_messages_in"] += 1
            self.delegate.notify_message(message.payload)
            return None
        if isinstance(message, ml.ErrorResponse):
            self.counters["memberlist_error_responses"] += 1
            logger.info("memberlist peer reported an error: %s", message.error)
            return None
        if isinstance(message, ml.Alive):
            self._remember(message.node, message.vsn)
        return from_memberlist(message, shift=INCARNATION_SHIFT)

    def decode_packet(self, data: bytes, /) -> list[core.Message]:
        """The engine's messages in a (label-stripped, decrypted) memberlist datagram;
        ``userMsg`` s go to the delegate. ``DecodeError`` for anything malformed."""
        try:
            messages, truncated = ml.decode_packet(data)
            if truncated:
                self.counters["memberlist_compound_truncated"] += truncated
                logger.debug("memberlist compound with %d truncated parts", truncated)
            out = []
            for message in messages:
                mapped = self._engine_message(message)
                if mapped is not None:
                    out.append(mapped)
        except WireError as exc:
            logger.debug("memberlist packet dropped: %s", exc)
            raise DecodeError(f"memberlist: {exc}") from exc
        return out

    def decode_stream(
        self, data: bytes, known: Mapping[str, Member] | None = None, /
    ) -> core.Message:
        """The engine's message for a (decrypted) memberlist stream payload: a push-pull
        (its user state goes to the delegate first), a ping or an ack. ``known`` is not
        used: every row is translated from Go's shape."""
        try:
            plain = ml.decompressed(data)
            if plain[0] == ml.MessageType.PUSH_PULL:
                push_pull = ml.decode_push_pull(plain)
                for node in push_pull.nodes:
                    self._remember(node.name, node.vsn)
                mapped_push_pull = from_push_pull(push_pull, source="", shift=INCARNATION_SHIFT)
                if push_pull.user_state:
                    self.delegate.merge_remote_state(push_pull.user_state, push_pull.join)
                return mapped_push_pull
            message = ml.decode_message(plain)
            if isinstance(message, ml.ErrorResponse):
                raise WireError(f"the peer answered with an error: {message.error}")
            mapped = from_memberlist(message, shift=INCARNATION_SHIFT)
        except WireError as exc:
            logger.debug("memberlist stream dropped: %s", exc)
            raise DecodeError(f"memberlist: {exc}") from exc
        if not isinstance(mapped, (core.Ping, core.Ack)):
            raise DecodeError(f"memberlist: a {type(message).__name__} is not a stream message")
        return mapped
