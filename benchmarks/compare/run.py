"""Side-by-side benchmark: swimgossip vs Serf, kinship and swim-protocol.

How this works. Installs the peers it can (Serf from Debian, kinship and swim-protocol
each in its own virtualenv under benchmarks/.peers/), says which are unavailable, then
runs each scenario for every available system one after the other (never two clusters
at once: the machine has two cores), writes every figure to
benchmarks/compare/results.json, draws the plots beside docs/benchmarks.md and rewrites
the generated block of its "Side by side" section.

    python benchmarks/compare/run.py            # full: about 85 minutes (five entries)
    python benchmarks/compare/run.py --quick    # quick: about 30 minutes
    python benchmarks/compare/run.py --quick --systems swimgossip,serf --scenarios detection
    python benchmarks/compare/run.py --report-only   # re-render docs from results.json
    python benchmarks/compare/run.py --merge --systems swimgossip --scenarios detection
        # rerun a part and merge it into the last results.json (the rerun is recorded)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # benchmarks/: bench_core

import report
import scenarios
from cluster import available_netns
from systems import ALL_SYSTEMS, PEER_PACKAGES, PEERS, ROOT, install_peers

from bench_core import cpu_model

RESULTS = Path(__file__).resolve().parent / "results.json"
DOCS = ROOT / "docs"
SCENARIOS = ("detection", "loss", "stalls", "simulation")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def machine() -> str:
    model = cpu_model()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs ({model}), {memory:.0f} GB RAM, "
        f"{platform.system()} {platform.release()}, CPython {platform.python_version()}"
    )


def _output(command: list[str]) -> str | None:
    """What ``command`` prints, stripped; None if it cannot run."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def versions() -> dict[str, str]:
    out: dict[str, str] = {"swimgossip": "0.1.0"}
    rev = _output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    if rev:
        dirty = _output(["git", "-C", str(ROOT), "status", "--porcelain", "src"])
        out["swimgossip"] += f" at {rev}{' + uncommitted src changes' if dirty else ''}"
    dpkg = _output(["dpkg-query", "-W", "-f=${Version}", "serf"])
    out["serf"] = f"Debian package {dpkg} (`serf agent`, profile lan)" if dpkg else "?"
    for peer, requirement in PEER_PACKAGES.items():
        if (PEERS / peer / "bin" / "python").exists():
            out[peer] = f"{requirement.split('==')[1]} (PyPI, own virtualenv)"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, shorter")
    parser.add_argument(
        "--systems", help="comma-separated subset of " + ",".join(s.name for s in ALL_SYSTEMS)
    )
    parser.add_argument("--scenarios", help="comma-separated subset of " + ",".join(SCENARIOS))
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/")
    parser.add_argument(
        "--report-only", action="store_true", help="re-render docs from the last results.json"
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="merge what this run measures into the last results.json instead of replacing it",
    )
    args = parser.parse_args(argv)

    if args.report_only:
        results = json.loads(RESULTS.read_text())
        return finish(results, args)

    settings = scenarios.Settings.quick_run() if args.quick else scenarios.Settings.full()
    if args.merge and RESULTS.exists():
        previous = json.loads(RESULTS.read_text()).get("settings")
        if previous != json.loads(json.dumps(asdict(settings))):
            parser.error("--merge: the last results.json was made with other settings")
    chosen = set(args.systems.split(",")) if args.systems else None
    wanted = set(args.scenarios.split(",")) if args.scenarios else set(SCENARIOS)
    started = time.time()
    install_peers(log)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "versions": versions(),
        "settings": asdict(settings),
        "unavailable": {},
        "systems": {},
    }
    systems = []
    for system in ALL_SYSTEMS:
        if chosen is not None and system.name not in chosen:
            continue
        why = system.available()
        if why:
            log(f"{system.name}: UNAVAILABLE: {why}")
            results["unavailable"][system.name] = why
        else:
            systems.append(system)
            results["systems"][system.name] = {}
    netns_problem = available_netns()
    if netns_problem:
        results["loss_skipped"] = (
            f"scenario 3 needs a network namespace with nftables ({netns_problem})"
        )
    try:
        if "detection" in wanted:
            for system in systems:
                log(f"detection / idle cost / dissemination: {system.name}")
                results["systems"][system.name]["detection"] = scenarios.detection(
                    system, settings, log
                )
        if "loss" in wanted and not netns_problem:
            for system in systems:
                log(f"loss: {system.name}")
                results["systems"][system.name]["loss"] = scenarios.loss(system, settings, log)
        if "stalls" in wanted:
            for system in systems:
                log(f"stalls: {system.name}")
                results["systems"][system.name]["stalls"] = scenarios.stalls(system, settings, log)
        if "simulation" in wanted:
            log("simulation (swimgossip only)")
            results["simulation"] = scenarios.simulation(settings, log)
    finally:
        results["wall_minutes"] = (time.time() - started) / 60
        if args.merge and RESULTS.exists():
            results = merged(json.loads(RESULTS.read_text()), results)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        log(f"wrote {RESULTS}")
    return finish(results, args)


def merged(base: dict[str, Any], rerun: dict[str, Any]) -> dict[str, Any]:
    """``base`` with every scenario figure of ``rerun`` put in its place; the rerun is
    listed under ``reruns`` (when, which systems and scenarios, at which versions)."""
    for system, figures in rerun["systems"].items():
        base["systems"].setdefault(system, {}).update(figures)
        base["unavailable"].pop(system, None)
    if "simulation" in rerun:
        base["simulation"] = rerun["simulation"]
    base.setdefault("reruns", []).append(
        {
            "date": rerun["date"],
            "systems": sorted(rerun["systems"]),
            "scenarios": sorted({k for f in rerun["systems"].values() for k in f}),
            "versions": {k: v for k, v in rerun["versions"].items() if k in rerun["systems"]},
            "wall_minutes": rerun["wall_minutes"],
        }
    )
    base["wall_minutes"] += rerun["wall_minutes"]
    return base


def finish(results: dict[str, Any], args: argparse.Namespace) -> int:
    if args.no_docs:
        print(report.render(results))
        return 0
    try:
        results["plots"] = report.plot(results, DOCS)
    except ImportError:
        results["plot_skipped"] = "matplotlib is not installed (pip install -e '.[plot]')"
    report.write_docs(report.render(results), DOCS / "benchmarks.md")
    log("updated docs/benchmarks.md")
    for row in report.targets(results):
        log(" | ".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
