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
over ``MESSAGE_TYPES``. ``configs()`` draws valid ``Config`` values and
``fault_schedules(names)`` draws schedules for ``faults.run_schedule``. This module imports
hypothesis, which is a test dependency only.
"""

from __future__ import annotations

from hypothesis import strategies as st

from swimgossip.core.codec import MAX_NAME_LENGTH
from swimgossip.core.config import MESSAGE_ROOM, Config
from swimgossip.core.member import Member, Status
from swimgossip.core.messages import (
    Ack,
    Alive,
    Dead,
    DirectMessage,
    Gossip,
    Left,
    MemberSync,
    Message,
    Nack,
    Ping,
    PingReq,
    PushPull,
    StateDelta,
    StateSync,
    Suspect,
    UserMessage,
)
from swimgossip.testing.faults import Crash, Fault, Isolate, Loss, Partition, Pause

__all__ = [
    "U64_MAX",
    "acks",
    "addresses",
    "alives",
    "blobs",
    "compound_messages",
    "configs",
    "datagram_messages",
    "deads",
    "direct_messages",
    "fault_schedules",
    "faults",
    "gossip_messages",
    "lefts",
    "member_syncs",
    "members",
    "messages",
    "messages_of_type",
    "nacks",
    "names",
    "ping_reqs",
    "pings",
    "push_pulls",
    "state_deltas",
    "state_syncs",
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


def direct_messages() -> st.SearchStrategy[DirectMessage]:
    """``DirectMessage`` payloads for one member."""
    return st.builds(DirectMessage, source=names(), target=names(), id=u64s(), payload=blobs())


def push_pulls(max_members: int = 20) -> st.SearchStrategy[PushPull]:
    """``PushPull`` full-state exchanges of at most ``max_members`` members (unique names)."""
    member_tuples = st.lists(members(), max_size=max_members, unique_by=lambda m: m.name).map(tuple)
    return st.builds(PushPull, source=names(), join=st.booleans(), members=member_tuples)


def member_syncs(max_members: int = 20) -> st.SearchStrategy[MemberSync]:
    """``MemberSync`` digest-first push-pulls: a request (a digest of 1 to 1,024 buckets,
    a power of two), a reply (a digest and rows) or a push (rows, no digest)."""
    member_lists = st.lists(members(), max_size=max_members, unique_by=lambda m: m.name)

    @st.composite
    def build(draw: st.DrawFn) -> MemberSync:
        push = draw(st.booleans())
        rows = tuple(draw(member_lists))
        digest = b""
        if not push:
            buckets = 1 << draw(st.integers(min_value=0, max_value=10))
            digest = draw(st.binary(min_size=8 * buckets, max_size=8 * buckets))
        suspected_by = tuple(draw(names()) for _ in rows) if draw(st.booleans()) else ()
        return MemberSync(
            source=draw(names()),
            push=push,
            digest=digest,
            members=rows,
            suspected_by=suspected_by,
        )

    return build()


def state_deltas() -> st.SearchStrategy[StateDelta]:
    """``StateDelta`` gossip (a tombstone has an empty value)."""
    return st.builds(
        StateDelta,
        owner=names(),
        key=names(),
        version=u64s(),
        value=blobs(),
        deleted=st.booleans(),
    )


def state_syncs(max_deltas: int = 20) -> st.SearchStrategy[StateSync]:
    """``StateSync`` exchanges: a digest (parallel owners and versions) and deltas."""
    digest = st.lists(st.tuples(names(), u64s()), max_size=max_deltas)
    return st.builds(
        lambda source, push, pairs, deltas: StateSync(
            source=source,
            push=push,
            owners=tuple(o for o, _ in pairs),
            versions=tuple(v for _, v in pairs),
            deltas=tuple(deltas),
        ),
        names(),
        st.booleans(),
        digest,
        st.lists(state_deltas(), max_size=max_deltas),
    )


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
    DirectMessage: direct_messages(),
    StateDelta: state_deltas(),
    StateSync: state_syncs(),
    MemberSync: member_syncs(),
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
    """Every message allowed in a datagram (everything except ``PushPull`` and
    ``MemberSync``)."""
    stream_only = (PushPull, MemberSync)
    return st.one_of([s for cls, s in _STRATEGIES.items() if cls not in stream_only])


def messages() -> st.SearchStrategy[Message]:
    """Every message type, ``PushPull`` included (valid as a stream frame)."""
    return st.one_of(list(_STRATEGIES.values()))


def compound_messages(max_messages: int = 8) -> st.SearchStrategy[list[Message]]:
    """Non-empty lists of datagram messages for one compound packet.

    With the default blob size each message encodes to at most about 3.5 kB, so up to
    about 18 messages always fit in ``MAX_DATAGRAM_SIZE``; the default of 8 leaves room.
    """
    return st.lists(datagram_messages(), min_size=1, max_size=max_messages)


# ---------------------------------------------------------------------------- runtime


@st.composite
def configs(draw: st.DrawFn, *, max_probe_interval: float = 5.0) -> Config:
    """Valid ``Config`` values with timings a cluster can run on (probe interval between
    0.1 s and ``max_probe_interval``, probe timeout shorter, the rest consistent)."""
    seconds = st.floats(min_value=0.1, max_value=max_probe_interval, allow_nan=False)
    probe_interval = draw(seconds)
    probe_timeout = draw(st.floats(min_value=0.02, max_value=probe_interval * 0.9))
    gossip_interval = draw(st.floats(min_value=0.02, max_value=probe_interval))
    push_pull_interval = draw(st.floats(min_value=probe_interval, max_value=60.0))
    reconnect_interval = draw(st.floats(min_value=probe_interval, max_value=60.0))
    udp_payload_size = draw(st.integers(512, 65_000))
    return Config(
        probe_interval=probe_interval,
        probe_timeout=probe_timeout,
        indirect_checks=draw(st.integers(0, 5)),
        suspicion_mult=draw(st.integers(1, 8)),
        suspicion_max_timeout_mult=draw(st.integers(1, 8)),
        retransmit_mult=draw(st.integers(1, 6)),
        gossip_interval=gossip_interval,
        gossip_nodes=draw(st.integers(1, 6)),
        gossip_to_the_dead_time=draw(st.floats(min_value=1.0, max_value=120.0)),
        push_pull_interval=push_pull_interval,
        stream_timeout=draw(st.floats(min_value=0.1, max_value=30.0)),
        stream_fallback=draw(st.booleans()),
        awareness_max_multiplier=draw(st.integers(1, 10)),
        udp_payload_size=udp_payload_size,
        meta_max_size=draw(st.integers(0, min(4096, udp_payload_size - MESSAGE_ROOM))),
        reap_timeout=draw(st.floats(min_value=1.0, max_value=3600.0)),
        reconnect_interval=reconnect_interval,
        reconnect_timeout=draw(st.floats(min_value=reconnect_interval, max_value=86_400.0)),
        leave_timeout=draw(st.floats(min_value=0.1, max_value=30.0)),
        max_members=draw(st.integers(2, 100_000)),
    )


def faults(
    names: list[str], *, max_duration: float = 10.0, crashes: bool = True
) -> st.SearchStrategy[Fault]:
    """One fault about the nodes ``names``, lasting at most ``max_duration`` s.

    Partitions split ``names`` in two non-empty sides; losses are at most 50%, network
    wide or on one one-way link.
    """
    if len(names) < 2:
        raise ValueError("faults need at least two node names")
    durations = st.floats(min_value=0.0, max_value=max_duration, allow_nan=False)
    node = st.sampled_from(names)
    side = st.lists(node, min_size=1, max_size=len(names) - 1, unique=True)
    partitions = st.builds(
        Partition, groups=side.map(lambda s: (tuple(sorted(s)),)), duration=durations
    )
    links = st.lists(node, min_size=2, max_size=2, unique=True)
    link_losses = st.builds(
        lambda link, p, d: Loss(probability=p, duration=d, src=link[0], dst=link[1]),
        links,
        st.floats(min_value=0.0, max_value=1.0),
        durations,
    )
    choices: list[st.SearchStrategy[Fault]] = [
        partitions,
        st.builds(Isolate, name=node, duration=durations),
        st.builds(Loss, probability=st.floats(min_value=0.0, max_value=0.5), duration=durations),
        link_losses,
        st.builds(Pause, name=node, duration=durations),
    ]
    if crashes:
        choices.append(st.builds(Crash, name=node, duration=durations))
    return st.one_of(choices)


@st.composite
def fault_schedules(
    draw: st.DrawFn,
    names: list[str],
    *,
    horizon: float = 60.0,
    max_faults: int = 5,
    max_duration: float = 10.0,
    crashes: bool = True,
) -> list[tuple[float, Fault]]:
    """Schedules for ``faults.run_schedule``: at most ``max_faults`` ``(start, fault)``
    pairs sorted by start, every start within ``[0, horizon]`` and every duration at most
    ``max_duration``. A node that crashes is not also paused or crashed again, so the
    faults of one node never fight each other."""
    entries = draw(
        st.lists(
            st.tuples(
                st.floats(min_value=0.0, max_value=horizon, allow_nan=False),
                faults(names, max_duration=max_duration, crashes=crashes),
            ),
            max_size=max_faults,
        )
    )
    crashed = {fault.name for _, fault in entries if isinstance(fault, Crash)}
    seen: set[str] = set()
    kept: list[tuple[float, Fault]] = []
    for start, fault in entries:
        if isinstance(fault, Crash):
            if fault.name in seen:
                continue
            seen.add(fault.name)
        elif isinstance(fault, Pause) and fault.name in crashed:
            continue
        kept.append((start, fault))
    return sorted(kept, key=lambda entry: entry[0])
