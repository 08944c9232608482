"""Tests for swimgossip.security: keyring, key files, signing modes, rotation and fuzzing."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimgossip.core.errors import ConfigError, LocalError, RemoteError
from swimgossip.security import (
    SIGNATURE_OVERHEAD,
    SIGNED_MARKER,
    AuthenticationError,
    Keyring,
    KeyringError,
    PacketSigner,
    PayloadError,
    SecurityMode,
    SecurityStats,
    encode_key,
    generate_key,
)

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
K3 = b"\x07" * 16
PAYLOAD = b"\x01" + b"gossip" * 30


def signer(*keys: bytes, mode: SecurityMode = SecurityMode.REQUIRED) -> PacketSigner:
    return PacketSigner(Keyring(keys), mode)


# --- keyring -----------------------------------------------------------------------------


def test_keyring_primary_and_order() -> None:
    ring = Keyring([K1, K2])
    assert ring.primary == K1
    assert ring.keys == (K1, K2)
    steps: list[tuple[Callable[[], None], tuple[bytes, ...]]] = [
        (lambda: ring.install(K3), (K1, K2, K3)),
        (lambda: ring.install(K2), (K1, K2, K3)),  # already installed: no change
        (lambda: ring.use(K3), (K3, K1, K2)),
        (lambda: ring.remove(K1), (K3, K2)),
    ]
    for step, expected in steps:
        step()
        assert ring.keys == expected
        assert ring.primary == expected[0]


@pytest.mark.parametrize("size", [16, 24, 32])
def test_keyring_accepts_key_sizes(size: int) -> None:
    assert Keyring([b"k" * size]).primary == b"k" * size


@pytest.mark.parametrize("size", [0, 1, 15, 17, 31, 33, 64])
def test_keyring_rejects_bad_key_sizes(size: int) -> None:
    with pytest.raises(KeyringError, match="16, 24 or 32"):
        Keyring([b"k" * size])
    with pytest.raises(KeyringError):
        Keyring([K1]).install(b"k" * size)
    with pytest.raises(KeyringError):
        encode_key(b"k" * size)


def test_keyring_errors() -> None:
    with pytest.raises(KeyringError, match="at least one"):
        Keyring([])
    with pytest.raises(KeyringError, match="duplicate"):
        Keyring([K1, K2, K1])
    with pytest.raises(KeyringError, match="single key"):
        Keyring(K1)  # type: ignore[arg-type]
    with pytest.raises(KeyringError, match="must be bytes"):
        Keyring(["x" * 32])  # type: ignore[list-item]
    ring = Keyring([K1, K2])
    with pytest.raises(KeyringError, match="primary"):
        ring.remove(K1)
    with pytest.raises(KeyringError, match="not installed"):
        ring.remove(K3)
    with pytest.raises(KeyringError, match="not installed"):
        ring.use(K3)
    assert ring.keys == (K1, K2)


def test_keyring_error_types() -> None:
    assert issubclass(KeyringError, LocalError)
    assert issubclass(KeyringError, ValueError)
    assert issubclass(PayloadError, LocalError)
    assert issubclass(AuthenticationError, RemoteError)


def test_keyring_repr_hides_keys() -> None:
    ring = Keyring([K1, K2])
    assert repr(ring) == "<Keyring of 2 key(s)>"
    assert repr(PacketSigner(ring, SecurityMode.REQUIRED)).count(K1.hex()) == 0


def test_generate_and_encode_key() -> None:
    key = generate_key()
    assert len(key) == 32
    assert generate_key() != key
    assert base64.b64decode(encode_key(key)) == key
    assert Keyring.parse(encode_key(key)).primary == key


# --- key files ---------------------------------------------------------------------------


def test_parse_key_file() -> None:
    text = f"""
# cluster keys, primary first
{encode_key(K2)}

   {encode_key(K1)}
# old key, remove after rotation
{encode_key(K3)}
"""
    ring = Keyring.parse(text)
    assert ring.keys == (K2, K1, K3)


def test_from_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"{encode_key(K1)}\n{encode_key(K2)}\n", encoding="utf-8")
    assert Keyring.from_file(path).keys == (K1, K2)
    assert Keyring.from_file(str(path)).keys == (K1, K2)


def test_from_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Keyring.from_file(tmp_path / "missing")
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(KeyringError, match="UTF-8"):
        Keyring.from_file(binary)
    bad = tmp_path / "bad"
    bad.write_text(f"# header\n{encode_key(K1)}\nnot base64!\n", encoding="utf-8")
    with pytest.raises(KeyringError, match="line 3") as info:
        Keyring.from_file(bad)
    assert info.value.line == 3


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (f"{encode_key(K1)}\n%%%%\n", 2, "base64"),
        (f"\n\n# c\n{base64.b64encode(b'short').decode()}\n", 4, "16, 24 or 32"),
        (f"{encode_key(K1)}\n\n{encode_key(K2)}\n{encode_key(K1)}\n", 4, "line 1"),
        (f"{encode_key(K1)[:-2]}\n", 1, "base64"),  # bad padding
        (f"{encode_key(K1).replace('A', '-')}-_\n", 1, "base64"),  # urlsafe alphabet
        ("AAAA AAAA\n", 1, "base64"),  # whitespace inside a key
    ],
)
def test_parse_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(KeyringError, match=message) as info:
        Keyring.parse(text)
    assert info.value.line == line
    assert str(info.value).startswith(f"line {line}: ")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n  \n#another\n"])
def test_parse_without_keys(text: str) -> None:
    with pytest.raises(KeyringError, match="no keys") as info:
        Keyring.parse(text)
    assert info.value.line is None


# --- signing -----------------------------------------------------------------------------


def test_round_trip_and_format() -> None:
    sign = signer(K1)
    packet = sign.wrap(PAYLOAD)
    assert len(packet) == len(PAYLOAD) + SIGNATURE_OVERHEAD
    assert packet[0] == SIGNED_MARKER
    assert packet[SIGNATURE_OVERHEAD:] == PAYLOAD
    assert sign.unwrap(packet) == PAYLOAD
    assert signer(K1).unwrap(packet) == PAYLOAD
    assert sign.stats() == SecurityStats(accepted_signed=1)
    assert sign.overhead == SIGNATURE_OVERHEAD


def test_tag_is_hmac_sha256_over_marker_and_payload() -> None:
    import hashlib
    import hmac

    packet = signer(K1).wrap(PAYLOAD)
    expected = hmac.new(K1, bytes([SIGNED_MARKER]) + PAYLOAD, hashlib.sha256).digest()
    assert packet[1:SIGNATURE_OVERHEAD] == expected


def test_empty_payload_round_trips() -> None:
    sign = signer(K1)
    assert sign.unwrap(sign.wrap(b"")) == b""


def test_forged_tag_rejected() -> None:
    sign = signer(K1)
    packet = bytearray(sign.wrap(PAYLOAD))
    packet[5] ^= 0x01
    with pytest.raises(AuthenticationError):
        sign.unwrap(bytes(packet))
    assert sign.stats() == SecurityStats(rejected_forged=1)


def test_tampered_payload_rejected() -> None:
    sign = signer(K1)
    packet = bytearray(sign.wrap(PAYLOAD))
    packet[-1] ^= 0x80
    with pytest.raises(AuthenticationError):
        sign.unwrap(bytes(packet))
    with pytest.raises(AuthenticationError):
        sign.unwrap(sign.wrap(PAYLOAD) + b"x")
    assert sign.stats().rejected_forged == 2


@pytest.mark.parametrize("length", [0, 1, 2, SIGNATURE_OVERHEAD - 1])
def test_truncated_rejected(length: int) -> None:
    sign = signer(K1)
    packet = sign.wrap(PAYLOAD)[:length]
    with pytest.raises(AuthenticationError):
        sign.unwrap(packet)
    assert sign.stats() == SecurityStats(rejected_truncated=1)


def test_truncated_payload_is_forged() -> None:
    sign = signer(K1)
    with pytest.raises(AuthenticationError):
        sign.unwrap(sign.wrap(PAYLOAD)[:-1])
    assert sign.stats() == SecurityStats(rejected_forged=1)


def test_wrong_key_rejected() -> None:
    packet = signer(K2).wrap(PAYLOAD)
    receiver = signer(K1, K3)
    with pytest.raises(AuthenticationError, match="no installed key"):
        receiver.unwrap(packet)
    assert receiver.stats() == SecurityStats(rejected_forged=1)


def test_unsigned_rejected_when_required() -> None:
    sign = signer(K1)
    with pytest.raises(AuthenticationError, match="unsigned"):
        sign.unwrap(PAYLOAD)
    assert sign.stats() == SecurityStats(rejected_unsigned=1)
    assert sign.stats().rejected == 1


def test_sign_accept_unsigned_accepts_both() -> None:
    sign = signer(K1, mode=SecurityMode.SIGN_ACCEPT_UNSIGNED)
    packet = sign.wrap(PAYLOAD)
    assert packet[0] == SIGNED_MARKER
    assert sign.unwrap(packet) == PAYLOAD
    assert sign.unwrap(PAYLOAD) == PAYLOAD
    forged = packet[:-1] + bytes([packet[-1] ^ 1])
    with pytest.raises(AuthenticationError):
        sign.unwrap(forged)  # signed packets are still verified
    assert sign.stats() == SecurityStats(accepted_signed=1, accepted_unsigned=1, rejected_forged=1)


def test_off_mode() -> None:
    plain = PacketSigner()
    assert plain.mode is SecurityMode.OFF
    assert plain.overhead == 0
    assert plain.wrap(PAYLOAD) == PAYLOAD
    assert plain.unwrap(PAYLOAD) == PAYLOAD
    signed = signer(K1).wrap(PAYLOAD)
    with pytest.raises(AuthenticationError):
        plain.unwrap(signed)  # no keyring: a signed packet cannot be verified
    assert plain.stats() == SecurityStats(accepted_unsigned=1, rejected_forged=1)
    with pytest.raises(PayloadError):
        plain.wrap(bytes([SIGNED_MARKER]) + PAYLOAD)

    keyed = PacketSigner(Keyring([K1]), SecurityMode.OFF)
    assert keyed.wrap(PAYLOAD) == PAYLOAD
    assert keyed.unwrap(signed) == PAYLOAD
    with pytest.raises(AuthenticationError):
        keyed.unwrap(signer(K2).wrap(PAYLOAD))


def test_migration_from_off_to_required() -> None:
    off, migrating, required = (
        PacketSigner(Keyring([K1]), SecurityMode.OFF),
        signer(K1, mode=SecurityMode.SIGN_ACCEPT_UNSIGNED),
        signer(K1),
    )
    assert migrating.unwrap(off.wrap(PAYLOAD)) == PAYLOAD
    assert off.unwrap(migrating.wrap(PAYLOAD)) == PAYLOAD
    assert required.unwrap(migrating.wrap(PAYLOAD)) == PAYLOAD
    with pytest.raises(AuthenticationError):
        required.unwrap(off.wrap(PAYLOAD))


@pytest.mark.parametrize("mode", [SecurityMode.SIGN_ACCEPT_UNSIGNED, SecurityMode.REQUIRED])
def test_signing_mode_needs_keyring(mode: SecurityMode) -> None:
    with pytest.raises(ConfigError, match="keyring"):
        PacketSigner(None, mode)


def test_signer_settings_are_fixed() -> None:
    sign = PacketSigner()
    with pytest.raises(attrs.exceptions.FrozenAttributeError):
        sign.mode = SecurityMode.REQUIRED  # would break "signing needs a keyring"


def test_mode_values_for_config() -> None:
    assert SecurityMode("off") is SecurityMode.OFF
    assert SecurityMode("sign-accept-unsigned") is SecurityMode.SIGN_ACCEPT_UNSIGNED
    assert SecurityMode("required") is SecurityMode.REQUIRED


def test_rotation() -> None:
    ring_a, ring_b = Keyring([K1]), Keyring([K1, K2])
    a = PacketSigner(ring_a, SecurityMode.REQUIRED)
    b = PacketSigner(ring_b, SecurityMode.REQUIRED)
    assert a.unwrap(b.wrap(PAYLOAD)) == PAYLOAD

    ring_b.use(K2)  # B signs with k2 before A knows it
    with pytest.raises(AuthenticationError):
        a.unwrap(b.wrap(PAYLOAD))
    assert b.unwrap(a.wrap(PAYLOAD)) == PAYLOAD  # B still accepts k1

    ring_a.install(K2)  # the signer sees keyring changes live
    assert a.unwrap(b.wrap(PAYLOAD)) == PAYLOAD
    ring_a.use(K2)
    ring_a.remove(K1)
    ring_b.remove(K1)
    assert a.unwrap(b.wrap(PAYLOAD)) == PAYLOAD
    assert b.unwrap(a.wrap(PAYLOAD)) == PAYLOAD
    assert ring_a.keys == ring_b.keys == (K2,)

    old = PacketSigner(Keyring([K1]), SecurityMode.REQUIRED)
    with pytest.raises(AuthenticationError):
        a.unwrap(old.wrap(PAYLOAD))  # the removed key is refused
    assert a.stats() == SecurityStats(accepted_signed=3, rejected_forged=2)


# --- fuzzing -----------------------------------------------------------------------------

MODES = st.sampled_from(list(SecurityMode))


def _unwrap_or_refuse(sign: PacketSigner, data: bytes) -> bytes | None:
    before = sign.stats()
    try:
        payload = sign.unwrap(data)
    except AuthenticationError:
        assert sign.stats().rejected == before.rejected + 1
        return None
    after = sign.stats()
    total = after.accepted_signed + after.accepted_unsigned
    assert total == before.accepted_signed + before.accepted_unsigned + 1
    return payload


@given(data=st.binary(max_size=300), mode=MODES, keyed=st.booleans())
def test_unwrap_arbitrary_bytes(data: bytes, mode: SecurityMode, keyed: bool) -> None:
    sign = PacketSigner(Keyring([K1, K2]) if keyed or mode is not SecurityMode.OFF else None, mode)
    payload = _unwrap_or_refuse(sign, data)
    if payload is not None:
        # Random bytes are accepted only as plain packets, never as forged signed ones.
        assert data[:1] != bytes([SIGNED_MARKER])
        assert mode is not SecurityMode.REQUIRED
        assert payload == data


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
    mode=st.sampled_from([SecurityMode.SIGN_ACCEPT_UNSIGNED, SecurityMode.REQUIRED]),
    data=st.data(),
)
def test_unwrap_mutated_signed_packets(
    payload: bytes, mode: SecurityMode, data: st.DataObject
) -> None:
    sender = signer(K1, mode=mode)
    receiver = signer(K1, K2, mode=mode)
    packet = sender.wrap(payload)
    mutated = data.draw(mutations(packet))
    result = _unwrap_or_refuse(receiver, mutated)
    if result is None:
        return
    if mutated[:1] == bytes([SIGNED_MARKER]):
        # A mutated packet verifies only if it is still the genuine signed packet.
        assert mutated == packet
        assert result == payload
    else:
        assert mode is SecurityMode.SIGN_ACCEPT_UNSIGNED
        assert result == mutated


@given(payload=st.binary(max_size=500), primary=st.sampled_from([K1, K2, K3]))
def test_round_trip_any_payload(payload: bytes, primary: bytes) -> None:
    sender = signer(primary)
    receiver = signer(K3, K2, K1)
    assert receiver.unwrap(sender.wrap(payload)) == payload
