"""Coverage-guided fuzzing of everything that parses bytes from the network (atheris).

Targets: ``codec.decode_packet``, ``codec.decode_stream``, ``framing.frame_length`` and
``PacketSigner.unwrap`` in every security mode, with and without a cluster label, and
Serf's decoders (``swimgossip.net.serf.messages.DECODERS``: messages, push-pull state,
tags, query filters), which may raise only ``WireError``. The only
exceptions allowed to escape are the typed ones (``DecodeError``, ``AuthenticationError``,
``FrameTooLarge``, ``MalformedFramePrefix``); anything else is a crash that atheris reports
with the input that caused it. The harness also round-trips the input as a payload through
``wrap`` / ``unwrap`` (and once more with one byte flipped), so the authenticated paths
(tags, AEAD, the replay cache) and the decoders behind them are exercised, not only the
early refusals.

Input layout: byte 0 picks the action, byte 1 the signer, bytes 2-3 where to flip a byte,
the rest is the body. msgpack's parser is C and gives atheris no coverage feedback, so a
seed corpus of valid packets (``--make-corpus``) lets it start from deep inside the codec.

Not part of the test suite (hypothesis covers the same ground briefly in tests/). Run:

    .venv/bin/pip install atheris
    .venv/bin/python fuzz/fuzz_decoders.py --make-corpus /tmp/swim-corpus
    .venv/bin/python fuzz/fuzz_decoders.py /tmp/swim-corpus -atheris_runs=1000000

Results are recorded in docs/security.md ("Fuzzing").
"""

from __future__ import annotations

import contextlib

import atheris
from _harness import main

from swimgossip.core import _codec_rules, codec  # noqa: F401 (_codec_rules: see below)
from swimgossip.core.errors import DecodeError
from swimgossip.core.member import Member, Status
from swimgossip.core.messages import (
    Ack,
    Alive,
    Dead,
    Left,
    Message,
    Nack,
    Ping,
    PingReq,
    PushPull,
    Suspect,
    UserMessage,
)
from swimgossip.net import FrameTooLarge, MalformedFramePrefix, frame_length
from swimgossip.net.memberlist import WireError
from swimgossip.net.serf import (
    JoinIntent,
    SerfPushPull,
    UserEvent,
    encode_serf_message,
    encode_serf_push_pull,
    encode_serf_tags,
)
from swimgossip.net.serf.messages import DECODERS as SERF_DECODERS
from swimgossip.security import AuthenticationError, Keyring, PacketSigner, SecurityMode

# Instrument every loaded Python function for coverage (instrument_imports() misses modules
# loaded through the editable install's import hook). The codec loads its rule table
# (_codec_rules, the explanation of a refused row) only on the first refusal, so it is
# imported above to be loaded, and instrumented, already.
atheris.instrument_all()


class _TickingClock:
    """Advances 1 ms per reading: packets stay fresh, timestamps stay distinct."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


_CLOCK = _TickingClock()
_RING = Keyring([bytes(range(32)), bytes(range(1, 17))])
_SIGNERS = [
    PacketSigner(_RING if keyed else None, mode, label=label, clock=_CLOCK)
    for mode in SecurityMode
    for keyed in ((False, True) if mode is SecurityMode.OFF else (True,))
    for label in (b"", b"prod")
]
_ACTIONS = 6
_TYPED = (DecodeError, AuthenticationError, FrameTooLarge, MalformedFramePrefix, WireError)


def _decode_payload(payload: bytes) -> None:
    for decode in (codec.decode_packet, codec.decode_stream):
        with contextlib.suppress(DecodeError):
            decode(payload)


def _round_trip(signer: PacketSigner, body: bytes, flip: int) -> None:
    try:
        packet = signer.wrap(body)
    except ValueError:  # PayloadError: a plain payload that looks like an envelope
        return
    if not body and signer.mode is SecurityMode.OFF:
        return  # an empty plain packet is refused as truncated, by design
    tampered = bytearray(packet)
    tampered[flip % len(tampered)] ^= 1 + (flip >> 8) % 255
    try:
        signer.unwrap(bytes(tampered))
        assert signer.mode in (SecurityMode.OFF, SecurityMode.SIGN_ACCEPT_UNSIGNED)
    except AuthenticationError:
        pass
    assert signer.unwrap(packet) == body, "a genuine packet was refused"
    _decode_payload(body)


def test_one_input(data: bytes) -> None:
    if len(data) < 4:
        return
    action = data[0] % _ACTIONS
    signer = _SIGNERS[data[1] % len(_SIGNERS)]
    flip = int.from_bytes(data[2:4], "big")
    body = data[4:]
    try:
        if action == 0:
            codec.decode_packet(body)
        elif action == 1:
            codec.decode_stream(body)
        elif action == 2:
            frame_length(body[:4], max_size=flip * 512)
        elif action == 3:
            _decode_payload(signer.unwrap(body))  # what the runtime does with a datagram
        elif action == 5:
            SERF_DECODERS[data[1] % len(SERF_DECODERS)](body)
        elif action == 4:
            _round_trip(signer, body, flip)
    except _TYPED:
        pass


def _sample_messages() -> list[Message]:
    return [
        Ping(seq=42, target="node-b"),
        Ack(seq=2**64 - 1),
        Nack(seq=7),
        PingReq(seq=1, target="node-c", target_address="[::1]:7946", nack=True),
        Alive(name="node-a", address="10.0.0.1:7946", incarnation=3, meta=b"dc=1"),
        Suspect(name="node-b", incarnation=1, source="node-a"),
        Dead(name="node-b", incarnation=1, source="node-a"),
        Left(name="node-a", incarnation=4),
        UserMessage(source="node-a", id=9, payload=b"hello"),
    ]


def seed_inputs() -> list[bytes]:
    """The seed inputs: valid packets and stream frames for each action and signer."""
    messages = _sample_messages()
    pushpull = PushPull(
        source="node-a",
        join=True,
        members=(
            Member(name="node-a", address="10.0.0.1:7946", status=Status.ALIVE, incarnation=3),
        ),
    )
    packets = [codec.encode_packet(messages), *(codec.encode_packet([m]) for m in messages)]
    streams = [codec.encode_stream(pushpull), codec.encode_stream(messages[0])]
    seeds: list[bytes] = []
    for packet in packets:
        seeds.append(bytes([0, 0, 0, 5]) + packet)
    for stream in streams:
        seeds.append(bytes([1, 0, 0, 5]) + stream)
    seeds.append(bytes([2, 0, 0, 1]) + b"\x00\x00\x01\x00")
    for index, signer in enumerate(_SIGNERS):
        for body in (packets[0], streams[0]):
            seeds.append(bytes([3, index, 0, 5]) + signer.wrap(body))
            seeds.append(bytes([4, index, 0, 5]) + body)
    serf_seeds = [  # (index of the decoder in SERF_DECODERS, input)
        (0, encode_serf_message(JoinIntent(ltime=1, node="go1"))),
        (0, encode_serf_message(UserEvent(ltime=1, name="deploy", payload=b"v1.2", coalesce=True))),
        (1, encode_serf_push_pull(SerfPushPull(ltime=1, status_ltimes=(("go1", 0),)))),
        (2, encode_serf_tags({"role": "web"})),
    ]
    for index, raw in serf_seeds:
        seeds.append(bytes([5, index, 0, 5]) + raw)
    return seeds


if __name__ == "__main__":
    main(test_one_input, seed_inputs)
