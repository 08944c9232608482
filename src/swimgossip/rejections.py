"""Why a packet was refused, and the counters of refusals: the vocabulary of ``security``.

How this works. ``PacketSigner.unwrap`` refuses a packet by raising one
``AuthenticationError`` whose ``reason`` (a ``RejectReason``) says which check failed, and
counts it under ``SecurityStats.rejected_<reason>``. The runtime logs ``warning`` when set
(clock skew) and reports the reason when a join fails. docs/security.md tabulates what each
reason means for an operator.
"""

from __future__ import annotations

import enum

import attrs

from swimgossip.core.errors import LocalError, RemoteError

__all__ = ["AuthenticationError", "PayloadError", "RejectReason", "SecurityStats"]


class PayloadError(LocalError, ValueError):
    """A payload cannot be sent as asked (a plain payload that looks like an envelope)."""


class RejectReason(enum.StrEnum):
    """Why ``unwrap`` refused a packet; the value is what logs and metrics show."""

    #: Empty, or too short for its envelope.
    TRUNCATED = "truncated"
    #: Another cluster's label, a label where none is expected, or none where one is.
    LABEL = "label"
    #: An envelope format this version does not speak (e.g. the retired 0xA1).
    UNSUPPORTED = "unsupported"
    #: A plain packet where the mode requires signed or sealed ones.
    UNSIGNED = "unsigned"
    #: A signed packet where the mode requires sealed ones.
    UNSEALED = "unsealed"
    #: Made with a key that is not installed here (or no keyring at all).
    UNKNOWN_KEY = "unknown key"
    #: Claims an installed key but its tag does not verify: forged or corrupted.
    FORGED = "forged"
    #: Authentic, but stamped more than the replay window before our clock.
    STALE = "stale"
    #: Authentic, but stamped more than the replay window after our clock.
    FUTURE = "future"
    #: Authentic, but already accepted once (or too old for a full replay cache to tell).
    REPLAY = "replay"


class AuthenticationError(RemoteError):
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


@attrs.frozen(kw_only=True)
class SecurityStats:
    """A snapshot of a ``PacketSigner``'s counters of received packets."""

    accepted_unsigned: int = 0
    accepted_signed: int = 0
    accepted_sealed: int = 0
    rejected_truncated: int = 0
    rejected_label: int = 0
    rejected_unsupported: int = 0
    rejected_unsigned: int = 0
    rejected_unsealed: int = 0
    rejected_unknown_key: int = 0
    rejected_forged: int = 0
    rejected_stale: int = 0
    rejected_future: int = 0
    rejected_replay: int = 0
    #: Clock-skew WARNING lines handed to the runtime (``AuthenticationError.warning``).
    clock_skew_warnings: int = 0
    #: Nonces held by the replay cache now.
    replay_cache_entries: int = 0
    #: Nonces evicted from a full replay cache while still inside the window.
    replay_cache_evictions: int = 0

    @property
    def rejected(self) -> int:
        """Every refused packet, whatever the reason."""
        return sum(getattr(self, f"rejected_{reason.name.lower()}") for reason in RejectReason)

    @property
    def accepted(self) -> int:
        """Every accepted packet, whatever its form."""
        return self.accepted_unsigned + self.accepted_signed + self.accepted_sealed
