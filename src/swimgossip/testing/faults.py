"""Faults as values, and a runner that plays a schedule of them against a ``Cluster``.

A schedule is a list of ``(start, fault)``: ``start`` is virtual seconds after
``run_schedule`` is called. Every fault has a bounded ``duration`` and undoes itself when
it ends (a partition heals, loss returns to 0, a paused node resumes, a crashed node is
restarted under the same name), so after ``run_schedule`` returns the cluster is expected
to converge again. Faults may overlap; undoing a partition heals every partition.

``swimgossip.testing.strategies.fault_schedules`` draws schedules for hypothesis.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import trio

from .cluster import Cluster

__all__ = ["Crash", "Fault", "Isolate", "Loss", "Partition", "Pause", "run_schedule"]


@attrs.frozen(kw_only=True)
class Partition:
    """Split the nodes into ``groups`` (unnamed nodes form one more) for ``duration`` s."""

    groups: tuple[tuple[str, ...], ...]
    duration: float


@attrs.frozen(kw_only=True)
class Isolate:
    """Cut ``name`` off from everyone for ``duration`` s."""

    name: str
    duration: float


@attrs.frozen(kw_only=True)
class Loss:
    """Drop datagrams with ``probability`` for ``duration`` s: everywhere, or on the
    one-way link ``src -> dst``."""

    probability: float
    duration: float
    src: str | None = None
    dst: str | None = None


@attrs.frozen(kw_only=True)
class Pause:
    """``name`` processes nothing for ``duration`` s (``Cluster.pause``)."""

    name: str
    duration: float


@attrs.frozen(kw_only=True)
class Crash:
    """``name`` crashes, stays down ``duration`` s, then restarts under the same name."""

    name: str
    duration: float


Fault = Partition | Isolate | Loss | Pause | Crash


async def _play(cluster: Cluster, fault: Fault) -> None:
    network = cluster.network
    if isinstance(fault, Pause):
        if fault.name in cluster.names:
            await cluster.pause(fault.name, fault.duration)
        else:  # crashed meanwhile: nothing to pause
            await trio.sleep(fault.duration)
    elif isinstance(fault, Crash):
        if fault.name in cluster.names:
            await cluster.crash(fault.name)
        await trio.sleep(fault.duration)
        if fault.name not in cluster.names:
            await cluster.restart(fault.name)
    else:
        if isinstance(fault, Partition):
            network.partition(*fault.groups)
        elif isinstance(fault, Isolate):
            network.isolate(fault.name)
        else:
            network.set_loss(fault.probability, src=fault.src, dst=fault.dst)
        await trio.sleep(fault.duration)
        if isinstance(fault, Loss):
            network.set_loss(0.0, src=fault.src, dst=fault.dst)
        else:
            network.heal()


async def run_schedule(cluster: Cluster, schedule: Sequence[tuple[float, Fault]]) -> None:
    """Play ``schedule`` (``(start, fault)`` pairs) and return when every fault has ended.

    Raises:
        ValueError: a start time or duration is negative.
    """
    for start, fault in schedule:
        if start < 0 or fault.duration < 0:
            raise ValueError(f"negative time in schedule entry {(start, fault)!r}")
    began = trio.current_time()

    async def play_at(start: float, fault: Fault) -> None:
        await trio.sleep_until(began + start)
        await _play(cluster, fault)

    async with trio.open_nursery() as nursery:
        for start, fault in sorted(schedule, key=lambda entry: entry[0]):
            nursery.start_soon(play_at, start, fault)
