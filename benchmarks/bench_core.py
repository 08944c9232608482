"""Core benchmarks: simulator speed, packet pipeline throughput, protocol figures.

Reported, never asserted: this is not a test. Run ``make bench`` (or ``make bench-quick``),
i.e. ``python benchmarks/bench_core.py [--quick] [--json FILE]``; ``--profile`` prints a
cProfile of the simulator at 1,000 nodes instead. docs/benchmarks.md holds a recorded run.

Every loop is bounded (a fixed count, a fixed virtual window) and every seed is fixed.
Each simulator size runs in its own child process, so its peak RSS is its own and the
parent can stop it if it grows past ``--max-rss-gb`` or runs past ``--max-seconds``.

Push-pull timing on the LAN preset: each node's first full-state exchange fires at a random
time in [0, 30 s); later ones are ``push_pull_interval(30 s, N)`` apart (90 s at 100 nodes,
180 s at 1,000, 300 s at 10,000). So the first 30 virtual seconds carry one full-state
exchange per node, and the following minute carries none: the two phases are measured apart.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import time
from typing import Any

from swimgossip.core import codec
from swimgossip.core.config import Config
from swimgossip.core.messages import Alive, Dead, Ping, Suspect
from swimgossip.security import Keyring, PacketSigner, SecurityMode, generate_key
from swimgossip.testing.scenario import run_scenario
from swimgossip.testing.simulator import Simulation

SEED = 1
SCENARIO_SEED = 7
PUSH_PULL_PHASE_END = 30.0  # LAN: every first push-pull fires before this (virtual s)
TARGET_VIRTUAL_PER_WALL_1000 = 1.0
TARGET_PACKETS_PER_S = 50_000
CHUNK = 0.1  # virtual seconds between budget checks inside a window

# ---------------------------------------------------------------------------- helpers


def rss_mb() -> float:
    """Current resident set size of this process, in MB (from /proc, else peak RSS)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_model() -> str:
    """The CPU's ``model name`` from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


# ---------------------------------------------------------------------------- 1. simulator


def _counts(sim: Simulation) -> tuple[int, int]:
    datagrams = sum(node.sent_datagrams for node in sim.nodes.values())
    return datagrams, sim.counters["streams_push_pull"]


def _window(sim: Simulation, until: float, deadline: float, name: str) -> dict[str, Any]:
    """Run the simulation to ``until`` in bounded chunks and time it."""
    start_virtual = sim.now
    datagrams0, push_pulls0 = _counts(sim)
    wall0 = time.perf_counter()
    cpu0 = time.process_time()
    steps = int((until - start_virtual) / CHUNK) + 2  # bound on the loop
    for _ in range(steps):
        if sim.now >= until:
            break
        if time.perf_counter() > deadline:
            break
        sim.run_until(min(until, sim.now + CHUNK))
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    virtual = sim.now - start_virtual
    datagrams1, push_pulls1 = _counts(sim)
    return {
        "window": name,
        "from_virtual_s": round(start_virtual, 3),
        "virtual_s": round(virtual, 3),
        "planned_virtual_s": round(until - start_virtual, 3),
        "wall_s": round(wall, 3),
        "wall_per_virtual": round(wall / virtual, 4) if virtual else None,
        "virtual_per_wall": round(virtual / wall, 3) if wall else None,
        # CPU time too: on a shared machine the wall time also measures the others' load.
        "cpu_s": round(cpu, 3),
        "virtual_per_cpu": round(virtual / cpu, 3) if cpu else None,
        "datagrams": datagrams1 - datagrams0,
        "push_pulls": push_pulls1 - push_pulls0,
        "complete": sim.now >= until,
        "rss_mb": round(rss_mb(), 1),
    }


def sim_case(
    nodes: int, *, warmup: float, phase_window: float, after_window: float, budget: float
) -> dict:
    """One simulator size: setup, warm-up, then the push-pull phase and the phase after."""
    deadline = time.perf_counter() + budget
    result: dict[str, Any] = {"nodes": nodes, "preset": "lan", "seed": SEED}
    wall0 = time.perf_counter()
    sim = Simulation(config=Config.lan(), seed=SEED)
    prejoined = nodes >= 1000
    sim.add_cluster(nodes, prejoined=prejoined)
    if not prejoined:
        result["converged"] = sim.run_until_converged(timeout=60.0, step=0.25)
    result["prejoined"] = prejoined
    result["setup_s"] = round(time.perf_counter() - wall0, 3)
    result["setup_virtual_s"] = round(sim.now, 3)
    result["rss_after_setup_mb"] = round(rss_mb(), 1)

    # Warm-up: a little virtual time so every probe timer is running.
    warm_until = sim.now + warmup
    result["warmup"] = _window(sim, warm_until, deadline, "warm-up")
    windows = []
    # Phase 1: inside the first 30 s (one full-state exchange per node spread over it).
    phase_end = min(PUSH_PULL_PHASE_END + 1.5, sim.now + phase_window)
    phase = _window(sim, phase_end, deadline, "first 30 s (push-pull phase)")
    windows.append(phase)
    # Phase 2: after every first push-pull; skipped if getting there would break the budget.
    reach = max(0.0, PUSH_PULL_PHASE_END + 2.0 - sim.now)
    estimate = reach * (phase["wall_per_virtual"] or 0.0) + after_window * 1.0
    left = deadline - time.perf_counter()
    if not phase["complete"]:
        result["after_skipped"] = "the push-pull phase window already used the time budget"
    elif after_window <= 0:
        result["after_skipped"] = "not requested for this size"
    elif estimate > left:
        result["after_skipped"] = (
            f"reaching t={PUSH_PULL_PHASE_END + 2:.0f} s would take ~{reach:.0f} more virtual s"
            f" at {phase['wall_per_virtual']} wall s each (~{estimate:.0f} s), over the"
            f" {left:.0f} s left of the budget"
        )
    else:
        sim.run_until(PUSH_PULL_PHASE_END + 2.0)
        windows.append(
            _window(sim, sim.now + after_window, deadline, "after 30 s (no push-pull due)")
        )
    result["windows"] = windows
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    result["total_wall_s"] = round(time.perf_counter() - wall0, 3)
    return result


def run_sim_child(
    nodes: int, args: argparse.Namespace, warmup: float, phase_window: float, after_window: float
) -> dict:
    """Run :func:`sim_case` in a child process, watching its memory and time."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--child-nodes",
        str(nodes),
        "--child-warmup",
        str(warmup),
        "--child-phase",
        str(phase_window),
        "--child-after",
        str(after_window),
        "--child-budget",
        str(args.max_seconds * 0.75),  # margin: a chunk at 10k nodes is slow
    ]
    limit_mb = args.max_rss_gb * 1024
    start = time.perf_counter()
    peak = 0.0
    reason = None
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
        polls = int(args.max_seconds / 0.25) + 1
        for _ in range(polls):
            if child.poll() is not None:
                break
            peak = max(peak, child_rss_mb(child.pid))
            if peak > limit_mb:
                reason = f"RSS passed {args.max_rss_gb} GB ({peak:.0f} MB)"
                break
            time.sleep(0.25)
        else:
            reason = f"took longer than {args.max_seconds:.0f} s"
        if reason is not None:
            child.kill()
            child.wait()
            return {
                "nodes": nodes,
                "skipped": reason,
                "wall_s": round(time.perf_counter() - start, 1),
                "peak_rss_mb_seen": round(peak, 1),
            }
        output = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        return {"nodes": nodes, "skipped": f"child failed with code {child.returncode}"}
    return json.loads(output.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- 2. pipeline


def typical_packet() -> list[Any]:
    """A probe as it goes out on a busy LAN: a ping plus three piggybacked gossip messages."""
    return [
        Ping(seq=123_456, target="node-0042"),
        Alive(name="node-0117", address="10.0.1.117:7946", incarnation=3, meta=b"role=web;dc=a"),
        Suspect(name="node-0503", incarnation=7, source="node-0042"),
        Dead(name="node-0999", incarnation=2, source="node-0311"),
    ]


def _best_rate(function: Any, count: int, repeats: int = 3) -> float:
    """Best of ``repeats`` runs of ``function(count)``: operations per second."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function(count)
        best = min(best, time.perf_counter() - start)
    return count / best


def pipeline(count: int) -> dict[str, Any]:
    messages = typical_packet()
    signer = PacketSigner(Keyring([generate_key()]), SecurityMode.REQUIRED)
    encoded = codec.encode_packet(messages)
    signed = signer.wrap(encoded)
    assert codec.decode_packet(signer.unwrap(signed)) == messages
    timings: list[float] = []
    encode, decode, wrap, unwrap = (
        codec.encode_packet,
        codec.decode_packet,
        signer.wrap,
        signer.unwrap,
    )

    def run_encode(n: int) -> None:
        for _ in range(n):
            encode(messages)

    def run_sign(n: int) -> None:
        for _ in range(n):
            wrap(encoded)

    def run_verify(n: int) -> None:
        # The replay guard refuses a packet seen before, so verify distinct packets, as a
        # receiver does (signed outside the timed loop; the receiver is a fresh signer
        # each round so its replay cache starts empty).
        packets = [wrap(encoded) for _ in range(n)]
        receiver = PacketSigner(signer.keyring, SecurityMode.REQUIRED).unwrap
        start = time.perf_counter()
        for packet in packets:
            receiver(packet)
        timings.append(time.perf_counter() - start)

    def run_decode(n: int) -> None:
        for _ in range(n):
            decode(encoded)

    def run_all(n: int) -> None:
        for _ in range(n):
            decode(unwrap(wrap(encode(messages))))

    stages = {
        "encode": run_encode,
        "sign": run_sign,
        "verify": run_verify,
        "decode": run_decode,
        "encode+sign+verify+decode": run_all,
    }
    rates = {name: round(_best_rate(function, count)) for name, function in stages.items()}
    rates["verify"] = round(count / min(timings))  # the timed part only, not the signing
    return {
        "count": count,
        # Other jobs share the cores: record how busy they were (1, 5, 15-minute averages).
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "repeats": 3,
        "packet_bytes": len(encoded),
        "signed_bytes": len(signed),
        "messages_per_packet": len(messages),
        "packets_per_s": rates,
        "us_per_packet": {name: round(1e6 / rate, 2) for name, rate in rates.items()},
    }


# ---------------------------------------------------------------------------- 3. protocol


def protocol(quick: bool) -> dict[str, Any]:
    crash = run_scenario(nodes=100, kill=1, seed=SCENARIO_SEED)
    duration = 120.0 if quick else 300.0
    lossy = run_scenario(nodes=100, kill=0, loss=0.1, duration=duration, seed=SCENARIO_SEED)
    return {
        "crash": {
            "scenario": "run_scenario(nodes=100, kill=1, seed=7)",
            "detection_s": crash.detection_s,
            "first_suspicion_s": crash.first_suspicion_s,
            "dissemination_s": crash.dissemination_s,
            "false_positives": crash.false_positives,
            "messages_per_node_per_s": crash.messages_per_node_per_s,
            "bytes_per_node_per_s": crash.bytes_per_node_per_s,
            "wall_s": crash.wall_s,
        },
        "loss": {
            "scenario": f"run_scenario(nodes=100, kill=0, loss=0.1, duration={duration:g}, seed=7)",
            "duration_s": duration,
            "false_positives": lossy.false_positives,
            "dissemination_s": lossy.dissemination_s,
            "messages_per_node_per_s": lossy.messages_per_node_per_s,
            "wall_s": lossy.wall_s,
        },
    }


# ---------------------------------------------------------------------------- profile


def profile(nodes: int = 1000, seconds: float = 3.0, top: int = 25) -> str:
    """cProfile ``seconds`` virtual seconds of a prejoined cluster, in both phases."""
    sim = Simulation(config=Config.lan(), seed=SEED)
    sim.add_cluster(nodes, prejoined=True)
    sim.run_until(2.0)
    out = io.StringIO()
    for title, until in (
        (f"first 30 s (push-pull phase), t=2..{2 + seconds:g}", 2.0 + seconds),
        (f"after 30 s (no push-pull due), t=32..{32 + seconds:g}", 32.0 + seconds),
    ):
        sim.run_until(until - seconds)
        profiler = cProfile.Profile()
        profiler.enable()
        sim.run_until(until)
        profiler.disable()
        out.write(f"\n=== {nodes} nodes, {title} ===\n")
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# ---------------------------------------------------------------------------- report


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_report(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(f"machine: {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}")
    print("\n1. Simulator speed (LAN preset, seed 1)")
    header = (
        f"{'N':>6} {'setup s':>8} {'window':<30} {'virt s':>6} {'wall s':>8}"
        f" {'wall/virt':>9} {'virt/wall':>9} {'pushpull':>8} {'RSS MB':>8}"
    )
    print(header)
    for case in report["simulator"]:
        if "skipped" in case:
            print(f"{case['nodes']:>6} skipped: {case['skipped']}")
            continue
        for window in case["windows"]:
            print(
                f"{case['nodes']:>6} {case['setup_s']:>8.2f} {window['window']:<30}"
                f" {window['virtual_s']:>6.1f} {window['wall_s']:>8.2f}"
                f" {_fmt(window['wall_per_virtual'], 4):>9} {_fmt(window['virtual_per_wall']):>9}"
                f" {window['push_pulls']:>8} {case['peak_rss_mb']:>8.0f}"
            )
            if not window["complete"]:
                print(f"{'':>6} (partial: {window['planned_virtual_s']} virtual s planned)")
        if "after_skipped" in case:
            print(f"{'':>6} after 30 s skipped: {case['after_skipped']}")
    p = report["pipeline"]
    print(
        f"\n2. Pipeline ({p['messages_per_packet']} messages, {p['packet_bytes']} B,"
        f" {p['signed_bytes']} B signed; best of 3 x {p['count']:,};"
        f" load average {' / '.join(map(str, p['load_average']))})"
    )
    for stage, rate in p["packets_per_s"].items():
        print(f"   {stage:<28} {rate:>10,} packets/s  {p['us_per_packet'][stage]:>7.2f} us")
    c, lossy = report["protocol"]["crash"], report["protocol"]["loss"]
    d = c["detection_s"]
    print("\n3. Protocol (seed 7)")
    print(f"   {c['scenario']}")
    print(
        f"     detection first/median/last: {_fmt(d['first'])} / {_fmt(d['median'])} /"
        f" {_fmt(d['last'])} s (undetected {d['undetected']});"
        f" first suspicion {_fmt(c['first_suspicion_s'])} s;"
        f" dissemination {_fmt(c['dissemination_s'])} s"
    )
    print(f"   {lossy['scenario']}")
    print(f"     false positives: {lossy['false_positives']}")
    print("\nTargets")
    for target in report["targets"]:
        state = "met" if target["met"] else ("missed" if target["met"] is False else "n/a")
        print(f"   {target['name']}: {target['value']} -> {state}")


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for case in report["simulator"]:
        if case.get("nodes") != 1000 or "windows" not in case:
            continue
        for window in case["windows"]:
            value = window["virtual_per_wall"]
            out.append(
                {
                    "name": f">= 1 virtual s per wall s at 1,000 nodes, {window['window']}",
                    "value": value,
                    "met": None if value is None else value >= TARGET_VIRTUAL_PER_WALL_1000,
                }
            )
    rate = report["pipeline"]["packets_per_s"]["encode+sign+verify+decode"]
    out.append(
        {
            "name": ">= 50,000 packets/s encode+sign+verify+decode",
            "value": rate,
            "met": rate >= TARGET_PACKETS_PER_S,
        }
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 nodes, fewer reps")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--profile", action="store_true", help="cProfile 1,000 nodes and exit")
    parser.add_argument("--max-rss-gb", type=float, default=12.0, help="per simulator size")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="per simulator size")
    parser.add_argument("--child-nodes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-warmup", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--child-phase", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--child-after", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--child-budget", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child_nodes is not None:
        result = sim_case(
            args.child_nodes,
            warmup=args.child_warmup,
            phase_window=args.child_phase,
            after_window=args.child_after,
            budget=args.child_budget,
        )
        print(json.dumps(result))
        return 0
    if args.profile:
        print(profile())
        return 0

    # (nodes, warm-up, push-pull phase window, after-30-s window), in virtual seconds.
    # 10,000 nodes: a short window; the phase after 30 s is out of reach in the budget.
    sizes = [(100, 2.0, 30.0, 20.0), (1000, 2.0, 30.0, 20.0)]
    if args.quick:
        sizes = [(100, 2.0, 10.0, 10.0), (1000, 2.0, 5.0, 10.0)]
    else:
        sizes.append((10_000, 0.5, 3.0, 3.0))
    report: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    report["simulator"] = []
    for nodes, warmup, phase_window, after_window in sizes:
        print(f"simulating {nodes} nodes...", file=sys.stderr, flush=True)
        case = run_sim_child(nodes, args, warmup, phase_window, after_window)
        report["simulator"].append(case)
    print("pipeline...", file=sys.stderr, flush=True)
    report["pipeline"] = pipeline(50_000 if args.quick else 200_000)
    print("protocol scenarios...", file=sys.stderr, flush=True)
    report["protocol"] = protocol(args.quick)
    report["targets"] = targets(report)
    print_report(report)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=2)
            file.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
