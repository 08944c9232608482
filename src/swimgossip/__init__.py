"""swimgossip: embeddable SWIM + Lifeguard cluster membership for Trio.

This module only re-exports the public API. The protocol names come from the sans-IO core
at once; the names of the layers above it (signing, the Trio runtime) load on first use,
so that ``import swimgossip.core`` stays free of trio, sockets and cryptography.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core import (
    PRESETS,
    Config,
    ConfigError,
    DecodeError,
    LocalError,
    Member,
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
    Status,
    SwimError,
)

if TYPE_CHECKING:
    from .core.outputs import UserDelivery
    from .events import EventsLost, MessageStream, NodeEvent, Subscription
    from .node import JoinError, Node, open_node, serve_node
    from .security import AuthenticationError, Keyring, KeyringError, SecurityMode
    from .transport import Transport, format_address, parse_address

__version__ = "0.1.0"

#: Public names defined above the core, and the module each lives in.
_LAZY = {
    "AuthenticationError": "swimgossip.security",
    "Keyring": "swimgossip.security",
    "KeyringError": "swimgossip.security",
    "SecurityMode": "swimgossip.security",
    "UserDelivery": "swimgossip.core.outputs",
    "EventsLost": "swimgossip.events",
    "MessageStream": "swimgossip.events",
    "NodeEvent": "swimgossip.events",
    "Subscription": "swimgossip.events",
    "JoinError": "swimgossip.node",
    "Node": "swimgossip.node",
    "open_node": "swimgossip.node",
    "serve_node": "swimgossip.node",
    "Transport": "swimgossip.transport",
    "format_address": "swimgossip.transport",
    "parse_address": "swimgossip.transport",
}


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
    "EventsLost",
    "JoinError",
    "Keyring",
    "KeyringError",
    "LocalError",
    "Member",
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
    "RemoteError",
    "SecurityMode",
    "Status",
    "Subscription",
    "SwimError",
    "Transport",
    "UserDelivery",
    "__version__",
    "format_address",
    "open_node",
    "parse_address",
    "serve_node",
]
