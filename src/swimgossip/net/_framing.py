"""Stream frame length prefixes, checked before anything is allocated. Pure.

How this works. A push-pull stream carries frames of a 4-byte big-endian length followed by
that many bytes (docs/protocol.md, "Stream frames"). A reader must not trust the length: it
reads the 4 bytes, calls ``frame_length`` to check them against its limit, and only then
reads (and allocates) the body. ``frame_prefix`` is the writer's side of the same rule.

The limit a reader passes is the largest codec stream packet it accepts plus the envelope
around it; ``MAX_FRAME_SIZE`` is the most this library ever sends.
"""

from __future__ import annotations

import struct

from ..core.codec import MAX_STREAM_SIZE
from ..core.errors import MessageTooLarge
from ..security import MAX_ENVELOPE_OVERHEAD
from .errors import FrameTooLarge, MalformedFramePrefix

__all__ = [
    "FRAME_PREFIX_SIZE",
    "MAX_FRAME_SIZE",
    "frame_length",
    "frame_prefix",
]

#: Bytes of the length prefix.
FRAME_PREFIX_SIZE = 4
#: The largest frame body this library sends: a maximal stream packet in the largest envelope.
MAX_FRAME_SIZE = MAX_STREAM_SIZE + MAX_ENVELOPE_OVERHEAD

_PREFIX = struct.Struct(">I")


def frame_length(prefix: bytes, max_size: int = MAX_FRAME_SIZE) -> int:
    """Return the body length announced by a 4-byte big-endian ``prefix``.

    Args:
        prefix: exactly the 4 bytes read from the stream.
        max_size: the largest body the reader accepts.

    Raises:
        MalformedFramePrefix: if ``prefix`` is not 4 bytes long.
        FrameTooLarge: if the announced length exceeds ``max_size``.
    """
    if len(prefix) != FRAME_PREFIX_SIZE:
        raise MalformedFramePrefix(f"a frame prefix is 4 bytes, got {len(prefix)}")
    (size,) = _PREFIX.unpack(prefix)
    if size > max_size:
        raise FrameTooLarge(size, max_size)
    return int(size)


def frame_prefix(length: int, max_size: int = MAX_FRAME_SIZE) -> bytes:
    """Return the 4-byte prefix for a body of ``length`` bytes.

    Raises:
        MessageTooLarge: if ``length`` exceeds ``max_size`` (a peer would refuse it).
        ValueError: if ``length`` is negative.
    """
    if length < 0:
        raise ValueError(f"a frame length cannot be negative: {length}")
    limit = min(max_size, 0xFFFFFFFF)
    if length > limit:
        raise MessageTooLarge(length, limit)
    return _PREFIX.pack(length)
