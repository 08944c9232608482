"""Protocol messages: frozen values, one class per message type.

Datagram messages (ping, ack, nack, ping-req) drive the failure detector; membership
messages (alive, suspect, dead, left) are gossip, piggybacked on every datagram; user
messages carry application broadcasts, ``DirectMessage`` a payload for one member (in a
datagram or on a stream); ``PushPull`` is the full-state exchange and ``MemberSync`` the
digest-first one, carried on the stream transport only. ``codec.py`` turns them into
bytes and back; the wire type of each class is ``MESSAGE_TYPES``' key.
"""

from __future__ import annotations

import attrs

from .member import Member

__all__ = [
    "MAX_NAME_LENGTH",
    "Ack",
    "Alive",
    "Dead",
    "DirectMessage",
    "Gossip",
    "Left",
    "MESSAGE_TYPES",
    "MemberSync",
    "Message",
    "Nack",
    "Ping",
    "PingReq",
    "PushPull",
    "StateDelta",
    "StateSync",
    "Suspect",
    "UserMessage",
    "alive_claim",
]

#: Longest member name or address, in characters (the codec refuses longer ones).
MAX_NAME_LENGTH = 256


@attrs.frozen(kw_only=True)
class Ping:
    """Are you alive? ``target`` is the name the sender believes lives at this address,
    so a node that took over an address answers nothing for someone else's name."""

    seq: int
    target: str


@attrs.frozen(kw_only=True)
class Ack:
    """Answer to the ping carrying ``seq`` (relayed unchanged by an indirect prober)."""

    seq: int


@attrs.frozen(kw_only=True)
class Nack:
    """Lifeguard: the indirect prober got no ack from the target in time."""

    seq: int


@attrs.frozen(kw_only=True)
class PingReq:
    """Please ping ``target`` at ``target_address`` and relay its ack for ``seq``."""

    seq: int
    target: str
    target_address: str
    nack: bool


@attrs.frozen(kw_only=True)
class Alive:
    """``name`` is alive at ``incarnation``, reachable at ``address``, carrying ``meta``;
    ``boot`` is the boot id of its process (a new one means it restarted)."""

    name: str
    address: str
    incarnation: int
    meta: bytes
    boot: int = 0


def alive_claim(member: Member) -> Alive:
    """The ``Alive`` message that states what we hold about ``member``."""
    return Alive(
        name=member.name,
        address=member.address,
        incarnation=member.incarnation,
        meta=member.meta,
        boot=member.boot,
    )


@attrs.frozen(kw_only=True)
class Suspect:
    """``source`` suspects ``name`` at ``incarnation``."""

    name: str
    incarnation: int
    source: str


@attrs.frozen(kw_only=True)
class Dead:
    """``source`` declares ``name`` failed at ``incarnation``."""

    name: str
    incarnation: int
    source: str


@attrs.frozen(kw_only=True)
class Left:
    """``name`` left the cluster gracefully at ``incarnation``."""

    name: str
    incarnation: int


@attrs.frozen(kw_only=True)
class UserMessage:
    """An application broadcast from ``source``; ``id`` is unique per source."""

    source: str
    id: int
    payload: bytes


@attrs.frozen(kw_only=True)
class DirectMessage:
    """An application payload from ``source`` for one member, ``target`` (checked by the
    receiver, as ``Ping.target`` is). In a datagram it is best effort; on a stream the
    receiver answers ``Ack(seq=id)`` once it delivered it."""

    source: str
    target: str
    id: int
    payload: bytes


@attrs.frozen(kw_only=True)
class PushPull:
    """Full state of the sender (stream only). ``join`` marks the first exchange.

    ``suspected_by`` is empty or parallel to ``members``: for each suspect member, who
    raised the suspicion (else ""), so a receiver does not mistake a relayed suspicion for
    an independent confirmation.
    """

    source: str
    join: bool
    members: tuple[Member, ...]
    suspected_by: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class StateDelta:
    """Key ``key`` of member ``owner`` is ``value`` at ``version`` (``deleted``: a
    tombstone, ``value`` empty). Gossiped in datagrams, and the rows of a ``StateSync``."""

    owner: str
    key: str
    version: int
    value: bytes
    deleted: bool


@attrs.frozen(kw_only=True)
class StateSync:
    """The state exchange (stream only, scuttlebutt; see ``_state.py``).

    ``owners`` and ``versions`` are parallel: the sender's digest, for each member the
    version up to which it holds that member's keys completely. A request (``push``
    False, no ``deltas``) asks for what the receiver holds above that digest; the reply
    carries the replier's digest and those deltas. A ``push`` carries the deltas the
    replier lacked; it is answered with ``Ack(seq=0)``.
    """

    source: str
    push: bool
    owners: tuple[str, ...]
    versions: tuple[int, ...]
    deltas: tuple[StateDelta, ...]


@attrs.frozen(kw_only=True)
class MemberSync:
    """The digest-first push-pull (stream only; see ``_sync.py`` and ``digest.py``).

    A request (``push`` False, no ``members``) carries the sender's table digest:
    ``digest`` is ``B`` little-endian 64-bit bucket hashes, ``B`` a power of two from 1 to
    1,024. The reply carries the replier's digest in as many buckets and its rows of the
    buckets that differ. A ``push`` (empty ``digest``) carries the requester's rows of the
    buckets that still differ once it merged the reply; it is answered with ``Ack(seq=0)``.
    ``suspected_by`` is as in ``PushPull``.
    """

    source: str
    push: bool
    digest: bytes
    members: tuple[Member, ...]
    suspected_by: tuple[str, ...] = ()


Gossip = Alive | Suspect | Dead | Left | UserMessage | StateDelta
Message = (
    Ping
    | Ack
    | Nack
    | PingReq
    | Alive
    | Suspect
    | Dead
    | Left
    | UserMessage
    | PushPull
    | DirectMessage
    | StateDelta
    | StateSync
    | MemberSync
)

#: Wire type byte of every message class. Never renumber: add new types at the end.
MESSAGE_TYPES: dict[int, type[Message]] = {
    1: Ping,
    2: Ack,
    3: Nack,
    4: PingReq,
    5: Alive,
    6: Suspect,
    7: Dead,
    8: Left,
    9: UserMessage,
    10: PushPull,
    11: DirectMessage,
    12: StateDelta,
    13: StateSync,
    14: MemberSync,
}
