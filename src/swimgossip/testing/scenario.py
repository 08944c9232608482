"""One standard simulated run and its report: the engine of ``swimgossip simulate``.

Timeline (virtual seconds): the cluster forms (through the protocol up to 200 nodes,
from a converged view above that); two seconds later the chosen faults start (loss,
periodic pauses or stalls of the last node, a partition for half the run); one second
later one node updates its metadata (dissemination is timed from there); four seconds
later ``kill`` random nodes crash; the run continues ``duration`` seconds after the crash.

What the report counts:

* ``detection_s``: seconds from the crash until the first / median / last running survivor
  declared a killed node failed (worst over killed nodes); ``undetected`` counts survivors
  that never did;
* ``false_positives``: failed verdicts about a member that was running and reachable from
  the observer (verdicts across a live partition are counted apart, as
  ``partitioned_verdicts``);
* ``suspicions_by_paused_node``: suspicions the paused (or stalled) node raised itself;
* ``dissemination_s``: from the metadata update until every running node held it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import attrs

from ..core.config import PRESETS, Config
from ..core.events import MemberFailed, MemberSuspected, MemberUpdated
from .simulator import Simulation

__all__ = ["PRESETS", "ScenarioReport", "run_scenario"]


#: Above this size the cluster starts from a converged view instead of a join storm.
_JOIN_THROUGH_PROTOCOL_UP_TO = 200


@attrs.frozen(kw_only=True)
class ScenarioReport:
    """The figures of one run; ``as_dict()`` gives the JSON of ``simulate --json``."""

    nodes: int
    killed: list[str]
    detection_s: dict[str, Any]
    first_suspicion_s: float | None
    false_positives: int
    partitioned_verdicts: int
    suspicions_by_paused_node: int | None
    converged_s: float | None
    messages_per_node_per_s: float
    bytes_per_node_per_s: float
    dissemination_s: float | None
    virtual_s: float
    wall_s: float
    seed: int
    preset: str
    loss: float

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able values."""
        return attrs.asdict(self)


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"first": None, "median": None, "last": None}
    return {
        "first": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "last": round(max(values), 3),
    }


def run_scenario(
    *,
    nodes: int,
    kill: int = 1,
    loss: float = 0.0,
    pause_every: tuple[float, float] | None = None,
    stall_every: tuple[float, float] | None = None,
    partition: tuple[int, int] | None = None,
    duration: float = 60.0,
    seed: int = 0,
    preset: str = "lan",
    config: Config | None = None,
    progress: Callable[[float], None] | None = None,
) -> ScenarioReport:
    """Run the standard scenario and report what happened (see the module comment).

    ``progress``, if given, is called with the fraction of the run done (0 to 1) about a
    hundred times along the way.
    """
    wall_start = time.perf_counter()
    config = config if config is not None else PRESETS[preset]()
    if nodes < 2 or kill < 0 or kill > nodes - 2:
        raise ValueError("need nodes >= 2 and 0 <= kill <= nodes - 2")
    sim = Simulation(config=config, seed=seed)
    prejoined = nodes > _JOIN_THROUGH_PROTOCOL_UP_TO
    sim.add_cluster(nodes, prejoined=prejoined)
    converged = sim.run_until_converged(timeout=120.0, step=0.25)
    converged_s = round(sim.now, 3) if converged and not prejoined else None

    names = [f"n{i}" for i in range(nodes)]
    fault_start = sim.now + 2.0
    update_at = fault_start + 1.0
    kill_at = update_at + 4.0
    end = kill_at + duration
    updater, paused = names[1], names[-1]
    sim.run_until(fault_start)
    sim.set_loss(loss)
    for every, fault in ((pause_every, sim.pause), (stall_every, sim.stall)):
        if every is not None:
            period, length = every
            at = fault_start + period
            while at < end:
                sim.call_at(at, fault, paused, length)
                at += period
    groups: tuple[list[str], list[str]] | None = None
    if partition is not None:
        groups = (names[: partition[0]], names[partition[0] : partition[0] + partition[1]])
        sim.call_at(kill_at, sim.partition, *groups)
        sim.call_at(kill_at + duration / 2, sim.heal)
    sent_before = {n: (sim.nodes[n].sent_datagrams, sim.nodes[n].sent_bytes) for n in names}

    sim.run_until(update_at)
    new_meta = b"updated-at-%d" % int(update_at)
    sim.update_meta(updater, new_meta)
    sim.run_until(kill_at)
    protected = {updater, paused, names[0]}
    candidates = [n for n in names if n not in protected]
    victims = sorted(sim.rng.sample(candidates, min(kill, len(candidates))))
    for victim in victims:
        sim.crash(victim)
    step = max(duration / 100, 0.1)
    while sim.now < end:
        sim.run_until(min(end, sim.now + step))
        if progress is not None:
            progress(min(1.0, (sim.now - fault_start) / (end - fault_start)))

    survivors = [n for n in sim.running()]
    crashed_at = {victim: kill_at for victim in victims}
    partition_window = (kill_at, kill_at + duration / 2) if groups else None

    def reachable(observer: str, member: str, at: float) -> bool:
        if groups is None or partition_window is None:
            return True
        if not partition_window[0] <= at < partition_window[1]:
            return True
        side = {n: i for i, group in enumerate(groups) for n in group}
        return side.get(observer, -1) == side.get(member, -1)

    worst: dict[str, list[float]] = {}
    undetected = 0
    false_positives = partitioned = 0
    first_suspicion: float | None = None
    for victim in victims:
        first_seen: dict[str, float] = {}
        for record in sim.events:
            event = record.event
            if event.member.name != victim or record.time < kill_at:
                continue
            if type(event) is MemberFailed:
                first_seen.setdefault(record.observer, record.time - kill_at)
            elif type(event) is MemberSuspected:
                delay = record.time - kill_at
                first_suspicion = delay if first_suspicion is None else min(first_suspicion, delay)
        times = [first_seen[s] for s in survivors if s in first_seen]
        undetected += sum(1 for s in survivors if s not in first_seen)
        for key, value in _percentiles(times).items():
            if value is not None:
                worst.setdefault(key, []).append(value)
    for record in sim.events:
        if type(record.event) is not MemberFailed:
            continue
        member = record.event.member.name
        if member in crashed_at and record.time >= crashed_at[member]:
            continue
        if reachable(record.observer, member, record.time):
            false_positives += 1
        else:
            partitioned += 1

    suspicions_by_paused = None
    if pause_every is not None or stall_every is not None:
        suspicions_by_paused = sum(
            1
            for r in sim.events
            if r.observer == paused and type(r.event) is MemberSuspected and r.event.by == paused
        )

    dissemination: float | None = None
    got: dict[str, float] = {}
    for record in sim.events:
        event = record.event
        is_update = type(event) is MemberUpdated and event.member.name == updater
        if is_update and event.member.meta == new_meta:
            got.setdefault(record.observer, record.time - update_at)
    holders = [n for n in survivors if n != updater]
    if all(n in got for n in holders):
        dissemination = round(max((got[n] for n in holders), default=0.0), 3)

    window = end - fault_start
    running = len(names)
    sent = [
        (
            sim.nodes[n].sent_datagrams - sent_before[n][0],
            sim.nodes[n].sent_bytes - sent_before[n][1],
        )
        for n in names
    ]
    detection: dict[str, Any] = {
        key: (max(worst[key]) if key in worst and len(worst[key]) == len(victims) else None)
        for key in ("first", "median", "last")
    }
    detection["undetected"] = undetected
    return ScenarioReport(
        nodes=nodes,
        killed=victims,
        detection_s=detection,
        first_suspicion_s=round(first_suspicion, 3) if first_suspicion is not None else None,
        false_positives=false_positives,
        partitioned_verdicts=partitioned,
        suspicions_by_paused_node=suspicions_by_paused,
        converged_s=converged_s,
        messages_per_node_per_s=round(sum(d for d, _ in sent) / running / window, 3),
        bytes_per_node_per_s=round(sum(b for _, b in sent) / running / window, 1),
        dissemination_s=dissemination,
        virtual_s=round(sim.now, 3),
        wall_s=round(time.perf_counter() - wall_start, 3),
        seed=seed,
        preset=preset,
        loss=loss,
    )
