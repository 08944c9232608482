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
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from swimgossip.net.memberlist import (
    Ack,
    DecryptError,
    MsgpackError,
    Ping,
    PushNodeState,
    PushPull,
    WireError,
    decode_packet,
    decode_push_pull,
    decrypt_payload,
    decrypt_stream,
    encode_message,
    encode_push_pull,
    encrypt_payload,
    encrypt_stream,
    parse_serf_key,
)

pytestmark = [
    pytest.mark.real_network,
    pytest.mark.skipif(
        shutil.which("serf") is None,
        reason="the serf binary is missing (apt-get install serf): cannot test against Go",
    ),
]

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 116))
DEADLINE = 20.0  # seconds for any one wait on the agent
MAX_PACKETS = 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Listener:
    """A TCP listener and a UDP socket on one loopback port, like a memberlist node."""

    def __init__(self) -> None:
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.port: int = self.tcp.getsockname()[1]
        self.tcp.listen(4)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))

    def close(self) -> None:
        self.tcp.close()
        self.udp.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    here = Listener()
    yield here
    here.close()


def start_agent(join_port: int, key: bytes | None) -> subprocess.Popen[bytes]:
    cmd = [
        "serf",
        "agent",
        "-node=go1",
        f"-bind=127.0.0.1:{_free_port()}",
        f"-rpc-addr=127.0.0.1:{_free_port()}",
        f"-join=127.0.0.1:{join_port}",
        "-tag",
        "role=web",
    ]
    if key is not None:
        cmd.append("-encrypt=" + base64.b64encode(key).decode())
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def stop(agent: subprocess.Popen[bytes]) -> str:
    agent.kill()
    out, _ = agent.communicate(timeout=10)
    return out.decode(errors="replace")[-2000:]


def read_push_pull(conn: socket.socket, keys: list[bytes] | None) -> tuple[bytes, PushPull]:
    """Read the agent's push-pull until it decodes (bounded in bytes and time)."""
    buf = b""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end and len(buf) < 1 << 20:
        conn.settimeout(max(0.1, end - time.monotonic()))
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
        try:
            plain = decrypt_stream(keys, buf)[0] if keys is not None else buf
            return buf, decode_push_pull(plain)
        except MsgpackError:
            continue  # truncated so far
        except WireError as exc:
            if "truncated" in str(exc):
                continue
            raise
    raise AssertionError(f"no whole push-pull from the agent ({len(buf)} bytes)")


def join_and_wait_for_ping(listener: Listener, key: bytes | None) -> None:
    agent = start_agent(listener.port, key)
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
        print(stop(agent))
        raise
    stop(agent)


def test_a_go_agents_push_pull_and_packets_decode(listener: Listener) -> None:
    join_and_wait_for_ping(listener, None)


def test_a_go_agents_encrypted_push_pull_and_packets_decode(listener: Listener) -> None:
    join_and_wait_for_ping(listener, KEY)


def test_a_go_agents_stream_under_another_key_is_refused(listener: Listener) -> None:
    agent = start_agent(listener.port, KEY)
    try:
        listener.tcp.settimeout(DEADLINE)
        conn, _ = listener.tcp.accept()
        with conn, pytest.raises(DecryptError, match="no installed keys"):
            read_push_pull(conn, [OTHER_KEY])
    finally:
        stop(agent)


def test_serf_keygen_output_parses_as_a_key() -> None:
    out = subprocess.run(["serf", "keygen"], capture_output=True, text=True, timeout=30, check=True)
    assert len(parse_serf_key(out.stdout)) == 32
