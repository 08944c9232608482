"""The keyring: the cluster's shared secret keys, the first one primary.

How this works. A ``Keyring`` is an ordered list of 16, 24 or 32-byte keys. The primary
(first) key signs or seals every outgoing packet; an incoming packet names the key it was
made with by a 4-byte *key id* and is checked against that key only, so a receiver can tell
"forged with a key I hold" from "made with a key I do not hold" (a node that missed a
rotation) and say which.

Nothing on the wire uses a key directly. From each key the keyring derives, once, with
HKDF-SHA256 and distinct ``info`` strings:

* the key id (4 bytes; public, one-way, for diagnostics and lookup),
* an HMAC-SHA256 key for signed packets,
* a ChaCha20-Poly1305 key for sealed packets,

so the same configured key can move a cluster from signed to sealed without ever being
used by two algorithms. All derived state is rebuilt into one immutable snapshot on every
change (``install``, ``use``, ``remove``, ``reload``), which the signer reads per packet: a
change takes effect from the next packet, and a reload is all-or-nothing.

Key file: one standard-base64 key per line, primary first, ``#`` comments and blank lines
ignored (see ``Keyring.parse``).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

# cryptography (and the OpenSSL it carries, ~8 MB resident) loads with the first key, not
# with this module: a node without a keyring never pays for it.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives import hmac
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .errors import KeyringError

__all__ = [
    "KEY_ID_SIZE",
    "KEY_SIZES",
    "Keyring",
    "encode_key",
    "generate_key",
    "key_id",
]

#: Key lengths a keyring accepts, in bytes (AES-style sizes, as memberlist uses).
KEY_SIZES = (16, 24, 32)
#: Length of the key id carried by every signed or sealed packet.
KEY_ID_SIZE = 4

_INFO_KEY_ID = b"swimgossip v1 key id"
_INFO_SIGN = b"swimgossip v1 hmac-sha256 sign"
_INFO_SEAL = b"swimgossip v1 chacha20-poly1305 seal"


def generate_key() -> bytes:
    """Return a new random 32-byte key from ``os.urandom``."""
    return os.urandom(32)


def encode_key(key: bytes) -> str:
    """Return ``key`` as standard base64 text, the form ``Keyring.parse`` reads.

    Raises:
        KeyringError: if ``key`` is not bytes of a length in ``KEY_SIZES``.
    """
    return base64.b64encode(_checked_key(key)).decode("ascii")


def key_id(key: bytes) -> str:
    """Return the public id of ``key`` as 8 hex digits, as error messages and logs show it.

    Raises:
        KeyringError: if ``key`` is not a valid key.
    """
    return _derive(_checked_key(key), _INFO_KEY_ID, KEY_ID_SIZE).hex()


def _checked_key(key: object, *, line: int | None = None) -> bytes:
    if not isinstance(key, bytes):
        raise KeyringError(f"a key must be bytes, not {type(key).__name__}", line=line)
    if len(key) not in KEY_SIZES:
        raise KeyringError(f"a key is {len(key)} bytes; keys must be 16, 24 or 32 bytes", line=line)
    return key


def _derive(key: bytes, info: bytes, length: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)


@attrs.frozen(eq=False, repr=False)
class KeyMaterial:
    """What one key is used as on the wire (internal to the security modules)."""

    key: bytes
    #: The 4-byte id carried by packets made with this key.
    id: bytes
    #: HMAC-SHA256 already keyed with the derived signing key; ``copy()`` it per packet.
    mac: hmac.HMAC
    #: ChaCha20-Poly1305 keyed with the derived sealing key.
    aead: ChaCha20Poly1305

    @classmethod
    def derive(cls, key: bytes) -> KeyMaterial:
        from cryptography.hazmat.primitives import hashes, hmac
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        return cls(
            key=key,
            id=_derive(key, _INFO_KEY_ID, KEY_ID_SIZE),
            mac=hmac.HMAC(_derive(key, _INFO_SIGN, 32), hashes.SHA256()),
            aead=ChaCha20Poly1305(_derive(key, _INFO_SEAL, 32)),
        )


@attrs.frozen(eq=False, repr=False)
class KeySnapshot:
    """The keyring's contents at one moment: replaced whole on every change."""

    #: Primary first.
    materials: tuple[KeyMaterial, ...]
    #: Key id -> the installed keys with that id (almost always one).
    by_id: dict[bytes, tuple[KeyMaterial, ...]]

    @classmethod
    def of(cls, materials: Sequence[KeyMaterial]) -> KeySnapshot:
        by_id: dict[bytes, tuple[KeyMaterial, ...]] = {}
        for material in materials:
            by_id[material.id] = (*by_id.get(material.id, ()), material)
        return cls(materials=tuple(materials), by_id=by_id)


def _parse_keys(text: str) -> list[bytes]:
    keys: list[bytes] = []
    first_seen: dict[bytes, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise KeyringError("not a valid standard base64 key", line=number) from None
        _checked_key(key, line=number)
        if key in first_seen:
            raise KeyringError(f"duplicate of the key on line {first_seen[key]}", line=number)
        first_seen[key] = number
        keys.append(key)
    if not keys:
        raise KeyringError("the key file holds no keys")
    return keys


def _read_key_file(path: str | os.PathLike[str]) -> list[bytes]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise KeyringError(f"{os.fspath(path)}: the key file is not UTF-8 text") from None
    return _parse_keys(text)


def _materials(keys: Sequence[bytes]) -> list[KeyMaterial]:
    if isinstance(keys, bytes | str):
        raise KeyringError("keys must be a sequence of keys, not a single key")
    if not keys:
        raise KeyringError("a keyring needs at least one key")
    materials: list[KeyMaterial] = []
    seen: set[bytes] = set()
    for index, key in enumerate(keys):
        checked = _checked_key(key)
        if checked in seen:
            raise KeyringError(f"key #{index + 1} duplicates an earlier key")
        seen.add(checked)
        materials.append(KeyMaterial.derive(checked))
    return materials


@attrs.define(eq=False, init=False, repr=False)
class Keyring:
    """An ordered set of keys; the first is primary and signs or seals outgoing packets.

    Args:
        keys: one or more keys of 16, 24 or 32 bytes, primary first, without duplicates.

    Raises:
        KeyringError: if ``keys`` is empty, holds a duplicate, or holds an invalid key.
    """

    # Read per packet by the signer; replaced whole, never mutated.
    _snapshot: KeySnapshot

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._snapshot = KeySnapshot.of(_materials(keys))

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """Build a keyring from key-file text.

        One standard-base64 key per line; blank lines and lines starting with ``#`` are
        ignored; surrounding whitespace is ignored; the first key is primary.

        Raises:
            KeyringError: naming the line, for bad base64, a bad key length or a duplicate
                key; without a line if the text holds no key at all.
        """
        return cls(_parse_keys(text))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Keyring:
        """Read a key file (see ``parse``) from ``path``.

        Raises:
            KeyringError: if the file is not UTF-8 text or its content is invalid.
            OSError: if the file cannot be read.
        """
        return cls(_read_key_file(path))

    @property
    def primary(self) -> bytes:
        """The key that signs or seals outgoing packets."""
        return self._snapshot.materials[0].key

    @property
    def keys(self) -> tuple[bytes, ...]:
        """Every installed key, primary first."""
        return tuple(material.key for material in self._snapshot.materials)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The public ids (8 hex digits) of the installed keys, primary first: safe to log."""
        return tuple(material.id.hex() for material in self._snapshot.materials)

    def install(self, key: bytes) -> None:
        """Add ``key`` as a secondary key (accepted, not used to send). Installing a key
        that is already installed does nothing.

        Raises:
            KeyringError: if ``key`` is not a valid key.
        """
        checked = _checked_key(key)
        if checked not in self.keys:
            self._set([*self._snapshot.materials, KeyMaterial.derive(checked)])

    def use(self, key: bytes) -> None:
        """Make the installed ``key`` primary; the old primary stays installed.

        Raises:
            KeyringError: if ``key`` is not installed.
        """
        materials = list(self._snapshot.materials)
        materials.insert(0, materials.pop(self._index(key)))
        self._set(materials)

    def remove(self, key: bytes) -> None:
        """Uninstall ``key``; packets made with it are refused from now on.

        Raises:
            KeyringError: if ``key`` is the primary key or is not installed.
        """
        index = self._index(key)
        if index == 0:
            raise KeyringError("cannot remove the primary key; use() another key first")
        materials = list(self._snapshot.materials)
        del materials[index]
        self._set(materials)

    def reload(self, path: str | os.PathLike[str]) -> None:
        """Replace every key with the keys of the key file at ``path``, atomically.

        The file's first key becomes primary; keys absent from the file are removed. The
        file is read and validated in full first: on any error the keyring is unchanged.
        This is what an agent does on SIGHUP.

        Raises:
            KeyringError: if the file is not UTF-8 text or its content is invalid.
            OSError: if the file cannot be read.
        """
        keys = _read_key_file(path)
        # Reuse the derived material of keys that stay: no HKDF for unchanged keys.
        known = {material.key: material for material in self._snapshot.materials}
        self._set([known.get(key) or KeyMaterial.derive(key) for key in keys])

    @property
    def snapshot(self) -> KeySnapshot:
        """The current contents, as the signer reads them per packet (internal)."""
        return self._snapshot

    def _index(self, key: bytes) -> int:
        for index, material in enumerate(self._snapshot.materials):
            if material.key == key:
                return index
        raise KeyringError("that key is not installed")

    def _set(self, materials: Sequence[KeyMaterial]) -> None:
        self._snapshot = KeySnapshot.of(materials)

    def __len__(self) -> int:
        return len(self._snapshot.materials)

    def __repr__(self) -> str:
        # Never print key material; ids are one-way and safe.
        return f"<Keyring of {len(self)} key(s), primary {self.key_ids[0]}>"
