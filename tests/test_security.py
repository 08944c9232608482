"""Tests for the keyring: keys, key ids, key files and reload (swimgossip.security._keyring,
re-exported by swimgossip.security). Envelopes and policy: test_security_signer.py."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from swimgossip import security
from swimgossip.core.errors import LocalError, RemoteError
from swimgossip.security import (
    AuthenticationError,
    Keyring,
    KeyringError,
    PacketSigner,
    PayloadError,
    SecurityMode,
    encode_key,
    generate_key,
    key_id,
)
from swimgossip.security import _keyring as keyring_module

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
K3 = b"\x07" * 16


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
    assert repr(ring) == f"<Keyring of 2 key(s), primary {key_id(K1)}>"
    for text in (repr(ring), repr(PacketSigner(ring, SecurityMode.REQUIRED))):
        assert K1.hex() not in text
        assert encode_key(K1) not in text


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


# --- key ids -----------------------------------------------------------------------------


def test_key_ids_are_stable_distinct_and_one_way() -> None:
    ring = Keyring([K1, K2, K3])
    assert ring.key_ids == (key_id(K1), key_id(K2), key_id(K3))
    assert len(set(ring.key_ids)) == 3
    assert all(len(kid) == 8 and int(kid, 16) >= 0 for kid in ring.key_ids)
    assert key_id(K1) == key_id(bytes(range(32)))  # a pure function of the key
    assert bytes.fromhex(key_id(K1)) not in K1  # not a slice of the key
    with pytest.raises(KeyringError):
        key_id(b"short")


# --- reload ------------------------------------------------------------------------------


def _write_keys(path: Path, *keys: bytes, comment: str = "# keys") -> Path:
    path.write_text("\n".join([comment, *map(encode_key, keys)]) + "\n", encoding="utf-8")
    return path


def test_reload_replaces_keys_primary_first(tmp_path: Path) -> None:
    ring = Keyring([K1, K2])
    ring.reload(_write_keys(tmp_path / "keys", K3, K1))
    assert ring.keys == (K3, K1)
    assert ring.primary == K3
    assert ring.key_ids == (key_id(K3), key_id(K1))


def test_reload_is_all_or_nothing(tmp_path: Path) -> None:
    ring = Keyring([K1, K2])
    before = ring.snapshot
    bad = tmp_path / "bad"
    bad.write_text(f"{encode_key(K3)}\nnot base64!\n", encoding="utf-8")
    with pytest.raises(KeyringError, match="line 2"):
        ring.reload(bad)
    empty = tmp_path / "empty"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(KeyringError, match="no keys"):
        ring.reload(empty)
    with pytest.raises(FileNotFoundError):
        ring.reload(tmp_path / "missing")
    assert ring.snapshot is before
    assert ring.keys == (K1, K2)


def test_reload_takes_effect_on_the_next_packet(tmp_path: Path) -> None:
    ring = Keyring([K1])
    receiver = PacketSigner(ring, SecurityMode.REQUIRED)
    new_sender = PacketSigner(Keyring([K2]), SecurityMode.REQUIRED)
    with pytest.raises(AuthenticationError):
        receiver.unwrap(new_sender.wrap(b"\x01x"))
    ring.reload(_write_keys(tmp_path / "keys", K1, K2))
    assert receiver.unwrap(new_sender.wrap(b"\x01x")) == b"\x01x"
    ring.reload(_write_keys(tmp_path / "keys", K2))
    old_sender = PacketSigner(Keyring([K1]), SecurityMode.REQUIRED)
    with pytest.raises(AuthenticationError, match="no installed key"):
        receiver.unwrap(old_sender.wrap(b"\x01x"))


def test_reload_reuses_material_of_kept_keys(tmp_path: Path) -> None:
    ring = Keyring([K1, K2])
    kept = ring.snapshot.materials[0]
    ring.reload(_write_keys(tmp_path / "keys", K3, K1))
    assert ring.snapshot.materials[1] is kept


def test_security_reexports_keyring_names() -> None:
    for name in keyring_module.__all__:
        if name in security.__all__:
            assert getattr(security, name) is getattr(keyring_module, name)
    for name in ("Keyring", "KeyringError", "encode_key", "generate_key", "KEY_SIZES"):
        assert name in security.__all__
