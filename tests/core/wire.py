"""A tiny explicit network for engine tests: no clock, no randomness of its own.

``Wire`` holds a few engines keyed by name and routes their datagrams by address. Nothing
moves unless the test says so: sent datagrams wait in ``in_flight`` until ``deliver`` /
``flush`` (which may drop chosen ones), and timers run only when the test fires them
(``fire``) or asks for every due timer in order (``run_until``). Every output of every engine
is kept in ``log[name]`` for assertions.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import attrs

from swimgossip.core.codec import decode_packet
from swimgossip.core.config import Config
from swimgossip.core.engine import Engine
from swimgossip.core.member import Member, Status
from swimgossip.core.messages import Message
from swimgossip.core.outputs import Output, PublishEvent, ScheduleTimer, SendDatagram
from swimgossip.core.timers import Timer

__all__ = [
    "Datagram",
    "Wire",
    "address_of",
    "make_engine",
    "messages_in",
    "of_type",
]

T = TypeVar("T")

#: Timers one ``run_until`` fires at most: far above any test's need, a bound on a timer
#: that re-arms itself at once, forever.
MAX_TIMERS_PER_RUN = 1_000_000


def address_of(name: str) -> str:
    """The address of the engine called ``name`` (distinct from the name on purpose)."""
    return f"10.0.0.{ord(name[0])}:7946"


def make_engine(name: str, config: Config | None = None, seed: int = 0) -> Engine:
    """An engine with a seeded RNG at ``address_of(name)``."""
    return Engine(
        name=name,
        address=address_of(name),
        config=config or Config.lan(),
        rng=random.Random(seed),
    )


def of_type(outputs: Iterable[Any], kind: type[T]) -> list[T]:
    """The outputs (or messages) that are exactly of ``kind``; membership events are
    looked for inside their ``PublishEvent``."""
    return [
        item
        for item in (o.event if type(o) is PublishEvent else o for o in outputs)
        if type(item) is kind
    ]


def messages_in(outputs: Iterable[Output], address: str | None = None) -> list[Message]:
    """Every message of every datagram in ``outputs`` (sent to ``address`` if given)."""
    return [
        message
        for send in of_type(outputs, SendDatagram)
        if address is None or send.address == address
        for message in decode_packet(send.payload)
    ]


@attrs.frozen(kw_only=True)
class Datagram:
    """A datagram on the wire: who sent it, where to, and what."""

    source: str
    address: str
    payload: bytes

    @property
    def messages(self) -> list[Message]:
        return decode_packet(self.payload)


@attrs.define(eq=False)
class Wire:
    """Engines joined by an explicit, lossless-unless-told network."""

    engines: dict[str, Engine]
    in_flight: list[Datagram] = attrs.field(factory=list)
    timers: list[tuple[float, int, str, Timer]] = attrs.field(factory=list)
    #: Every output of each engine, with membership events unwrapped from ``PublishEvent``.
    log: dict[str, list[Any]] = attrs.field(factory=dict)
    _order: int = 0

    @classmethod
    def converged(
        cls, *names: str, config: Config | None = None, seed: int = 1, start: float | None = None
    ) -> Wire:
        """Engines that already know each other alive at incarnation 0.

        Each engine probes the others in the order given in ``names`` (so the first probe
        of "a" in ``converged("a", "b", "c")`` targets "b"). With ``start``, each engine's
        ``start(start)`` outputs are absorbed (its timers are then queued).
        """
        engines = {name: make_engine(name, config, seed + i) for i, name in enumerate(names)}
        view = {
            name: Member(name=name, address=address_of(name), status=Status.ALIVE, incarnation=0)
            for name in names
        }
        for engine in engines.values():
            engine.install_view(view, [name for name in names if name != engine.name])
        wire = cls(engines=engines, log={name: [] for name in names})
        if start is not None:
            for name, engine in engines.items():
                wire.absorb(name, engine.start(start))
        return wire

    def __getitem__(self, name: str) -> Engine:
        return self.engines[name]

    def absorb(self, name: str, outputs: list[Output]) -> list[Output]:
        """Record ``name``'s outputs: queue its datagrams and timers; return them."""
        self.log[name].extend(o.event if type(o) is PublishEvent else o for o in outputs)
        for output in outputs:
            if type(output) is SendDatagram:
                self.in_flight.append(
                    Datagram(source=name, address=output.address, payload=output.payload)
                )
            elif type(output) is ScheduleTimer:
                self._order += 1
                self.timers.append((output.at, self._order, name, output.timer))
        return outputs

    def fire(self, name: str, timer: Timer, now: float) -> list[Output]:
        """Run ``timer`` on ``name`` at ``now`` (whether or not it was scheduled)."""
        return self.absorb(name, self.engines[name].handle_timer(timer, now))

    def scheduled(self, name: str, kind: type[T]) -> list[tuple[float, T]]:
        """The timers of ``kind`` that ``name`` asked for so far, as ``(at, timer)``."""
        return [
            (at, timer)
            for at, _, owner, timer in self.timers
            if owner == name and type(timer) is kind
        ]  # type: ignore[misc]

    def take(self, source: str | None = None) -> list[Datagram]:
        """Remove and return the datagrams in flight (only those from ``source`` if given)."""
        taken = [d for d in self.in_flight if source is None or d.source == source]
        self.in_flight = [d for d in self.in_flight if d not in taken]
        return taken

    def name_at(self, address: str) -> str | None:
        for name, engine in self.engines.items():
            if engine.address == address:
                return name
        return None

    def deliver(self, datagram: Datagram, now: float) -> list[Output]:
        """Hand ``datagram`` to the engine at its address (removing it from flight)."""
        if datagram in self.in_flight:
            self.in_flight.remove(datagram)
        name = self.name_at(datagram.address)
        if name is None:
            return []
        source = self.engines[datagram.source].address
        return self.absorb(name, self.engines[name].receive(datagram.payload, source, now))

    def flush(
        self, now: float, drop: Callable[[Datagram], bool] = lambda d: False
    ) -> list[Datagram]:
        """Deliver everything in flight (and what that provokes) until quiet.

        Datagrams for which ``drop`` holds are lost. Returns the datagrams delivered.
        """
        delivered = []
        while self.in_flight:
            datagram = self.in_flight.pop(0)
            if drop(datagram):
                continue
            self.deliver(datagram, now)
            delivered.append(datagram)
        return delivered

    def run_until(
        self, end: float, drop: Callable[[Datagram, float], bool] = lambda d, t: False
    ) -> None:
        """Fire every queued timer due by ``end`` in time order, flushing datagrams at once
        (datagrams for which ``drop(datagram, now)`` holds are lost)."""
        for _ in range(MAX_TIMERS_PER_RUN):
            due = [entry for entry in self.timers if entry[0] <= end]
            if not due:
                return
            entry = min(due)
            self.timers.remove(entry)
            at, _, name, timer = entry
            self.fire(name, timer, at)
            self.flush(at, drop=lambda d, at=at: drop(d, at))
        raise AssertionError(
            f"run_until({end}): {MAX_TIMERS_PER_RUN} timers fired without reaching the end"
            " (a timer re-armed at once, forever?)"
        )
