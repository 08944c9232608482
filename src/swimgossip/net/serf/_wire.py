"""Serf's wire: memberlist's (``MemberlistWire``) with meta translated at the edge.

A Serf member's meta is its tags as Serf encodes them (byte 255, msgpack map); ours are
the JSON of ``core/tags.py``. ``SerfWire`` translates every meta crossing the wire, in an
``alive`` or a push-pull node state: Serf's to ours on the way in (``serf_meta_to_ours``),
ours to Serf's on the way out (``our_meta_to_serf``). So in serf mode ``Member.tags``
reads Go members' tags, ``Node.update_tags`` reaches ``serf members``, and the engine
never sees Serf's bytes. The node keeps its own meta canonical (``canonical_meta``: what
a round trip through Serf's encoding gives back), so its own ``alive``, gossiped back by
Go peers, is byte-identical and not refuted again and again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs

from ...core import messages as core
from ...core.member import Member
from ..memberlist._wire import MemberlistWire
from .messages import our_meta_to_serf, serf_meta_to_ours

__all__ = ["SerfWire", "canonical_meta"]


def canonical_meta(meta: bytes) -> bytes:
    """``meta`` as it comes back from a trip through Serf's tag encoding (keys sorted;
    what is not a tag map becomes no tags). ``ValueError`` over Serf's 512 bytes."""
    return serf_meta_to_ours(our_meta_to_serf(meta))


def _out_meta(meta: bytes) -> bytes:
    try:
        return our_meta_to_serf(meta)
    except ValueError:  # over 512 bytes: refused before it gets here (canonical_meta)
        return our_meta_to_serf(b"")


def _members(message: core.PushPull, translate: Callable[[bytes], bytes]) -> core.PushPull:
    members = tuple(attrs.evolve(m, meta=translate(m.meta)) for m in message.members)
    return attrs.evolve(message, members=members)


def _outgoing(message: core.Message) -> core.Message:
    if isinstance(message, core.Alive):
        return attrs.evolve(message, meta=_out_meta(message.meta))
    if isinstance(message, core.PushPull):
        return _members(message, _out_meta)
    return message


def _incoming(message: core.Message) -> core.Message:
    if isinstance(message, core.Alive):
        return attrs.evolve(message, meta=serf_meta_to_ours(message.meta))
    if isinstance(message, core.PushPull):
        return _members(message, serf_meta_to_ours)
    return message


class SerfWire(MemberlistWire):
    """memberlist's wire with Serf's tags in meta (see the module docstring)."""

    NAME = "serf"

    def encode_message(self, message: core.Message, /) -> bytes:
        """memberlist's bytes for ``message``, its meta as Serf's tags."""
        return super().encode_message(_outgoing(message))

    def encode_stream(self, message: core.Message, /) -> bytes:
        """A push-pull (node metas as Serf's tags), a stream ping or its ack."""
        return super().encode_stream(_outgoing(message))

    def decode_packet(self, data: bytes, /) -> list[core.Message]:
        """The engine's messages in a datagram, metas translated to our tags."""
        return [_incoming(m) for m in super().decode_packet(data)]

    def decode_stream(
        self, data: bytes, known: Mapping[str, Member] | None = None, /
    ) -> core.Message:
        """The engine's message for a stream payload, metas translated to our tags."""
        return _incoming(super().decode_stream(data, known))
