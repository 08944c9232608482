"""memberlist's datagram and stream envelopes over our UDP socket and TCP listener.

``MemberlistTransport`` wraps a bound ``UdpTransport`` and gives the runtime what any
``Transport`` gives, with memberlist's envelopes instead of our frames and signer:

- a datagram leaves encrypted with the keyring's primary key (the label as associated
  data) behind the label header; one arrives label-checked and decrypted, or is counted
  and dropped with a log line (``memberlist_label_mismatch``,
  ``memberlist_decrypt_failed``, ``memberlist_plain_refused``);
- a stream has no length prefix: the dialler writes the label header, then one message,
  encrypted as ``encryptMsg | uint32 length | payload`` or plain (a push-pull, a ping, a
  ``userMsg``, possibly compressed); it reads the answer up to its end
  (``codec.stream_message_end``) or until the peer closes. The answering side reads the
  same way, hands a push-pull or ping to the runtime's handler and writes the reply
  (without a label, as Go does), and gives a ``userMsg`` to the delegate (no reply); a
  stream it refuses gets an ``errResp`` saying why (sealed as our streams are, as Go does).

A Go peer that cannot decrypt our stream (another key) or does not accept our label
closes the connection without a word: ``exchange`` then raises ``FrameError`` saying
that this is the likely cause, which a join reports.

``open_packet`` and ``read_stream_message`` are pure (bytes in, bytes out) and unit-tested
with forged input.
"""

from __future__ import annotations

import logging
from collections import Counter

import attrs
import trio

from .._transport import StreamHandler, parse_address
from .._udp import _MAX_DATAGRAM, UdpTransport
from ..errors import FrameError
from . import codec as ml
from ._crypto import MAX_STREAM_BYTES, MemberlistKeyring, decrypt_stream, encrypt_stream
from ._delegate import Delegate
from .errors import DecryptError, LabelError, Truncated, WireError

__all__ = ["MemberlistTransport", "open_packet", "read_stream_message"]

logger = logging.getLogger("swimgossip")

_READ_SIZE = 65_536
#: Seconds without new data after which a partial stream message is parsed again.
_PARSE_WHEN_IDLE = 0.05
#: The most bytes a stream message may take (the encrypted push-pull bound, and a bit).
MAX_STREAM_MESSAGE = MAX_STREAM_BYTES + 1024


def open_packet(data: bytes, *, label: str, keyring: MemberlistKeyring | None) -> bytes:
    """The memberlist packet inside a received datagram: label checked and removed,
    decrypted with any installed key. ``WireError`` (``LabelError``, ``DecryptError``)
    says why it is refused."""
    rest, theirs = ml.remove_label(data)
    if theirs != label:
        raise LabelError(f"packet with label {theirs!r}, ours is {label!r}")
    if keyring is None:
        return rest
    try:
        return keyring.decrypt(rest, label.encode())
    except DecryptError as exc:
        raise DecryptError(
            f"{exc}: the sender encrypts with a key we do not hold, or does not encrypt"
        ) from None


def seal_packet(payload: bytes, *, label: str, keyring: MemberlistKeyring | None) -> bytes:
    """A datagram for ``payload``: encrypted with the primary key, behind the label."""
    if keyring is not None:
        payload = keyring.encrypt(payload, label.encode())
    return ml.add_label(payload, label)


def read_stream_message(
    buf: bytes, *, label: str, keyring: MemberlistKeyring | None, answer: bool = False
) -> bytes:
    """The first whole stream message in ``buf`` (what the peer wrote so far): decrypted
    and decompressed, type byte first. ``label`` is the cluster label: a request must
    carry it in a label header; an ``answer`` carries none (Go writes none) but is
    encrypted with it as associated data. ``Truncated`` while more bytes are needed; any
    other ``WireError`` means the stream is refused."""
    if not buf:
        raise Truncated("nothing read yet")
    if not answer:
        if buf[:1] == bytes((ml.MessageType.HAS_LABEL,)) and (
            len(buf) < 2 or len(buf) < 2 + buf[1]
        ):
            raise Truncated("label header truncated")
        buf, theirs = ml.remove_label(buf)
        if theirs != label:
            raise LabelError(f"stream with label {theirs!r}, ours is {label!r}")
    if not buf:
        raise Truncated("nothing read yet")
    if buf[0] == ml.MessageType.ENCRYPT:
        if keyring is None:
            raise DecryptError("the stream is encrypted and this node has no keyring")
        try:
            plain, _ = decrypt_stream(keyring.keys, buf, label)
        except DecryptError as exc:
            raise DecryptError(
                f"{exc}: the peer encrypts with a key we do not hold (another keyring)"
            ) from None
        return ml.decompressed(plain)
    if keyring is not None:
        raise DecryptError("the stream is not encrypted and this node requires encryption")
    end = ml.stream_message_end(buf)
    return ml.decompressed(buf[:end])


@attrs.define(eq=False)
class MemberlistTransport:
    """A ``Transport`` speaking memberlist's envelopes over ``inner``'s sockets.

    Args:
        inner: the bound UDP socket and TCP listener (the caller owns and closes it).
        delegate: gets the ``userMsg`` s that arrive on streams.
        keyring: encrypt and decrypt with these keys (used live), or None.
        label: the cluster label ("" for none).
        counters: where refusals are counted (the node's metrics).
    """

    inner: UdpTransport
    delegate: Delegate
    keyring: MemberlistKeyring | None = None
    label: str = ""
    counters: Counter[str] = attrs.field(factory=Counter)
    #: Our label when dialling; the answer is read with ``label=None`` (Go sends none).
    _label_header: bytes = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._label_header = ml.add_label(b"", self.label)

    @property
    def address(self) -> str:
        """The bound address."""
        return self.inner.address

    async def resolve(self, address: str) -> str:
        """As ``UdpTransport.resolve``."""
        return await self.inner.resolve(address)

    async def resolve_all(self, address: str) -> list[str]:
        """As ``UdpTransport.resolve_all``."""
        return await self.inner.resolve_all(address)

    # ------------------------------------------------------------------ datagrams

    async def send_datagram(self, address: str, payload: bytes) -> None:
        """Send a memberlist packet, encrypted and labelled as configured."""
        await self.inner.send_datagram(
            address, seal_packet(payload, label=self.label, keyring=self.keyring)
        )

    async def receive_datagram(self) -> tuple[bytes, str]:
        """The next acceptable packet (decrypted, label removed) and its sender; refused
        ones are counted and logged, and the wait goes on."""
        while True:
            data, source = await self.inner.udp.recvfrom(_MAX_DATAGRAM)
            sender = self.inner.address_of(source)
            try:
                return open_packet(data, label=self.label, keyring=self.keyring), sender
            except WireError as exc:
                self._refused("packet", sender, exc)

    def _refused(self, what: str, source: str, exc: WireError) -> None:
        if isinstance(exc, LabelError):
            key = "memberlist_label_mismatch"
        elif isinstance(exc, DecryptError):
            key = "memberlist_decrypt_failed"
        else:
            key = "memberlist_streams_malformed"
        self.counters[key] += 1
        # WARNING for what an operator must fix (a key or a label), once per 100.
        level = logging.WARNING if key != "memberlist_streams_malformed" else logging.DEBUG
        if self.counters[key] % 100 == 1:
            logger.log(level, "memberlist %s from %s refused: %s", what, source, exc)

    # ------------------------------------------------------------------ streams

    def _seal_stream(self, payload: bytes) -> bytes:
        if self.keyring is None:
            return payload
        return encrypt_stream(self.keyring.primary, payload, self.label)

    async def _read_message(self, stream: trio.SocketStream, *, answer: bool) -> bytes:
        # A plain message has no length: it is parsed from the start until it decodes.
        # Parsing after every chunk would cost O(n^2) for a large push-pull, so a parse
        # runs only when the message may be whole (a short read, a pause in the data, the
        # end of the stream) or the buffer doubled since the last try: O(n log n).
        buf = bytearray()
        tried = 0
        while True:
            chunk: bytes | None = None
            with trio.move_on_after(_PARSE_WHEN_IDLE) as pause:
                chunk = await stream.receive_some(_READ_SIZE)
            if pause.cancelled_caught:
                chunk = None
            elif chunk:
                buf += chunk
                if len(buf) > MAX_STREAM_MESSAGE:
                    raise FrameError(
                        f"memberlist stream over {MAX_STREAM_MESSAGE} bytes", oversized=True
                    )
            ended = chunk == b""
            whole = chunk is None or len(chunk) < _READ_SIZE or len(buf) >= 2 * tried
            if not ended and (not whole or len(buf) == tried):
                continue
            tried = len(buf)
            try:
                return read_stream_message(
                    bytes(buf), label=self.label, keyring=self.keyring, answer=answer
                )
            except Truncated:
                if not ended:
                    continue
                if not buf:
                    raise FrameError(
                        "the peer closed the stream without answering (a memberlist peer "
                        "does so when it cannot decrypt our stream or refuses our label: "
                        "check the key and the label)"
                    ) from None
                raise FrameError(f"memberlist stream cut short after {len(buf)} bytes") from None

    async def exchange(self, address: str, request: bytes) -> bytes:
        """Dial ``address``, send ``request`` (a memberlist stream message), return the
        answer (decrypted, decompressed). ``FrameError`` if it is cut short or refused."""
        stream = await trio.open_tcp_stream(*parse_address(address))
        async with stream:
            await stream.send_all(self._label_header + self._seal_stream(request))
            try:
                answer = await self._read_message(stream, answer=True)
            except WireError as exc:
                self._refused("stream answer", address, exc)
                raise FrameError(f"memberlist answer from {address} refused: {exc}") from exc
        if answer[0] == ml.MessageType.ERR:
            try:
                error = ml.decode_message(answer)
            except WireError as exc:
                raise FrameError(f"{address} answered with a malformed error: {exc}") from exc
            assert isinstance(error, ml.ErrorResponse)
            raise FrameError(f"{address} refused our stream: {error.error}")
        return answer

    async def send_user_stream(self, address: str, payload: bytes) -> None:
        """Send a ``userMsg`` over a stream (memberlist's ``SendReliable``); no answer."""
        stream = await trio.open_tcp_stream(*parse_address(address))
        async with stream:
            message = ml.encode_user_stream(payload)
            await stream.send_all(self._label_header + self._seal_stream(message))

    async def serve_streams(
        self,
        handler: StreamHandler,
        *,
        timeout: float,
        counters: Counter[str] | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept memberlist streams forever (bounded as ``UdpTransport.serve_streams``)."""

        async def serve(stream: trio.SocketStream, source: str) -> None:
            with trio.move_on_after(timeout) as deadline:
                try:
                    message = await self._read_message(stream, answer=False)
                except WireError as exc:
                    self._refused("stream", source, exc)
                    # As Go does: say why, in an errResp sealed as our streams are.
                    refusal = ml.encode_message(ml.ErrorResponse(error=str(exc)))
                    await stream.send_all(self._seal_stream(refusal))
                    return
                if message[0] == ml.MessageType.USER:
                    self.counters["memberlist_user_streams_in"] += 1
                    self.delegate.notify_message(ml.decode_user_stream(message))
                    return
                reply = await handler(message, source)
                if reply is not None:
                    await stream.send_all(self._seal_stream(reply))
            if deadline.cancelled_caught:
                self.counters["streams_timed_out"] += 1

        await self.inner.serve_connections(serve, counters=counters, task_status=task_status)

    async def aclose(self) -> None:
        """Nothing of its own to close: ``inner`` belongs to the caller."""
