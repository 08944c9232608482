"""The real transport: one UDP socket and a TCP listener on the same port.

``open_udp_transport("127.0.0.1:0")`` binds the UDP socket first (port 0 picks a free
port), then a TCP listening socket on that same port; if the TCP port is taken it tries a
new pair, a few times. IPv6 is used when the bind host is an IPv6 literal (``"[::1]:0"``).

Seeds resolve with ``resolve_all``: a numeric address as it is, a host name to every
address of this socket's family that the resolver gives (``getaddrinfo`` unless a
``HostResolver`` was passed), each with the seed's port (``DEFAULT_PORT`` if it has none).

Datagrams go out with ``sendto`` and come in with ``recvfrom``; the source is formatted
back to ``"host:port"`` so the engine can reply to it. Stream exchanges are one
length-prefixed frame each way (``_transport``). The server side bounds what a peer can
cost it: at most ``max_streams`` connections are served at once (one more is closed as soon
as it is accepted), each gets ``timeout`` seconds in total for its whole exchange (a peer
trickling one byte at a time is cut off at it), and a frame announcing more than
``max_frame`` bytes is refused before its body is read. Errors a peer can cause (resets,
truncated, oversized or slow frames) are counted, logged at debug and never stop the server.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import logging
import socket as stdlib_socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import attrs
import trio

from ._transport import (
    DEFAULT_MAX_FRAME,
    DEFAULT_MAX_INCOMING_STREAMS,
    HostResolver,
    StreamHandler,
    format_address,
    parse_address,
    read_frame,
    split_seed,
    write_frame,
)
from .errors import FrameError

__all__ = ["UdpTransport", "advertised_address", "open_udp_transport"]

logger = logging.getLogger("swimgossip")

#: Largest datagram we read; our own never exceed ``Config.udp_payload_size``.
_MAX_DATAGRAM = 65_536
_BIND_ATTEMPTS = 16
#: accept() errors that mean "out of file descriptors / memory": wait and retry.
_CAPACITY_ERRNOS = frozenset(
    code
    for code in (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS)
    if isinstance(code, int)
)
_CAPACITY_PAUSE = 0.1


def _family(host: str) -> int:
    return stdlib_socket.AF_INET6 if ":" in host else stdlib_socket.AF_INET


def _is_numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


#: ``_is_numeric`` of the hosts datagrams go to (a cluster's few hundred addresses).
_is_numeric_cached = functools.lru_cache(maxsize=4096)(_is_numeric)


def _peer(sockaddr: tuple[object, ...]) -> str:
    return format_address(str(sockaddr[0]), int(sockaddr[1]))  # type: ignore[call-overload]


@attrs.define(eq=False)
class UdpTransport:
    """A bound UDP socket plus a TCP listener on the same port. See ``open_udp_transport``."""

    udp: trio.socket.SocketType
    listener: trio.SocketListener
    host: str
    port: int
    max_frame: int = DEFAULT_MAX_FRAME
    max_streams: int = DEFAULT_MAX_INCOMING_STREAMS
    resolver: HostResolver | None = None
    #: The stdlib socket under ``udp`` (non-blocking), for sends and reads that need no
    #: trip through Trio's scheduler (``send_datagram``, ``receive_datagram``).
    raw: stdlib_socket.socket | None = None

    @property
    def address(self) -> str:
        """The bound address, ``"host:port"`` or ``"[v6]:port"``."""
        return format_address(self.host, self.port)

    @property
    def family(self) -> int:
        """``socket.AF_INET`` or ``socket.AF_INET6``."""
        return int(self.udp.family)

    async def resolve(self, address: str) -> str:
        """The first address of ``resolve_all(address)``."""
        return (await self.resolve_all(address))[0]

    async def resolve_all(self, address: str) -> list[str]:
        """Every numeric address of this socket's family that the seed ``address``
        ("host:port", "host", "[v6]:port"...) stands for, in the resolver's order.

        Raises:
            ValueError: ``address`` is malformed.
            OSError: the name does not resolve to an address of this family.
        """
        host, port = split_seed(address)
        if _is_numeric(host):
            hosts: Sequence[str] = [host]
        elif self.resolver is not None:
            hosts = await self.resolver(host)
        else:
            hosts = await self._system_resolve(host)
        found: list[str] = []
        for ip in hosts:
            if _is_numeric(ip) and _family(ip) == self.family:
                numeric = format_address(ip, port)
                if numeric not in found:
                    found.append(numeric)
        if not found:
            family = "IPv6" if self.family == stdlib_socket.AF_INET6 else "IPv4"
            raise OSError(f"{host!r} has no {family} address")
        return found

    async def _system_resolve(self, host: str) -> list[str]:
        infos = await trio.socket.getaddrinfo(
            host, None, family=self.family, type=stdlib_socket.SOCK_DGRAM
        )
        return [str(info[4][0]) for info in infos]

    async def send_datagram(self, address: str, payload: bytes) -> None:
        """Send ``payload`` to ``address`` (a numeric "host:port").

        A UDP send on a socket with room in its buffer never waits, so it is made at once,
        without yielding to the scheduler (Trio's ``sendto`` yields after every send:
        one more scheduler round, and one more ``epoll_wait``, per datagram). Only a full
        buffer, or a host name, takes Trio's way."""
        host, port = parse_address(address)
        raw = self.raw
        if raw is not None and _is_numeric_cached(host):
            try:
                raw.sendto(payload, (host, port))
                return
            except BlockingIOError:
                pass
        await self.udp.sendto(payload, (host, port))

    async def receive_datagram(self) -> tuple[bytes, str]:
        """Wait for one datagram; returns ``(payload, "host:port" of the sender)``.

        Reads at once if one is waiting (then yields once, so a flood cannot starve the
        other tasks); else waits until the socket is readable and reads without yielding
        again: an idle node's datagram costs one scheduler round, not two."""
        raw = self.raw
        if raw is None:
            data, sockaddr = await self.udp.recvfrom(_MAX_DATAGRAM)
            return data, _peer(sockaddr)
        try:
            data, sockaddr = raw.recvfrom(_MAX_DATAGRAM)
        except BlockingIOError:
            pass
        else:
            await trio.lowlevel.checkpoint()
            return data, _peer(sockaddr)
        while True:  # a wake-up without a datagram (rare) waits again
            await trio.lowlevel.wait_readable(raw)
            try:
                data, sockaddr = raw.recvfrom(_MAX_DATAGRAM)
            except BlockingIOError:
                continue
            return data, _peer(sockaddr)

    async def exchange(self, address: str, request: bytes) -> bytes:
        """Connect to ``address`` over TCP, send one frame, read one reply frame."""
        host, port = parse_address(address)
        sock = trio.socket.socket(_family(host), stdlib_socket.SOCK_STREAM)
        try:
            await sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
        async with trio.SocketStream(sock) as stream:
            await write_frame(stream, request)
            return await read_frame(stream, self.max_frame)

    async def serve_streams(
        self,
        handler: StreamHandler,
        *,
        timeout: float,
        counters: Counter[str] | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections forever; each serves one exchange within ``timeout`` seconds
        in total; at most ``max_streams`` at once (see the module docstring)."""
        counts: Counter[str] = Counter() if counters is None else counters

        async def serve(stream: trio.SocketStream, source: str) -> None:
            await self._serve_one(stream, source, handler, timeout, counts)

        await self.serve_connections(serve, counters=counts, task_status=task_status)

    def address_of(self, sockaddr: tuple[object, ...]) -> str:
        """``"host:port"`` for a socket address this transport's sockets return."""
        return _peer(sockaddr)

    async def serve_connections(
        self,
        serve: Callable[[trio.SocketStream, str], Awaitable[None]],
        *,
        counters: Counter[str] | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections forever, at most ``max_streams`` at once, each served by
        ``serve(stream, "host:port" of the peer)`` in its own task and then closed; what
        a peer can cause (``FrameError``, resets) is counted and logged at debug. The
        stream format is ``serve``'s (``serve_streams`` is ours, memberlist's is another)."""
        counts: Counter[str] = Counter() if counters is None else counters
        active = 0

        async def serve_one(stream: trio.SocketStream) -> None:
            nonlocal active
            try:
                async with stream:
                    source = _peer(stream.socket.getpeername())
                    await serve(stream, source)
            except FrameError as exc:
                counts["streams_oversized" if exc.oversized else "streams_dropped"] += 1
                logger.debug("stream from peer dropped: %s", exc)
            except (OSError, trio.BrokenResourceError) as exc:
                counts["streams_dropped"] += 1
                logger.debug("stream from peer dropped: %s", exc)
            finally:
                active -= 1

        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                try:
                    stream = await self.listener.accept()
                except OSError as exc:
                    if exc.errno not in _CAPACITY_ERRNOS:
                        raise
                    counts["streams_accept_errors"] += 1
                    logger.error("accept() failed (%s): pausing %ss", exc, _CAPACITY_PAUSE)
                    await trio.sleep(_CAPACITY_PAUSE)
                    continue
                if active >= self.max_streams:
                    counts["streams_refused_busy"] += 1
                    logger.debug("stream refused: %d streams already open", active)
                    await trio.aclose_forcefully(stream)
                    continue
                active += 1
                counts["streams_accepted"] += 1
                nursery.start_soon(serve_one, stream)

    async def _serve_one(
        self,
        stream: trio.SocketStream,
        source: str,
        handler: StreamHandler,
        timeout: float,
        counts: Counter[str],
    ) -> None:
        with trio.move_on_after(timeout) as deadline:
            request = await read_frame(stream, self.max_frame)
            reply = await handler(request, source)
            if reply is not None:
                await write_frame(stream, reply)
        if deadline.cancelled_caught:
            counts["streams_timed_out"] += 1
            logger.debug("stream from %s cut off after %ss", source, timeout)

    async def aclose(self) -> None:
        """Close both sockets."""
        self.udp.close()
        await self.listener.aclose()


async def _bind_pair(
    host: str, port: int
) -> tuple[trio.socket.SocketType, trio.socket.SocketType, stdlib_socket.socket]:
    """A bound UDP socket (Trio's, and the stdlib socket under it) and a listening TCP
    socket on the same port."""
    family = _family(host)
    last: OSError | None = None
    for _ in range(_BIND_ATTEMPTS):
        raw = stdlib_socket.socket(family, stdlib_socket.SOCK_DGRAM)
        udp = trio.socket.from_stdlib_socket(raw)  # makes it non-blocking; closes it
        tcp = trio.socket.socket(family, stdlib_socket.SOCK_STREAM)
        try:
            tcp.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
            if family == stdlib_socket.AF_INET6:
                for sock in (udp, tcp):
                    sock.setsockopt(stdlib_socket.IPPROTO_IPV6, stdlib_socket.IPV6_V6ONLY, 1)
            await udp.bind((host, port))
            bound_port = udp.getsockname()[1]
            await tcp.bind((host, bound_port))
            tcp.listen(128)
            return udp, tcp, raw
        except OSError as exc:
            udp.close()
            tcp.close()
            if port != 0 or exc.errno != errno.EADDRINUSE:
                raise
            last = exc
    assert last is not None
    raise last


@asynccontextmanager
async def open_udp_transport(
    bind: str,
    *,
    max_frame: int = DEFAULT_MAX_FRAME,
    max_streams: int = DEFAULT_MAX_INCOMING_STREAMS,
    resolver: HostResolver | None = None,
) -> AsyncIterator[UdpTransport]:
    """Bind UDP and TCP on ``bind`` ("host:port", "[v6]:port"; port 0 picks one).

    ``max_frame`` bounds an incoming stream frame's body in bytes; ``max_streams`` the
    incoming streams served at once; ``resolver`` resolves seed host names (default: the
    system's, ``getaddrinfo``).

    Raises:
        ValueError: ``bind`` is not an address.
        OSError: the address cannot be bound.
    """
    host, port = parse_address(bind)
    udp, tcp, raw = await _bind_pair(host, port)
    bound_host = str(udp.getsockname()[0])
    transport = UdpTransport(
        udp=udp,
        raw=raw,
        listener=trio.SocketListener(tcp),
        host=bound_host,
        port=int(udp.getsockname()[1]),
        max_frame=max_frame,
        max_streams=max_streams,
        resolver=resolver,
    )
    try:
        yield transport
    finally:
        await transport.aclose()


def advertised_address(transport: UdpTransport, advertise: str | None) -> str:
    """The address to announce: ``advertise`` if given, the bound address if specific, else
    the address of the interface that routes outwards (a wildcard bind)."""
    if advertise is not None:
        host, port = parse_address(advertise)
        return format_address(host, port)
    if transport.host not in ("0.0.0.0", "::"):
        return transport.address
    probe = stdlib_socket.socket(transport.family, stdlib_socket.SOCK_DGRAM)
    try:  # connecting a UDP socket sends nothing; it picks the outgoing interface
        target = "2001:db8::1" if transport.family == stdlib_socket.AF_INET6 else "192.0.2.1"
        probe.connect((target, 9))
        host = str(probe.getsockname()[0])
    except OSError:
        host = "::1" if transport.family == stdlib_socket.AF_INET6 else "127.0.0.1"
    finally:
        probe.close()
    return format_address(host, transport.port)
