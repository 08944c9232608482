"""Why a packet was refused, the counters of refusals, and the frame that tells a peer.

How this works. ``PacketSigner.unwrap`` refuses a packet by raising one
``AuthenticationError`` whose ``reason`` (a ``RejectReason``) says which check failed, and
counts it under ``SecurityStats.rejected_<reason>``. The runtime logs ``warning`` when set
(clock skew) and reports the reason when a join fails. docs/security.md tabulates what each
reason means for an operator.

A stream request the server refused gets a plain error frame instead of a reply:
``ERROR_MARKER`` (``0xEE``), the ``RejectReason`` value, a newline, and why in words with a
hint for the operator (``refusal_frame``). The client turns it back into a ``PeerRefused``
(``read_refusal``). It is unauthenticated and only ever used as a failure reason.
"""

from __future__ import annotations

import contextlib

import attrs

from ._reasons import RejectReason
from .errors import AuthenticationError, PeerRefused

__all__ = [
    "ERROR_MARKER",
    "RejectReason",
    "SecurityStats",
    "read_refusal",
    "refusal_frame",
]


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


#: First byte of an unsigned "refused" stream reply (never a codec or signed marker).
ERROR_MARKER = 0xEE
#: Most bytes of an error frame a client reads.
_REFUSAL_MAX = 600
#: What an operator should check, per reason, appended to the refusal's own message.
_REFUSAL_HINTS = {
    RejectReason.LABEL: "the cluster labels differ: check the label on both nodes",
    RejectReason.UNKNOWN_KEY: "the sender's primary key is not installed on the refusing "
    "node: install the cluster's current key file on the sender",
    RejectReason.UNSIGNED: "the sender sends unsigned packets: give it the keyring and a "
    "signing security mode",
    RejectReason.UNSEALED: "the sender signs but does not seal: move it to "
    "seal-accept-signed or sealed first",
    RejectReason.STALE: "the two clocks differ by more than the replay window: check NTP "
    "on both nodes",
    RejectReason.FUTURE: "the two clocks differ by more than the replay window: check NTP "
    "on both nodes",
}


def refusal_frame(exc: AuthenticationError) -> bytes:
    """The plain error frame that tells a stream's client why its request was refused."""
    reason = exc.reason.value if exc.reason is not None else ""
    hint = None if exc.reason is None else _REFUSAL_HINTS.get(exc.reason)
    text = f"{exc} ({hint})" if hint else str(exc)
    return bytes([ERROR_MARKER]) + f"{reason}\n{text}".encode()[: _REFUSAL_MAX - 1]


def read_refusal(frame: bytes, address: str) -> PeerRefused | None:
    """The ``PeerRefused`` an error frame from ``address`` stands for, or None if ``frame``
    is not an error frame. Older versions send the text without a reason line."""
    if frame[:1] != bytes([ERROR_MARKER]):
        return None
    text = frame[1:_REFUSAL_MAX].decode("utf-8", "replace")
    first, newline, rest = text.partition("\n")
    reason = None
    if newline:
        with contextlib.suppress(ValueError):
            reason, text = RejectReason(first), rest
    label = f"{reason.value}, " if reason is not None else ""
    return PeerRefused(f"refused by {address} ({label}authentication failed there): {text}", reason)
