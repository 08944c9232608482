"""The envelopes around a packet, byte for byte: label, signed and sealed. No policy here.

How this works. A codec packet starts with the protocol version byte (0x01). Envelopes are
told apart from it, and from each other, by their first byte; every first byte from 0xA0 to
0xBF is reserved for envelopes and never starts a plain payload::

    datagram or stream frame payload = [label header] body
    label header = 0xB0 | u8 length (1..255) | label bytes         (only if a label is set)
    body         = plain packet                                    (0x01 ...)
                 | 0xA2 | key id (4) | timestamp (8) | nonce (12) | payload | tag (16)
                 | 0xA3 | key id (4) | timestamp (8) | nonce (12) | ciphertext | tag (16)

* Signed (0xA2): ``tag = HMAC-SHA256(sign key, every byte before the tag)[:16]``; the
  label header, marker, key id, timestamp and nonce are all covered.
* Sealed (0xA3): ChaCha20-Poly1305 with the nonce, over the payload, with every byte before
  the ciphertext (label header included) as associated data; ``ciphertext | tag`` is the
  AEAD output.

The key id names which installed key made the packet; the timestamp (milliseconds since the
Unix epoch, u64 big-endian) and the 96-bit nonce (unique per packet: see
``nonces.NonceSequence``) feed the replay guard. Both forms add
``ENVELOPE_OVERHEAD`` = 41 bytes, plus ``2 + len(label)`` with a label.

Every function here is pure: the caller brings the timestamp and the nonce. ``verify_signed``
and ``open_sealed`` return ``None`` when no given key authenticates the bytes; they raise
nothing for any input of at least ``ENVELOPE_OVERHEAD`` bytes after ``start``.
"""

from __future__ import annotations

import hmac as _constant_time
import struct
from collections.abc import Iterable

from ._keyring import KEY_ID_SIZE, KeyMaterial

__all__ = [
    "ENVELOPE_OVERHEAD",
    "HEADER",
    "HEADER_SIZE",
    "LABEL_MARKER",
    "MAX_ENVELOPE_OVERHEAD",
    "MAX_LABEL_SIZE",
    "NONCE_SIZE",
    "RETIRED_SIGNED_MARKER",
    "SEALED_MARKER",
    "SIGNED_MARKER",
    "TAG_SIZE",
    "is_reserved",
    "label_header",
    "open_sealed",
    "seal",
    "sign",
    "verify_signed",
]

#: First byte of a signed body: "signed, format 2" (with key id, timestamp and nonce).
SIGNED_MARKER = 0xA2
#: First byte of a sealed body: "sealed, format 1".
SEALED_MARKER = 0xA3
#: "signed, format 1" (tag only, no replay guard): refused since format 2.
RETIRED_SIGNED_MARKER = 0xA1
#: First byte of a label header.
LABEL_MARKER = 0xB0
#: Longest cluster label, in bytes.
MAX_LABEL_SIZE = 255
#: Nonce bytes per packet (unique, see nonces.NonceSequence): the AEAD nonce, and the
#: replay guard's identity of a packet.
NONCE_SIZE = 12
#: Bytes of tag: truncated HMAC-SHA256 for signed bodies, the Poly1305 tag for sealed ones.
TAG_SIZE = 16
#: marker, key id, timestamp in ms, nonce.
HEADER = struct.Struct(f">B{KEY_ID_SIZE}sQ{NONCE_SIZE}s")
HEADER_SIZE = HEADER.size
#: Bytes a signed or sealed body adds to its payload.
ENVELOPE_OVERHEAD = HEADER_SIZE + TAG_SIZE
#: The most any envelope adds: the longest label header and a signed or sealed body.
MAX_ENVELOPE_OVERHEAD = 2 + MAX_LABEL_SIZE + ENVELOPE_OVERHEAD

_RESERVED_FIRST, _RESERVED_LAST = 0xA0, 0xBF
_pack_header = HEADER.pack
_compare_digest = _constant_time.compare_digest


def is_reserved(first_byte: int) -> bool:
    """True if a packet starting with ``first_byte`` is an envelope, not a plain packet."""
    return _RESERVED_FIRST <= first_byte <= _RESERVED_LAST


def label_header(label: bytes) -> bytes:
    """The label header for ``label``: empty for no label (``b""``).

    Raises:
        ValueError: if ``label`` is longer than ``MAX_LABEL_SIZE`` bytes.
    """
    if len(label) > MAX_LABEL_SIZE:
        raise ValueError(f"a cluster label is at most {MAX_LABEL_SIZE} bytes, not {len(label)}")
    return bytes([LABEL_MARKER, len(label)]) + label if label else b""


def sign(
    material: KeyMaterial, prefix: bytes, timestamp_ms: int, nonce: bytes, payload: bytes
) -> bytes:
    """Return ``prefix`` (the label header or ``b""``) followed by a signed body."""
    signed = b"".join(
        (prefix, _pack_header(SIGNED_MARKER, material.id, timestamp_ms, nonce), payload)
    )
    mac = material.mac.copy()
    mac.update(signed)
    return signed + mac.finalize()[:TAG_SIZE]


def seal(
    material: KeyMaterial, prefix: bytes, timestamp_ms: int, nonce: bytes, payload: bytes
) -> bytes:
    """Return ``prefix`` (the label header or ``b""``) followed by a sealed body."""
    head = prefix + _pack_header(SEALED_MARKER, material.id, timestamp_ms, nonce)
    return head + material.aead.encrypt(nonce, payload, head)


def verify_signed(candidates: Iterable[KeyMaterial], data: bytes, start: int) -> bytes | None:
    """Return the payload of the signed body at ``data[start:]`` if one of ``candidates``
    made it, else ``None``. ``data[start:]`` must hold at least ``ENVELOPE_OVERHEAD`` bytes."""
    end = len(data) - TAG_SIZE
    signed, tag = memoryview(data)[:end], data[end:]  # a view: the MAC reads it in place
    for material in candidates:
        mac = material.mac.copy()
        mac.update(signed)
        if _compare_digest(mac.finalize()[:TAG_SIZE], tag):
            return data[start + HEADER_SIZE : end]
    return None


_INVALID_TAG: list[type[Exception]] = []


def _invalid_tag() -> type[Exception]:
    """cryptography's InvalidTag, imported on first use (with the first key, cryptography
    is loaded already; a node without keys never loads it)."""
    if not _INVALID_TAG:
        from cryptography.exceptions import InvalidTag

        _INVALID_TAG.append(InvalidTag)
    return _INVALID_TAG[0]


def open_sealed(
    candidates: Iterable[KeyMaterial], data: bytes, start: int, nonce: bytes
) -> bytes | None:
    """Return the payload of the sealed body at ``data[start:]`` if one of ``candidates``
    sealed it, else ``None``. ``data[start:]`` must hold at least ``ENVELOPE_OVERHEAD``
    bytes and ``nonce`` must be the one in its header."""
    invalid_tag = _invalid_tag()
    split = start + HEADER_SIZE
    head, sealed = data[:split], data[split:]
    for material in candidates:
        try:
            return material.aead.decrypt(nonce, sealed, head)
        except invalid_tag:
            continue
    return None
