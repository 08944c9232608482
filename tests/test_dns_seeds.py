"""Seeds the way deployments give them: "host" (default port), "host:port", and a name
that stands for several members (a headless service, a DNS round robin). The resolver is a
local stand-in that returns loopback addresses: no real DNS is asked."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest
import trio

import swimgossip
from node_helpers import FAST, PATIENCE, alive_names, start_node
from swimgossip.net import DEFAULT_PORT, open_udp_transport, split_seed

NAME = "swim.cluster.test"
#: Three members behind one name, each on its own loopback address, on one port.
HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


@pytest.mark.parametrize(
    ("seed", "expected"),
    [
        ("db.internal:7000", ("db.internal", 7000)),
        ("db.internal", ("db.internal", DEFAULT_PORT)),
        ("10.0.0.7", ("10.0.0.7", DEFAULT_PORT)),
        ("[fd00::7]:7000", ("fd00::7", 7000)),
        ("[fd00::7]", ("fd00::7", DEFAULT_PORT)),
        ("fd00::7", ("fd00::7", DEFAULT_PORT)),
    ],
)
def test_a_seed_without_a_port_gets_the_default_port(seed: str, expected: tuple[str, int]) -> None:
    assert split_seed(seed) == expected


@pytest.mark.parametrize("seed", ["", ":7000", "db.internal:port", "db.internal:70000"])
def test_a_malformed_seed_is_a_value_error(seed: str) -> None:
    with pytest.raises(ValueError):
        split_seed(seed)


class StandIn:
    """A resolver that answers one name with several loopback addresses, and records."""

    def __init__(self, answers: dict[str, Sequence[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"no such name {host!r}")
        return self.answers[host]


async def test_resolve_all_gives_every_address_of_a_name_with_the_seed_port() -> None:
    resolver = StandIn({NAME: [*HOSTS, HOSTS[0], "::1"]})
    async with open_udp_transport("127.0.0.1:0", resolver=resolver) as transport:
        assert await transport.resolve_all(f"{NAME}:7000") == [f"{h}:7000" for h in HOSTS]
        assert await transport.resolve_all(NAME) == [f"{h}:{DEFAULT_PORT}" for h in HOSTS]
        assert await transport.resolve_all("127.0.0.9:7000") == ["127.0.0.9:7000"]
        assert resolver.asked == [NAME, NAME]  # a numeric address asks no resolver
        with pytest.raises(OSError, match=r"nowhere\.test"):
            await transport.resolve_all("nowhere.test:7000")


async def _bind_three_on_one_port(nursery: trio.Nursery) -> tuple[int, list[swimgossip.Node]]:
    """Start a node on each of HOSTS, all on the same port (a few ports are tried)."""
    for _attempt in range(5):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((HOSTS[0], 0))
        port = probe.getsockname()[1]
        probe.close()
        nodes: list[swimgossip.Node] = []
        try:
            for index, host in enumerate(HOSTS):
                node, _ = await start_node(nursery, f"m{index}", bind=f"{host}:{port}")
                nodes.append(node)
        except OSError:
            for node in nodes:
                await node.leave()
            continue
        return port, nodes
    raise AssertionError("no free port on all three loopback addresses")


async def test_a_name_with_several_addresses_joins_through_all_of_them() -> None:
    resolver = StandIn({NAME: HOSTS})
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            port, members = await _bind_three_on_one_port(nursery)
            joiner, _ = await start_node(nursery, "joiner", resolver=resolver)
            # the three members do not know each other: only the join can connect them
            assert all(alive_names(m) == {m.name} for m in members)
            answered = await joiner.join([f"{NAME}:{port}"])
            assert answered == 3
            assert resolver.asked == [NAME]
            assert alive_names(joiner) == {"joiner", "m0", "m1", "m2"}
            for member in members:  # each was joined directly, so each knows the joiner
                assert "joiner" in alive_names(member)
            nursery.cancel_scope.cancel()


async def test_a_name_whose_addresses_are_all_down_reports_each_address() -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind((HOSTS[0], 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: a join is refused at once
    resolver = StandIn({NAME: HOSTS[:2]})
    async with swimgossip.open_node(
        "joiner", bind="127.0.0.1:0", config=FAST, resolver=resolver
    ) as joiner:
        # no deadline: a few attempts (with one, join would retry until shortly before it)
        with pytest.raises(swimgossip.JoinError) as info:
            await joiner.join([f"{NAME}:{port}", "nowhere.test"])
    reasons = info.value.reasons
    assert set(reasons) == {
        f"{NAME}:{port} ({HOSTS[0]}:{port})",
        f"{NAME}:{port} ({HOSTS[1]}:{port})",
        "nowhere.test",
    }
    assert reasons["nowhere.test"].startswith("cannot resolve")
