"""The testing toolkit itself: the in-memory network, open_cluster, faults, the plugin."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from swimgossip import Config, MemberFailed, Status
from swimgossip.testing import ConvergenceError, MemoryNetwork, open_cluster
from swimgossip.testing.faults import Crash, Loss, Partition, Pause, run_schedule
from swimgossip.testing.strategies import configs, fault_schedules

pytest_plugins = ["pytester"]


async def test_datagrams_arrive_after_latency(autojump_clock: object) -> None:
    network = MemoryNetwork(seed=1, latency=0.01, jitter=0.0)
    a, b = network.transport("a"), network.transport("b")
    sent = trio.current_time()
    await a.send_datagram(b.address, b"hello")
    assert await b.receive_datagram() == (b"hello", "a:7946")
    assert trio.current_time() - sent == pytest.approx(0.01)


async def test_partition_loss_and_duplication(autojump_clock: object) -> None:
    network = MemoryNetwork(seed=2, latency=0.001, jitter=0.0)
    a, b = network.transport("a"), network.transport("b")
    network.partition(["a"], ["b"])
    await a.send_datagram(b.address, b"x")
    network.heal()
    network.set_loss(1.0, src="a", dst="b")
    await a.send_datagram(b.address, b"x")
    await b.send_datagram(a.address, b"back")  # one-way: b -> a still works
    assert await a.receive_datagram() == (b"back", "b:7946")
    network.clear_loss()
    network.set_duplication(1.0)
    await a.send_datagram(b.address, b"twice")
    assert [await b.receive_datagram() for _ in range(2)] == [(b"twice", "a:7946")] * 2
    assert network.counters["datagrams_partitioned"] == 1
    assert network.counters["datagrams_lost"] == 1


async def test_streams_refused_when_down_and_hang_across_partition(autojump_clock: object) -> None:
    network = MemoryNetwork(seed=3)
    a, b = network.transport("a"), network.transport("b")
    with pytest.raises(ConnectionRefusedError):
        await a.exchange(b.address, b"req")

    async def echo(request: bytes, source: str) -> bytes:
        return request + source.encode()

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: b.serve_streams(echo, timeout=1.0, task_status=task_status)
        )
        assert await a.exchange(b.address, b"req:") == b"req:a:7946"
        network.isolate("a")
        with trio.move_on_after(5.0) as scope:
            await a.exchange(b.address, b"req")
        assert scope.cancelled_caught
        nursery.cancel_scope.cancel()
    b.close()
    with pytest.raises(ConnectionRefusedError):
        await a.exchange(b.address, b"req")


async def _trace(seed: int) -> list[tuple[float, str, str, str]]:
    began = trio.current_time()
    async with open_cluster(4, seed=seed) as cluster:
        cluster.network.set_loss(0.3)
        await cluster.pause("n1", 2.0)
        await cluster.crash("n3")
        await trio.sleep(20.0)
        return [
            (round(r.time - began, 6), r.observer, type(r.event).__name__, r.event.member.name)
            for r in cluster.history
        ]


def _replay(seed: int) -> list[tuple[float, str, str, str]]:
    # A fresh run and clock each time, as a user replaying a seed gets: within one run the
    # clock goes on, and float sums at other absolute times may order ties differently.
    return trio.run(_trace, seed, clock=trio.testing.MockClock(autojump_threshold=0))


def test_same_seed_replays_exactly() -> None:
    first = _replay(5)
    assert first == _replay(5)
    assert first != _replay(6)


async def test_wait_converged_names_what_is_missing(autojump_clock: object) -> None:
    async with open_cluster(3, seed=7) as cluster:
        cluster.network.isolate("n2")
        await trio.sleep(60.0)
        with pytest.raises(ConvergenceError, match=r"n0: n2 is DEAD"):
            await cluster.wait_converged(timeout=1.0)


async def test_failure_in_the_body_carries_the_seed(autojump_clock: object) -> None:
    with pytest.raises(KeyError) as caught:
        async with open_cluster(2, seed=4242) as cluster:
            cluster.node("nobody")
    assert any("seed=4242" in note for note in caught.value.__notes__)


async def test_events_record_join_failure_and_restart(autojump_clock: object) -> None:
    async with open_cluster(3, seed=8, config=Config.local()) as cluster:
        assert [type(e).__name__ for e in cluster.events["n2"]][:1] == ["MemberJoined"]
        await cluster.crash("n2")
        with trio.fail_after(60):
            while not any(
                type(e) is MemberFailed and e.member.name == "n2" for e in cluster.events["n0"]
            ):
                await trio.sleep(0.5)
        node = await cluster.restart("n2")
        await cluster.wait_converged()
        assert cluster.node("n2") is node and node.member("n0").status is Status.ALIVE  # type: ignore[union-attr]


async def test_fault_schedule_runs_and_cluster_recovers(autojump_clock: object) -> None:
    schedule = [
        (0.0, Partition(groups=(("n0",),), duration=20.0)),
        (5.0, Loss(probability=0.2, duration=10.0)),
        (8.0, Pause(name="n1", duration=2.0)),
        (12.0, Crash(name="n2", duration=15.0)),
    ]
    async with open_cluster(4, seed=9) as cluster:
        await run_schedule(cluster, schedule)
        assert sorted(cluster.names) == ["n0", "n1", "n2", "n3"]
        await cluster.wait_converged()


@settings(max_examples=25, deadline=None)
@given(configs())
def test_configs_strategy_draws_valid_configs(config: Config) -> None:
    assert config.probe_timeout < config.probe_interval


@settings(max_examples=25, deadline=None)
@given(fault_schedules(["n0", "n1", "n2"], horizon=30.0, max_duration=5.0), st.data())
def test_fault_schedules_are_sorted_and_bounded(schedule: list, data: st.DataObject) -> None:  # type: ignore[type-arg]
    starts = [start for start, _ in schedule]
    assert starts == sorted(starts) and all(0 <= s <= 30.0 for s in starts)
    assert all(fault.duration <= 5.0 for _, fault in schedule)


def test_plugin_fixture_reports_seed_on_failure(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(
        """
        async def test_fails(swim_cluster, autojump_clock):
            async with swim_cluster(3) as cluster:
                assert len(cluster.nodes) == 2

        async def test_needs_clock(swim_cluster):
            async with swim_cluster(3):
                pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--swim-seed=77")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*cluster seed: 77*", "*replay:*--swim-seed=77*"])
    result.stdout.fnmatch_lines(["*add the `autojump_clock` fixture*"])


def _python_blocks(text: str) -> list[str]:
    blocks, inside, current = [], False, []  # type: ignore[var-annotated]
    for line in text.splitlines():
        if line.startswith("```"):
            if inside:
                blocks.append("\n".join(current))
            inside, current = line == "```python", []
        elif inside:
            current.append(line)
    return blocks


def test_docs_worked_example_runs_as_is(pytester: pytest.Pytester) -> None:
    from pathlib import Path

    docs = Path(__file__).parent.parent / "docs" / "testing.md"
    example = _python_blocks(docs.read_text())[0]
    assert "test_each_side_of_a_partition_elects_its_own_leader" in example
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_example=example)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_docs_hypothesis_example_runs(pytester: pytest.Pytester) -> None:
    from pathlib import Path

    docs = Path(__file__).parent.parent / "docs" / "testing.md"
    (example,) = [b for b in _python_blocks(docs.read_text()) if "fault_schedules" in b]
    pytester.makepyfile(test_example=example.replace("max_examples=20", "max_examples=3"))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
