"""Tests for PacketSigner: envelope formats, every refusal reason, labels, clock skew, the
migration matrix and key rotation. Fake clocks only: nothing here sleeps."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from swimgossip.core.codec import encode_packet
from swimgossip.core.errors import ConfigError
from swimgossip.core.messages import Alive, Ping
from swimgossip.security import (
    ENVELOPE_OVERHEAD,
    LABEL_MARKER,
    NO_KEY_MESSAGE,
    SEAL_OVERHEAD,
    SEALED_MARKER,
    SIGNATURE_OVERHEAD,
    SIGNED_MARKER,
    TAG_SIZE,
    AuthenticationError,
    Keyring,
    PacketSigner,
    PayloadError,
    RejectReason,
    SecurityMode,
    SecurityStats,
    key_id,
)
from swimgossip.security._envelope import HEADER_SIZE, MAX_LABEL_SIZE, RETIRED_SIGNED_MARKER

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
K3 = b"\x07" * 16
PAYLOAD = b"\x01" + b"gossip-secret-member-name" * 8
T0 = 1_700_000_000.0

OFF = SecurityMode.OFF
SIGN_ACCEPT_UNSIGNED = SecurityMode.SIGN_ACCEPT_UNSIGNED
REQUIRED = SecurityMode.REQUIRED
SEAL_ACCEPT_SIGNED = SecurityMode.SEAL_ACCEPT_SIGNED
SEALED = SecurityMode.SEALED
AUTHENTICATED = [SIGN_ACCEPT_UNSIGNED, REQUIRED, SEAL_ACCEPT_SIGNED, SEALED]
STRICT = [REQUIRED, SEALED]  # one signed, one sealed: each refusal is tested in both


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(
    mode: SecurityMode = REQUIRED,
    *keys: bytes,
    clock: Callable[[], float] | None = None,
    **options: object,
) -> PacketSigner:
    ring = Keyring(keys or (K1,))
    return PacketSigner(ring, mode, clock=clock or FakeClock(), **options)  # type: ignore[arg-type]


def refused(receiver: PacketSigner, data: bytes, reason: RejectReason) -> AuthenticationError:
    """Assert ``data`` is refused for ``reason`` and counted under it, and only there."""
    before = receiver.stats()
    with pytest.raises(AuthenticationError) as info:
        receiver.unwrap(data)
    assert info.value.reason is reason, str(info.value)
    after = receiver.stats()
    field = f"rejected_{reason.name.lower()}"
    assert getattr(after, field) == getattr(before, field) + 1
    assert after.rejected == before.rejected + 1
    assert after.accepted == before.accepted
    return info.value


# --- formats -----------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "marker"), [(REQUIRED, SIGNED_MARKER), (SEALED, SEALED_MARKER)])
def test_round_trip_and_header(mode: SecurityMode, marker: int) -> None:
    sender = make(mode, nonce_source=lambda n: b"N" * n)
    packet = sender.wrap(PAYLOAD)
    assert len(packet) == len(PAYLOAD) + ENVELOPE_OVERHEAD == len(PAYLOAD) + sender.overhead
    assert packet[0] == marker
    assert packet[1:5].hex() == key_id(K1)
    assert int.from_bytes(packet[5:13], "big") == int(T0 * 1000)
    assert packet[13:25] == b"N" * 12
    receiver = make(mode)
    assert receiver.unwrap(packet) == PAYLOAD
    form = "signed" if mode is REQUIRED else "sealed"
    assert receiver.stats() == SecurityStats(**{f"accepted_{form}": 1, "replay_cache_entries": 1})


def _derived(key: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)


def test_signed_tag_known_answer() -> None:
    packet = make(REQUIRED, label=b"prod").wrap(PAYLOAD)
    sign_key = _derived(K1, b"swimgossip v1 hmac-sha256 sign")
    expected = hmac.new(sign_key, packet[:-TAG_SIZE], hashlib.sha256).digest()[:TAG_SIZE]
    assert packet[-TAG_SIZE:] == expected
    assert packet[:6] == bytes([LABEL_MARKER, 4]) + b"prod"
    assert packet[6 + HEADER_SIZE : -TAG_SIZE] == PAYLOAD
    assert key_id(K1) == _derived(K1, b"swimgossip v1 key id", 4).hex()


def test_sealed_known_answer() -> None:
    packet = make(SEALED, label=b"prod").wrap(PAYLOAD)
    head = packet[: 6 + HEADER_SIZE]
    nonce = head[-12:]
    aead = ChaCha20Poly1305(_derived(K1, b"swimgossip v1 chacha20-poly1305 seal"))
    assert aead.decrypt(nonce, packet[len(head) :], head) == PAYLOAD


def test_documented_example_bytes() -> None:
    """The signed and sealed examples in docs/protocol.md, byte for byte."""
    payload = encode_packet(
        [
            Ping(seq=42, target="node-b"),
            Alive(name="node-a", address="10.0.0.1:7946", incarnation=3, meta=b"dc=1"),
        ]
    )
    assert len(payload) == 43

    def wrapped(mode: SecurityMode) -> str:
        sender = make(mode, nonce_source=lambda n: bytes(range(0xF0, 0xF0 + n)))
        return sender.wrap(payload).hex()

    head = "3a614fff0000018bcfe56800f0f1f2f3f4f5f6f7f8f9fafb"
    assert wrapped(REQUIRED) == "a2" + head + payload.hex() + "59fa2455f610af5924bd00f7d7b6fdb9"
    assert wrapped(SEALED).startswith("a3" + head + "914a16c2e3bd5ca3e6")
    assert wrapped(SEALED).endswith("4427b1bfb0edffb32df4b8caebec0b5b09")


def test_sealed_payload_is_not_readable() -> None:
    sender = make(SEALED)
    first, second = sender.wrap(PAYLOAD), sender.wrap(PAYLOAD)
    assert first != second  # a fresh nonce per packet
    for packet in (first, second):
        body = packet[HEADER_SIZE:]
        assert b"gossip-secret" not in packet
        assert PAYLOAD[1:20] not in body
    signed = make(REQUIRED).wrap(PAYLOAD)
    assert b"gossip-secret" in signed  # signing authenticates; it does not hide


@pytest.mark.parametrize("payload", [b"", b"\x01", b"\x01" + bytes(1400)])
@pytest.mark.parametrize("mode", AUTHENTICATED)
def test_round_trip_sizes(payload: bytes, mode: SecurityMode) -> None:
    assert make(SEAL_ACCEPT_SIGNED).unwrap(make(mode).wrap(payload)) == payload


def test_overheads() -> None:
    assert SIGNATURE_OVERHEAD == SEAL_OVERHEAD == ENVELOPE_OVERHEAD == 41
    for mode in SecurityMode:
        for label in (b"", b"x", b"y" * MAX_LABEL_SIZE):
            sender = make(mode, label=label)
            assert len(sender.wrap(PAYLOAD)) - len(PAYLOAD) == sender.overhead
            assert sender.overhead == (2 + len(label) if label else 0) + (
                0 if mode is OFF else ENVELOPE_OVERHEAD
            )


# --- each refusal, signed and sealed -----------------------------------------------------


@pytest.mark.parametrize("mode", STRICT)
@pytest.mark.parametrize("where", [0, 3, 10, HEADER_SIZE + 2, -1])
def test_forged_rejected(mode: SecurityMode, where: int) -> None:
    receiver = make(mode)
    packet = bytearray(make(mode).wrap(PAYLOAD))
    packet[where] ^= 0x01
    reason = RejectReason.FORGED
    if where == 0:  # the marker itself: signed <-> sealed are 0xA2 <-> 0xA3
        reason = RejectReason.UNSEALED if mode is SEALED else RejectReason.FORGED
    elif 1 <= where < 5:
        reason = RejectReason.UNKNOWN_KEY  # the key id no longer names an installed key
    refused(receiver, bytes(packet), reason)


@pytest.mark.parametrize("mode", STRICT)
def test_tampering_with_length_is_forgery(mode: SecurityMode) -> None:
    receiver = make(mode)
    packet = make(mode).wrap(PAYLOAD)
    refused(receiver, packet[:-1], RejectReason.FORGED)
    refused(receiver, packet + b"x", RejectReason.FORGED)
    refused(receiver, packet[: HEADER_SIZE + 1] + packet[HEADER_SIZE + 2 :], RejectReason.FORGED)


@pytest.mark.parametrize("mode", STRICT)
@pytest.mark.parametrize("length", [0, 1, 5, HEADER_SIZE, ENVELOPE_OVERHEAD - 1])
def test_truncated_rejected(mode: SecurityMode, length: int) -> None:
    packet = make(mode).wrap(PAYLOAD)[:length]
    refused(make(mode), packet, RejectReason.TRUNCATED)


@pytest.mark.parametrize("mode", [REQUIRED, SEAL_ACCEPT_SIGNED, SEALED])
def test_unsigned_rejected(mode: SecurityMode) -> None:
    error = refused(make(mode), PAYLOAD, RejectReason.UNSIGNED)
    assert "unsigned" in str(error)


def test_signed_rejected_when_sealing_is_required() -> None:
    refused(make(SEALED), make(REQUIRED).wrap(PAYLOAD), RejectReason.UNSEALED)


@pytest.mark.parametrize("mode", STRICT)
def test_wrong_key_rejected_with_an_explicit_message(mode: SecurityMode) -> None:
    receiver = make(mode, K1, K3)
    error = refused(receiver, make(mode, K2).wrap(PAYLOAD), RejectReason.UNKNOWN_KEY)
    assert str(error).startswith(NO_KEY_MESSAGE)
    assert key_id(K2) in str(error)  # which key the sender used
    assert key_id(K1) in str(error) and key_id(K3) in str(error)  # which keys we hold


def test_no_keyring_cannot_verify() -> None:
    plain = PacketSigner()
    error = refused(plain, make(REQUIRED).wrap(PAYLOAD), RejectReason.UNKNOWN_KEY)
    assert "installed: none" in str(error)


@pytest.mark.parametrize("mode", STRICT)
def test_replayed_rejected(mode: SecurityMode) -> None:
    clock = FakeClock()
    receiver = make(mode, clock=clock)
    packet = make(mode).wrap(PAYLOAD)
    assert receiver.unwrap(packet) == PAYLOAD
    refused(receiver, packet, RejectReason.REPLAY)
    clock.now += 29  # still inside the window: still remembered
    refused(receiver, packet, RejectReason.REPLAY)
    clock.now += 2  # out of the window: refused as stale, not accepted
    refused(receiver, packet, RejectReason.STALE)


@pytest.mark.parametrize("mode", STRICT)
@pytest.mark.parametrize(
    ("offset", "reason"),
    [(-31.0, RejectReason.STALE), (31.0, RejectReason.FUTURE), (-30.001, RejectReason.STALE)],
)
def test_stale_and_future_rejected(mode: SecurityMode, offset: float, reason: RejectReason) -> None:
    sender = make(mode, clock=FakeClock(T0 + offset))
    error = refused(make(mode), sender.wrap(PAYLOAD), reason)
    assert error.skew == pytest.approx(offset)
    assert error.warning is not None and "clock skew" in error.warning


@pytest.mark.parametrize("offset", [-30.0, 30.0, 0.0, 29.999])
def test_window_edges_accepted(offset: float) -> None:
    receiver = make(REQUIRED, replay_window=30.0)
    assert receiver.unwrap(make(clock=FakeClock(T0 + offset)).wrap(PAYLOAD)) == PAYLOAD


def test_window_is_configurable() -> None:
    late = make(clock=FakeClock(T0 - 5)).wrap(PAYLOAD)
    refused(make(REQUIRED, replay_window=2.0), late, RejectReason.STALE)
    assert make(REQUIRED, replay_window=10.0).unwrap(late) == PAYLOAD


def test_forgery_is_judged_before_the_clock() -> None:
    """A forged packet cannot cause a clock-skew warning or touch the replay cache."""
    receiver = make(REQUIRED)
    stale = bytearray(make(clock=FakeClock(T0 - 3600)).wrap(PAYLOAD))
    stale[-1] ^= 1
    refused(receiver, bytes(stale), RejectReason.FORGED)
    assert receiver.stats().clock_skew_warnings == 0
    assert receiver.stats().replay_cache_entries == 0


def test_clock_skew_warnings_are_rate_limited_by_count() -> None:
    receiver = make(REQUIRED, skew_warning_every=3)
    sender = make(clock=FakeClock(T0 - 120))
    warnings = []
    for _ in range(7):
        with pytest.raises(AuthenticationError) as info:
            receiver.unwrap(sender.wrap(PAYLOAD))
        warnings.append(info.value.warning)
    assert [w is not None for w in warnings] == [True, False, False, True, False, False, True]
    assert "120.0 s behind" in str(warnings[0]) and "(1 so far)" in str(warnings[0])
    assert "(7 so far)" in str(warnings[6])
    stats = receiver.stats()
    assert (stats.rejected_stale, stats.clock_skew_warnings) == (7, 3)


@pytest.mark.parametrize("mode", [OFF, *STRICT])
def test_retired_and_unknown_envelopes_unsupported(mode: SecurityMode) -> None:
    receiver = make(mode)
    old = bytes([RETIRED_SIGNED_MARKER]) + bytes(40)
    assert "older version" in str(refused(receiver, old, RejectReason.UNSUPPORTED))
    refused(receiver, b"\xbf" + PAYLOAD, RejectReason.UNSUPPORTED)


def test_authentication_error_without_reason() -> None:
    """The runtime builds some of its own (a peer's refusal relayed): reason stays None."""
    error = AuthenticationError("authentication failed (refused by a:1)")
    assert (error.reason, error.warning, error.skew) == (None, None, None)
    assert RejectReason.UNKNOWN_KEY == "unknown key"


# --- labels ------------------------------------------------------------------------------


def test_plain_label_envelope() -> None:
    sender = PacketSigner(label="prod")
    packet = sender.wrap(PAYLOAD)
    assert packet == bytes([LABEL_MARKER, 4]) + b"prod" + PAYLOAD
    assert sender.overhead == 6
    assert PacketSigner(label=b"prod").unwrap(packet) == PAYLOAD


@pytest.mark.parametrize("mode", [OFF, *STRICT])
def test_label_mismatches_rejected_both_ways(mode: SecurityMode) -> None:
    prod, staging, unlabelled = (make(mode, label=label) for label in ("prod", "staging", ""))
    message = str(refused(prod, staging.wrap(PAYLOAD), RejectReason.LABEL))
    assert "'staging'" in message and "'prod'" in message
    refused(prod, unlabelled.wrap(PAYLOAD), RejectReason.LABEL)
    refused(unlabelled, prod.wrap(PAYLOAD), RejectReason.LABEL)
    refused(prod, b"\xb0", RejectReason.LABEL)  # a label header cut short
    assert make(mode, label="prod").unwrap(prod.wrap(PAYLOAD)) == PAYLOAD


def test_label_is_checked_before_anything_else() -> None:
    receiver = make(REQUIRED, label="prod")
    forged_elsewhere = bytearray(make(REQUIRED, K2, label="dev").wrap(PAYLOAD))
    forged_elsewhere[-1] ^= 1
    refused(receiver, bytes(forged_elsewhere), RejectReason.LABEL)
    assert receiver.stats().rejected_forged == receiver.stats().rejected_unknown_key == 0


@pytest.mark.parametrize("mode", STRICT)
def test_label_is_authenticated(mode: SecurityMode) -> None:
    """Rewriting the label header of a signed or sealed packet breaks its tag."""
    packet = make(mode, label="dev").wrap(PAYLOAD)
    relabelled = bytes([LABEL_MARKER, 4]) + b"prod" + packet[5:]
    refused(make(mode, label="prod"), relabelled, RejectReason.FORGED)
    refused(make(mode), packet[5:], RejectReason.FORGED)  # label stripped


def test_label_limits() -> None:
    assert make(label="é" * 127).label == "é".encode() * 127  # 254 bytes
    assert make(label=b"x" * 255).overhead == 2 + 255 + ENVELOPE_OVERHEAD
    with pytest.raises(ConfigError, match="label"):
        make(label=b"x" * 256)
    with pytest.raises(ConfigError, match="label"):
        make(label="é" * 128)
    refused(make(label="prod"), bytes([LABEL_MARKER, 4]) + b"prod", RejectReason.TRUNCATED)


# --- policy ------------------------------------------------------------------------------


def test_off_mode() -> None:
    plain = PacketSigner()
    assert (plain.mode, plain.overhead, plain.label) == (OFF, 0, b"")
    assert plain.wrap(PAYLOAD) is PAYLOAD
    assert plain.unwrap(PAYLOAD) is PAYLOAD
    for first in range(0xA0, 0xC0):
        with pytest.raises(PayloadError):
            plain.wrap(bytes([first]) + PAYLOAD)
    keyed = make(OFF)
    assert keyed.unwrap(make(REQUIRED).wrap(PAYLOAD)) == PAYLOAD
    assert keyed.unwrap(make(SEALED).wrap(PAYLOAD)) == PAYLOAD
    refused(keyed, make(REQUIRED, K2).wrap(PAYLOAD), RejectReason.UNKNOWN_KEY)
    assert keyed.stats().accepted == 2


@pytest.mark.parametrize("mode", AUTHENTICATED)
def test_authenticated_modes_need_a_keyring(mode: SecurityMode) -> None:
    with pytest.raises(ConfigError, match="keyring"):
        PacketSigner(None, mode)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("replay_window", 0.0),
        ("replay_window", -1.0),
        ("replay_window", float("nan")),
        ("replay_window", float("inf")),
        ("replay_cache_size", 0),
        ("skew_warning_every", 0),
    ],
)
def test_bad_options(option: str, value: float) -> None:
    with pytest.raises(ConfigError, match=option):
        make(REQUIRED, **{option: value})


def test_settings_are_fixed() -> None:
    sign = PacketSigner()
    with pytest.raises(AttributeError):
        sign.mode = REQUIRED  # type: ignore[misc]  # would break "signing needs a keyring"
    with pytest.raises(AttributeError):
        sign.keyring = Keyring([K1])  # type: ignore[misc]


def test_mode_values_for_config() -> None:
    assert [mode.value for mode in SecurityMode] == [
        "off",
        "sign-accept-unsigned",
        "required",
        "seal-accept-signed",
        "sealed",
    ]
    assert SecurityMode("sealed") is SEALED


# --- migration ---------------------------------------------------------------------------

# Sender (row) -> receiver (column): does the receiver accept what the sender sends?
# "off-" is OFF without a keyring; every other node holds the cluster key.
NODES = ["off-", "off", "sign-accept-unsigned", "required", "seal-accept-signed", "sealed"]
ACCEPTS = """
                      off-  off  sign-acc  required  seal-acc  sealed
off-                  yes   yes  yes       no        no        no
off                   yes   yes  yes       no        no        no
sign-accept-unsigned  no    yes  yes       yes       yes       no
required              no    yes  yes       yes       yes       no
seal-accept-signed    no    yes  yes       yes       yes       yes
sealed                no    yes  yes       yes       yes       yes
"""
MIGRATION_PATH = NODES  # every step moves all nodes one column to the right, one at a time


def _node(name: str) -> PacketSigner:
    if name == "off-":
        return PacketSigner()
    return make(SecurityMode(name))


def _matrix() -> dict[tuple[str, str], bool]:
    rows = [line.split() for line in ACCEPTS.strip().splitlines()[1:]]
    return {
        (sender, receiver): cell == "yes"
        for sender, *cells in rows
        for receiver, cell in zip(NODES, cells, strict=True)
    }


@pytest.mark.parametrize(("sender", "receiver"), list(_matrix()))
def test_migration_matrix(sender: str, receiver: str) -> None:
    packet = _node(sender).wrap(PAYLOAD)
    target = _node(receiver)
    if _matrix()[sender, receiver]:
        assert target.unwrap(packet) == PAYLOAD
    else:
        with pytest.raises(AuthenticationError) as info:
            target.unwrap(packet)
        assert info.value.reason in {
            RejectReason.UNSIGNED,
            RejectReason.UNSEALED,
            RejectReason.UNKNOWN_KEY,
        }


def test_every_migration_step_interoperates() -> None:
    """During each rolling step, nodes on either side of it talk both ways."""
    matrix = _matrix()
    for before, after in itertools.pairwise(MIGRATION_PATH):
        for a, b in [(before, before), (before, after), (after, before), (after, after)]:
            assert matrix[a, b], f"step {before} -> {after}: {a} cannot reach {b}"
    # and skipping a step is not safe: that is why the runbook has five steps
    assert not matrix["sign-accept-unsigned", "off-"]
    assert not matrix["sign-accept-unsigned", "sealed"]
    assert not matrix["off", "seal-accept-signed"]


# --- rotation ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", STRICT)
def test_rolling_rotation(mode: SecurityMode) -> None:
    ring_a, ring_b = Keyring([K1]), Keyring([K1])
    a, b = (
        PacketSigner(ring_a, mode, clock=FakeClock()),
        PacketSigner(ring_b, mode, clock=FakeClock()),
    )

    def both_ways() -> None:
        assert a.unwrap(b.wrap(PAYLOAD)) == PAYLOAD
        assert b.unwrap(a.wrap(PAYLOAD)) == PAYLOAD

    for ring in (ring_a, ring_b):
        ring.install(K2)
        both_ways()
    for ring in (ring_a, ring_b):
        ring.use(K2)
        both_ways()
    for ring in (ring_a, ring_b):
        ring.remove(K1)
        both_ways()
    assert a.stats().rejected == b.stats().rejected == 0


@pytest.mark.parametrize("mode", STRICT)
def test_node_down_during_rotation(mode: SecurityMode) -> None:
    """serf#579: a node that missed a rotation rejoins while it shares one installed key,
    and is told why when it does not."""
    cluster = make(mode, K2, K1)  # rotated to K2, K1 not yet removed
    returning = make(mode, K1)  # was down: still on K1 only
    assert cluster.unwrap(returning.wrap(PAYLOAD)) == PAYLOAD
    error = refused(returning, cluster.wrap(PAYLOAD), RejectReason.UNKNOWN_KEY)
    assert key_id(K2) in str(error)
    assert returning.keyring is not None
    returning.keyring.install(K2)
    assert returning.unwrap(cluster.wrap(PAYLOAD)) == PAYLOAD
    finished = make(mode, K2)  # K1 removed everywhere: the stale node is locked out
    refused(finished, make(mode, K1).wrap(PAYLOAD), RejectReason.UNKNOWN_KEY)
