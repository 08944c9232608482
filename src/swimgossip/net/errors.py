"""The transport layer's errors: stream frames that are cut short or too large.

All three are ``RemoteError`` (bytes from the network were not acceptable), in the protocol
branch of the tree rooted at ``SwimError``::

    SwimError
    `-- RemoteError
        |-- FrameError              a stream frame truncated, oversized, or the stream closed
        |-- MalformedFramePrefix    (also ValueError) a length prefix not exactly 4 bytes
        `-- FrameTooLarge           (also ValueError) a frame announces too many bytes
"""

from __future__ import annotations

from ..core.errors import RemoteError

__all__ = ["FrameError", "FrameTooLarge", "MalformedFramePrefix"]


class FrameError(RemoteError):
    """A stream frame was truncated, oversized or the stream closed early.

    ``oversized`` is True when the frame announced more than the reader accepts.
    """

    def __init__(self, message: str, *, oversized: bool = False) -> None:
        super().__init__(message)
        self.oversized = oversized


class MalformedFramePrefix(RemoteError, ValueError):
    """The bytes given as a length prefix are not exactly 4 bytes (a stream cut short)."""


class FrameTooLarge(RemoteError, ValueError):
    """A frame announces more bytes than the reader accepts. ``size`` and ``limit`` say by
    how much; the stream must be closed without reading the body."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes is over the {limit}-byte limit")
        self.size = size
        self.limit = limit
