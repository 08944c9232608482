"""memberlist's encryption (net/memberlist/_crypto): the version byte, nonce and AES-GCM
layout of security.go, the stream header as additional data, key sizes, the keyring's
install / use / remove, and Serf's base64 key."""

from __future__ import annotations

import base64
import contextlib
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from swimgossip.net.memberlist import (
    DecryptError,
    MemberlistKeyring,
    WireError,
    decrypt_payload,
    decrypt_stream,
    encrypt_payload,
    encrypt_stream,
    encrypted_length,
    parse_serf_key,
)

NONCE = bytes(range(12))
K16, K24, K32 = bytes(16), bytes(range(24)), bytes(range(32))


def test_version_1_is_the_gcm_spec_vector_behind_version_and_nonce() -> None:
    # GCM spec test case 2: AES-128, zero key, zero IV, one zero block, no AAD
    sealed = encrypt_payload(bytes(16), bytes(16), b"", nonce=bytes(12), version=1)
    ciphertext = bytes.fromhex("0388dace60b6a392f328c2b971b2fe78")
    tag = bytes.fromhex("ab6e47d42cec13bdf53a67b21257bddf")
    assert sealed == b"\x01" + bytes(12) + ciphertext + tag
    assert decrypt_payload([bytes(16)], sealed, b"") == bytes(16)


def test_version_0_pads_with_pkcs7_before_sealing() -> None:
    sealed = encrypt_payload(K16, b"hello", b"lbl", nonce=NONCE, version=0)
    padded = b"hello" + bytes((11,)) * 11
    assert sealed == b"\x00" + NONCE + AESGCM(K16).encrypt(NONCE, padded, b"lbl")
    assert len(sealed) == encrypted_length(0, 5) == 1 + 12 + 16 + 16
    assert decrypt_payload([K16], sealed, b"lbl") == b"hello"


@pytest.mark.parametrize("key", [K16, K24, K32])
def test_every_memberlist_key_size_works(key: bytes) -> None:
    sealed = encrypt_payload(key, b"ping", b"", nonce=NONCE)
    assert sealed == b"\x01" + NONCE + AESGCM(key).encrypt(NONCE, b"ping", b"")
    assert decrypt_payload([key], sealed, b"") == b"ping"


@pytest.mark.parametrize("size", [0, 8, 15, 17, 31, 33, 64])
def test_other_key_sizes_are_refused(size: int) -> None:
    with pytest.raises(ValueError, match="16, 24 or 32"):
        encrypt_payload(bytes(size), b"x", b"")
    with pytest.raises(ValueError, match="16, 24 or 32"):
        MemberlistKeyring([bytes(size)])


def test_the_label_is_authenticated() -> None:
    sealed = encrypt_payload(K32, b"ping", b"prod", nonce=NONCE)
    with pytest.raises(DecryptError, match="no installed keys"):
        decrypt_payload([K32], sealed, b"dev")


def test_the_stream_header_and_label_are_additional_data() -> None:
    wire = encrypt_stream(K32, b"\x06state", "prod", nonce=NONCE)
    size = encrypted_length(1, 6)
    header = b"\x0a" + struct.pack(">I", size)
    body = b"\x01" + NONCE + AESGCM(K32).encrypt(NONCE, b"\x06state", header + b"prod")
    assert wire == header + body
    assert decrypt_stream([K16, K32], wire + b"more", "prod") == (b"\x06state", len(wire))
    with pytest.raises(WireError, match="truncated"):
        decrypt_stream([K32], wire[:-1], "prod")
    with pytest.raises(WireError, match="larger than limit"):
        decrypt_stream([K32], wire, "prod", limit=size - 1)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"", "empty"),
        (b"\x02" + bytes(40), "version 2"),
        (b"\x01" + bytes(20), "too small"),
        (b"\x00" + bytes(40), "too small"),
        (b"\x01" + bytes(40), "no installed keys"),
    ],
)
def test_bad_payloads_are_decrypt_errors(payload: bytes, match: str) -> None:
    with pytest.raises(DecryptError, match=match):
        decrypt_payload([K16], payload, b"")


def test_the_keyring_installs_uses_and_removes_like_memberlists() -> None:
    ring = MemberlistKeyring([K16])
    ring.install(K32)
    ring.install(K32)  # already there: nothing changes
    assert ring.keys == (K16, K32)
    old = ring.encrypt(b"x", b"")
    ring.use(K32)
    assert ring.primary == K32
    new = ring.encrypt(b"x", b"")
    assert decrypt_payload([K32], new, b"") == b"x"  # the primary encrypts
    assert ring.decrypt(old, b"") == b"x"  # every installed key decrypts
    with pytest.raises(ValueError, match="primary"):
        ring.remove(K32)
    ring.remove(K16)
    assert ring.keys == (K32,)
    with pytest.raises(DecryptError):
        ring.decrypt(old, b"")
    with pytest.raises(KeyError):
        ring.use(K24)
    assert "keys" in repr(ring) and K32.hex() not in repr(ring)


def test_serf_keys_are_base64_of_16_24_or_32_bytes() -> None:
    assert parse_serf_key(base64.b64encode(K32).decode() + "\n") == K32
    assert parse_serf_key(base64.b64encode(K16).decode()) == K16
    with pytest.raises(ValueError, match="16, 24 or 32"):
        parse_serf_key(base64.b64encode(bytes(20)).decode())
    with pytest.raises(ValueError, match="base64"):
        parse_serf_key("not base64!")


@given(st.binary(max_size=600), st.binary(max_size=40), st.sampled_from([0, 1]))
def test_any_payload_round_trips_and_flipping_a_bit_is_refused(
    plain: bytes, aad: bytes, version: int
) -> None:
    sealed = encrypt_payload(K24, plain, aad, version=version)
    assert decrypt_payload([K16, K24], sealed, aad) == plain
    broken = bytearray(sealed)
    broken[-1] ^= 0x01
    with pytest.raises(DecryptError):
        decrypt_payload([K16, K24], bytes(broken), aad)


@given(st.binary(max_size=200))
def test_fuzz_only_decrypt_and_wire_errors_escape(data: bytes) -> None:
    with contextlib.suppress(DecryptError):
        decrypt_payload([K16, K32], data, b"")
    with contextlib.suppress(WireError):
        decrypt_stream([K16], data)
