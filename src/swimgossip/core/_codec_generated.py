"""Generated from the rule table of _codec_rules.py by its ``main()``: do not edit.

See _codec_rules.py for how it is derived, why it is checked in, and how to
regenerate it; tests/core/test_codec.py fails when it is out of date.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from itertools import chain, repeat
from operator import attrgetter, eq, itemgetter
from typing import Any, NoReturn

from .member import Member, Status
from .messages import (
    Ack,
    Alive,
    Dead,
    DirectMessage,
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

__all__ = ["DECODERS", "ROWS"]

STATUSES = tuple(Status)
#: The default ``known`` of a decoder of keyed rows: nothing held.
NOTHING: Mapping[str, Any] = {}
FIRST = itemgetter(0)
#: Equal to nothing but itself (no decoded cell is ever this object).
NOT_HELD = object()


def reuse_held(
    rows: list[Any],
    known: Mapping[Any, Any],
    fields: Callable[[Any], tuple[Any, ...]],
    width: int,
    typed: Callable[[Any], tuple[Any, ...]],
    cells: frozenset[type],
    absent: Any,
) -> tuple[list[Any], Iterable[int]]:
    """Rows equal to the value ``known`` holds under their first cell, taken as
    that value: the list of values (``absent`` where a row is still to check and
    build) and the indices of those rows. A row is equal when its ``typed`` cells
    (the key, which must hash, and those a foreign type could equal: ``True == 1``,
    ``2.0 == 2``) are all of the types in ``cells``, and the whole row equals the
    value's ``fields`` (a str or bytes cell equals only its own type). Runs in C
    whatever the number of rows.
    Not tried when ``known`` is less than half as long as ``rows`` (a joiner's
    first state: few rows can be held, and comparing would only add to building).
    """
    count = len(rows)
    if not (
        2 * len(known) >= count
        and set(map(type, rows)) <= {list}
        and set(map(len, rows)) <= {width}
        and set(map(type, chain.from_iterable(map(typed, rows)))) <= cells
    ):
        return [absent] * count, range(count)
    held = list(map(known.get, map(FIRST, rows), repeat(absent, count)))
    same = list(map(eq, map(tuple, rows), map(fields, held)))
    if all(same):
        return held, ()
    return held, [index for index, equal in enumerate(same) if not equal]


def explain(cls: type[Message], row: list[Any]) -> NoReturn:
    """Raise the DecodeError naming the broken rule (the table loads on first use)."""
    from ._codec_rules import explain as explain_by_rules

    explain_by_rules(cls, row)


new = object.__new__
SET_MEMBER_NAME = Member.__dict__["name"].__set__
SET_MEMBER_ADDRESS = Member.__dict__["address"].__set__
SET_MEMBER_STATUS = Member.__dict__["status"].__set__
SET_MEMBER_INCARNATION = Member.__dict__["incarnation"].__set__
SET_MEMBER_META = Member.__dict__["meta"].__set__
SET_MEMBER_BOOT = Member.__dict__["boot"].__set__
SET_STATE_DELTA_OWNER = StateDelta.__dict__["owner"].__set__
SET_STATE_DELTA_KEY = StateDelta.__dict__["key"].__set__
SET_STATE_DELTA_VERSION = StateDelta.__dict__["version"].__set__
SET_STATE_DELTA_VALUE = StateDelta.__dict__["value"].__set__
SET_STATE_DELTA_DELETED = StateDelta.__dict__["deleted"].__set__
SET_PING_SEQ = Ping.__dict__["seq"].__set__
SET_PING_TARGET = Ping.__dict__["target"].__set__
SET_ACK_SEQ = Ack.__dict__["seq"].__set__
SET_NACK_SEQ = Nack.__dict__["seq"].__set__
SET_PING_REQ_SEQ = PingReq.__dict__["seq"].__set__
SET_PING_REQ_TARGET = PingReq.__dict__["target"].__set__
SET_PING_REQ_TARGET_ADDRESS = PingReq.__dict__["target_address"].__set__
SET_PING_REQ_NACK = PingReq.__dict__["nack"].__set__
SET_ALIVE_NAME = Alive.__dict__["name"].__set__
SET_ALIVE_ADDRESS = Alive.__dict__["address"].__set__
SET_ALIVE_INCARNATION = Alive.__dict__["incarnation"].__set__
SET_ALIVE_META = Alive.__dict__["meta"].__set__
SET_ALIVE_BOOT = Alive.__dict__["boot"].__set__
SET_SUSPECT_NAME = Suspect.__dict__["name"].__set__
SET_SUSPECT_INCARNATION = Suspect.__dict__["incarnation"].__set__
SET_SUSPECT_SOURCE = Suspect.__dict__["source"].__set__
SET_DEAD_NAME = Dead.__dict__["name"].__set__
SET_DEAD_INCARNATION = Dead.__dict__["incarnation"].__set__
SET_DEAD_SOURCE = Dead.__dict__["source"].__set__
SET_LEFT_NAME = Left.__dict__["name"].__set__
SET_LEFT_INCARNATION = Left.__dict__["incarnation"].__set__
SET_USER_MESSAGE_SOURCE = UserMessage.__dict__["source"].__set__
SET_USER_MESSAGE_ID = UserMessage.__dict__["id"].__set__
SET_USER_MESSAGE_PAYLOAD = UserMessage.__dict__["payload"].__set__
SET_PUSH_PULL_SOURCE = PushPull.__dict__["source"].__set__
SET_PUSH_PULL_JOIN = PushPull.__dict__["join"].__set__
SET_PUSH_PULL_MEMBERS = PushPull.__dict__["members"].__set__
SET_PUSH_PULL_SUSPECTED_BY = PushPull.__dict__["suspected_by"].__set__
SET_DIRECT_MESSAGE_SOURCE = DirectMessage.__dict__["source"].__set__
SET_DIRECT_MESSAGE_TARGET = DirectMessage.__dict__["target"].__set__
SET_DIRECT_MESSAGE_ID = DirectMessage.__dict__["id"].__set__
SET_DIRECT_MESSAGE_PAYLOAD = DirectMessage.__dict__["payload"].__set__
SET_STATE_DELTA_OWNER = StateDelta.__dict__["owner"].__set__
SET_STATE_DELTA_KEY = StateDelta.__dict__["key"].__set__
SET_STATE_DELTA_VERSION = StateDelta.__dict__["version"].__set__
SET_STATE_DELTA_VALUE = StateDelta.__dict__["value"].__set__
SET_STATE_DELTA_DELETED = StateDelta.__dict__["deleted"].__set__
SET_STATE_SYNC_SOURCE = StateSync.__dict__["source"].__set__
SET_STATE_SYNC_PUSH = StateSync.__dict__["push"].__set__
SET_STATE_SYNC_OWNERS = StateSync.__dict__["owners"].__set__
SET_STATE_SYNC_VERSIONS = StateSync.__dict__["versions"].__set__
SET_STATE_SYNC_DELTAS = StateSync.__dict__["deltas"].__set__
SET_MEMBER_SYNC_SOURCE = MemberSync.__dict__["source"].__set__
SET_MEMBER_SYNC_PUSH = MemberSync.__dict__["push"].__set__
SET_MEMBER_SYNC_DIGEST = MemberSync.__dict__["digest"].__set__
SET_MEMBER_SYNC_MEMBERS = MemberSync.__dict__["members"].__set__
SET_MEMBER_SYNC_SUSPECTED_BY = MemberSync.__dict__["suspected_by"].__set__

#: A Member's fields in wire order (its row, as a tuple).
MEMBER_FIELDS = attrgetter("name", "address", "status", "incarnation", "meta", "boot")
#: The cells of a Member row whose type is checked, and those types.
MEMBER_TYPED = itemgetter(0, 2, 3, 5)
MEMBER_CELLS = frozenset({int, str})
#: Stands for a Member not held: no row's cell equals its fields.
MEMBER_ABSENT = new(Member)
SET_MEMBER_NAME(MEMBER_ABSENT, NOT_HELD)
SET_MEMBER_ADDRESS(MEMBER_ABSENT, NOT_HELD)
SET_MEMBER_STATUS(MEMBER_ABSENT, NOT_HELD)
SET_MEMBER_INCARNATION(MEMBER_ABSENT, NOT_HELD)
SET_MEMBER_META(MEMBER_ABSENT, NOT_HELD)
SET_MEMBER_BOOT(MEMBER_ABSENT, NOT_HELD)


def row_ping(message: Ping) -> list[Any]:
    return [1, message.seq, message.target]


def decode_ping(row: list[Any]) -> Ping:
    if len(row) != 3:
        explain(Ping, row)
    _, seq, target = row
    if not (
        type(seq) is int
        and 0 <= seq <= 18446744073709551615
        and type(target) is str
        and len(target) <= 256
    ):
        explain(Ping, row)
    message = new(Ping)
    SET_PING_SEQ(message, seq)
    SET_PING_TARGET(message, target)
    return message


def row_ack(message: Ack) -> list[Any]:
    return [2, message.seq]


def decode_ack(row: list[Any]) -> Ack:
    if len(row) != 2:
        explain(Ack, row)
    _, seq = row
    if not (type(seq) is int and 0 <= seq <= 18446744073709551615):
        explain(Ack, row)
    message = new(Ack)
    SET_ACK_SEQ(message, seq)
    return message


def row_nack(message: Nack) -> list[Any]:
    return [3, message.seq]


def decode_nack(row: list[Any]) -> Nack:
    if len(row) != 2:
        explain(Nack, row)
    _, seq = row
    if not (type(seq) is int and 0 <= seq <= 18446744073709551615):
        explain(Nack, row)
    message = new(Nack)
    SET_NACK_SEQ(message, seq)
    return message


def row_ping_req(message: PingReq) -> list[Any]:
    return [4, message.seq, message.target, message.target_address, message.nack]


def decode_ping_req(row: list[Any]) -> PingReq:
    if len(row) != 5:
        explain(PingReq, row)
    _, seq, target, target_address, nack = row
    if not (
        type(seq) is int
        and 0 <= seq <= 18446744073709551615
        and type(target) is str
        and len(target) <= 256
        and type(target_address) is str
        and len(target_address) <= 256
        and type(nack) is bool
    ):
        explain(PingReq, row)
    message = new(PingReq)
    SET_PING_REQ_SEQ(message, seq)
    SET_PING_REQ_TARGET(message, target)
    SET_PING_REQ_TARGET_ADDRESS(message, target_address)
    SET_PING_REQ_NACK(message, nack)
    return message


def row_alive(message: Alive) -> list[Any]:
    return [5, message.name, message.address, message.incarnation, message.meta, message.boot]


def decode_alive(row: list[Any]) -> Alive:
    if len(row) != 6:
        explain(Alive, row)
    _, name, address, incarnation, meta, boot = row
    if not (
        type(name) is str
        and len(name) <= 256
        and type(address) is str
        and len(address) <= 256
        and type(incarnation) is int
        and 0 <= incarnation <= 18446744073709551615
        and type(meta) is bytes
        and type(boot) is int
        and 0 <= boot <= 18446744073709551615
    ):
        explain(Alive, row)
    message = new(Alive)
    SET_ALIVE_NAME(message, name)
    SET_ALIVE_ADDRESS(message, address)
    SET_ALIVE_INCARNATION(message, incarnation)
    SET_ALIVE_META(message, meta)
    SET_ALIVE_BOOT(message, boot)
    return message


def row_suspect(message: Suspect) -> list[Any]:
    return [6, message.name, message.incarnation, message.source]


def decode_suspect(row: list[Any]) -> Suspect:
    if len(row) != 4:
        explain(Suspect, row)
    _, name, incarnation, source = row
    if not (
        type(name) is str
        and len(name) <= 256
        and type(incarnation) is int
        and 0 <= incarnation <= 18446744073709551615
        and type(source) is str
        and len(source) <= 256
    ):
        explain(Suspect, row)
    message = new(Suspect)
    SET_SUSPECT_NAME(message, name)
    SET_SUSPECT_INCARNATION(message, incarnation)
    SET_SUSPECT_SOURCE(message, source)
    return message


def row_dead(message: Dead) -> list[Any]:
    return [7, message.name, message.incarnation, message.source]


def decode_dead(row: list[Any]) -> Dead:
    if len(row) != 4:
        explain(Dead, row)
    _, name, incarnation, source = row
    if not (
        type(name) is str
        and len(name) <= 256
        and type(incarnation) is int
        and 0 <= incarnation <= 18446744073709551615
        and type(source) is str
        and len(source) <= 256
    ):
        explain(Dead, row)
    message = new(Dead)
    SET_DEAD_NAME(message, name)
    SET_DEAD_INCARNATION(message, incarnation)
    SET_DEAD_SOURCE(message, source)
    return message


def row_left(message: Left) -> list[Any]:
    return [8, message.name, message.incarnation]


def decode_left(row: list[Any]) -> Left:
    if len(row) != 3:
        explain(Left, row)
    _, name, incarnation = row
    if not (
        type(name) is str
        and len(name) <= 256
        and type(incarnation) is int
        and 0 <= incarnation <= 18446744073709551615
    ):
        explain(Left, row)
    message = new(Left)
    SET_LEFT_NAME(message, name)
    SET_LEFT_INCARNATION(message, incarnation)
    return message


def row_user_message(message: UserMessage) -> list[Any]:
    return [9, message.source, message.id, message.payload]


def decode_user_message(row: list[Any]) -> UserMessage:
    if len(row) != 4:
        explain(UserMessage, row)
    _, source, id, payload = row
    if not (
        type(source) is str
        and len(source) <= 256
        and type(id) is int
        and 0 <= id <= 18446744073709551615
        and type(payload) is bytes
    ):
        explain(UserMessage, row)
    message = new(UserMessage)
    SET_USER_MESSAGE_SOURCE(message, source)
    SET_USER_MESSAGE_ID(message, id)
    SET_USER_MESSAGE_PAYLOAD(message, payload)
    return message


def row_push_pull(message: PushPull) -> list[Any]:
    return [
        10,
        message.source,
        message.join,
        list(map(MEMBER_FIELDS, message.members)),
        message.suspected_by,
    ]


def decode_push_pull(row: list[Any], known: Mapping[str, Member] = NOTHING) -> PushPull:
    if len(row) != 5:
        explain(PushPull, row)
    _, source, join, members, suspected_by = row
    if not (
        type(source) is str
        and len(source) <= 256
        and type(join) is bool
        and type(members) is list
        and type(suspected_by) is list
        and all(type(item) is str and len(item) <= 256 for item in suspected_by)
    ):
        explain(PushPull, row)
    members_built, members_pending = reuse_held(
        members, known, MEMBER_FIELDS, 6, MEMBER_TYPED, MEMBER_CELLS, MEMBER_ABSENT
    )
    for index in members_pending:
        item = members[index]
        if not (type(item) is list and len(item) == 6):
            explain(PushPull, row)
        (
            members_name,
            members_address,
            members_status,
            members_incarnation,
            members_meta,
            members_boot,
        ) = item
        if not (
            type(members_name) is str
            and len(members_name) <= 256
            and type(members_address) is str
            and len(members_address) <= 256
            and type(members_status) is int
            and 0 <= members_status <= 3
            and type(members_incarnation) is int
            and 0 <= members_incarnation <= 18446744073709551615
            and type(members_meta) is bytes
            and type(members_boot) is int
            and 0 <= members_boot <= 18446744073709551615
        ):
            explain(PushPull, row)
        value = new(Member)
        SET_MEMBER_NAME(value, members_name)
        SET_MEMBER_ADDRESS(value, members_address)
        SET_MEMBER_STATUS(value, STATUSES[members_status])
        SET_MEMBER_INCARNATION(value, members_incarnation)
        SET_MEMBER_META(value, members_meta)
        SET_MEMBER_BOOT(value, members_boot)
        members_built[index] = value
    message = new(PushPull)
    SET_PUSH_PULL_SOURCE(message, source)
    SET_PUSH_PULL_JOIN(message, join)
    SET_PUSH_PULL_MEMBERS(message, tuple(members_built))
    SET_PUSH_PULL_SUSPECTED_BY(message, tuple(suspected_by))
    return message


def row_direct_message(message: DirectMessage) -> list[Any]:
    return [11, message.source, message.target, message.id, message.payload]


def decode_direct_message(row: list[Any]) -> DirectMessage:
    if len(row) != 5:
        explain(DirectMessage, row)
    _, source, target, id, payload = row
    if not (
        type(source) is str
        and len(source) <= 256
        and type(target) is str
        and len(target) <= 256
        and type(id) is int
        and 0 <= id <= 18446744073709551615
        and type(payload) is bytes
    ):
        explain(DirectMessage, row)
    message = new(DirectMessage)
    SET_DIRECT_MESSAGE_SOURCE(message, source)
    SET_DIRECT_MESSAGE_TARGET(message, target)
    SET_DIRECT_MESSAGE_ID(message, id)
    SET_DIRECT_MESSAGE_PAYLOAD(message, payload)
    return message


def row_state_delta(message: StateDelta) -> list[Any]:
    return [12, message.owner, message.key, message.version, message.value, message.deleted]


def decode_state_delta(row: list[Any]) -> StateDelta:
    if len(row) != 6:
        explain(StateDelta, row)
    _, owner, key, version, value, deleted = row
    if not (
        type(owner) is str
        and len(owner) <= 256
        and type(key) is str
        and len(key) <= 256
        and type(version) is int
        and 0 <= version <= 18446744073709551615
        and type(value) is bytes
        and type(deleted) is bool
    ):
        explain(StateDelta, row)
    message = new(StateDelta)
    SET_STATE_DELTA_OWNER(message, owner)
    SET_STATE_DELTA_KEY(message, key)
    SET_STATE_DELTA_VERSION(message, version)
    SET_STATE_DELTA_VALUE(message, value)
    SET_STATE_DELTA_DELETED(message, deleted)
    return message


def row_state_sync(message: StateSync) -> list[Any]:
    return [
        13,
        message.source,
        message.push,
        message.owners,
        message.versions,
        [[item.owner, item.key, item.version, item.value, item.deleted] for item in message.deltas],
    ]


def decode_state_sync(row: list[Any]) -> StateSync:
    if len(row) != 6:
        explain(StateSync, row)
    _, source, push, owners, versions, deltas = row
    if not (
        type(source) is str
        and len(source) <= 256
        and type(push) is bool
        and type(owners) is list
        and all(type(item) is str and len(item) <= 256 for item in owners)
        and type(versions) is list
        and all(type(item) is int and 0 <= item <= 18446744073709551615 for item in versions)
        and type(deltas) is list
    ):
        explain(StateSync, row)
    deltas_built: list[StateDelta] = []
    for item in deltas:
        if not (type(item) is list and len(item) == 5):
            explain(StateSync, row)
        deltas_owner, deltas_key, deltas_version, deltas_value, deltas_deleted = item
        if not (
            type(deltas_owner) is str
            and len(deltas_owner) <= 256
            and type(deltas_key) is str
            and len(deltas_key) <= 256
            and type(deltas_version) is int
            and 0 <= deltas_version <= 18446744073709551615
            and type(deltas_value) is bytes
            and type(deltas_deleted) is bool
        ):
            explain(StateSync, row)
        value = new(StateDelta)
        SET_STATE_DELTA_OWNER(value, deltas_owner)
        SET_STATE_DELTA_KEY(value, deltas_key)
        SET_STATE_DELTA_VERSION(value, deltas_version)
        SET_STATE_DELTA_VALUE(value, deltas_value)
        SET_STATE_DELTA_DELETED(value, deltas_deleted)
        deltas_built.append(value)
    message = new(StateSync)
    SET_STATE_SYNC_SOURCE(message, source)
    SET_STATE_SYNC_PUSH(message, push)
    SET_STATE_SYNC_OWNERS(message, tuple(owners))
    SET_STATE_SYNC_VERSIONS(message, tuple(versions))
    SET_STATE_SYNC_DELTAS(message, tuple(deltas_built))
    return message


def row_member_sync(message: MemberSync) -> list[Any]:
    return [
        14,
        message.source,
        message.push,
        message.digest,
        list(map(MEMBER_FIELDS, message.members)),
        message.suspected_by,
    ]


def decode_member_sync(row: list[Any], known: Mapping[str, Member] = NOTHING) -> MemberSync:
    if len(row) != 6:
        explain(MemberSync, row)
    _, source, push, digest, members, suspected_by = row
    if not (
        type(source) is str
        and len(source) <= 256
        and type(push) is bool
        and type(digest) is bytes
        and type(members) is list
        and type(suspected_by) is list
        and all(type(item) is str and len(item) <= 256 for item in suspected_by)
    ):
        explain(MemberSync, row)
    members_built, members_pending = reuse_held(
        members, known, MEMBER_FIELDS, 6, MEMBER_TYPED, MEMBER_CELLS, MEMBER_ABSENT
    )
    for index in members_pending:
        item = members[index]
        if not (type(item) is list and len(item) == 6):
            explain(MemberSync, row)
        (
            members_name,
            members_address,
            members_status,
            members_incarnation,
            members_meta,
            members_boot,
        ) = item
        if not (
            type(members_name) is str
            and len(members_name) <= 256
            and type(members_address) is str
            and len(members_address) <= 256
            and type(members_status) is int
            and 0 <= members_status <= 3
            and type(members_incarnation) is int
            and 0 <= members_incarnation <= 18446744073709551615
            and type(members_meta) is bytes
            and type(members_boot) is int
            and 0 <= members_boot <= 18446744073709551615
        ):
            explain(MemberSync, row)
        value = new(Member)
        SET_MEMBER_NAME(value, members_name)
        SET_MEMBER_ADDRESS(value, members_address)
        SET_MEMBER_STATUS(value, STATUSES[members_status])
        SET_MEMBER_INCARNATION(value, members_incarnation)
        SET_MEMBER_META(value, members_meta)
        SET_MEMBER_BOOT(value, members_boot)
        members_built[index] = value
    message = new(MemberSync)
    SET_MEMBER_SYNC_SOURCE(message, source)
    SET_MEMBER_SYNC_PUSH(message, push)
    SET_MEMBER_SYNC_DIGEST(message, digest)
    SET_MEMBER_SYNC_MEMBERS(message, tuple(members_built))
    SET_MEMBER_SYNC_SUSPECTED_BY(message, tuple(suspected_by))
    return message


#: Per message class, the msgpack array of a message (what ``Packer.pack`` packs).
ROWS: dict[type[Any], Callable[[Any], list[Any]]] = {
    Ping: row_ping,
    Ack: row_ack,
    Nack: row_nack,
    PingReq: row_ping_req,
    Alive: row_alive,
    Suspect: row_suspect,
    Dead: row_dead,
    Left: row_left,
    UserMessage: row_user_message,
    PushPull: row_push_pull,
    DirectMessage: row_direct_message,
    StateDelta: row_state_delta,
    StateSync: row_state_sync,
    MemberSync: row_member_sync,
}
#: Per wire type id, the decoder of a message array (its type id already checked).
DECODERS: dict[int, Callable[[list[Any]], Message]] = {
    1: decode_ping,
    2: decode_ack,
    3: decode_nack,
    4: decode_ping_req,
    5: decode_alive,
    6: decode_suspect,
    7: decode_dead,
    8: decode_left,
    9: decode_user_message,
    10: decode_push_pull,
    11: decode_direct_message,
    12: decode_state_delta,
    13: decode_state_sync,
    14: decode_member_sync,
}
