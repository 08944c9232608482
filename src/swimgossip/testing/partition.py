"""Partition measurements in virtual time: how long a cut takes to be seen, and to heal.

``measure_partition`` forms a cluster in the deterministic simulator, cuts it (two sides,
both ways; or one way only), and reports, from the events every node emitted:

* ``a_sees_b_failed_s``: seconds from the cut until every node of side A has declared
  every node of side B failed (None if that never happened during the cut);
  ``b_sees_a_failed_s`` the other way;
* ``same_side_failures``: failed verdicts about a member on the observer's own side (a
  false failure: that member was reachable all along);
* ``heal_s``: seconds from the end of the cut until every node holds all nodes alive.

It is the harness behind the partition figures of docs/benchmarks.md and the partition
tests; ``python -m swimgossip.testing.partition`` prints one run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import attrs

from ..core.config import PRESETS, Config
from ..core.events import MemberFailed
from .simulator import Simulation

__all__ = ["PartitionReport", "measure_partition"]


@attrs.frozen(kw_only=True)
class PartitionReport:
    """The figures of one partition run (see the module comment)."""

    side_a: list[str]
    side_b: list[str]
    one_way: bool
    a_sees_b_failed_s: float | None
    b_sees_a_failed_s: float | None
    same_side_failures: int
    heal_s: float | None
    seed: int

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready values."""
        return attrs.asdict(self)


def _all_failed(
    sim: Simulation, observers: Sequence[str], targets: Sequence[str], since: float
) -> float | None:
    """When the last (observer, target) pair got its first failed verdict, or None."""
    first: dict[tuple[str, str], float] = {}
    for record in sim.events:
        event = record.event
        if record.time < since or type(event) is not MemberFailed:
            continue
        pair = (record.observer, event.member.name)
        if pair[0] in observers and pair[1] in targets:
            first.setdefault(pair, record.time)
    if len(first) < len(observers) * len(targets):
        return None
    return max(first.values()) - since


def measure_partition(
    *,
    config: Config | None = None,
    nodes: int = 16,
    side_a: int | None = None,
    cut_s: float = 60.0,
    one_way: bool = False,
    heal_within: float = 120.0,
    seed: int = 1,
) -> PartitionReport:
    """Cut a simulated cluster of ``nodes`` into A (the first ``side_a``, default half)
    and B for ``cut_s`` seconds, then heal it; see the module comment for the figures.

    With ``one_way``, only datagrams from A to B are lost (B's reach A), and streams fail
    both ways (a stream needs both directions).
    """
    config = Config.lan() if config is None else config
    sim = Simulation(config=config, seed=seed)
    sim.add_cluster(nodes)
    if not sim.run_until_converged(60.0):
        raise AssertionError(f"the cluster did not form (seed={seed})")
    sim.run_for(5.0)
    names = sorted(sim.nodes, key=lambda n: int(n[1:]))
    split = nodes // 2 if side_a is None else side_a
    a, b = names[:split], names[split:]
    cut_at = sim.now
    if one_way:
        for src in a:
            for dst in b:
                sim.set_loss(1.0, src=src, dst=dst)
    else:
        sim.partition(a, b)
    sim.run_for(cut_s)
    same_side = 0
    side = {name: 0 for name in a} | {name: 1 for name in b}
    for record in sim.events:
        event = record.event
        if (
            record.time >= cut_at
            and type(event) is MemberFailed
            and side[record.observer] == side[event.member.name]
        ):
            same_side += 1
    a_sees_b = _all_failed(sim, a, b, cut_at)
    b_sees_a = _all_failed(sim, b, a, cut_at)
    if one_way:
        for src in a:
            for dst in b:
                sim.set_loss(0.0, src=src, dst=dst)
    else:
        sim.heal()
    healed_at = sim.now
    heal_s = sim.now - healed_at if sim.run_until_converged(heal_within, step=0.05) else None
    return PartitionReport(
        side_a=a,
        side_b=b,
        one_way=one_way,
        a_sees_b_failed_s=a_sees_b,
        b_sees_a_failed_s=b_sees_a,
        same_side_failures=same_side,
        heal_s=heal_s,
        seed=seed,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Print one partition run as JSON (``python -m swimgossip.testing.partition``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="lan")
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--side-a", type=int, default=None)
    parser.add_argument("--cut", type=float, default=60.0)
    parser.add_argument("--one-way", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    report = measure_partition(
        config=PRESETS[args.preset](),
        nodes=args.nodes,
        side_a=args.side_a,
        cut_s=args.cut,
        one_way=args.one_way,
        seed=args.seed,
    )
    print(json.dumps(report.as_dict()))


if __name__ == "__main__":
    main()
