"""The runtime wakes up only for work: an answered probe's timeout costs no wake-up."""

from __future__ import annotations

import trio

from swimgossip import Config
from swimgossip.testing import open_cluster


async def test_an_idle_node_runs_about_one_timer_per_probe(autojump_clock: object) -> None:
    config = Config.lan()
    with trio.fail_after(600.0):
        async with open_cluster(4, seed=3, config=config) as cluster:
            await cluster.wait_converged(timeout=30.0)
            await trio.sleep(40.0)  # let the join news finish gossiping
            before = {node.name: node.metrics() for node in cluster.nodes}
            await trio.sleep(60.0)
            for node in cluster.nodes:
                after, earlier = node.metrics(), before[node.name]
                probes = after["probes"] - earlier["probes"]
                run = after["timers_run"] - earlier["timers_run"]
                dropped = after["timers_dropped_stale"] - earlier["timers_dropped_stale"]
                assert after["probes_failed"] == earlier["probes_failed"]
                assert probes >= 50
                # Each answered probe leaves a stale timeout behind: dropped, not run.
                assert dropped >= probes - 1
                # Run: the probe ticks, plus a push-pull or two and the odd gossip round.
                assert run <= probes + 8, (node.name, run, probes)
                # No member holds state: no state exchange, and no timer for one.
                started = after.get("streams_out_state", 0) - earlier.get("streams_out_state", 0)
                assert started == 0, (node.name, started)


async def test_an_engine_error_on_a_datagram_is_counted_and_the_reader_goes_on(
    autojump_clock: object,
) -> None:
    from swimgossip.core.inputs import DatagramReceived

    with trio.fail_after(600.0):
        async with open_cluster(3, seed=4, config=Config.lan()) as cluster:
            await cluster.wait_converged(timeout=30.0)
            node = cluster.nodes[0]
            engine = node._engine
            handle = engine.handle
            failures = [3]  # the next three datagrams fail inside the engine

            def flaky(item: object, now: float) -> object:
                if type(item) is DatagramReceived and failures[0] > 0:
                    failures[0] -= 1
                    raise RuntimeError("injected")
                return handle(item, now)  # type: ignore[arg-type]

            engine.handle = flaky  # type: ignore[method-assign,assignment]
            before = node.metrics()["packets_in"]
            await trio.sleep(10.0)
            metrics = node.metrics()
            assert failures == [0]
            assert metrics["engine_errors"] == 3
            assert metrics["packets_in"] - before >= 10  # the reader kept reading
            await cluster.wait_converged(timeout=30.0)
