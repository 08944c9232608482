"""The six scenarios of the side-by-side benchmark, one function each.

How this works. Every scenario takes a ``System`` and a ``Settings`` and returns plain
dicts (JSON-ready). Each builds its cluster(s) in ``try`` / ``finally: close()``, so every
process is killed whatever happens; every wait has a deadline. Scenario 1 (detection)
also hosts scenarios 2 and 6 in its first repetition, on the same converged cluster, to
save a cluster start per system and size: the idle-cost window (2) runs first, then the
metadata update (6, N = 32 only), then the 10 s steady period and the kill -9 of
scenario 1.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from cluster import LocalCluster, NetNamespace
from systems import HERE, SWIMGOSSIP_PYTHON, System


@dataclass(frozen=True)
class Settings:
    quick: bool
    detect_sizes: tuple[int, ...] = (8, 32)
    repetitions: int = 5
    steady_s: float = 10.0
    cost_window_s: float = 60.0
    detect_timeout_s: float = 60.0
    loss_n: int = 16
    loss_levels: tuple[int, ...] = (10, 25)
    loss_s: float = 180.0
    stall_n: int = 16
    stall_s: float = 180.0
    sim_sizes: tuple[int, ...] = (1000, 10000)
    sim_timeout_s: float = 420.0
    dissemination_n: int = 32

    @classmethod
    def full(cls) -> Settings:
        return cls(quick=False)

    @classmethod
    def quick_run(cls) -> Settings:
        return cls(
            quick=True,
            repetitions=2,
            cost_window_s=20.0,
            loss_s=45.0,
            stall_s=40.0,
            sim_timeout_s=300.0,
        )


def summary(values: list[float]) -> dict[str, Any]:
    """median / min / max / count of the values (None-free)."""
    if not values:
        return {"median": None, "min": None, "max": None, "count": 0}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "count": len(values),
    }


def _first_per_observer(
    events: list[Any], kind: str, member: str, since: float
) -> dict[str, float]:
    first: dict[str, float] = {}
    for event in events:
        if event.kind == kind and event.member == member and event.ts >= since:
            first.setdefault(event.observer, event.ts)
    return first


def _cost_window(cluster: LocalCluster, seconds: float) -> dict[str, Any]:
    """CPU s per agent per minute and RSS over an idle window (scenario 2)."""
    agents = list(cluster.agents.values())
    before = {a.name: a.cpu_seconds() for a in agents}
    start = time.time()
    time.sleep(seconds)
    elapsed = time.time() - start
    per_minute = [(a.cpu_seconds() - before[a.name]) / elapsed * 60 for a in agents]
    rss = [a.rss_mb() for a in agents]
    return {
        "window_s": elapsed,
        "cpu_s_per_agent_min": statistics.mean(per_minute),
        "cpu_s_per_agent_min_max": max(per_minute),
        "rss_mb_median": statistics.median(rss),
        "rss_mb_max": max(rss),
    }


def _dissemination(cluster: LocalCluster, timeout: float) -> dict[str, Any]:
    """Scenario 6: one metadata update on n01 until every other agent reports it."""
    system = cluster.system
    if not system.can_update_meta:
        return {"skipped": system.why_no_meta}
    origin = cluster.agents["n01"]
    others = set(cluster.agents) - {origin.name}
    start = time.time()
    system.update_meta(origin.pid, origin.port, cluster.netns.prefix if cluster.netns else [])
    deadline = start + timeout
    reached: dict[str, float] = {}
    while time.time() < deadline and len(reached) < len(others):
        reached = _first_per_observer(cluster.events(start), "updated", origin.name, start)
        reached.pop(origin.name, None)
        time.sleep(0.05)
    times = sorted(t - start for t in reached.values())
    return {
        "reached": len(times),
        "of": len(others),
        "first_s": times[0] if times else None,
        "last_s": times[-1] if len(times) == len(others) else None,
    }


def detection(system: System, settings: Settings, log: Any) -> dict[str, Any]:
    """Scenarios 1, 2 and 6 for one system: {N: {...}}."""
    results: dict[str, Any] = {}
    for n in settings.detect_sizes:
        runs: list[dict[str, Any]] = []
        extras: dict[str, Any] = {}
        for rep in range(settings.repetitions):
            cluster = LocalCluster(system, n)
            run: dict[str, Any] = {"rep": rep}
            try:
                cluster.start()
                converge = cluster.wait_converged(timeout=30 + 2 * n)
                run["join_converge_s"] = converge
                if converge is None:
                    run["error"] = "did not converge"
                    log(f"  {system.name} N={n} rep {rep}: did not converge")
                    runs.append(run)
                    continue
                time.sleep(3.0)
                if rep == 0:
                    extras["cost"] = _cost_window(cluster, settings.cost_window_s)
                    log(f"  {system.name} N={n} idle cost: {extras['cost']}")
                    if n == settings.dissemination_n:
                        extras["dissemination"] = _dissemination(cluster, 30.0)
                        log(f"  {system.name} N={n} dissemination: {extras['dissemination']}")
                time.sleep(settings.steady_s)
                victim = f"n{n - 1:02d}"
                survivors = set(cluster.agents) - {victim}
                killed = time.time()
                cluster.signal(victim, signal.SIGKILL)
                deadline = killed + settings.detect_timeout_s
                failed: dict[str, float] = {}
                while time.time() < deadline:
                    failed = _first_per_observer(cluster.events(killed), "failed", victim, killed)
                    if survivors <= failed.keys():
                        break
                    time.sleep(0.1)
                events = cluster.events(killed)
                suspected = [e.ts for e in events if e.kind == "suspected" and e.member == victim]
                wrong = [e for e in events if e.kind == "failed" and e.member != victim]
                reported = [failed[s] - killed for s in survivors if s in failed]
                run.update(
                    first_failed_s=min(reported) if reported else None,
                    last_failed_s=max(reported) if len(reported) == len(survivors) else None,
                    reported=len(reported),
                    survivors=len(survivors),
                    first_suspected_s=min(suspected) - killed if suspected else None,
                    false_failed=len(wrong),
                )
                log(
                    f"  {system.name} N={n} rep {rep}: join {converge:.2f} s, "
                    f"failed first {run['first_failed_s']} last {run['last_failed_s']} "
                    f"({len(reported)}/{len(survivors)}), suspected {run['first_suspected_s']}"
                )
            except Exception as exc:  # a broken run is reported, not fatal
                run["error"] = f"{type(exc).__name__}: {exc}"
                log(f"  {system.name} N={n} rep {rep}: {run['error']}")
            finally:
                cluster.close()
            runs.append(run)

        def column(key: str, runs: list[dict[str, Any]] = runs) -> dict[str, Any]:
            return summary([r[key] for r in runs if r.get(key) is not None])

        results[str(n)] = {
            "runs": runs,
            "last_failed_s": column("last_failed_s"),
            "first_failed_s": column("first_failed_s"),
            "first_suspected_s": column("first_suspected_s"),
            "join_converge_s": column("join_converge_s"),
            "missed": sum(1 for r in runs if r.get("last_failed_s") is None),
            **extras,
        }
    return results


def _verdicts(cluster: LocalCluster, start: float, end: float, bad: str | None) -> dict[str, Any]:
    events = [e for e in cluster.events(start) if e.ts <= end]
    failed = [e for e in events if e.kind == "failed"]
    return {
        "failed_verdicts": len(failed),
        "failed_about_healthy": sum(1 for e in failed if e.member != bad),
        "failed_about_healthy_by_stalled": sum(
            1 for e in failed if e.member != bad and e.observer == bad
        ),
        "failed_about_stalled": sum(1 for e in failed if e.member == bad),
        "members_declared_failed": len({e.member for e in failed}),
        "suspicions": sum(1 for e in events if e.kind == "suspected"),
        "suspicions_about_stalled": sum(
            1 for e in events if e.kind == "suspected" and e.member == bad
        ),
    }


def loss(system: System, settings: Settings, log: Any) -> dict[str, Any]:
    """Scenario 3: N agents in a fresh namespace, nftables dropping p % of packets."""
    results: dict[str, Any] = {}
    for percent in settings.loss_levels:
        outcome: dict[str, Any] = {}
        try:
            with NetNamespace(f"sgbench{os.getpid()}") as ns:
                cluster = LocalCluster(system, settings.loss_n, netns=ns)
                try:
                    cluster.start()
                    converge = cluster.wait_converged(timeout=30 + 2 * settings.loss_n)
                    if converge is None:
                        outcome["error"] = "did not converge before the loss was applied"
                    else:
                        time.sleep(2.0)
                        ns.set_loss(percent)
                        start = time.time()
                        time.sleep(settings.loss_s)
                        end = time.time()
                        outcome = _verdicts(cluster, start, end, None)
                        outcome["dropped"] = ns.dropped()
                        outcome["duration_s"] = end - start
                finally:
                    cluster.close()
        except Exception as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        log(f"  {system.name} loss {percent}%: {outcome}")
        results[str(percent)] = outcome
    return results


def stalls(system: System, settings: Settings, log: Any) -> dict[str, Any]:
    """Scenario 4: n01 SIGSTOPped for 3 s every 10 s; verdicts until 10 s after the last."""
    cluster = LocalCluster(system, settings.stall_n)
    outcome: dict[str, Any] = {}
    try:
        cluster.start()
        if cluster.wait_converged(timeout=30 + 2 * settings.stall_n) is None:
            return {"error": "did not converge"}
        time.sleep(2.0)
        start = time.time()
        cycles = int(settings.stall_s // 10)
        for cycle in range(cycles):
            cluster.signal("n01", signal.SIGSTOP)
            try:
                time.sleep(3.0)
            finally:
                cluster.signal("n01", signal.SIGCONT)
            time.sleep(max(0.0, start + 10.0 * (cycle + 1) - time.time()))
        time.sleep(10.0)
        end = time.time()
        outcome = _verdicts(cluster, start, end, "n01")
        outcome["stalls"] = cycles
    except Exception as exc:
        outcome["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        cluster.close()
    log(f"  {system.name} stalls: {outcome}")
    return outcome


def simulation(settings: Settings, log: Any) -> dict[str, Any]:
    """Scenario 5 (swimgossip only), each size in a child process with a time limit."""
    results: dict[str, Any] = {}
    for n in settings.sim_sizes:
        started = time.time()
        try:
            done = subprocess.run(
                [str(SWIMGOSSIP_PYTHON), str(HERE / "sim_dissemination.py"), str(n)],
                capture_output=True,
                text=True,
                timeout=settings.sim_timeout_s,
            )
            if done.returncode == 0:
                results[str(n)] = json.loads(done.stdout.strip().splitlines()[-1])
            else:
                results[str(n)] = {"error": done.stderr.strip().splitlines()[-1:]}
        except subprocess.TimeoutExpired:
            results[str(n)] = {
                "skipped": f"stopped after {settings.sim_timeout_s:.0f} s wall "
                "(setting up 10,000 full member tables alone takes minutes)"
            }
        results[str(n)]["wall_s"] = time.time() - started
        log(f"  simulation N={n}: {results[str(n)]}")
    return results
