"""swimgossip: embeddable SWIM + Lifeguard cluster membership for Trio.

This module only re-exports the public API. The protocol names come from the sans-IO core
at once; the names of the layers above it load on first use, so that
``import swimgossip.core`` stays free of trio, sockets and cryptography. The layers, each
importing only the ones before it: ``core`` (sans-IO protocol), ``security`` (keys,
signing), ``net`` (transports), ``node`` (the Trio runtime, ``open_node``), ``cli``; and
``testing``, the fault-injection toolkit, which may use them all. Code that is not Trio
gets the same node through ``swimgossip.aio`` (asyncio) and ``swimgossip.blocking``
(threads), two doors onto the node layer (import them by name).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._moved import install as _install_moved_modules
from .core import (
    PRESETS,
    Config,
    ConfigError,
    DecodeError,
    LocalError,
    Member,
    MemberConflict,
    MemberEvent,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberRecovered,
    MemberSuspected,
    MemberUpdated,
    MessageTooLarge,
    MetadataTooLarge,
    NotRunning,
    RemoteError,
    StateChanged,
    StateLimitExceeded,
    Status,
    SwimError,
    UnknownMember,
    WireUnsupported,
    decode_tags,
    encode_tags,
)

if TYPE_CHECKING:
    from .core.outputs import DirectDelivery, UserDelivery
    from .net import Transport, format_address, parse_address
    from .net.serf import QueryReceived, UserEventReceived
    from .node import (
        DirectMessageStream,
        EventsLost,
        FullEvent,
        FullSubscription,
        JoinError,
        ListenCallbacks,
        MessageStream,
        Node,
        NodeEvent,
        SendFailed,
        SerfEventStream,
        SerfHandle,
        Subscription,
        open_node,
        serve_node,
    )
    from .security import AuthenticationError, Keyring, KeyringError, SecurityError, SecurityMode

__version__ = "0.1.0"

#: Public names defined above the core, and the module each lives in.
_LAZY = {
    "AuthenticationError": "swimgossip.security",
    "Keyring": "swimgossip.security",
    "KeyringError": "swimgossip.security",
    "SecurityError": "swimgossip.security",
    "SecurityMode": "swimgossip.security",
    "UserDelivery": "swimgossip.core.outputs",
    "DirectDelivery": "swimgossip.core.outputs",
    "DirectMessageStream": "swimgossip.node",
    "SendFailed": "swimgossip.node",
    "EventsLost": "swimgossip.node",
    "MessageStream": "swimgossip.node",
    "FullEvent": "swimgossip.node",
    "FullSubscription": "swimgossip.node",
    "NodeEvent": "swimgossip.node",
    "Subscription": "swimgossip.node",
    "JoinError": "swimgossip.node",
    "ListenCallbacks": "swimgossip.node",
    "Node": "swimgossip.node",
    "open_node": "swimgossip.node",
    "serve_node": "swimgossip.node",
    "SerfEventStream": "swimgossip.node",
    "SerfHandle": "swimgossip.node",
    "UserEventReceived": "swimgossip.net.serf",
    "QueryReceived": "swimgossip.net.serf",
    "Transport": "swimgossip.net",
    "format_address": "swimgossip.net",
    "parse_address": "swimgossip.net",
}

# The flat module paths of earlier versions (swimgossip.transport, ...) still import, with
# a DeprecationWarning: see _moved.py.
_install_moved_modules()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'swimgossip' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AuthenticationError",
    "Config",
    "ConfigError",
    "DecodeError",
    "DirectDelivery",
    "DirectMessageStream",
    "EventsLost",
    "FullEvent",
    "FullSubscription",
    "JoinError",
    "Keyring",
    "KeyringError",
    "ListenCallbacks",
    "LocalError",
    "Member",
    "MemberConflict",
    "MemberEvent",
    "MemberFailed",
    "MemberJoined",
    "MemberLeft",
    "MemberRecovered",
    "MemberSuspected",
    "MemberUpdated",
    "MessageStream",
    "MessageTooLarge",
    "MetadataTooLarge",
    "Node",
    "NodeEvent",
    "NotRunning",
    "PRESETS",
    "QueryReceived",
    "RemoteError",
    "SecurityError",
    "SecurityMode",
    "SendFailed",
    "SerfEventStream",
    "SerfHandle",
    "StateChanged",
    "StateLimitExceeded",
    "Status",
    "Subscription",
    "SwimError",
    "Transport",
    "UnknownMember",
    "UserDelivery",
    "UserEventReceived",
    "WireUnsupported",
    "__version__",
    "decode_tags",
    "encode_tags",
    "format_address",
    "open_node",
    "parse_address",
    "serve_node",
]
