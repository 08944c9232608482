"""Hypothesis strategies for every protocol message, for property tests and fuzzing.

Each strategy draws values the codec accepts: names and addresses are text of at most
``MAX_NAME_LENGTH`` characters, integers span the whole unsigned 64-bit range, metadata and
payloads are short byte strings. Compose them in your own tests::

    from hypothesis import given
    from swimgossip.testing import strategies

    @given(strategies.compound_messages())
    def test_round_trip(messages):
        assert decode_packet(encode_packet(messages)) == messages

``messages_of_type(cls)`` gives the strategy of one message class, so a test can iterate
over ``MESSAGE_TYPES``. This module imports hypothesis, which is a test dependency only.
"""

from __future__ import annotations

from hypothesis import strategies as st

from swimgossip.core.codec import MAX_NAME_LENGTH
from swimgossip.core.member import Member, Status
from swimgossip.core.messages import (
    Ack,
    Alive,
    Dead,
    Gossip,
    Left,
    Message,
    Nack,
    Ping,
    PingReq,
    PushPull,
    Suspect,
    UserMessage,
)

__all__ = [
    "U64_MAX",
    "acks",
    "addresses",
    "alives",
    "blobs",
    "compound_messages",
    "datagram_messages",
    "deads",
    "gossip_messages",
    "lefts",
    "members",
    "messages",
    "messages_of_type",
    "nacks",
    "names",
    "ping_reqs",
    "pings",
    "push_pulls",
    "statuses",
    "suspects",
    "u64s",
    "user_messages",
]

#: Largest value of a sequence number, incarnation or message id on the wire.
U64_MAX = (1 << 64) - 1
_DEFAULT_BLOB_SIZE = 300


def names() -> st.SearchStrategy[str]:
    """Member names: any text of at most ``MAX_NAME_LENGTH`` characters (may be empty)."""
    return st.text(max_size=MAX_NAME_LENGTH)


def addresses() -> st.SearchStrategy[str]:
    """Addresses: any text of at most ``MAX_NAME_LENGTH`` characters.

    The codec treats an address as an opaque string; both well-formed ``host:port`` values
    and arbitrary text are drawn.
    """
    host_port = st.builds(
        "{}:{}".format,
        st.ip_addresses().map(str),
        st.integers(min_value=0, max_value=65535),
    )
    return st.one_of(host_port, st.text(max_size=MAX_NAME_LENGTH))


def u64s() -> st.SearchStrategy[int]:
    """Unsigned 64-bit integers (sequence numbers, incarnations, ids): 0 to ``U64_MAX``."""
    return st.integers(min_value=0, max_value=U64_MAX)


def blobs(max_size: int = _DEFAULT_BLOB_SIZE) -> st.SearchStrategy[bytes]:
    """Metadata and user payloads: byte strings of at most ``max_size`` bytes."""
    return st.binary(max_size=max_size)


def statuses() -> st.SearchStrategy[Status]:
    """Any member status."""
    return st.sampled_from(Status)


def members(max_meta_size: int = _DEFAULT_BLOB_SIZE) -> st.SearchStrategy[Member]:
    """Member snapshots, as carried in a push-pull."""
    return st.builds(
        Member,
        name=names(),
        address=addresses(),
        status=statuses(),
        incarnation=u64s(),
        meta=blobs(max_meta_size),
    )


def pings() -> st.SearchStrategy[Ping]:
    """``Ping`` messages."""
    return st.builds(Ping, seq=u64s(), target=names())


def acks() -> st.SearchStrategy[Ack]:
    """``Ack`` messages."""
    return st.builds(Ack, seq=u64s())


def nacks() -> st.SearchStrategy[Nack]:
    """``Nack`` messages."""
    return st.builds(Nack, seq=u64s())


def ping_reqs() -> st.SearchStrategy[PingReq]:
    """``PingReq`` messages."""
    return st.builds(
        PingReq, seq=u64s(), target=names(), target_address=addresses(), nack=st.booleans()
    )


def alives() -> st.SearchStrategy[Alive]:
    """``Alive`` messages."""
    return st.builds(Alive, name=names(), address=addresses(), incarnation=u64s(), meta=blobs())


def suspects() -> st.SearchStrategy[Suspect]:
    """``Suspect`` messages."""
    return st.builds(Suspect, name=names(), incarnation=u64s(), source=names())


def deads() -> st.SearchStrategy[Dead]:
    """``Dead`` messages."""
    return st.builds(Dead, name=names(), incarnation=u64s(), source=names())


def lefts() -> st.SearchStrategy[Left]:
    """``Left`` messages."""
    return st.builds(Left, name=names(), incarnation=u64s())


def user_messages() -> st.SearchStrategy[UserMessage]:
    """``UserMessage`` broadcasts."""
    return st.builds(UserMessage, source=names(), id=u64s(), payload=blobs())


def push_pulls(max_members: int = 20) -> st.SearchStrategy[PushPull]:
    """``PushPull`` full-state exchanges of at most ``max_members`` members (unique names)."""
    member_tuples = st.lists(members(), max_size=max_members, unique_by=lambda m: m.name).map(tuple)
    return st.builds(PushPull, source=names(), join=st.booleans(), members=member_tuples)


_STRATEGIES: dict[type[Message], st.SearchStrategy[Message]] = {
    Ping: pings(),
    Ack: acks(),
    Nack: nacks(),
    PingReq: ping_reqs(),
    Alive: alives(),
    Suspect: suspects(),
    Dead: deads(),
    Left: lefts(),
    UserMessage: user_messages(),
    PushPull: push_pulls(),
}


def messages_of_type(cls: type[Message]) -> st.SearchStrategy[Message]:
    """The strategy of one message class.

    Raises:
        KeyError: if ``cls`` is not a message class (a new type without a strategy).
    """
    return _STRATEGIES[cls]


def gossip_messages() -> st.SearchStrategy[Gossip]:
    """Piggybacked gossip: alive, suspect, dead, left and user messages."""
    return st.one_of(alives(), suspects(), deads(), lefts(), user_messages())


def datagram_messages() -> st.SearchStrategy[Message]:
    """Every message allowed in a datagram (everything except ``PushPull``)."""
    return st.one_of([s for cls, s in _STRATEGIES.items() if cls is not PushPull])


def messages() -> st.SearchStrategy[Message]:
    """Every message type, ``PushPull`` included (valid as a stream frame)."""
    return st.one_of(list(_STRATEGIES.values()))


def compound_messages(max_messages: int = 8) -> st.SearchStrategy[list[Message]]:
    """Non-empty lists of datagram messages for one compound packet.

    With the default blob size each message encodes to at most about 3.5 kB, so up to
    about 18 messages always fit in ``MAX_DATAGRAM_SIZE``; the default of 8 leaves room.
    """
    return st.lists(datagram_messages(), min_size=1, max_size=max_messages)
