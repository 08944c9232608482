"""``swimgossip simulate``: the standard simulated scenario, its report, progress and plot.

How this works. The report is ``testing.scenario.run_scenario``'s, printed as text or as
one JSON object (``--json``; its keys are a stable interface). While it runs, and only when
stderr is a terminal, a progress line on stderr shows the virtual time reached
(``run_scenario`` reports progress if it accepts ``progress``; otherwise the line shows
the wall time elapsed, since the scenario gives no hook to read its clock).

``--plot FILE.png`` (needs the ``plot`` extra: matplotlib) draws two figures from a
companion run with the same size, preset, seed and loss (``trace_run``): the
dissemination curve (fraction of running nodes holding one metadata update vs seconds
since it was made) and the distribution of detection times (seconds from a crash until
each survivor declared the crashed node failed). The companion run has no pauses, stalls
or partition: those are the report's.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from ..core.config import PRESETS
from ..core.events import MemberFailed, MemberUpdated

if TYPE_CHECKING:  # the simulator loads when it runs, not when `swimgossip agent` parses flags
    from ..testing.scenario import ScenarioReport

__all__ = ["Trace", "add_simulate_arguments", "run_simulate", "trace_run"]

#: Progress is drawn only for runs that last longer than this (wall seconds).
PROGRESS_AFTER = 1.0


def _pair(text: str, sep: str, kind: type[float] | type[int]) -> tuple[float, float]:
    left, found, right = text.partition(sep)
    if not found:
        raise argparse.ArgumentTypeError(f"expected A{sep}B, got {text!r}")
    try:
        return kind(left), kind(right)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers in {text!r}") from None


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError("loss must be in [0, 1)")
    return value


def add_simulate_arguments(sim: argparse.ArgumentParser) -> None:
    """The flags of ``swimgossip simulate``."""
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
    sim.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also draw the dissemination curve and detection-time distribution "
        "(needs matplotlib: pip install 'swimgossip[plot]')",
    )


def print_report(report: ScenarioReport) -> None:
    """The report as aligned text lines on stdout."""
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


# ---------------------------------------------------------------------- progress


@attrs.define(eq=False)
class Progress:
    """A one-line progress display on a terminal, redrawn from a background thread.

    ``update(fraction)`` sets how far the work is (0..1); without updates the line shows
    a spinner and the wall time elapsed. Nothing is drawn before ``PROGRESS_AFTER``
    seconds, so short runs print nothing. Use as a context manager.
    """

    label: str
    stream: TextIO
    width: int = 30
    _fraction: float | None = None
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _thread: threading.Thread | None = None
    _drawn: bool = False

    def update(self, fraction: float) -> None:
        self._fraction = min(1.0, max(0.0, fraction))

    def __enter__(self) -> Progress:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

    def line(self, elapsed: float) -> str:
        """The progress line after ``elapsed`` wall seconds."""
        fraction = self._fraction
        if fraction is None:
            spinner = "|/-\\"[int(elapsed * 5) % 4]
            return f"{self.label} {spinner} {elapsed:5.1f} s"
        filled = round(self.width * fraction)
        bar = "#" * filled + "." * (self.width - filled)
        return f"{self.label} [{bar}] {fraction:4.0%} {elapsed:5.1f} s"

    def _run(self) -> None:
        start = time.monotonic()
        if self._stop.wait(PROGRESS_AFTER):
            return
        while not self._stop.is_set():
            self.stream.write("\r\x1b[2K" + self.line(time.monotonic() - start))
            self.stream.flush()
            self._drawn = True
            self._stop.wait(0.2)


def _progress(label: str) -> Progress | None:
    return Progress(label, sys.stderr) if sys.stderr.isatty() else None


# ---------------------------------------------------------------------- plot data


@attrs.frozen(kw_only=True)
class Trace:
    """Per-observer times of one run: what ``--plot`` draws.

    ``dissemination`` holds, for each running node that got it, seconds from the metadata update
    until it held it (0 for the updater), sorted; ``detection`` holds, for each
    (crashed node, survivor) pair that detected, seconds from the crash to ``failed``.
    """

    nodes: int
    #: Nodes still running at the end (the crashed ones excluded).
    running: int
    preset: str
    seed: int
    loss: float
    dissemination: list[float]
    detection: list[float]
    undetected: int


def trace_run(
    *,
    nodes: int,
    kill: int,
    loss: float,
    duration: float,
    seed: int,
    preset: str,
    progress: Callable[[float], None] | None = None,
) -> Trace:
    """Run a cluster in the simulator, update one node's metadata, crash ``kill`` nodes
    and record when each node learned of each (see ``Trace``).

    Raises:
        ValueError: ``nodes < 2`` or ``kill`` not in ``0..nodes-2``.
    """
    if nodes < 2 or not 0 <= kill <= nodes - 2:
        raise ValueError("need nodes >= 2 and 0 <= kill <= nodes - 2")
    from ..testing.simulator import Simulation

    sim = Simulation(config=PRESETS[preset](), seed=seed)
    sim.add_cluster(nodes, prejoined=nodes > 200)
    sim.run_until_converged(timeout=120.0, step=0.25)
    sim.set_loss(loss)
    updater, new_meta = "n1", b"plot-update"
    update_at = sim.now + 1.0
    kill_at = update_at + 4.0
    end = kill_at + duration
    start = sim.now
    sim.run_until(update_at)
    sim.update_meta(updater, new_meta)
    sim.run_until(kill_at)
    candidates = [name for name in sim.running() if name not in ("n0", updater)]
    victims = sorted(sim.rng.sample(candidates, min(kill, len(candidates))))
    for victim in victims:
        sim.crash(victim)
    step = max(0.5, (end - sim.now) / 200)
    while sim.now < end:
        sim.run_until(min(end, sim.now + step))
        if progress is not None:
            progress((sim.now - start) / (end - start))

    survivors = set(sim.running())
    got: dict[str, float] = {updater: 0.0}
    failed: dict[tuple[str, str], float] = {}
    for record in sim.events:
        event, observer, at = record.event, record.observer, record.time
        member = event.member
        if type(event) is MemberUpdated and member.name == updater and member.meta == new_meta:
            got.setdefault(observer, at - update_at)
        elif type(event) is MemberFailed and member.name in victims and at >= kill_at:
            failed.setdefault((member.name, observer), at - kill_at)
    failed = {pair: t for pair, t in failed.items() if pair[1] in survivors}
    return Trace(
        nodes=nodes,
        running=len(survivors),
        preset=preset,
        seed=seed,
        loss=loss,
        dissemination=sorted(t for name, t in got.items() if name in survivors),
        detection=sorted(failed.values()),
        undetected=len(victims) * len(survivors) - len(failed),
    )


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, or None if not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_plot(plt: Any, trace: Trace, path: str) -> None:
    """Write the two figures of ``trace`` to ``path`` (PNG)."""
    figure, (spread, detect) = plt.subplots(1, 2, figsize=(11, 4.2))
    times = trace.dissemination
    if times:
        fractions = [(i + 1) / trace.running for i in range(len(times))]
        spread.step(times, fractions, where="post")
    spread.set_xlabel("seconds since the metadata update")
    spread.set_ylabel("fraction of running nodes holding it")
    spread.set_ylim(0, 1.05)
    spread.set_title("dissemination")
    spread.grid(alpha=0.3)
    if trace.detection:
        detect.hist(trace.detection, bins=min(30, max(5, len(trace.detection) // 3)))
    detect.set_xlabel("seconds from crash to 'failed'")
    detect.set_ylabel("verdicts (crashed node, survivor)")
    detect.set_title(f"detection time ({trace.undetected} undetected)")
    detect.grid(alpha=0.3)
    figure.suptitle(
        f"{trace.nodes} nodes, {trace.preset} preset, loss {trace.loss:g}, seed {trace.seed}"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ---------------------------------------------------------------------- the command


def _run_report(args: argparse.Namespace) -> ScenarioReport:
    from ..testing.scenario import run_scenario

    options: dict[str, Any] = {
        "nodes": args.nodes,
        "kill": args.kill,
        "loss": args.loss,
        "pause_every": args.pause_node_every,
        "stall_every": args.stall_node_every,
        "partition": args.partition,
        "duration": args.duration,
        "seed": args.seed,
        "preset": args.preset,
    }
    progress = _progress("simulating")
    if progress is None:
        return run_scenario(**options)
    if "progress" in inspect.signature(run_scenario).parameters:
        options["progress"] = progress.update
    with progress:
        return run_scenario(**options)


def run_simulate(args: argparse.Namespace) -> int:
    """Run ``swimgossip simulate``; returns the exit status."""
    if args.nodes < 2 or not 0 <= args.kill <= args.nodes - 2:
        print(
            "swimgossip simulate: error: need --nodes >= 2 and 0 <= --kill <= nodes - 2",
            file=sys.stderr,
        )
        return 2
    plt = None
    if args.plot is not None:
        plt = _pyplot()
        if plt is None:
            print(
                "swimgossip simulate: error: --plot needs matplotlib; install it with "
                "pip install 'swimgossip[plot]'",
                file=sys.stderr,
            )
            return 2
    report = _run_report(args)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print_report(report)
    if plt is not None:
        progress = _progress("tracing for --plot")
        trace_options: dict[str, Any] = {
            "nodes": args.nodes,
            "kill": args.kill,
            "loss": args.loss,
            "duration": args.duration,
            "seed": args.seed,
            "preset": args.preset,
        }
        if progress is None:
            trace = trace_run(**trace_options)
        else:
            with progress:
                trace = trace_run(**trace_options, progress=progress.update)
        try:
            draw_plot(plt, trace, args.plot)
        except OSError as exc:
            print(f"swimgossip simulate: error: cannot write {args.plot}: {exc}", file=sys.stderr)
            return 1
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0
