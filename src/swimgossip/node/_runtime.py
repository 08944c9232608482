"""The engine's owner: two Trio tasks that feed the sans-IO engine and apply its outputs.

The driver task (``Runtime._drive``) runs the timers and everything that comes through
the inbox: a typed input (``core/inputs.py``, the same values the simulator queues) from
the stream server (``StreamReceived``), stream client tasks (``StreamAnswered`` or
``StreamFailed``) and the public API (a command: join, update_meta, broadcast, leave, with
a slot for its result). It hands each to ``Engine.handle``. The UDP reader
(``Runtime._read_datagrams``) hands each datagram it reads (a ``DatagramReceived``) to
``Engine.handle`` itself and sends the replies at once: a datagram costs one scheduler
round (the reader's wake-up), not two (the reader's, then the driver's), which is most of
an idle node's wake-ups. The two never overlap: they are tasks of one thread, and
``Engine.handle`` never awaits. After the reader's call, the driver's wait is re-aimed at
the next timer that would do something (``_settle_timers``): a timer the reader's input
added, or one it made stale (the probe timeout of an ack just read), is seen without
waking the driver. A datagram waits in the socket's buffer until the reader takes it, so
a node that cannot keep up drops datagrams where the kernel does, like any UDP receiver.
The driver loop:

1. runs every timer that is due (a heap keyed by ``at``, in ``trio.current_time()``, so a
   ``MockClock`` drives it) and measures how late each one ran: that is event-loop lag;
   lag beyond half a probe timeout raises the Lifeguard health score (at most once per
   probe interval), so a starved process does not accuse healthy peers;
2. drops the timers at the top of the heap that would do nothing (``Engine.is_stale``: the
   timeout of a probe already answered), so an answered probe costs no wake-up;
3. otherwise waits for the next job until the next timer is due.

Outputs are applied like the simulator does (``testing/simulator.py``), through a table
keyed by output type: first everything that does not wait (timers, events, deliveries,
join outcomes, stream replies, starting a stream task), then the datagrams in order.
Events are therefore published before any checkpoint, so a snapshot never sees a change
whose event is still on the way.

Every packet and stream frame is signed with ``PacketSigner.wrap`` and verified with
``unwrap``; refusals are counted and logged at debug, as are socket errors; a clock-skew
refusal that carries a warning (``AuthenticationError.warning``) is logged at WARNING. A
stream request whose peer refused it gets a plain error frame, ``0xEE``, the
``RejectReason`` value, a newline, and why in words (``refusal_frame``), so a join can say
why it failed; that frame is unauthenticated and only ever used as a failure reason.

``replace_signer`` swaps the signer for one with another mode (``Node.set_security``); the
counters of the old one are kept in ``security_stats()``; its replay cache is not (the new
signer starts with an empty one: see docs/security.md, "Migration runbook").
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import logging
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
import trio

from ..core.engine import Engine
from ..core.errors import NotRunning
from ..core.events import Event, MemberConflict
from ..core.inputs import (
    Command,
    DatagramReceived,
    Input,
    SendCommand,
    StreamAnswered,
    StreamFailed,
    StreamFailure,
    StreamReceived,
)
from ..core.outputs import (
    DirectDelivery,
    DirectOutcome,
    JoinOutcome,
    LeaveComplete,
    Output,
    PublishEvent,
    ScheduleTimer,
    SendDatagram,
    StreamReply,
    StreamRequest,
    UserDelivery,
)
from ..core.timers import Timer
from ..net import FrameError, Transport
from ..security import (
    AuthenticationError,
    PacketSigner,
    PeerRefused,
    RejectReason,
    SecurityStats,
    read_refusal,
    refusal_frame,
)
from ._events import EventHub

__all__ = ["Runtime"]

logger = logging.getLogger("swimgossip")

#: Jobs waiting for the driver (commands and stream inputs; datagrams do not queue here).
_INBOX_SIZE = 1024


@attrs.define(eq=False)
class _Slot:
    """Where the driver leaves the result of a job for the task that asked."""

    done: trio.Event = attrs.field(factory=trio.Event)
    error: BaseException | None = None
    reply: bytes | None = None

    def finish(self, error: BaseException | None = None) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


@attrs.define(eq=False)
class _DirectWait:
    """Where the driver leaves the outcome of one reliable direct send."""

    done: trio.Event = attrs.field(factory=trio.Event)
    outcome: DirectOutcome | None = None


@attrs.frozen
class _Job:
    """One inbox item: an input for the engine, and where a command's caller waits."""

    item: Input
    slot: _Slot | None = None


@attrs.define(eq=False)
class Runtime:
    """Drives one ``Engine`` over one ``Transport``. Built and run by ``open_node``."""

    engine: Engine
    transport: Transport
    signer: PacketSigner
    hub: EventHub
    counters: Counter[str] = attrs.field(factory=Counter)
    #: The last ``RejectReason`` each peer gave for refusing one of our streams.
    refused_by: dict[str, RejectReason] = attrs.field(factory=dict)
    leave_complete: trio.Event = attrs.field(factory=trio.Event)
    finished: trio.Event = attrs.field(factory=trio.Event)
    stopped: bool = False
    #: Called with every membership event before it is published (memberlist mode: the
    #: delegate's join / leave / update hooks). Must not block.
    on_event: Callable[[Event], None] | None = None
    lag_last: float = 0.0
    lag_max: float = 0.0
    _timers: list[tuple[float, int, Timer]] = attrs.field(factory=list)
    _timer_seq: int = 0
    _incoming: dict[int, _Slot] = attrs.field(factory=dict)
    _incoming_token: int = 0
    _join_waiters: dict[str, list[trio.MemorySendChannel[JoinOutcome]]] = attrs.field(factory=dict)
    _pending: set[_Slot] = attrs.field(factory=set)
    _direct_waiters: dict[int, _DirectWait] = attrs.field(factory=dict)
    _direct_ref: int = 0
    _last_lag_penalty: float = -math.inf
    _retired_stats: SecurityStats | None = None
    _nursery: trio.Nursery | None = None
    #: The driver's wait for its next job, while it waits (its deadline: the next timer).
    _wait_scope: trio.CancelScope | None = None
    _inbox_send: trio.MemorySendChannel[_Job] = attrs.field(init=False)
    _inbox: trio.MemoryReceiveChannel[_Job] = attrs.field(init=False)

    _on_output: dict[type, Callable[[Any], None]] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._inbox_send, self._inbox = trio.open_memory_channel[_Job](_INBOX_SIZE)
        self._on_output = {
            ScheduleTimer: self._schedule,
            StreamRequest: self._start_stream,
            StreamReply: self._reply_stream,
            JoinOutcome: self._report_join,
            LeaveComplete: lambda _: self.leave_complete.set(),
            UserDelivery: self.hub.deliver,
            PublishEvent: self._publish,
            DirectDelivery: self.hub.deliver_direct,
            DirectOutcome: self._report_direct,
        }

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the engine, the reader, the stream server and the driver; run until
        cancelled. Reports started once the node answers on the network."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(
                    functools.partial(
                        self.transport.serve_streams,
                        self._serve_stream,
                        timeout=self.engine.config.stream_timeout,
                        counters=self.counters,
                    )
                )
                await self._apply(self.engine.start(trio.current_time()))
                nursery.start_soon(self._read_datagrams)
                nursery.start_soon(self._drive)
                task_status.started()
        finally:
            self.stop()

    def stop(self) -> None:
        """Mark stopped; callers still waiting get ``NotRunning``; subscriptions end."""
        self.stopped = True
        self.finished.set()
        for slot in list(self._pending):
            slot.finish(NotRunning("the node has stopped"))
        for waiters in self._join_waiters.values():
            for channel in waiters:
                channel.close()
        self._join_waiters.clear()
        for wait in self._direct_waiters.values():
            wait.done.set()  # no outcome: the caller gets NotRunning
        self._direct_waiters.clear()
        self.hub.close()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def call(self, command: Command) -> None:
        """Have the driver hand ``command`` to the engine and apply its outputs; re-raise
        the engine's error (``MetadataTooLarge``...).

        Raises:
            NotRunning: the node has stopped.
        """
        if self.stopped:
            raise NotRunning("the node has stopped")
        slot = _Slot()
        self._pending.add(slot)
        try:
            await self._inbox_send.send(_Job(command, slot))
            await slot.done.wait()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise NotRunning("the node has stopped") from None
        finally:
            self._pending.discard(slot)
        if slot.error is not None:
            raise slot.error

    async def send_reliable(self, target: str, payload: bytes) -> DirectOutcome:
        """Send ``payload`` to ``target`` on a stream and wait for its ``DirectOutcome``
        (at most the stream timeout: the request carries that deadline).

        Raises:
            UnknownMember, MessageTooLarge: refused by the engine; nothing was sent.
            NotRunning: the node has stopped.
        """
        self._direct_ref += 1
        ref = self._direct_ref
        wait = _DirectWait()
        self._direct_waiters[ref] = wait
        try:
            await self.call(SendCommand(target=target, payload=payload, reliable=True, ref=ref))
            await wait.done.wait()
        finally:
            self._direct_waiters.pop(ref, None)
        if wait.outcome is None:
            raise NotRunning("the node has stopped")
        return wait.outcome

    def _report_direct(self, outcome: DirectOutcome) -> None:
        wait = self._direct_waiters.pop(outcome.ref, None)
        if wait is not None:
            wait.outcome = outcome
            wait.done.set()

    def replace_signer(self, signer: PacketSigner) -> None:
        """Wrap and unwrap with ``signer`` from the next packet on; the old signer's
        counters stay in ``security_stats()``, its replay cache is dropped."""
        self._retired_stats = self.security_stats()
        self.signer = signer

    def security_stats(self) -> SecurityStats:
        """The signer's counters, plus those of the signers it replaced."""
        current = self.signer.stats()
        retired = self._retired_stats
        return current if retired is None else _add_stats(retired, current)

    def wait_join(self, addresses: list[str]) -> trio.MemoryReceiveChannel[JoinOutcome]:
        """Register for the ``JoinOutcome`` of each address of the next ``engine.join``."""
        send, receive = trio.open_memory_channel[JoinOutcome](max(1, len(addresses)))
        for address in addresses:
            self._join_waiters.setdefault(address, []).append(send)
        return receive

    async def _drive(self) -> None:
        while True:
            now = trio.current_time()
            while self._timers and self._timers[0][0] <= now:
                at, _, timer = heapq.heappop(self._timers)
                self.counters["timers_run"] += 1
                self._note_lag(now - at, now)
                await self._apply(self.engine.handle(timer, now))
                now = trio.current_time()
            job = None
            with trio.CancelScope() as scope:
                self._wait_scope = scope
                self._settle_timers()
                job = await self._inbox.receive()
            self._wait_scope = None
            if job is None:
                continue
            try:
                outputs = self.engine.handle(job.item, trio.current_time())
            except Exception as exc:
                if job.slot is not None:  # a local error for the caller (MetadataTooLarge...)
                    job.slot.finish(exc)
                else:  # an engine bug on network input must not let a peer kill the node
                    self.counters["engine_errors"] += 1
                    logger.exception("%s: engine failed on network input", self.engine.name)
                continue
            await self._apply(outputs)
            if job.slot is not None:
                job.slot.finish()

    def _settle_timers(self) -> None:
        """Drop the timers at the top of the heap that would do nothing (an answered
        probe's timeout: no wake-up for it), and aim the driver's wait, if it waits, at
        the next one."""
        timers = self._timers
        while timers and self.engine.is_stale(timers[0][2]):
            heapq.heappop(timers)
            self.counters["timers_dropped_stale"] += 1
        scope = self._wait_scope
        if scope is not None:
            scope.deadline = timers[0][0] if timers else math.inf

    def _note_lag(self, lag: float, now: float) -> None:
        self.lag_last = lag
        self.lag_max = max(self.lag_max, lag)
        config = self.engine.config
        if lag > config.probe_timeout / 2:
            self.counters["timers_late"] += 1
            if now - self._last_lag_penalty >= config.probe_interval:
                self._last_lag_penalty = now
                self.engine.note_local_lag()

    # ------------------------------------------------------------------ outputs

    def _apply_now(self, outputs: list[Output]) -> list[SendDatagram]:
        """Apply what does not wait; return the datagrams to send."""
        sends: list[SendDatagram] = []
        handlers = self._on_output
        for output in outputs:
            if type(output) is SendDatagram:
                sends.append(output)
            else:
                handlers[type(output)](output)
        return sends

    def _schedule(self, output: ScheduleTimer) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (output.at, self._timer_seq, output.timer))

    def _start_stream(self, request: StreamRequest) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._request_stream, request)

    def _reply_stream(self, reply: StreamReply) -> None:
        slot = self._incoming.get(reply.token)
        if slot is not None:
            slot.reply = reply.payload
            slot.finish()

    def _publish(self, output: PublishEvent) -> None:
        event = output.event
        if type(event) is MemberConflict:
            logger.warning(
                "%s: name conflict: %r at %s is also claimed from %s (refused)",
                self.engine.name,
                event.member.name,
                event.member.address,
                event.address,
            )
        if self.on_event is not None:
            self.on_event(event)
        self.hub.publish(event)

    def _report_join(self, outcome: JoinOutcome) -> None:
        waiters = self._join_waiters.get(outcome.address)
        if waiters:
            channel = waiters.pop(0)
            channel.send_nowait(outcome)
            if not waiters:
                del self._join_waiters[outcome.address]

    async def _apply(self, outputs: list[Output]) -> None:
        for send in self._apply_now(outputs):
            packet = self.signer.wrap(send.payload)
            try:
                await self.transport.send_datagram(send.address, packet)
            except (OSError, ValueError) as exc:
                self.counters["send_errors"] += 1
                logger.debug("%s: send to %s failed: %s", self.engine.name, send.address, exc)
                continue
            self.counters["packets_out"] += 1
            self.counters["bytes_out"] += len(packet)

    # ------------------------------------------------------------------ datagrams

    async def _read_datagrams(self) -> None:
        while True:
            try:
                data, source = await self.transport.receive_datagram()
            except OSError as exc:  # e.g. ICMP errors surfacing on the socket
                self.counters["receive_errors"] += 1
                logger.debug("%s: receive error: %s", self.engine.name, exc)
                continue
            self.counters["packets_in"] += 1
            self.counters["bytes_in"] += len(data)
            try:
                payload = self.signer.unwrap(data)
            except AuthenticationError as exc:
                self._note_refusal(exc, "dropped datagram", source)
                continue
            item = DatagramReceived(payload=payload, source=source)
            try:
                outputs = self.engine.handle(item, trio.current_time())
            except Exception:  # an engine bug on network input must not let a peer kill us
                self.counters["engine_errors"] += 1
                logger.exception("%s: engine failed on network input", self.engine.name)
                continue
            await self._apply(outputs)
            self._settle_timers()

    # ------------------------------------------------------------------ streams

    async def _serve_stream(self, request: bytes, source: str) -> bytes | None:
        self.counters["streams_in"] += 1
        try:
            payload = self.signer.unwrap(request)
        except AuthenticationError as exc:
            self._note_refusal(exc, "refused stream", source)
            return refusal_frame(exc)
        self._incoming_token += 1
        token = self._incoming_token
        slot = _Slot()
        self._incoming[token] = slot
        try:
            await self._inbox_send.send(
                _Job(StreamReceived(payload=payload, source=source, token=token), slot)
            )
            await slot.done.wait()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return None
        finally:
            del self._incoming[token]
        return None if slot.reply is None else self.signer.wrap(slot.reply)

    async def _request_stream(self, request: StreamRequest) -> None:
        self.counters[f"streams_out_{request.purpose.value}"] += 1
        token = request.token
        item: Input
        try:
            with trio.fail_at(request.deadline):
                reply = await self.transport.exchange(
                    request.address, self.signer.wrap(request.payload)
                )
            refused = read_refusal(reply, request.address)
            if refused is not None:
                raise refused
            self.refused_by.pop(request.address, None)
            try:
                payload = self.signer.unwrap(reply)
            except AuthenticationError as exc:
                self._note_refusal(exc, "refused stream reply", request.address)
                raise
        except trio.TooSlowError:
            item = StreamFailed(token=token, failure=StreamFailure.TIMED_OUT)
        except ConnectionRefusedError:
            item = StreamFailed(token=token, failure=StreamFailure.REFUSED)
        except PeerRefused as exc:
            self.counters["streams_refused_by_peer"] += 1
            if exc.reason is not None:
                self.refused_by[request.address] = exc.reason
            item = StreamFailed(token=token, failure=StreamFailure.REFUSED_BY_PEER, detail=str(exc))
        except AuthenticationError as exc:
            detail = f"authentication failed here, on the reply: {exc}"
            item = StreamFailed(
                token=token, failure=StreamFailure.REPLY_UNAUTHENTICATED, detail=detail
            )
        except FrameError as exc:
            detail = str(exc)
            if exc.oversized:  # e.g. b"HTTP" read as a length: not a swimgossip frame
                detail = (
                    f"{request.address} does not speak swimgossip (its reply is not a "
                    f"swimgossip frame: {exc})"
                )
            item = StreamFailed(token=token, failure=StreamFailure.BROKEN, detail=detail)
        except (OSError, trio.BrokenResourceError) as exc:
            detail = str(exc) or type(exc).__name__
            item = StreamFailed(token=token, failure=StreamFailure.BROKEN, detail=detail)
        else:
            item = StreamAnswered(token=token, payload=payload)
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            await self._inbox_send.send(_Job(item))

    def _note_refusal(self, exc: AuthenticationError, what: str, source: str) -> None:
        self.counters["auth_failures"] += 1
        logger.debug("%s: %s from %s: %s", self.engine.name, what, source, exc)
        if exc.warning is not None:
            logger.warning("%s: from %s: %s", self.engine.name, source, exc.warning)

    def timers_pending(self) -> int:
        """Timers waiting in the heap."""
        return len(self._timers)

    def inbox_depth(self) -> int:
        """Jobs waiting for the driver."""
        return int(self._inbox_send.statistics().current_buffer_used)


def _add_stats(first: SecurityStats, second: SecurityStats) -> SecurityStats:
    """Counters summed; ``replay_cache_entries`` is the second's (the cache in use)."""
    summed = {
        field.name: getattr(first, field.name) + getattr(second, field.name)
        for field in attrs.fields(SecurityStats)
    }
    summed["replay_cache_entries"] = second.replay_cache_entries
    return SecurityStats(**summed)
