"""The node layer's errors: joining a cluster.

``JoinError`` is a ``LocalError`` (what the caller asked, joining through these seeds,
could not be done); the node's other refusals are the core's (``NotRunning``,
``MetadataTooLarge``, ``MessageTooLarge``, ``ConfigError``)::

    SwimError
    `-- LocalError
        |-- JoinError    no seed could be joined; ``reasons`` says why, per seed
        `-- SendFailed   a reliable direct send was not confirmed; ``reason`` says why
"""

from __future__ import annotations

from ..core.errors import LocalError
from ..core.member import Member

__all__ = ["JoinError", "SendFailed"]


class JoinError(LocalError):
    """No seed could be joined. ``reasons`` maps each seed to why it failed.
    ``conflict`` is the live member a seed holds under our name at another address, when
    that is why (a name conflict: the join is refused at once, not retried)."""

    def __init__(self, reasons: dict[str, str], conflict: Member | None = None) -> None:
        detail = "; ".join(f"{seed}: {why}" for seed, why in reasons.items()) or "no seeds"
        super().__init__(f"could not join any seed ({detail})")
        self.reasons = reasons
        self.conflict = conflict


class SendFailed(LocalError):
    """A reliable ``Node.send`` was not confirmed by the member (unreachable, timed out,
    refused, or the address now belongs to another member). It may or may not have been
    delivered. ``member`` is the target's name, ``reason`` why in words."""

    def __init__(self, member: str, reason: str) -> None:
        super().__init__(f"send to {member!r} failed: {reason}")
        self.member = member
        self.reason = reason
