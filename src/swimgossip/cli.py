"""The ``swimgossip`` command (also ``python -m swimgossip``).

Subcommands so far: ``simulate`` runs the deterministic simulator's standard scenario and
prints its report (``--json`` for scripts); ``demo`` runs a built-in default simulation
and explains what it shows. Argument errors exit with status 2 and one clear line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .testing.scenario import PRESETS, ScenarioReport, run_scenario

__all__ = ["main"]


def _pair(text: str, sep: str, kind: type[float] | type[int]) -> tuple[float, float]:
    left, found, right = text.partition(sep)
    if not found:
        raise argparse.ArgumentTypeError(f"expected A{sep}B, got {text!r}")
    try:
        return kind(left), kind(right)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers in {text!r}") from None


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError("loss must be in [0, 1)")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swimgossip", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser("simulate", help="run the deterministic simulator")
    sim.add_argument("--nodes", type=int, default=100, help="cluster size (default 100)")
    sim.add_argument("--kill", type=int, default=1, help="nodes crashed mid-run (default 1)")
    sim.add_argument("--loss", type=_probability, default=0.0, help="datagram loss, 0..1")
    sim.add_argument(
        "--pause-node-every",
        type=lambda t: _pair(t, ":", float),
        metavar="PERIOD:DURATION",
        help="pause one node for DURATION seconds every PERIOD seconds",
    )
    sim.add_argument(
        "--stall-node-every",
        type=lambda t: _pair(t, ":", float),
        metavar="PERIOD:DURATION",
        help="stall one node's receive path (timers still run) periodically",
    )
    sim.add_argument(
        "--partition",
        type=lambda t: tuple(int(x) for x in _pair(t, ":", int)),
        metavar="A:B",
        help="split the first A and next B nodes apart for half the run",
    )
    sim.add_argument("--duration", type=float, default=60.0, help="seconds after the crash")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--preset", choices=sorted(PRESETS), default="lan")
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    commands.add_parser("demo", help="a short guided simulation")
    return parser


def _print_report(report: ScenarioReport) -> None:
    d = report.detection_s
    print(f"nodes            {report.nodes} ({report.preset} preset, seed {report.seed})")
    print(f"converged after  {report.converged_s} s (joining through the protocol)")
    print(f"killed           {', '.join(report.killed) or '-'}")
    print(f"first suspicion  {report.first_suspicion_s} s after the crash")
    print(
        f"detected failed  first {d['first']} s, median {d['median']} s, last {d['last']} s"
        f" ({d['undetected']} survivors never did)"
    )
    print(f"false positives  {report.false_positives}")
    print(f"dissemination    {report.dissemination_s} s for one metadata update to reach all")
    print(
        f"cost             {report.messages_per_node_per_s} datagrams and "
        f"{report.bytes_per_node_per_s} bytes per node per second"
    )
    print(f"time             {report.virtual_s} virtual s in {report.wall_s} wall s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        print("swimgossip demo: 32 simulated nodes on the LAN preset, one crash, 10% loss.")
        print("Everything runs in virtual time through the real protocol engine.\n")
        _print_report(run_scenario(nodes=32, kill=1, loss=0.1, duration=30.0, seed=1))
        return 0
    if args.nodes < 2 or not 0 <= args.kill <= args.nodes - 2:
        print("swimgossip: error: need --nodes >= 2 and 0 <= --kill <= nodes - 2", file=sys.stderr)
        return 2
    report = run_scenario(
        nodes=args.nodes,
        kill=args.kill,
        loss=args.loss,
        pause_every=args.pause_node_every,
        stall_every=args.stall_node_every,
        partition=args.partition,
        duration=args.duration,
        seed=args.seed,
        preset=args.preset,
    )
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        _print_report(report)
    return 0
