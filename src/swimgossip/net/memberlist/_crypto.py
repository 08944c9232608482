"""memberlist's encryption (security.go, keyring.go) and Serf's base64 key.

An encrypted payload is ``version byte | 12-byte nonce | AES-GCM ciphertext and tag``.
Version 0 pads the plaintext with PKCS#7 to the AES block size before sealing (protocol
version 1 peers); version 1 does not (everyone else). Keys are AES-128/192/256 (16, 24 or
32 bytes); the additional data is the packet label for UDP, and for a stream the 5-byte
``encryptMsg | uint32 length`` header followed by the label. Decryption tries every
installed key, primary first, as memberlist does.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import DecryptError, Truncated, WireError

__all__ = [
    "KEY_SIZES",
    "MemberlistKeyring",
    "decrypt_payload",
    "decrypt_stream",
    "encrypt_payload",
    "encrypt_stream",
    "encrypted_length",
    "parse_serf_key",
]

#: AES-128, AES-192, AES-256: the key sizes memberlist's keyring accepts.
KEY_SIZES = (16, 24, 32)
NONCE_SIZE = 12
TAG_SIZE = 16
_BLOCK = 16
_ENCRYPT_MSG = 10
#: The largest encrypted stream memberlist reads (maxPushStateBytes).
MAX_STREAM_BYTES = 20 * 1024 * 1024


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) not in KEY_SIZES:
        size = len(key) if isinstance(key, bytes) else type(key).__name__
        raise ValueError(f"key size must be 16, 24 or 32 bytes, not {size}")
    return key


def encrypted_length(version: int, plain_length: int) -> int:
    """How long ``encrypt_payload`` output is for a plaintext of ``plain_length`` bytes."""
    if version >= 1:
        return 1 + NONCE_SIZE + plain_length + TAG_SIZE
    return 1 + NONCE_SIZE + plain_length + (_BLOCK - plain_length % _BLOCK) + TAG_SIZE


def encrypt_payload(
    key: bytes, plain: bytes, aad: bytes, *, nonce: bytes | None = None, version: int = 1
) -> bytes:
    """Seal ``plain`` as memberlist's ``encryptPayload`` does. ``nonce`` (12 bytes) is
    random unless given (tests give it to build known vectors)."""
    _check_key(key)
    if version not in (0, 1):
        raise ValueError(f"unsupported encryption version {version}")
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    if len(nonce) != NONCE_SIZE:
        raise ValueError("the nonce is 12 bytes")
    if version == 0:
        pad = _BLOCK - len(plain) % _BLOCK
        plain = plain + bytes((pad,)) * pad
    return bytes((version,)) + nonce + AESGCM(key).encrypt(nonce, plain, aad)


def decrypt_payload(keys: Sequence[bytes], payload: bytes, aad: bytes) -> bytes:
    """Open a payload with the first key that works; ``DecryptError`` if none does."""
    if not payload:
        raise DecryptError("cannot decrypt empty payload")
    version = payload[0]
    if version > 1:
        raise DecryptError(f"unsupported encryption version {version}")
    if len(payload) < encrypted_length(version, 0):
        raise DecryptError(f"payload is too small to decrypt: {len(payload)}")
    nonce = payload[1 : 1 + NONCE_SIZE]
    sealed = payload[1 + NONCE_SIZE :]
    for key in keys:
        try:
            plain = AESGCM(key).decrypt(nonce, sealed, aad)
        except InvalidTag:
            continue
        if version == 0:
            pad = plain[-1] if plain else 0
            if not 1 <= pad <= _BLOCK or pad > len(plain):
                raise DecryptError("bad PKCS#7 padding in a version 0 payload")
            plain = plain[:-pad]
        return plain
    raise DecryptError("no installed keys could decrypt the message")


def encrypt_stream(
    key: bytes, plain: bytes, label: str = "", *, nonce: bytes | None = None, version: int = 1
) -> bytes:
    """A stream payload (a push-pull message) as memberlist's ``encryptLocalState``:
    ``encryptMsg | uint32 length | encrypted payload``, the header and label as AAD."""
    header = bytes((_ENCRYPT_MSG,)) + struct.pack(">I", encrypted_length(version, len(plain)))
    aad = header + label.encode()
    return header + encrypt_payload(key, plain, aad, nonce=nonce, version=version)


def decrypt_stream(
    keys: Sequence[bytes], data: bytes, label: str = "", *, limit: int = MAX_STREAM_BYTES
) -> tuple[bytes, int]:
    """Open an encrypted stream payload at the start of ``data``; return the plaintext and
    how many bytes of ``data`` it used. ``WireError`` if truncated or over ``limit``."""
    if len(data) < 5 or data[0] != _ENCRYPT_MSG:
        raise WireError("stream does not start with an encryptMsg header")
    size = struct.unpack(">I", data[1:5])[0]
    if size > limit:
        raise WireError(f"remote node state is larger than limit ({limit})")
    if len(data) < 5 + size:
        raise Truncated("encrypted stream is truncated")
    aad = data[:5] + label.encode()
    return decrypt_payload(keys, data[5 : 5 + size], aad), 5 + size


def parse_serf_key(text: str) -> bytes:
    """A key as Serf takes it (``serf keygen``, ``-encrypt``): standard base64 of 16, 24 or
    32 bytes. ``ValueError`` says what is wrong."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"key is not valid base64: {exc}") from None
    return _check_key(key)


class MemberlistKeyring:
    """memberlist's keyring: the primary key encrypts, every installed key decrypts.

    ``install`` adds a key (a no-op if present), ``use`` makes an installed key primary,
    ``remove`` drops a key that is not primary, as memberlist's ``AddKey`` / ``UseKey`` /
    ``RemoveKey`` do.
    """

    def __init__(self, keys: Sequence[bytes], primary: bytes | None = None) -> None:
        if not keys and primary is None:
            raise ValueError("a keyring needs at least one key")
        self._keys: list[bytes] = []
        if primary is not None:
            self._keys.append(_check_key(primary))
        for key in keys:
            self.install(key)

    @property
    def primary(self) -> bytes:
        """The key that encrypts."""
        return self._keys[0]

    @property
    def keys(self) -> tuple[bytes, ...]:
        """Every installed key, primary first."""
        return tuple(self._keys)

    def install(self, key: bytes) -> None:
        """Add ``key`` (16, 24 or 32 bytes) for decryption; nothing if already installed."""
        if _check_key(key) not in self._keys:
            self._keys.append(key)

    def use(self, key: bytes) -> None:
        """Make the installed ``key`` primary; ``KeyError`` if it is not installed."""
        if key not in self._keys:
            raise KeyError("requested key is not in the keyring")
        self._keys.remove(key)
        self._keys.insert(0, key)

    def remove(self, key: bytes) -> None:
        """Drop ``key``; ``ValueError`` for the primary key (memberlist refuses too)."""
        if key == self._keys[0]:
            raise ValueError("removing the primary key is not allowed")
        if key in self._keys:
            self._keys.remove(key)

    def encrypt(self, plain: bytes, aad: bytes, *, version: int = 1) -> bytes:
        """Seal with the primary key (a fresh random nonce)."""
        return encrypt_payload(self.primary, plain, aad, version=version)

    def decrypt(self, payload: bytes, aad: bytes) -> bytes:
        """Open with any installed key; ``DecryptError`` if none works."""
        return decrypt_payload(self._keys, payload, aad)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"MemberlistKeyring(<{len(self._keys)} keys>)"
