"""The transport layer: how packets and stream frames reach other nodes.

Above security (a frame's size bound includes the largest envelope), below the node. The
``Transport`` protocol and address helpers are in ``_transport``, the stream frame length
prefix in ``_framing``, the real transport (UDP datagrams, TCP streams on the same port)
in ``_udp``; the errors in ``errors``. ``swimgossip.testing`` has an in-memory one.
"""

from ._framing import FRAME_PREFIX_SIZE, MAX_FRAME_SIZE, frame_length, frame_prefix
from ._transport import (
    DEFAULT_MAX_FRAME,
    DEFAULT_MAX_INCOMING_STREAMS,
    DEFAULT_PORT,
    HostResolver,
    StreamHandler,
    Transport,
    format_address,
    parse_address,
    read_frame,
    split_seed,
    write_frame,
)
from ._udp import UdpTransport, advertised_address, open_udp_transport
from .errors import FrameError, FrameTooLarge, MalformedFramePrefix

__all__ = [
    "DEFAULT_MAX_FRAME",
    "DEFAULT_MAX_INCOMING_STREAMS",
    "DEFAULT_PORT",
    "FRAME_PREFIX_SIZE",
    "MAX_FRAME_SIZE",
    "FrameError",
    "FrameTooLarge",
    "HostResolver",
    "MalformedFramePrefix",
    "StreamHandler",
    "Transport",
    "UdpTransport",
    "advertised_address",
    "format_address",
    "frame_length",
    "frame_prefix",
    "open_udp_transport",
    "parse_address",
    "read_frame",
    "split_seed",
    "write_frame",
]
