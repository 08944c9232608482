"""The memberlist codec against the real thing: bytes a Go ``serf agent`` sends.

A ``serf agent`` on 127.0.0.1 is told to join a port where this test listens with plain
sockets (TCP for the push-pull, UDP for packets). The test decodes the agent's push-pull
stream (Go compresses it with LZW), answers with its own push-pull (so the agent counts
this test as a member and starts gossiping to and probing it), then decodes the agent's
UDP packets (CRC-wrapped compound messages) until a ``ping`` for this member arrives.
With ``-encrypt`` the same runs through memberlist's AES-GCM, and a wrong key is refused
with ``DecryptError``. Every wait is bounded; the agent is killed by its pid.

Needs the ``serf`` binary (Debian's ``serf`` package; .ci/run installs it): skipped with the
reason where it is missing, and in CI (``CI=true``) that skip is a failure (ci_guard).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serf_helpers import NEEDS_SERF, Agent, Listener, read_push_pull, serf
from swimgossip.net.memberlist import (
    Ack,
    DecryptError,
    Ping,
    PushNodeState,
    PushPull,
    decode_packet,
    decrypt_payload,
    encode_message,
    encode_push_pull,
    encrypt_payload,
    encrypt_stream,
    parse_serf_key,
)

pytestmark = NEEDS_SERF

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 116))
DEADLINE = 20.0  # seconds for any one wait on the agent
MAX_PACKETS = 200


@pytest.fixture
def listener() -> Iterator[Listener]:
    here = Listener()
    yield here
    here.close()


def start_agent(log_dir: Path, join_port: int, key: bytes | None) -> Agent:
    """go1 (Serf's default profile), joining the test's ``join_port``."""
    return Agent(
        "go1",
        log_dir,
        join=f"127.0.0.1:{join_port}",
        key=None if key is None else base64.b64encode(key).decode(),
        tags={"role": "web"},
        profile=None,
    )


def join_and_wait_for_ping(log_dir: Path, listener: Listener, key: bytes | None) -> None:
    agent = start_agent(log_dir, listener.port, key)
    keys = [key] if key is not None else None
    try:
        listener.tcp.settimeout(DEADLINE)
        conn, _ = listener.tcp.accept()
        with conn:
            raw, theirs = read_push_pull(conn, keys)
            # Go compresses the stream (compressMsg = 9) or encrypts it (encryptMsg = 10)
            assert raw[0] == (10 if key is not None else 9)
            assert theirs.join is True
            (go1,) = theirs.nodes
            assert (go1.name, go1.addr, go1.state) == ("go1", b"\x7f\0\0\1", 0)
            # Serf's tags in meta: the magic byte 255, then a msgpack map
            assert go1.meta == b"\xff\x81\xa4role\xa3web"
            assert theirs.user_state[:1] == b"\x02"  # Serf's messagePushPullType
            me = PushNodeState(
                name="py1",
                addr=b"\x7f\0\0\1",
                port=listener.port,
                meta=b"",
                incarnation=1,
                state=0,
                vsn=bytes([1, 5, 2, 2, 5, 4]),
            )
            reply = encode_push_pull(PushPull(join=False, nodes=(me,)))
            conn.sendall(encrypt_stream(key, reply) if key is not None else reply)
        seen: list[object] = []
        end = time.monotonic() + DEADLINE
        for _ in range(MAX_PACKETS):
            listener.udp.settimeout(max(0.1, end - time.monotonic()))
            data, sender = listener.udp.recvfrom(65536)
            if key is not None:
                data = decrypt_payload([key], data, b"")
            messages, truncated = decode_packet(data)
            assert truncated == 0
            seen.extend(messages)
            pings = [m for m in messages if isinstance(m, Ping) and m.node == "py1"]
            if pings:
                answer = encode_message(Ack(seq_no=pings[0].seq_no))
                if key is not None:
                    answer = encrypt_payload(key, answer, b"")
                listener.udp.sendto(answer, sender)
                break
        else:
            raise AssertionError(f"no ping for py1 in {MAX_PACKETS} packets: {seen}")
    except BaseException:
        agent.kill()
        print(agent.tail())
        raise
    agent.kill()


def test_a_go_agents_push_pull_and_packets_decode(listener: Listener, tmp_path: Path) -> None:
    join_and_wait_for_ping(tmp_path, listener, None)


def test_a_go_agents_encrypted_push_pull_and_packets_decode(
    listener: Listener, tmp_path: Path
) -> None:
    join_and_wait_for_ping(tmp_path, listener, KEY)


def test_a_go_agents_stream_under_another_key_is_refused(
    listener: Listener, tmp_path: Path
) -> None:
    agent = start_agent(tmp_path, listener.port, KEY)
    try:
        listener.tcp.settimeout(DEADLINE)
        conn, _ = listener.tcp.accept()
        with conn, pytest.raises(DecryptError, match="no installed keys"):
            read_push_pull(conn, [OTHER_KEY])
    finally:
        agent.kill()


def test_serf_keygen_output_parses_as_a_key() -> None:
    out = serf("keygen")
    assert out.returncode == 0 and len(parse_serf_key(out.stdout)) == 32
