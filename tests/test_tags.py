"""Tags and member filters (issue 17, point 5): the one encoding in metadata, ``members``
/ ``alive`` filters, the status endpoint's query and ``swimgossip members --tag --status``."""

from __future__ import annotations

import json

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import swimgossip
from cli_helpers import free_port, run, spawned
from node_helpers import PATIENCE, start_node, until_event
from swimgossip import ConfigError, Member, MemberUpdated, Status, decode_tags, encode_tags
from swimgossip.cli._format import encode_meta
from swimgossip.cli._status import fetch_status, serve_status, status_record
from swimgossip.cli.errors import StatusError

keys = st.text(min_size=1, max_size=20).filter(lambda k: "=" not in k)
tag_maps = st.dictionaries(keys, st.text(max_size=30), max_size=8)


@given(tag_maps)
def test_tags_round_trip_through_metadata(tags: dict[str, str]) -> None:
    meta = encode_tags(tags)
    assert dict(decode_tags(meta)) == tags
    assert (
        Member(name="m", address="a:1", status=Status.ALIVE, incarnation=0, meta=meta).tags == tags
    )
    assert meta == encode_meta(tags.items())  # the agent's --meta / --tag pairs: same bytes


@pytest.mark.parametrize(
    "meta",
    [b"role=db", b"\xff\xfe{", b"[1,2]", b'{"port":8080}', b'{"a":{"b":"c"}}', b"{bad json", b"7"],
)
def test_raw_or_other_metadata_has_no_tags(meta: bytes) -> None:
    assert decode_tags(meta) == {}


@pytest.mark.parametrize("bad", [{"": "x"}, {"a=b": "x"}, {"k": 1}, {2: "x"}])
def test_invalid_tags_are_refused(bad: dict[object, object]) -> None:
    with pytest.raises(ConfigError, match="tags"):
        encode_tags(bad)  # type: ignore[arg-type]


async def test_members_filter_by_status_and_tags_over_loopback() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            db, _ = await start_node(nursery, "db", tags={"role": "db", "zone": "a"})
            web, _ = await start_node(nursery, "web", tags={"role": "web", "zone": "a"})
            raw, _ = await start_node(nursery, "raw", meta=b"\x00raw bytes")
            async with db.subscribe() as events:
                await web.join([db.address])
                await raw.join([db.address])
                while len(db.alive()) < 3:
                    await events.receive()
                assert [m.name for m in db.alive(tags={"zone": "a"})] == ["db", "web"]
                assert [m.name for m in db.members(tags={"role": "web"})] == ["web"]
                assert db.member("raw") is not None and db.member("raw").tags == {}  # type: ignore[union-attr]
                assert db.member("raw").meta == b"\x00raw bytes"  # type: ignore[union-attr]
                await web.update_tags({"role": "web", "zone": "b"})
                await until_event(events, MemberUpdated, "web")
                assert [m.name for m in db.alive(tags={"zone": "a"})] == ["db"]
                await raw.leave()
                while db.member("raw").status is not Status.LEFT:  # type: ignore[union-attr]
                    await events.receive()
                assert [m.name for m in db.members(status=Status.ALIVE)] == ["db", "web"]
                assert [m.name for m in db.members(status={Status.LEFT, Status.DEAD})] == ["raw"]
                assert len(db.members()) == 3  # no filter: every status
            nursery.cancel_scope.cancel()


async def test_meta_and_tags_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="meta or tags"):
        async with swimgossip.open_node("x", bind="127.0.0.1:0", meta=b"m", tags={"a": "b"}):
            pass


async def test_status_endpoint_filters_members_by_status_and_tag() -> None:
    async with (
        swimgossip.open_node("solo", bind="127.0.0.1:0", tags={"role": "db"}) as node,
        trio.open_nursery() as nursery,
    ):
        where = await nursery.start(serve_status, node, "127.0.0.1:0")

        async def get(path: str) -> object:
            return await trio.to_thread.run_sync(fetch_status, where, path)

        everyone = [status_record(node, node.member("solo"))]  # type: ignore[arg-type]
        assert await get("/members?status=alive&tag=role:db") == everyone
        assert await get("/members?status=alive&status=dead&tag=role%3Adb") == everyone
        assert await get("/members?tag=role:web") == []
        assert await get("/members?status=left") == []
        for bad in ("/members?status=zombie", "/members?tag=role", "/members?colour=red"):
            with pytest.raises(StatusError, match="400"):
                await get(bad)
        nursery.cancel_scope.cancel()


def test_members_command_filters_by_tag_and_status() -> None:
    status = f"127.0.0.1:{free_port()}"
    with spawned() as start:
        first = start(
            "agent", "--name", "db-1", "--bind", "127.0.0.1:0", "--status", status,
            "--tag", "role=db", "--tag", "zone=a",
        )  # fmt: skip
        seed = first.expect_event("joined", "db-1", 15)
        assert seed["meta"] == {"role": "db", "zone": "a"}
        start("agent", "--name", "web-1", "--bind", "127.0.0.1:0", "--join", seed["address"],
              "--tag", "role=web")  # fmt: skip
        first.expect_event("joined", "web-1", 15)

        result = run("members", "--endpoint", status, "--tag", "role=db", "--status", "alive",
                     "--json", timeout=30)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert [r["name"] for r in json.loads(result.stdout)] == ["db-1"]
        # The endpoint may still be given as --status HOST:PORT, as before.
        result = run("members", "--status", status, "--status", "alive", "--json", timeout=30)
        assert [r["name"] for r in json.loads(result.stdout)] == ["db-1", "web-1"]
        result = run("members", "--status", status, "--status", "zombie", timeout=30)
        assert result.returncode == 2 and "neither a status" in result.stderr
