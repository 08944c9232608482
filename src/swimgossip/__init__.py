"""swimgossip: embeddable SWIM + Lifeguard cluster membership for Trio.

This module only re-exports the public API; see the submodules for how each part works:
``swimgossip.core`` (the sans-IO protocol), ``swimgossip.security`` (packet signing) and
``swimgossip.testing`` (the deterministic simulator and fault-injection helpers).
"""

from .core import (
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
from .security import AuthenticationError, Keyring, KeyringError, SecurityMode

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "Config",
    "ConfigError",
    "DecodeError",
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
    "MessageTooLarge",
    "MetadataTooLarge",
    "NotRunning",
    "RemoteError",
    "SecurityMode",
    "Status",
    "SwimError",
    "__version__",
]
