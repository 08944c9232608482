"""Direct messages: an application payload for one member, best effort or reliable.

``DirectMessages`` is the one owner of direct sends. ``send`` looks the target up in the
member table (it must be alive or suspect: a failed or left member gets ``UnknownMember``)
and either

* best effort: puts a ``DirectMessage`` in one datagram to the member's address (with as
  much gossip as fits, like any datagram), refused with ``MessageTooLarge`` if it cannot
  fit in the datagram budget; or
* reliable: sends it as a stream exchange (``StreamPurpose.DIRECT``), bounded by
  ``MAX_RELIABLE_PAYLOAD``; the receiver answers ``Ack(seq=id)`` once it delivered the
  payload, and the caller's ``ref`` comes back in a ``DirectOutcome`` (ok, or why not).

A receiver delivers a ``DirectMessage`` whose ``target`` is its own name as a
``DirectDelivery``; one for another name (the address changed hands) is counted and
dropped, and on a stream gets no answer. Signing and sealing are the runtime's, as for
every packet and stream.
"""

from __future__ import annotations

import random

from . import codec
from ._effects import Effects
from ._membership import Membership
from .errors import MessageTooLarge, UnknownMember
from .inputs import StreamFailure
from .messages import Ack, DirectMessage, Message
from .outputs import DirectDelivery, DirectOutcome, StreamPurpose, StreamReply

__all__ = ["MAX_RELIABLE_PAYLOAD", "DirectMessages"]

#: Largest payload of a reliable direct message: the decoder's bound on any byte string
#: (``codec.MAX_BYTES_LENGTH``, 64 KiB). A larger one raises ``MessageTooLarge`` at the
#: sender; a receiver's decoder refuses one (counted as a malformed stream).
MAX_RELIABLE_PAYLOAD = codec.MAX_BYTES_LENGTH


class DirectMessages:
    """Sending and receiving direct messages.

    Args:
        name: our member name (the ``source`` of what we send).
        rng: the engine's only source of randomness (message ids).
        effects: where outputs, streams and the datagram budget are.
        membership: the member table (to find the target's address).
    """

    def __init__(
        self, *, name: str, rng: random.Random, effects: Effects, membership: Membership
    ) -> None:
        self.name = name
        self.rng = rng
        self.effects = effects
        self.membership = membership
        #: Reliable sends in flight: message id -> the caller's ``ref``.
        self._refs: dict[int, int] = {}

    def send(self, target: str, payload: bytes, *, reliable: bool, ref: int) -> None:
        """Send ``payload`` to ``target`` (see the module comment).

        Raises:
            UnknownMember: ``target`` is not held alive or suspect (or is ourselves).
            MessageTooLarge: over the datagram budget (best effort) or
                ``MAX_RELIABLE_PAYLOAD`` (reliable); nothing is sent.
        """
        member = self.membership.get(target)
        if target == self.name:
            raise UnknownMember(target, "that is this node")
        if member is None:
            raise UnknownMember(target, "no such member")
        if member.status.is_gone:
            raise UnknownMember(target, f"the member is {member.status.name.lower()}")
        message = DirectMessage(
            source=self.name, target=target, id=self.rng.getrandbits(63), payload=payload
        )
        counters = self.effects.counters
        if not reliable:
            encoded = self.effects.wire.encode_message(message)
            limit = self.effects.budget
            if len(encoded) > limit:
                raise MessageTooLarge(len(payload), limit - (len(encoded) - len(payload)))
            self.effects.send(member.address, [message])
            counters["direct_sent"] += 1
            return
        if len(payload) > MAX_RELIABLE_PAYLOAD:
            raise MessageTooLarge(len(payload), MAX_RELIABLE_PAYLOAD)
        self._refs[message.id] = ref
        self.effects.stream(
            StreamPurpose.DIRECT,
            member.address,
            self.effects.wire.encode_stream(message),
            seq=message.id,
        )
        counters["direct_sent_reliable"] += 1

    def on_datagram(self, message: DirectMessage, source: str, now: float) -> None:
        """A best-effort direct message arrived in a datagram."""
        self._deliver(message, reliable=False)

    def on_stream(self, message: DirectMessage, token: int, now: float) -> bool:
        """A reliable direct message arrived on a stream: deliver it and answer."""
        if not self._deliver(message, reliable=True):
            return True  # counted; no answer, the sender's stream fails
        reply = self.effects.wire.encode_stream(Ack(seq=message.id))
        self.effects.output(StreamReply(token=token, payload=reply))
        return True

    def answered(self, seq: int, reply: Message) -> bool:
        """Our reliable send ``seq`` got ``reply``; False if it is not its ack."""
        ref = self._refs.pop(seq, None)
        if ref is None:
            return True  # already settled
        if type(reply) is not Ack or reply.seq != seq:
            self.effects.output(
                DirectOutcome(ref=ref, ok=False, reason="the member answered something else")
            )
            return False
        self.effects.counters["direct_acked"] += 1
        self.effects.output(DirectOutcome(ref=ref, ok=True))
        return True

    def failed(self, seq: int, address: str, failure: StreamFailure, detail: str) -> None:
        """Our reliable send ``seq`` got no usable answer."""
        ref = self._refs.pop(seq, None)
        if ref is None:
            return
        self.effects.counters["direct_failed"] += 1
        reason = f"not delivered to {address}: {detail or failure.value}"
        self.effects.output(DirectOutcome(ref=ref, ok=False, reason=reason))

    def _deliver(self, message: DirectMessage, *, reliable: bool) -> bool:
        counters = self.effects.counters
        if message.target != self.name:
            counters["direct_misaddressed"] += 1
            return False
        counters["direct_received"] += 1
        self.effects.output(
            DirectDelivery(source=message.source, payload=message.payload, reliable=reliable)
        )
        return True
