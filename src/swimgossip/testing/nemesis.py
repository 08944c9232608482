"""A nemesis soak: a seeded random schedule of faults over ``open_cluster``, then quiet,
with the cluster's invariants checked throughout and after.

``run_nemesis(seed)`` runs, in virtual time (call it under
``trio.testing.MockClock(autojump_threshold=0)``), a cluster of the production runtime on
the in-memory network. A schedule drawn from ``seed`` plays partitions (halves, a
minority, one-way cuts), loss bursts (up to 25 %), pauses, and crashes each followed by a
restart under the same name; meanwhile every node broadcasts now and then. Then the
network is quiet and every node broadcasts once more. ``NemesisReport.violations`` lists
every broken invariant (empty when all hold):

1. every live member converges to one full view within ``converge_within`` of the quiet;
2. no member that was never faulted (never crashed, paused, cut off) is declared failed by
   a member that was never cut off from it;
3. incarnations never decrease, in the events each node's process emits about a member;
4. each node's event stream, folded from its process's snapshot on, gives the statuses of
   its final ``members()``;
5. no node delivers a broadcast twice (exactly once for what arrives; gossip itself is best
   effort, so the report counts the quiet period's deliveries that never came).

``python -m swimgossip.testing.nemesis --seeds 200 --minutes 10`` is the long run behind
``make soak``; a few seeds run in ``make test`` (tests/test_nemesis.py).
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
from collections import Counter
from collections.abc import Sequence

import attrs
import trio
import trio.testing

from ..core.config import Config
from ..core.events import (
    MemberConflict,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberRecovered,
    MemberSuspected,
    MemberUpdated,
)
from ..core.member import Status
from ..node import Node
from .cluster import Cluster, ConvergenceError, open_cluster
from .faults import Crash, Fault, Loss, Partition, Pause, run_schedule

__all__ = ["NemesisReport", "nemesis_schedule", "run_nemesis"]

_STATUS_OF = {
    MemberJoined: None,  # the member's own status, as carried
    MemberUpdated: None,
    MemberRecovered: None,
    MemberSuspected: Status.SUSPECT,
    MemberFailed: Status.DEAD,
    MemberLeft: Status.LEFT,
}


@attrs.frozen(kw_only=True)
class NemesisReport:
    """What one soak did and which invariants broke (none, when ``ok``)."""

    seed: int
    faults: Counter[str]
    failed_verdicts: int
    broadcasts_sent: int
    deliveries: int
    #: Deliveries due from the quiet period's broadcasts (one per sender per other node),
    #: and how many never came: gossip is best effort (each message is sent a bounded
    #: number of times), so a few may miss in a small cluster; never a duplicate.
    quiet_expected: int
    quiet_missed: int
    violations: list[str]

    @property
    def ok(self) -> bool:
        """Whether every invariant held."""
        return not self.violations


def nemesis_schedule(
    names: Sequence[str], *, seed: int, duration: float
) -> list[tuple[float, Fault]]:
    """A random schedule of faults over ``duration`` seconds, drawn from ``seed``."""
    rng = random.Random(f"nemesis/{seed}")
    schedule: list[tuple[float, Fault]] = []
    at = rng.uniform(1.0, 5.0)
    while at < duration:
        kind = rng.choice(["halves", "minority", "one_way", "loss", "pause", "crash"])
        length = min(rng.uniform(2.0, 25.0), duration - at)
        shuffled = list(names)
        rng.shuffle(shuffled)
        if kind == "halves":
            half = len(shuffled) // 2
            fault: Fault = Partition(
                groups=(tuple(shuffled[:half]), tuple(shuffled[half:])), duration=length
            )
            schedule.append((at, fault))
        elif kind == "minority":
            schedule.append((at, Partition(groups=((shuffled[0],),), duration=length)))
        elif kind == "one_way":
            half = len(shuffled) // 2
            for src in shuffled[:half]:
                for dst in shuffled[half:]:
                    schedule.append((at, Loss(probability=1.0, src=src, dst=dst, duration=length)))
        elif kind == "loss":
            schedule.append((at, Loss(probability=rng.uniform(0.05, 0.25), duration=length)))
        elif kind == "pause":
            schedule.append(
                (at, Pause(name=shuffled[0], duration=min(length, rng.uniform(0.5, 3.0))))
            )
        else:
            schedule.append(
                (at, Crash(name=shuffled[0], duration=min(length, rng.uniform(1.0, 20.0))))
            )
        at += length + rng.uniform(0.0, 10.0)
    return schedule


def _touched(
    schedule: Sequence[tuple[float, Fault]], names: Sequence[str]
) -> tuple[set[str], set[frozenset[str]]]:
    """The members some fault touched (crashed, paused, alone in a minority), and the
    pairs of members some cut separated."""
    faulted: set[str] = set()
    cut: set[frozenset[str]] = set()
    for _, fault in schedule:
        if isinstance(fault, Crash | Pause):
            faulted.add(fault.name)
        elif isinstance(fault, Partition):
            side = {n: i for i, group in enumerate(fault.groups, 1) for n in group}
            cut |= {
                frozenset((a, b)) for a in names for b in names
                if a != b and side.get(a, 0) != side.get(b, 0)
            }  # fmt: skip
        elif isinstance(fault, Loss) and fault.src is not None and fault.dst is not None:
            cut.add(frozenset((fault.src, fault.dst)))
    return faulted, cut


def _check_events(cluster: Cluster, violations: list[str]) -> None:
    """Invariants 3 and 4 over each node's recorded events."""
    for name in cluster.names:
        view: dict[str, tuple[Status, int]] = {}
        highest: dict[str, int] = {}
        for event in cluster.events.get(name, []):
            if not hasattr(event, "member"):
                continue  # EventsLost: the recorder's buffer is large enough not to lose
            member = event.member
            if type(event) is MemberJoined and event.seq == 0 and member.name == name:
                view, highest = {}, {}  # a new process: its snapshot starts here
            if type(event) is MemberConflict:
                continue
            if member.incarnation < highest.get(member.name, -1):
                violations.append(
                    f"{name}: incarnation of {member.name} went down to {member.incarnation}"
                )
            highest[member.name] = max(highest.get(member.name, -1), member.incarnation)
            status = _STATUS_OF[type(event)]
            view[member.name] = (member.status if status is None else status, member.incarnation)
        actual = {m.name: m.status for m in cluster.node(name).members()}
        for member, status in actual.items():
            folded = view.get(member)
            if status.is_gone:
                if folded is not None and not folded[0].is_gone:
                    violations.append(f"{name}: events say {member} is {folded[0].name}, "
                                      f"members() says {status.name}")  # fmt: skip
            elif folded is None or folded[0] != status:
                violations.append(
                    f"{name}: events say {member} is "
                    f"{folded[0].name if folded else 'unknown'}, members() says {status.name}"
                )


async def run_nemesis(
    seed: int,
    *,
    nodes: int = 6,
    duration: float = 120.0,
    quiet: float = 30.0,
    converge_within: float = 60.0,
    config: Config | None = None,
) -> NemesisReport:
    """Run one soak (see the module comment); returns its report."""
    config = Config.lan() if config is None else config
    violations: list[str] = []
    delivered: dict[str, Counter[bytes]] = {}
    sent: list[bytes] = []
    rng = random.Random(f"nemesis-traffic/{seed}")
    async with open_cluster(nodes, seed=seed, config=config) as cluster:
        await cluster.wait_converged(timeout=60.0)
        names = list(cluster.names)
        schedule = nemesis_schedule(names, seed=seed, duration=duration)
        faulted, cut = _touched(schedule, names)

        async def receive(name: str) -> None:
            """Count ``name``'s deliveries, following it across restarts."""
            counts = delivered.setdefault(name, Counter())
            while True:
                node = cluster.node(name) if name in cluster.names else None
                if node is None:
                    await trio.sleep(0.05)
                    continue
                async with trio.open_nursery() as watch:

                    async def until_replaced(node: Node = node) -> None:
                        while name in cluster.names and cluster.node(name) is node:
                            await trio.sleep(0.05)
                        watch.cancel_scope.cancel()

                    watch.start_soon(until_replaced)
                    async with node.messages() as stream:
                        async for message in stream:
                            counts[message.payload] += 1
                    watch.cancel_scope.cancel()

        async def chatter(until: float) -> None:
            number = 0
            while trio.current_time() < until:
                await trio.sleep(rng.uniform(1.0, 5.0))
                running = list(cluster.names)
                if running:
                    number += 1
                    payload = f"{rng.choice(running)}:{number}".encode()
                    sender = payload.split(b":")[0].decode()
                    if sender in cluster.names:
                        sent.append(payload)
                        await cluster.node(sender).broadcast(payload)

        async with trio.open_nursery() as background:
            for name in names:
                background.start_soon(receive, name)
            start = trio.current_time()
            background.start_soon(chatter, start + duration)
            await run_schedule(cluster, schedule)
            try:
                await cluster.wait_converged(timeout=converge_within)
            except ConvergenceError as exc:
                violations.append(f"no single view {converge_within:g} s after the faults: {exc}")
            await trio.sleep(1.0)  # every receiver follows its node's latest process
            quiet_payloads: list[bytes] = []
            for name in names:
                if name in cluster.names:
                    payload = f"{name}:quiet".encode()
                    quiet_payloads.append(payload)
                    sent.append(payload)
                    await cluster.node(name).broadcast(payload)
            await trio.sleep(quiet)
            background.cancel_scope.cancel()

        failed = 0
        for record in cluster.history:
            if type(record.event) is not MemberFailed:
                continue
            failed += 1
            target, observer = record.event.member.name, record.observer
            if target not in faulted and frozenset((observer, target)) not in cut:
                violations.append(
                    f"{observer} declared {target} failed at {record.time:.1f} s; "
                    "it was never faulted or cut off"
                )
        _check_events(cluster, violations)
        for name, counts in delivered.items():
            twice = [p.decode() for p, n in counts.items() if n > 1]
            if twice:
                violations.append(f"{name} delivered {twice[:5]} more than once")
        missed = 0
        for name in names:
            got = delivered.get(name, Counter())
            missed += sum(
                1 for p in quiet_payloads if not p.startswith(f"{name}:".encode()) and not got[p]
            )
    kinds = Counter(type(fault).__name__ for _, fault in schedule)
    return NemesisReport(
        seed=seed,
        faults=kinds,
        failed_verdicts=failed,
        broadcasts_sent=len(sent),
        deliveries=sum(sum(c.values()) for c in delivered.values()),
        quiet_expected=len(quiet_payloads) * (len(names) - 1),
        quiet_missed=missed,
        violations=violations,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The long soak (``make soak``): many seeds, reported one line each."""
    parser = argparse.ArgumentParser(description="swimgossip nemesis soak")
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--nodes", type=int, default=6)
    args = parser.parse_args(argv)
    totals: Counter[str] = Counter()
    bad = 0
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        report = trio.run(
            functools.partial(run_nemesis, seed, nodes=args.nodes, duration=args.minutes * 60),
            clock=trio.testing.MockClock(autojump_threshold=0),
        )
        totals.update(report.faults)
        totals["failed_verdicts"] += report.failed_verdicts
        totals["broadcasts"] += report.broadcasts_sent
        totals["deliveries"] += report.deliveries
        totals["quiet_expected"] += report.quiet_expected
        totals["quiet_missed"] += report.quiet_missed
        bad += not report.ok
        print(f"seed={seed} ok={report.ok} faults={dict(report.faults)} "
              f"violations={report.violations[:3]}", flush=True)  # fmt: skip
    print(f"seeds={args.seeds} failing={bad} totals={dict(totals)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
