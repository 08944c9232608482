"""SerfLayer against the real thing: a Go ``serf agent`` and this test as a Serf member.

The test listens on a loopback port with plain sockets, as tests/test_memberlist_serf.py
does, and drives a ``SerfLayer`` by hand: the agent's push-pull user state merges into it,
ours (with our tags in meta) goes back, its gossiped ``userMsg`` s (join intent, user
events, queries) go through ``notify_message``, and what the layer sends (query acks, our
own intents) goes out as memberlist ``userMsg`` datagrams. Then ``serf members`` must show
us alive with our tags, ``serf event`` must arrive as a ``UserEventReceived``, ``serf
query`` must count our ack, a tag change must show, and our graceful leave (Serf's leave
intent, then memberlist's ``dead`` about ourselves) must show ``left``, not ``failed``,
and a rejoin ``alive`` again. Every wait is bounded; the agent is killed by its pid.

Needs the ``serf`` binary: skipped with the reason where it is missing, and in CI
(``CI=true``) that skip is a failure (ci_guard).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from serf_helpers import NEEDS_SERF, Agent, Listener, read_push_pull
from serf_helpers import serf as run_serf
from swimgossip.core.member import Member, Status
from swimgossip.net.memberlist import (
    Ack,
    Alive,
    Dead,
    Ping,
    PushNodeState,
    PushPull,
    UserMessage,
    decode_packet,
    encode_message,
    encode_push_pull,
    make_compound,
)
from swimgossip.net.serf import (
    JoinIntent,
    SendTo,
    SerfLayer,
    SerfMemberStatus,
    UserEventReceived,
    decode_serf_message,
)

pytestmark = NEEDS_SERF

DEADLINE = 20.0
LOOPBACK = b"\x7f\0\0\1"
VSN = bytes([1, 5, 2, 2, 5, 4])


class FakeSerfMember:
    """This test as member ``py1``: sockets on one port, a SerfLayer, by hand."""

    def __init__(self, log_dir: Path) -> None:
        self.net = Listener()
        self.layer = SerfLayer("py1", tags={"role": "py", "dc": "one"})
        self.incarnation = 1
        self.events: list[UserEventReceived] = []
        self.agent = Agent(
            "go1",
            log_dir,
            join=f"127.0.0.1:{self.net.port}",
            tags={"role": "web"},
            profile=None,
        )
        self.agent_port = self.agent.port
        self.rpc = self.agent.rpc

    def close(self) -> str:
        self.net.close()
        self.agent.kill()
        return self.agent.tail()

    def me(self) -> PushNodeState:
        return PushNodeState(
            name="py1",
            addr=LOOPBACK,
            port=self.net.port,
            meta=self.layer.node_meta(512),
            incarnation=self.incarnation,
            state=0,
            vsn=VSN,
        )

    def answer_join(self) -> None:
        self.net.tcp.settimeout(DEADLINE)
        conn, _ = self.net.tcp.accept()
        with conn:
            _, theirs = read_push_pull(conn, None, deadline=DEADLINE)
            self.layer.merge_remote_state(theirs.user_state, False)
            for node in theirs.nodes:
                self.layer.notify_join(_member(node.name))
            reply = PushPull(
                join=False, nodes=(self.me(),), user_state=self.layer.local_state(False)
            )
            conn.sendall(encode_push_pull(reply))
        self.layer.join()

    def send(self, *messages: bytes) -> None:
        packet = messages[0] if len(messages) == 1 else make_compound(list(messages))
        self.net.udp.sendto(packet, ("127.0.0.1", self.agent_port))

    def gossip(self) -> None:
        """What our memberlist would piggyback: the layer's broadcasts, as userMsgs."""
        payloads = self.layer.get_broadcasts(3, 1200)
        if payloads:
            self.send(*(encode_message(UserMessage(payload=p)) for p in payloads))

    def pump(self, done: Callable[[], bool], what: str) -> None:
        """Answer pings, feed userMsgs to the layer, send what it asks, until ``done``."""
        end = time.monotonic() + DEADLINE
        while not done():
            if time.monotonic() > end:
                raise AssertionError(f"no {what} within {DEADLINE} s")
            self.net.udp.settimeout(0.2)
            try:
                data, sender = self.net.udp.recvfrom(65536)
            except TimeoutError:
                self.gossip()
                continue
            messages, _ = decode_packet(data)
            for message in messages:
                if isinstance(message, Ping) and message.node == "py1":
                    self.net.udp.sendto(encode_message(Ack(seq_no=message.seq_no)), sender)
                elif isinstance(message, UserMessage):
                    self.layer.notify_message(message.payload)
            for out in self.layer.drain():
                if isinstance(out, SendTo):
                    host, port = out.address.rsplit(":", 1)
                    self.net.udp.sendto(
                        encode_message(UserMessage(payload=out.payload)), (host, int(port))
                    )
                elif isinstance(out, UserEventReceived):
                    self.events.append(out)
            self.gossip()

    def serf(self, *args: str) -> str:
        done = run_serf(args[0], f"-rpc-addr={self.rpc}", *args[1:])
        assert done.returncode == 0, done.stderr
        return done.stdout

    def members(self) -> dict[str, dict[str, object]]:
        listed = json.loads(self.serf("members", "-format=json"))["members"]
        return {m["name"]: m for m in listed}

    def status(self, name: str) -> str:
        return str(self.members().get(name, {}).get("status", "none"))

    def alive(self, meta: bytes | None = None) -> None:
        """Announce ourselves again (a tag change, or coming back after a leave)."""
        self.incarnation += 1
        me = self.me()
        self.send(
            encode_message(
                Alive(
                    incarnation=self.incarnation,
                    node="py1",
                    addr=LOOPBACK,
                    port=self.net.port,
                    meta=meta if meta is not None else me.meta,
                    vsn=VSN,
                )
            )
        )


def _member(name: str) -> Member:
    return Member(name=name, address="127.0.0.1:1", status=Status.ALIVE, incarnation=1)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeSerfMember]:
    here = FakeSerfMember(tmp_path)
    try:
        here.answer_join()
        yield here
    except BaseException:
        print(here.close())
        raise
    here.close()


def test_a_serf_agent_sees_our_tags_and_we_see_its_join_and_events(
    fake: FakeSerfMember,
) -> None:
    assert fake.layer.status_of("go1") is SerfMemberStatus.ALIVE
    fake.pump(lambda: fake.status("py1") == "alive", "py1 alive in serf members")
    assert fake.members()["py1"]["tags"] == {"role": "py", "dc": "one"}
    assert fake.members()["go1"]["tags"] == {"role": "web"}
    fake.serf("event", "deploy", "v1.2")
    fake.pump(lambda: bool(fake.events), "user event")
    assert fake.events == [
        UserEventReceived(ltime=1, name="deploy", payload=b"v1.2", coalesce=True)
    ]
    assert fake.layer.clock.time() >= 2  # witnessed the agent's join intent (LTime 1)


def test_a_serf_query_counts_our_ack(fake: FakeSerfMember) -> None:
    fake.pump(lambda: fake.status("py1") == "alive", "py1 alive in serf members")
    query = subprocess.Popen(
        ["serf", "query", f"-rpc-addr={fake.rpc}", "-timeout=3s", "whoami", "x"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        fake.pump(lambda: query.poll() is not None, "the query to finish")
        out = query.communicate(timeout=10)[0]
    finally:
        query.kill()
    assert "Ack from 'py1'" in out


def test_a_tag_change_shows_in_serf_members(fake: FakeSerfMember) -> None:
    fake.pump(lambda: fake.status("py1") == "alive", "py1 alive in serf members")
    fake.alive(fake.layer.set_tags({"role": "py", "dc": "two"}))
    fake.pump(lambda: fake.members()["py1"]["tags"] == {"role": "py", "dc": "two"}, "tags")
    assert "dc=two" in fake.serf("members", "-detailed")


def test_a_graceful_leave_is_left_in_serf_and_a_rejoin_alive(fake: FakeSerfMember) -> None:
    fake.pump(lambda: fake.status("py1") == "alive", "py1 alive in serf members")
    fake.layer.leave()
    assert not fake.layer.leave_sent
    fake.pump(lambda: fake.layer.leave_sent, "the leave intent to go out")
    fake.send(encode_message(Dead(incarnation=fake.incarnation, node="py1", sender="py1")))
    fake.pump(lambda: fake.status("py1") != "alive", "py1 to leave")
    assert fake.status("py1") == "left"
    # back: memberlist's alive with a newer incarnation, Serf's join intent at our clock
    fake.layer = SerfLayer("py1", tags={"role": "py"})
    fake.layer.notify_join(_member("go1"))
    fake.alive()
    fake.layer.join()
    fake.pump(lambda: fake.status("py1") == "alive", "py1 alive again")
    joins = fake.layer.get_broadcasts(3, 1200)
    assert all(isinstance(decode_serf_message(p), JoinIntent) for p in joins)
