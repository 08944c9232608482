"""Why a packet or stream was refused: the vocabulary shared by the errors and the counters.

``AuthenticationError.reason`` carries one of these; ``SecurityStats`` counts each under
``rejected_<reason>``; the refusal frame (``_refusals.py``) sends its value to the peer.
"""

from __future__ import annotations

import enum

__all__ = ["RejectReason"]


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
