"""What the runtime needs from a network, and the address and frame formats it uses.

The core treats addresses as opaque strings. The runtime spells them ``"host:port"`` for
IPv4 and names, and ``"[v6]:port"`` for IPv6 (``parse_address`` / ``format_address``), so an
address the engine learns from a UDP source can be handed back to the socket unchanged. A
seed may leave the port out (``"host"``, ``"[v6]"``, a bare IPv6 literal): ``split_seed``
gives it ``DEFAULT_PORT``; a ``HostResolver`` turns a host name into its IP addresses.

A ``Transport`` moves two kinds of bytes:

* datagrams (``send_datagram`` / ``receive_datagram``): the protocol's probes and gossip;
* stream exchanges (``exchange`` on the client side, a handler on the server side): one
  request frame, one reply frame; used for push-pull state sync, joins and stream pings.

Stream frames are a 4-byte big-endian length followed by the bytes (``write_frame`` /
``read_frame``). The reader checks the length with ``framing.frame_length`` against
``max_frame`` before reading (or allocating) the body, so a peer cannot make us allocate
without limit. Timeouts are the caller's cancel scopes, as everywhere in Trio; a server
gives each incoming stream one deadline for the whole exchange (a peer trickling bytes is
cut off at it) and serves at most ``DEFAULT_MAX_INCOMING_STREAMS`` at once.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import trio

from ._framing import FRAME_PREFIX_SIZE, MAX_FRAME_SIZE, frame_length, frame_prefix
from .errors import FrameError, FrameTooLarge, MalformedFramePrefix

__all__ = [
    "DEFAULT_MAX_FRAME",
    "DEFAULT_MAX_INCOMING_STREAMS",
    "DEFAULT_PORT",
    "HostResolver",
    "StreamHandler",
    "Transport",
    "format_address",
    "parse_address",
    "read_frame",
    "split_seed",
    "write_frame",
]

#: Largest stream frame accepted by default: the largest stream packet the codec accepts
#: in the largest envelope (``framing.MAX_FRAME_SIZE``).
DEFAULT_MAX_FRAME = MAX_FRAME_SIZE
#: Incoming streams served at once; a connection beyond it is closed at once and counted.
DEFAULT_MAX_INCOMING_STREAMS = 64

#: The port of a seed given without one (``"host"``), and of ``open_node``'s default bind.
DEFAULT_PORT = 7946

#: Resolves a host name to its IP addresses (``"10.0.0.7"``, ``"fd00::7"``), in order; one
#: name may stand for several members (a Kubernetes headless service, a DNS round robin).
#: Raises ``OSError`` when the name does not resolve.
HostResolver = Callable[[str], Awaitable[Sequence[str]]]

#: Serves one incoming request frame: returns the reply frame, or None to close the stream.
StreamHandler = Callable[[bytes, str], Awaitable[bytes | None]]


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


def split_seed(seed: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """Split a seed into ``(host, port)``: ``"host:port"``, ``"[v6]:port"``, or without a
    port (``"host"``, ``"[v6]"``, ``"fd00::1"``), which gets ``default_port``.

    Raises:
        ValueError: not a host, or a port that is not 0..65535.
    """
    text = seed.strip()
    if text.startswith("[") and text.endswith("]"):
        text = f"{text}:{default_port}"
    elif not text.startswith("[") and text.count(":") != 1:
        text = f"[{text}]:{default_port}" if ":" in text else f"{text}:{default_port}"
    return parse_address(text)


def format_address(host: str, port: int) -> str:
    """Join ``host`` and ``port``; IPv6 literals are bracketed (zone ids kept)."""
    bare = host.split("%", 1)[0]
    try:
        is_v6 = ipaddress.ip_address(bare).version == 6
    except ValueError:
        is_v6 = False
    return f"[{host}]:{port}" if is_v6 else f"{host}:{port}"


async def write_frame(stream: trio.abc.SendStream, payload: bytes) -> None:
    """Send one length-prefixed frame.

    Raises:
        MessageTooLarge: ``payload`` is longer than any reader accepts.
    """
    await stream.send_all(frame_prefix(len(payload), 0xFFFFFFFF) + payload)


async def _read_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    buffer = bytearray()
    while len(buffer) < size:
        chunk = await stream.receive_some(min(size - len(buffer), 65536))
        if not chunk:
            raise FrameError(f"stream closed after {len(buffer)} of {size} bytes")
        buffer += chunk
    return bytes(buffer)


async def read_frame(stream: trio.abc.ReceiveStream, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Receive one length-prefixed frame; the length is checked before the body is read.

    Raises:
        FrameError: the stream closed early, or (``oversized``) announced more than
            ``max_frame`` bytes, in which case nothing of the body was read.
    """
    try:
        size = frame_length(await _read_exactly(stream, FRAME_PREFIX_SIZE), max_frame)
    except FrameTooLarge as exc:
        raise FrameError(str(exc), oversized=True) from None
    except MalformedFramePrefix as exc:  # cannot happen after _read_exactly; kept typed
        raise FrameError(str(exc)) from None
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
        counters: Counter[str] | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept streams forever; each gets ``timeout`` seconds in total for its one
        exchange. Streams cut off or refused are counted in ``counters`` if given:
        ``streams_timed_out``, ``streams_oversized``, ``streams_refused_busy``,
        ``streams_dropped``."""
        ...
