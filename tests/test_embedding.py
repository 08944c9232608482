"""Embedding polish (issue 17): typed callbacks per event kind and snapshot flags, on real
nodes over the in-memory network in virtual time (``autojump_clock``)."""

from __future__ import annotations

import trio

from swimgossip import (
    MemberFailed,
    MemberJoined,
    MemberRecovered,
    MemberSuspected,
    MemberUpdated,
    UserDelivery,
)
from swimgossip.testing import open_cluster


async def test_listen_calls_on_suspect_on_recover_and_on_message(autojump_clock: object) -> None:
    async with open_cluster(3, seed=11) as cluster:
        watcher = cluster.node("n0")
        suspected: list[MemberSuspected] = []
        recovered: list[MemberRecovered] = []
        messages: list[UserDelivery] = []
        got_suspect, got_recover, got_message = trio.Event(), trio.Event(), trio.Event()

        def on_suspect(event: MemberSuspected) -> None:
            suspected.append(event)
            got_suspect.set()

        async def on_recover(event: MemberRecovered) -> None:  # async callbacks are awaited
            await trio.lowlevel.checkpoint()
            recovered.append(event)
            got_recover.set()

        def on_message(message: UserDelivery) -> None:
            messages.append(message)
            got_message.set()

        remove = watcher.listen(on_suspect=on_suspect, on_recover=on_recover, on_message=on_message)
        with trio.fail_after(120):
            await cluster.node("n1").broadcast(b"hello")
            await got_message.wait()
            async with trio.open_nursery() as nursery:
                # n2 stops answering for a while (shorter than the suspicion timeout).
                nursery.start_soon(cluster.pause, "n2", 2.5)
                await got_suspect.wait()
            await got_recover.wait()
        assert [(m.source, m.payload) for m in messages] == [("n1", b"hello")]
        assert suspected[0].member.name == "n2" and type(suspected[0]) is MemberSuspected
        assert recovered[0].member.name == "n2" and type(recovered[0]) is MemberRecovered
        remove()
        later: list[UserDelivery] = []
        got_later = trio.Event()
        watcher.listen(on_message=lambda m: (later.append(m), got_later.set()))
        await cluster.node("n1").broadcast(b"after")
        with trio.fail_after(60):
            await got_later.wait()
        assert [m.payload for m in later] == [b"after"]
        assert len(messages) == 1  # the removed callback saw nothing more


async def test_snapshot_events_are_flagged(autojump_clock: object) -> None:
    async with open_cluster(2, seed=3) as cluster:
        node = cluster.node("n0")
        async with node.subscribe(snapshot=True) as events:
            first = [await events.receive(), await events.receive()]
            assert all(isinstance(e, MemberJoined) and e.snapshot for e in first)
            assert all(isinstance(e, MemberJoined) and e.seq == 0 for e in first)
            await cluster.start("n2", join=["n0"])
            with trio.fail_after(60):
                event = await events.receive()
            assert isinstance(event, MemberJoined) and event.member.name == "n2"
            assert not event.snapshot and event.seq > 0


async def test_a_fast_restart_is_reported_even_without_a_failure(autojump_clock: object) -> None:
    async with open_cluster(3, seed=21) as cluster:
        watcher = cluster.node("n0")
        old_boot = watcher.member("n2").boot  # type: ignore[union-attr]
        restarts: list[MemberJoined] = []
        seen = trio.Event()

        def on_restart(event: MemberJoined) -> None:
            restarts.append(event)
            seen.set()

        watcher.listen(on_restart=on_restart)
        async with watcher.subscribe() as events:
            # Crash n2 and start a new process under its name at once: back before anyone
            # could suspect it (the same in-memory address).
            await cluster.restart("n2")
            with trio.fail_after(60):
                await seen.wait()
                seen_events = []
                while not any(isinstance(e, MemberJoined) and e.restarted for e in seen_events):
                    seen_events.append(await events.receive())
        about_n2 = [e for e in seen_events if getattr(e, "member", None) and e.member.name == "n2"]
        assert not any(isinstance(e, MemberFailed) for e in about_n2)
        restarted = [e for e in about_n2 if isinstance(e, MemberJoined) and e.restarted]
        assert len(restarted) == 1 and not restarted[0].snapshot
        new_boot = restarted[0].member.boot
        assert new_boot not in (0, old_boot)
        assert new_boot == cluster.node("n2").member("n2").boot  # type: ignore[union-attr]
        assert [e.member.name for e in restarts] == ["n2"]
        assert watcher.metrics()["restarts_seen"] == 1


async def test_a_restart_after_a_declared_failure_is_a_restarted_join(
    autojump_clock: object,
) -> None:
    async with open_cluster(3, seed=8) as cluster:
        watcher = cluster.node("n0")
        async with watcher.subscribe() as events:
            await cluster.crash("n2")
            with trio.fail_after(120):
                while not isinstance(await events.receive(), MemberFailed):
                    pass
                await cluster.start("n2", join=["n0"])
                while True:
                    event = await events.receive()
                    if isinstance(event, MemberJoined) and event.member.name == "n2":
                        break
        assert event.restarted  # back after failing, and with a new process


async def test_same_process_rejoining_is_not_a_restart(autojump_clock: object) -> None:
    async with open_cluster(2, seed=2) as cluster:
        watcher, other = cluster.node("n0"), cluster.node("n1")
        async with watcher.subscribe() as events:
            await other.update_meta(b"new")  # same process: an update, not a restart
            with trio.fail_after(30):
                event = await events.receive()
        assert isinstance(event, MemberUpdated) and event.member.meta == b"new"


def test_agent_lines_say_restarted_and_snapshot_flags_stay_internal() -> None:
    from swimgossip import Member, Status
    from swimgossip.cli._agent import event_record

    member = Member(name="n2", address="x:1", status=Status.ALIVE, incarnation=3, boot=7)
    assert event_record(MemberJoined(member=member, restarted=True), 1.0)["restarted"] is True
    assert "restarted" not in event_record(MemberJoined(member=member), 1.0)
