"""Serf's layer on memberlist's wire (hashicorp/serf), sans I/O.

``messages`` is Serf's wire: its message types, push-pull state and tags in meta, bytes
<-> typed values; ``layer`` is ``SerfLayer``, Serf's state (Lamport clocks, join and leave
intents, user events, queries) behind memberlist's delegate hooks. docs/interop.md says
what maps to what and what is not supported.
"""

from .layer import (
    INTERNAL_QUERY_PREFIX,
    LamportClock,
    QueryReceived,
    SendTo,
    SerfLayer,
    SerfMemberStatus,
    SerfOutput,
    UserEventReceived,
)
from .messages import (
    MAX_TAGS_BYTES,
    TAG_MAGIC_BYTE,
    EventsAt,
    JoinIntent,
    LeaveIntent,
    Query,
    QueryFilter,
    QueryResponse,
    Relay,
    SerfError,
    SerfMessage,
    SerfMessageType,
    SerfPushPull,
    UnknownSerfMessage,
    UserEvent,
    decode_filter,
    decode_serf_message,
    decode_serf_push_pull,
    decode_serf_tags,
    encode_filter,
    encode_serf_message,
    encode_serf_push_pull,
    encode_serf_tags,
)

__all__ = [
    "INTERNAL_QUERY_PREFIX",
    "MAX_TAGS_BYTES",
    "TAG_MAGIC_BYTE",
    "EventsAt",
    "JoinIntent",
    "LamportClock",
    "LeaveIntent",
    "Query",
    "QueryFilter",
    "QueryReceived",
    "QueryResponse",
    "Relay",
    "SendTo",
    "SerfError",
    "SerfLayer",
    "SerfMemberStatus",
    "SerfMessage",
    "SerfMessageType",
    "SerfOutput",
    "SerfPushPull",
    "UnknownSerfMessage",
    "UserEvent",
    "UserEventReceived",
    "decode_filter",
    "decode_serf_message",
    "decode_serf_push_pull",
    "decode_serf_tags",
    "encode_filter",
    "encode_serf_message",
    "encode_serf_push_pull",
    "encode_serf_tags",
]
