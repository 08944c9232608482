"""The node layer's errors: joining a cluster.

``JoinError`` is a ``LocalError`` (what the caller asked, joining through these seeds,
could not be done); the node's other refusals are the core's (``NotRunning``,
``MetadataTooLarge``, ``MessageTooLarge``, ``ConfigError``)::

    SwimError
    `-- LocalError
        `-- JoinError    no seed could be joined; ``reasons`` says why, per seed
"""

from __future__ import annotations

from ..core.errors import LocalError
from ..core.member import Member

__all__ = ["JoinError"]


class JoinError(LocalError):
    """No seed could be joined. ``reasons`` maps each seed to why it failed.
    ``conflict`` is the live member a seed holds under our name at another address, when
    that is why (a name conflict: the join is refused at once, not retried)."""

    def __init__(self, reasons: dict[str, str], conflict: Member | None = None) -> None:
        detail = "; ".join(f"{seed}: {why}" for seed, why in reasons.items()) or "no seeds"
        super().__init__(f"could not join any seed ({detail})")
        self.reasons = reasons
        self.conflict = conflict
