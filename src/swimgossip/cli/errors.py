"""The command line's errors: the CLI branch of the tree rooted at ``SwimError``.

These used to derive from ``Exception`` only; ``SwimError`` is an ``Exception``, so every
``except`` that caught them still does::

    SwimError
    `-- CliError
        |-- AgentError     the agent cannot run; ``status`` is the exit status
        `-- StatusError    the status endpoint could not be reached or gave a bad answer
"""

from __future__ import annotations

from ..core.errors import SwimError

__all__ = ["AgentError", "CliError", "StatusError"]


class CliError(SwimError):
    """Base class of the errors of the ``swimgossip`` command line."""


class AgentError(CliError):
    """The agent cannot run; ``status`` is the exit status (2: bad input, 1: runtime)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class StatusError(CliError):
    """The status endpoint could not be reached or gave an unusable answer."""
