"""Coverage-guided fuzzing of the memberlist wire decoders (atheris): what a Go peer sends.

Targets: ``remove_label`` + ``decode_packet`` (CRC, compound, LZW compression, every
message type), ``decode_push_pull`` (header, node states, user state, compressed),
``decrypt_payload`` / ``decrypt_stream`` (AES-GCM, versions 0 and 1, PKCS#7 padding), the
go-msgpack reader, and the translation of what decodes into the engine's messages
(``from_memberlist`` / ``from_push_pull``); and the memberlist wire mode's own entry
points: the stream server's reader (``read_stream_message``: label, ``encryptMsg``,
incremental end of a plain message) and ``MemberlistWire.decode_packet`` /
``decode_stream`` as the engine calls them. The only exceptions allowed to escape are the
typed ``WireError`` (every memberlist refusal is one) and, from the wire mode's engine
entry points, the engine's ``DecodeError``; anything else is a crash that
atheris reports with its input. Our msgpack and LZW are pure Python, so atheris gets
coverage feedback from inside them; a seed corpus (``--make-corpus``) of packets and
streams built by our encoder starts it deep in the codec.

Input layout: byte 0 picks the action, the rest is the body.

Not part of the test suite (tests/test_memberlist_codec.py covers the same ground briefly
with hypothesis). Run:

    .venv/bin/pip install atheris
    .venv/bin/python fuzz/fuzz_memberlist.py --make-corpus /tmp/ml-corpus
    .venv/bin/python fuzz/fuzz_memberlist.py /tmp/ml-corpus -atheris_runs=1000000

Results are recorded in docs/security.md ("Fuzzing").
"""

from __future__ import annotations

import atheris
from _harness import main

with atheris.instrument_imports():
    from swimgossip.core.errors import DecodeError
    from swimgossip.net.memberlist import (
        Ack,
        Alive,
        Dead,
        IndirectPing,
        Nack,
        Ping,
        PushNodeState,
        PushPull,
        Suspect,
        UserMessage,
        WireError,
        add_crc,
        add_label,
        compress,
        decode_packet,
        decode_push_pull,
        decrypt_payload,
        decrypt_stream,
        encode_message,
        encode_push_pull,
        encrypt_payload,
        encrypt_stream,
        from_memberlist,
        from_push_pull,
        make_compound,
        remove_label,
    )
    from swimgossip.net.memberlist._crypto import MemberlistKeyring
    from swimgossip.net.memberlist._msgpack import unpack
    from swimgossip.net.memberlist._transport import read_stream_message
    from swimgossip.net.memberlist._wire import MemberlistWire

atheris.instrument_all()

_KEYS = [bytes(range(16)), bytes(range(32))]
_ACTIONS = 8
_KEYRING = MemberlistKeyring(_KEYS)
_WIRE = MemberlistWire(budget=1396)


def _packet(body: bytes) -> None:
    rest, _label = remove_label(body)
    messages, _truncated = decode_packet(rest)
    for message in messages:
        from_memberlist(message)


def _push_pull(body: bytes) -> None:
    rest, _label = remove_label(body)
    from_push_pull(decode_push_pull(rest), source="peer")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    action = data[0] % _ACTIONS
    body = data[1:]
    try:
        if action == 0:
            _packet(body)
        elif action == 1:
            _push_pull(body)
        elif action == 2:
            _packet(decrypt_payload(_KEYS, body, b""))
        elif action == 3:
            plain, _used = decrypt_stream(_KEYS, body)
            _push_pull(plain)
        elif action == 4:
            unpack(body)
        elif action == 5:
            # The stream server's first byte decides: a push-pull or one plain message
            # (the TCP fallback ping, a userMsg) on the same connection.
            _push_pull(body) if body[:1] == b"\x06" else _packet(body)
        elif action == 6:
            # The wire mode's stream server: label, decrypt or find the plain end, then
            # the engine's decoder.
            keyring = _KEYRING if body[:1] == b"\x0a" else None
            _WIRE.decode_stream(read_stream_message(body, label="", keyring=keyring))
        else:
            _WIRE.decode_packet(body)
    except (WireError, DecodeError):
        pass


def _messages() -> list[bytes]:
    ip = bytes((127, 0, 0, 1))
    return [
        encode_message(m)
        for m in (
            Ping(seq_no=1, node="go-1", source_addr=ip, source_port=7946, source_node="py"),
            IndirectPing(seq_no=2, target=ip, port=7947, node="go-2", nack=True),
            Ack(seq_no=1, payload=b"\x01coord"),
            Nack(seq_no=2),
            Suspect(incarnation=3, node="go-2", sender="go-1"),
            Alive(incarnation=4, node="go-3", addr=ip, port=7948, meta=b"\xffm", vsn=bytes(6)),
            Dead(incarnation=5, node="go-3", sender="go-3"),
            UserMessage(payload=b"\x05serf"),
        )
    ]


def seed_inputs() -> list[bytes]:
    """The seed inputs: every message, a CRC'd compound, compressed, labelled, encrypted."""
    messages = _messages()
    compound = make_compound(messages)
    packets = [*messages, compound, add_crc(compound), compress(compound)]
    packets.append(add_label(add_crc(compound), "prod"))
    nodes = tuple(
        PushNodeState(
            name=f"go-{n}",
            addr=bytes((127, 0, 0, 1)),
            port=7946 + n,
            meta=b"",
            incarnation=n,
            state=n % 4,
            vsn=bytes((1, 5, 2, 2, 5, 4)),
        )
        for n in range(3)
    )
    stream = encode_push_pull(PushPull(join=True, nodes=nodes, user_state=b"serf-state"))
    seeds = [b"\x00" + p for p in packets]
    seeds += [b"\x01" + stream, b"\x01" + compress(stream), b"\x05" + stream]
    seeds += [
        b"\x02" + encrypt_payload(_KEYS[0], p, b"", version=v) for p in packets[:3] for v in (0, 1)
    ]
    seeds += [b"\x03" + encrypt_stream(_KEYS[1], stream)]
    seeds += [b"\x04" + stream[1:], b"\x05" + messages[0]]
    seeds += [b"\x06" + stream, b"\x06" + encrypt_stream(_KEYS[0], compress(stream))]
    seeds += [b"\x07" + add_crc(compound), b"\x07" + compress(compound)]
    return seeds


if __name__ == "__main__":
    main(test_one_input, seed_inputs)
