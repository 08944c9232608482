"""Hypothesis fuzzing of PacketSigner.unwrap: arbitrary and mutated bytes, every mode.

Only AuthenticationError may escape, every call is counted exactly once, and a mutated
signed or sealed packet is accepted only if it is still the genuine packet. The long run
(atheris, 1,000,000+ inputs) lives in fuzz/fuzz_decoders.py.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from swimgossip.security import AuthenticationError, Keyring, PacketSigner, SecurityMode
from swimgossip.security._envelope import is_reserved

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
NOW = 1_700_000_000.0
MODES = st.sampled_from(list(SecurityMode))
LABELS = st.sampled_from([b"", b"prod", b"x" * 255])
PLAIN_MODES = {SecurityMode.OFF, SecurityMode.SIGN_ACCEPT_UNSIGNED}


def make(mode: SecurityMode, label: bytes, keyed: bool = True) -> PacketSigner:
    ring = Keyring([K1, K2]) if keyed or mode is not SecurityMode.OFF else None
    return PacketSigner(ring, mode, label=label, clock=lambda: NOW)


def unwrap_or_refuse(sign: PacketSigner, data: bytes) -> bytes | None:
    before = sign.stats()
    try:
        payload = sign.unwrap(data)
    except AuthenticationError as exc:
        assert exc.reason is not None
        after = sign.stats()
        assert after.rejected == before.rejected + 1
        assert after.accepted == before.accepted
        return None
    after = sign.stats()
    assert after.accepted == before.accepted + 1
    assert after.rejected == before.rejected
    return payload


@given(data=st.binary(max_size=400), mode=MODES, label=LABELS, keyed=st.booleans())
def test_unwrap_arbitrary_bytes(data: bytes, mode: SecurityMode, label: bytes, keyed: bool) -> None:
    sign = make(mode, label, keyed)
    payload = unwrap_or_refuse(sign, data)
    if payload is not None:
        # Random bytes are accepted only as plain packets, never as forged envelopes.
        assert mode in PLAIN_MODES
        assert not is_reserved(payload[0]) if payload else True
        assert data == sign.wrap(payload) if mode is SecurityMode.OFF else data.endswith(payload)


@st.composite
def mutations(draw: st.DrawFn, packet: bytes) -> bytes:
    data = bytearray(packet)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "append"]))
        position = draw(st.integers(0, len(data)))
        if kind == "flip" and data:
            index = min(position, len(data) - 1)
            data[index] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[position : position + draw(st.integers(1, 8))]
        elif kind == "append":
            data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@given(
    payload=st.binary(max_size=200).map(lambda body: b"\x01" + body),
    sender_mode=st.sampled_from(list(SecurityMode)[1:]),
    receiver_mode=MODES,
    label=LABELS,
    data=st.data(),
)
def test_unwrap_mutated_packets(
    payload: bytes,
    sender_mode: SecurityMode,
    receiver_mode: SecurityMode,
    label: bytes,
    data: st.DataObject,
) -> None:
    packet = make(sender_mode, label).wrap(payload)
    mutated = data.draw(mutations(packet))
    receiver = make(receiver_mode, label)
    result = unwrap_or_refuse(receiver, mutated)
    if result is None or mutated == packet:
        return
    # A changed packet is accepted only as a plain one, by a mode that accepts plain.
    assert receiver_mode in PLAIN_MODES
    assert mutated.endswith(result)
    assert len(mutated) - len(result) in (0, 2 + len(label))


@given(payload=st.binary(max_size=500), mode=st.sampled_from(list(SecurityMode)[1:]))
def test_round_trip_any_payload(payload: bytes, mode: SecurityMode) -> None:
    sender = PacketSigner(Keyring([K2]), mode, clock=lambda: NOW)
    receiver = PacketSigner(Keyring([K1, K2]), SecurityMode.SEAL_ACCEPT_SIGNED, clock=lambda: NOW)
    assert receiver.unwrap(sender.wrap(payload)) == payload
