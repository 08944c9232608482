"""pytest plugin (entry point ``pytest11``): the ``swim_cluster`` fixture and ``--swim-seed``.

With pytest-trio, a test gets a virtual-time cluster in one line::

    async def test_my_service(swim_cluster, autojump_clock):
        async with swim_cluster(5) as cluster:
            ...

``autojump_clock`` is pytest-trio's ``MockClock(autojump_threshold=0)`` fixture: pytest-trio
passes a clock to ``trio.run`` only when the *test function* asks for it, so the test must
name it; ``swim_cluster`` refuses to run on the real clock and says so.

Seeds: by default each test gets a stable seed derived from its node id, so a suite is
reproducible and tests differ from each other. ``--swim-seed=N`` gives every test seed
``N``; ``--swim-seed=random`` draws a fresh one per run. The seed of every cluster a test
opened is shown in the report of a failing test, with the option that replays it.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Generator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import trio
import trio.testing

from .cluster import Cluster, open_cluster

__all__ = ["ClusterFactory", "pytest_addoption", "swim_cluster", "swim_seed"]

ClusterFactory = Callable[..., AbstractAsyncContextManager[Cluster]]

_SEEDS = pytest.StashKey[list[int]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--swim-seed``."""
    group = parser.getgroup("swimgossip")
    group.addoption(
        "--swim-seed",
        default=None,
        help="seed of every swim_cluster (an integer, or 'random'); "
        "default: a stable seed per test derived from its node id",
    )


@pytest.fixture
def swim_seed(request: pytest.FixtureRequest) -> int:
    """The seed ``swim_cluster`` uses in this test (see ``--swim-seed``)."""
    option = request.config.getoption("--swim-seed")
    if option is None:
        return zlib.crc32(request.node.nodeid.encode())
    if option == "random":
        return random.SystemRandom().randrange(2**32)
    try:
        return int(option)
    except ValueError:
        raise pytest.UsageError(
            f"--swim-seed must be an integer or 'random', got {option!r}"
        ) from None


@pytest.fixture
def swim_cluster(request: pytest.FixtureRequest, swim_seed: int) -> ClusterFactory:
    """A factory: ``async with swim_cluster(n, **options) as cluster`` is
    ``open_cluster(n, seed=swim_seed, **options)`` (an explicit ``seed=`` wins), checked to
    run under a ``MockClock``. The seed is reported if the test fails."""
    seeds = request.node.stash.setdefault(_SEEDS, [])

    def factory(n: int, **options: Any) -> AbstractAsyncContextManager[Cluster]:
        clock = trio.lowlevel.current_clock()
        if not isinstance(clock, trio.testing.MockClock):
            raise RuntimeError(
                "swim_cluster runs in virtual time: add the `autojump_clock` fixture to the "
                "test's arguments (pytest-trio passes a clock only if the test names it)"
            )
        options.setdefault("seed", swim_seed)
        seeds.append(options["seed"])
        return open_cluster(n, **options)

    return factory


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add the cluster seeds to the report of a failing test."""
    report = yield
    seeds = item.stash.get(_SEEDS, [])
    if report.failed and seeds:
        used = ", ".join(str(seed) for seed in dict.fromkeys(seeds))
        replay = f"pytest {item.nodeid!r} --swim-seed={seeds[0]}"
        report.sections.append(("swimgossip", f"cluster seed: {used}\nreplay: {replay}"))
    return report
