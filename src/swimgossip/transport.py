"""What the runtime needs from a network, and the address and frame formats it uses.

The core treats addresses as opaque strings. The runtime spells them ``"host:port"`` for
IPv4 and names, and ``"[v6]:port"`` for IPv6 (``parse_address`` / ``format_address``), so an
address the engine learns from a UDP source can be handed back to the socket unchanged.

A ``Transport`` moves two kinds of bytes:

* datagrams (``send_datagram`` / ``receive_datagram``): the protocol's probes and gossip;
* stream exchanges (``exchange`` on the client side, a handler on the server side): one
  request frame, one reply frame; used for push-pull state sync, joins and stream pings.

Stream frames are a 4-byte big-endian length followed by the bytes (``write_frame`` /
``read_frame``), bounded by ``max_frame`` so a peer cannot make us allocate without limit.
Timeouts are the caller's cancel scopes, as everywhere in Trio.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from .core.errors import RemoteError

__all__ = [
    "DEFAULT_MAX_FRAME",
    "FrameError",
    "StreamHandler",
    "Transport",
    "format_address",
    "parse_address",
    "read_frame",
    "write_frame",
]

#: Largest stream frame accepted by default: room for a full table of large members.
DEFAULT_MAX_FRAME = 32 * 1024 * 1024

_LENGTH = struct.Struct(">I")

#: Serves one incoming request frame: returns the reply frame, or None to close the stream.
StreamHandler = Callable[[bytes, str], Awaitable[bytes | None]]


class FrameError(RemoteError):
    """A stream frame was truncated, oversized or the stream closed early."""


def parse_address(address: str) -> tuple[str, int]:
    """Split ``"host:port"`` or ``"[v6]:port"`` into ``(host, port)``.

    Raises:
        ValueError: if the text is not an address with a port in 0..65535.
    """
    text = address.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"bad IPv6 address {address!r}: use '[host]:port'")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"bad address {address!r}: use 'host:port' or '[v6]:port'")
    if not host:
        raise ValueError(f"address {address!r} has no host")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"address {address!r} has no valid port") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"address {address!r}: port out of range")
    return host, port


def format_address(host: str, port: int) -> str:
    """Join ``host`` and ``port``; IPv6 literals are bracketed (zone ids kept)."""
    bare = host.split("%", 1)[0]
    try:
        is_v6 = ipaddress.ip_address(bare).version == 6
    except ValueError:
        is_v6 = False
    return f"[{host}]:{port}" if is_v6 else f"{host}:{port}"


async def write_frame(stream: trio.abc.SendStream, payload: bytes) -> None:
    """Send one length-prefixed frame."""
    await stream.send_all(_LENGTH.pack(len(payload)) + payload)


async def _read_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    buffer = bytearray()
    while len(buffer) < size:
        chunk = await stream.receive_some(min(size - len(buffer), 65536))
        if not chunk:
            raise FrameError(f"stream closed after {len(buffer)} of {size} bytes")
        buffer += chunk
    return bytes(buffer)


async def read_frame(stream: trio.abc.ReceiveStream, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Receive one length-prefixed frame.

    Raises:
        FrameError: the stream closed early or announced more than ``max_frame`` bytes.
    """
    (size,) = _LENGTH.unpack(await _read_exactly(stream, _LENGTH.size))
    if size > max_frame:
        raise FrameError(f"frame of {size} bytes is over the {max_frame}-byte limit")
    return await _read_exactly(stream, size)


class Transport(Protocol):
    """A datagram socket and a stream listener bound to one address.

    ``address`` is the bound ``"host:port"`` (the real port when 0 was asked for).
    """

    @property
    def address(self) -> str: ...

    async def resolve(self, address: str) -> str:
        """Turn a seed address (which may hold a host name) into the address form this
        transport uses and the engine sees as datagram sources.

        Raises:
            ValueError, OSError: the address is malformed or cannot be resolved.
        """
        ...

    async def send_datagram(self, address: str, payload: bytes) -> None:
        """Send one datagram. Raises ``OSError`` if the network refuses it."""
        ...

    async def receive_datagram(self) -> tuple[bytes, str]:
        """Wait for the next datagram: ``(payload, source address)``."""
        ...

    async def exchange(self, address: str, request: bytes) -> bytes:
        """Open a stream to ``address``, send ``request``, return the reply frame.

        Raises:
            OSError: connection refused or reset.
            FrameError: the reply was truncated or too large.
        """
        ...

    async def serve_streams(
        self,
        handler: StreamHandler,
        *,
        timeout: float,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept streams forever; each gets ``timeout`` seconds for its one exchange."""
        ...
