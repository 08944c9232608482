"""The security layer's errors: one branch of the tree rooted at ``SwimError``.

How this works. ``SecurityError`` is the branch; each error also keeps the core kind it
always had, so ``except LocalError`` / ``except RemoteError`` / ``except ValueError``
catch what they caught before::

    SwimError
    `-- SecurityError
        |-- KeyringError          (also LocalError, ValueError) a bad key, key file or change
        |-- PayloadError          (also LocalError, ValueError) a payload that cannot be sent
        `-- AuthenticationError   (also RemoteError) a received packet was refused
            `-- PeerRefused       a peer refused our stream request (its error frame)
"""

from __future__ import annotations

from ..core.errors import LocalError, RemoteError, SwimError
from ._reasons import RejectReason

__all__ = [
    "AuthenticationError",
    "KeyringError",
    "PayloadError",
    "PeerRefused",
    "SecurityError",
]


class SecurityError(SwimError):
    """Base class of the errors of the security layer (keys, signing, refusals)."""


class KeyringError(SecurityError, LocalError, ValueError):
    """A key or key file is invalid, or a keyring change is not allowed.

    ``line`` is the 1-based line number in the key file, when the error comes from one.
    """

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


class PayloadError(SecurityError, LocalError, ValueError):
    """A payload cannot be sent as asked (a plain payload that looks like an envelope)."""


class AuthenticationError(SecurityError, RemoteError):
    """A received packet was refused; it must be dropped.

    Attributes:
        reason: why (``RejectReason``, a ``str``); ``None`` only when raised outside
            ``PacketSigner.unwrap``.
        warning: for STALE / FUTURE, one line to log at WARNING level when a clock-skew
            warning is due (the first such packet, then every ``skew_warning_every``-th);
            ``None`` otherwise. Everything else is worth a DEBUG line at most.
        skew: for STALE / FUTURE, the packet's timestamp minus our clock, in seconds.
    """

    def __init__(
        self,
        message: str,
        reason: RejectReason | None = None,
        *,
        warning: str | None = None,
        skew: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.warning = warning
        self.skew = skew


class PeerRefused(AuthenticationError):
    """The peer of a stream refused our request (its error frame); ``reason`` is the peer's
    ``RejectReason`` when it sent a known one."""
