"""Packet security policy: which envelope to send, which to accept, and why one was refused.

This sits outside the sans-IO core (the core never imports ``cryptography``) and touches no
socket. The runtime passes every outgoing datagram and stream payload through
``PacketSigner.wrap`` and every incoming one through ``PacketSigner.unwrap``. The byte
layouts live in ``_envelope``, the keys in ``_keyring``, the replay cache in ``_replay``, the
refusal reasons and counters in ``_refusals``; this module decides. docs/security.md is
the operator's guide; docs/protocol.md has the bytes.

How ``unwrap`` decides, in this order (the first failure is the packet's one refusal):

1. empty -> TRUNCATED;
2. cluster label: the packet must carry exactly this node's label header, or none if this
   node has no label -> else LABEL (before anything else is looked at);
3. the body's first byte: signed (0xA2), sealed (0xA3), another reserved envelope byte
   (0xA0-0xBF, e.g. the retired 0xA1) -> UNSUPPORTED, anything else is a plain packet;
4. the mode: plain refused unless OFF / SIGN_ACCEPT_UNSIGNED -> UNSIGNED; signed refused
   under SEALED -> UNSEALED; sealed accepted by every mode that holds a keyring;
5. length -> TRUNCATED; key id not installed -> UNKNOWN_KEY; tag -> FORGED;
6. only now, with the timestamp and nonce authenticated: window -> STALE / FUTURE;
   nonce seen before, or too old for a full cache to vouch for -> REPLAY.

| mode                   | sends  | accepts plain | accepts signed | accepts sealed |
|------------------------|--------|---------------|----------------|----------------|
| ``OFF``                | plain  | yes           | with a keyring | with a keyring |
| ``SIGN_ACCEPT_UNSIGNED`` | signed | yes         | yes            | yes            |
| ``REQUIRED``           | signed | no            | yes            | yes            |
| ``SEAL_ACCEPT_SIGNED`` | sealed | no            | yes            | yes            |
| ``SEALED``             | sealed | no            | no             | yes            |

Every mode accepts what the next mode up sends, and every mode from SIGN_ACCEPT_UNSIGNED up
accepts what the mode below sends: so a rolling change of one step at a time,
OFF (+keyring) -> SIGN_ACCEPT_UNSIGNED -> REQUIRED -> SEAL_ACCEPT_SIGNED -> SEALED, never
leaves two nodes unable to talk.

``unwrap`` fails closed: every refusal is one ``AuthenticationError`` (a ``RemoteError``)
with a ``reason``, counted in ``SecurityStats``; no other exception escapes it for any bytes.
"""

from __future__ import annotations

import enum
import math
import os
import time
from collections import Counter
from collections.abc import Callable

import attrs

from ..core.errors import ConfigError
from ._envelope import (
    ENVELOPE_OVERHEAD,
    HEADER,
    LABEL_MARKER,
    NONCE_SIZE,
    RETIRED_SIGNED_MARKER,
    SEALED_MARKER,
    SIGNED_MARKER,
    is_reserved,
    label_header,
    open_sealed,
    seal,
    sign,
    verify_signed,
)
from ._keyring import Keyring
from ._nonces import NONCES
from ._refusals import RejectReason, SecurityStats
from ._replay import (
    DEFAULT_REPLAY_CACHE_SIZE,
    DEFAULT_REPLAY_WINDOW,
    Freshness,
    ReplayGuard,
)
from .errors import AuthenticationError, PayloadError

__all__ = [
    "NO_KEY_MESSAGE",
    "SEAL_OVERHEAD",
    "SIGNATURE_OVERHEAD",
    "PacketSigner",
    "SecurityMode",
]

#: Bytes a signed packet adds to its payload (without a label).
SIGNATURE_OVERHEAD = ENVELOPE_OVERHEAD
#: Bytes a sealed packet adds to its payload (without a label): the same as signing.
SEAL_OVERHEAD = ENVELOPE_OVERHEAD
#: The start of the message when no installed key made a packet.
NO_KEY_MESSAGE = (
    "no installed key verifies this packet: "
    "the sender may use a key removed here or not yet installed"
)


class SecurityMode(enum.Enum):
    """What ``wrap`` sends and what ``unwrap`` accepts (table in the module docstring).

    The values are the names used in configuration: ``SecurityMode("sealed")``.
    """

    #: Send plain packets; accept plain ones, and signed / sealed ones a keyring verifies.
    OFF = "off"
    #: Sign; accept plain, signed and sealed (migrating from OFF).
    SIGN_ACCEPT_UNSIGNED = "sign-accept-unsigned"
    #: Sign; accept signed and sealed.
    REQUIRED = "required"
    #: Seal; accept signed and sealed (migrating from REQUIRED).
    SEAL_ACCEPT_SIGNED = "seal-accept-signed"
    #: Seal; accept sealed only.
    SEALED = "sealed"


@attrs.frozen
class _Policy:
    sends: int | None  # SIGNED_MARKER, SEALED_MARKER or None for plain
    accepts_plain: bool
    accepts_signed: bool


_POLICIES = {
    SecurityMode.OFF: _Policy(None, accepts_plain=True, accepts_signed=True),
    SecurityMode.SIGN_ACCEPT_UNSIGNED: _Policy(SIGNED_MARKER, True, True),
    SecurityMode.REQUIRED: _Policy(SIGNED_MARKER, accepts_plain=False, accepts_signed=True),
    SecurityMode.SEAL_ACCEPT_SIGNED: _Policy(SEALED_MARKER, False, True),
    SecurityMode.SEALED: _Policy(SEALED_MARKER, accepts_plain=False, accepts_signed=False),
}
_PLAIN, _SIGNED, _SEALED = "unsigned", "signed", "sealed"
_FRESH = Freshness.FRESH
_unpack_header = HEADER.unpack_from


def _label_bytes(label: bytes | str) -> bytes:
    raw = label.encode("utf-8") if isinstance(label, str) else label
    try:
        label_header(raw)
    except ValueError as exc:
        raise ConfigError("label", str(exc)) from None
    return raw


def _show(label: bytes) -> str:
    return repr(label.decode("utf-8", "replace"))


class PacketSigner:
    """Wraps outgoing packets and unwraps incoming ones according to ``mode``.

    Args:
        keyring: the keys; ``None`` only with ``SecurityMode.OFF``. Used live: ``install``,
            ``use``, ``remove`` and ``reload`` take effect on the next packet.
        mode: the policy (see the module docstring).
        label: the cluster label, at most 255 bytes (``str`` is UTF-8 encoded); empty for
            none. Works in every mode, OFF included.
        clock: wall clock in seconds since the Unix epoch, for packet timestamps and the
            replay window. Tests pass a fake one.
        monotonic: a clock that never steps, in seconds: how long the replay guard holds
            what it accepted (see ``_replay``). Default ``time.monotonic`` with the real
            wall clock, else ``clock`` itself (a fake wall clock is its own monotonic one).
        replay_window: seconds a packet's timestamp may differ from ``clock()`` either way.
        replay_cache_size: the most nonces remembered (see ``_replay``).
        skew_warning_every: a clock-skew warning line is due on the first stale or future
            packet and then on every ``skew_warning_every``-th one.
        nonce_source: ``n -> n random bytes``; ``os.urandom`` unless a test needs repeats.
            The default draws its randomness from ``os.urandom`` once per run of a
            counter, not per packet (see ``nonces.NonceSequence``): every nonce stays unique.

    Raises:
        ConfigError: if a sending mode has no keyring, the label is too long, or a replay
            setting is out of range.
    """

    def __init__(
        self,
        keyring: Keyring | None = None,
        mode: SecurityMode = SecurityMode.OFF,
        *,
        label: bytes | str = b"",
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] | None = None,
        replay_window: float = DEFAULT_REPLAY_WINDOW,
        replay_cache_size: int = DEFAULT_REPLAY_CACHE_SIZE,
        skew_warning_every: int = 1000,
        nonce_source: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if mode is not SecurityMode.OFF and keyring is None:
            raise ConfigError("keyring", f"security mode {mode.value!r} needs a keyring")
        if not (math.isfinite(replay_window) and replay_window > 0):
            raise ConfigError(
                "replay_window", f"must be a positive number of seconds, not {replay_window}"
            )
        if replay_cache_size < 1:
            raise ConfigError("replay_cache_size", f"must be at least 1, not {replay_cache_size}")
        if skew_warning_every < 1:
            raise ConfigError("skew_warning_every", f"must be at least 1, not {skew_warning_every}")
        self._keyring = keyring
        self._mode = mode
        self._policy = _POLICIES[mode]
        self._label = _label_bytes(label)
        self._label_header = label_header(self._label)
        self._clock = clock
        if monotonic is None:
            monotonic = time.monotonic if clock is time.time else clock
        self._monotonic = monotonic
        self._replay_window = replay_window
        self._guard = ReplayGuard(window_ms=round(replay_window * 1000), capacity=replay_cache_size)
        self._skew_warning_every = skew_warning_every
        self._nonce_source = nonce_source
        # Hot-path copies of the above, read per packet.
        self._sends = self._policy.sends
        self._accepts_signed = self._policy.accepts_signed
        self._body_start = len(self._label_header)
        self._next_nonce: Callable[[], bytes] = (
            NONCES.next if nonce_source is os.urandom else lambda: nonce_source(NONCE_SIZE)
        )
        self._admit = self._guard.admit
        self._accepted: Counter[str] = Counter()
        self._rejected: Counter[RejectReason] = Counter()
        self._skewed = 0
        self._skew_warnings = 0

    @property
    def keyring(self) -> Keyring | None:
        """The keys in use (fixed at construction; its contents may change)."""
        return self._keyring

    @property
    def mode(self) -> SecurityMode:
        """The policy (fixed at construction: make a new signer to change it)."""
        return self._mode

    @property
    def label(self) -> bytes:
        """The cluster label, ``b""`` for none."""
        return self._label

    @property
    def overhead(self) -> int:
        """Bytes ``wrap`` adds to every payload: the label header, plus
        ``ENVELOPE_OVERHEAD`` unless the mode is OFF."""
        body = 0 if self._policy.sends is None else ENVELOPE_OVERHEAD
        return len(self._label_header) + body

    def wrap(self, payload: bytes) -> bytes:
        """Return the packet to send for ``payload``: signed or sealed with the primary key,
        or plain under OFF; behind the label header if a label is set.

        Raises:
            PayloadError: under OFF, if ``payload`` starts with a reserved envelope byte
                (0xA0-0xBF): a receiver would take it for an envelope. Codec output never
                does.
        """
        sends = self._sends
        if sends is None:
            if payload and is_reserved(payload[0]):
                raise PayloadError(f"a plain payload must not start with 0x{payload[0]:02X}")
            return self._label_header + payload if self._label_header else payload
        assert self._keyring is not None  # checked at construction
        material = self._keyring.snapshot.materials[0]
        timestamp_ms = max(0, int(self._clock() * 1000))
        make = sign if sends == SIGNED_MARKER else seal
        return make(material, self._label_header, timestamp_ms, self._next_nonce(), payload)

    def unwrap(self, data: bytes) -> bytes:
        """Return the payload of the received packet ``data`` if the mode accepts it.

        Raises:
            AuthenticationError: with a ``reason``, for every refusal (see the module
                docstring for the order of checks). Nothing else is raised.
        """
        try:
            payload, form = self._open(data)
        except AuthenticationError as exc:
            assert exc.reason is not None
            self._rejected[exc.reason] += 1
            raise
        self._accepted[form] += 1
        return payload

    def stats(self) -> SecurityStats:
        """Return a snapshot of the counters of received packets."""
        rejected = {f"rejected_{r.name.lower()}": n for r, n in self._rejected.items()}
        return SecurityStats(
            accepted_unsigned=self._accepted[_PLAIN],
            accepted_signed=self._accepted[_SIGNED],
            accepted_sealed=self._accepted[_SEALED],
            clock_skew_warnings=self._skew_warnings,
            replay_cache_entries=len(self._guard),
            replay_cache_evictions=self._guard.evictions,
            **rejected,
        )

    # ------------------------------------------------------------------ checks, in order

    def _open(self, data: bytes) -> tuple[bytes, str]:
        # The common case (the label matches, a signed or sealed body) runs straight
        # through; every refusal and the plain forms branch off to the helpers below.
        start = self._body_start
        if not (data.startswith(self._label_header) if start else data and data[0] != LABEL_MARKER):
            if not data:
                raise AuthenticationError("empty packet", RejectReason.TRUNCATED)
            start = self._check_label(data)  # raises LABEL
        size = len(data)
        if start >= size:
            raise AuthenticationError("nothing after the cluster label", RejectReason.TRUNCATED)
        first = data[start]
        if first == SIGNED_MARKER:
            form = _SIGNED
            if not self._accepts_signed:
                raise AuthenticationError(
                    f"signed packet refused: mode {self._mode.value!r} accepts only sealed ones",
                    RejectReason.UNSEALED,
                )
        elif first == SEALED_MARKER:
            form = _SEALED
        else:
            return self._open_plain(data, start, first), _PLAIN
        if size - start < ENVELOPE_OVERHEAD:
            raise AuthenticationError(
                f"{form} packet of {size} bytes is truncated", RejectReason.TRUNCATED
            )
        _, packet_key_id, timestamp_ms, nonce = _unpack_header(data, start)
        keyring = self._keyring
        candidates = keyring.snapshot.by_id.get(packet_key_id) if keyring is not None else None
        if not candidates:
            installed = ", ".join(keyring.key_ids) if keyring is not None else "none"
            raise AuthenticationError(
                f"{NO_KEY_MESSAGE} (its key id {packet_key_id.hex()}; installed: {installed})",
                RejectReason.UNKNOWN_KEY,
            )
        if form == _SIGNED:
            payload = verify_signed(candidates, data, start)
        else:
            payload = open_sealed(candidates, data, start, nonce)
        if payload is None:
            raise AuthenticationError(
                f"{form} packet does not verify with key {packet_key_id.hex()}: "
                "forged or corrupted",
                RejectReason.FORGED,
            )
        now_ms = int(self._clock() * 1000)
        verdict = self._admit(nonce, timestamp_ms, now_ms, int(self._monotonic() * 1000))
        if verdict is not _FRESH:
            self._refuse_unfresh(verdict, timestamp_ms, now_ms)
        return payload, form

    def _open_plain(self, data: bytes, start: int, first: int) -> bytes:
        """The body at ``start`` is neither signed nor sealed: a plain packet, or refused."""
        if is_reserved(first):
            raise AuthenticationError(self._unsupported(first), RejectReason.UNSUPPORTED)
        if self._policy.accepts_plain:
            return data[start:] if start else data
        raise AuthenticationError(
            f"unsigned packet refused: mode {self._mode.value!r} requires signed or sealed",
            RejectReason.UNSIGNED,
        )

    def _check_label(self, data: bytes) -> int:
        """Return where the body starts, or raise LABEL."""
        expected = self._label_header
        if expected and data.startswith(expected):
            return len(expected)
        if data[0] != LABEL_MARKER:
            if not expected:
                return 0
            carried = "an unlabelled packet"
        else:
            carried = f"a packet labelled {_show(data[2 : 2 + data[1]] if len(data) > 1 else b'')}"
        ours = f"cluster label {_show(self._label)}" if expected else "no cluster label"
        raise AuthenticationError(f"{carried} refused: this node has {ours}", RejectReason.LABEL)

    def _unsupported(self, first: int) -> str:
        if first == RETIRED_SIGNED_MARKER:
            return "signed packet of format 1 (0xA1) refused: the sender runs an older version"
        if first == LABEL_MARKER:
            return "a second label header refused"
        return f"unknown envelope 0x{first:02X} refused: the sender runs a newer version?"

    def _refuse_unfresh(self, verdict: Freshness, timestamp_ms: int, now_ms: int) -> None:
        """Raise the refusal for the guard's ``verdict`` (anything but FRESH)."""
        if verdict is Freshness.REPLAY:
            raise AuthenticationError(
                "replayed packet refused: nonce seen before", RejectReason.REPLAY
            )
        if verdict is Freshness.FORGOTTEN:
            raise AuthenticationError(
                "packet refused as a possible replay: the replay cache no longer covers "
                "packets this old (it was full, or this node's clock stepped back over "
                f"packets it had forgotten; {self._guard.capacity} entries at most)",
                RejectReason.REPLAY,
            )
        skew = (timestamp_ms - now_ms) / 1000
        reason = RejectReason.STALE if verdict is Freshness.STALE else RejectReason.FUTURE
        direction = "behind" if reason is RejectReason.STALE else "ahead of"
        self._skewed += 1
        warning = None
        if (self._skewed - 1) % self._skew_warning_every == 0:
            self._skew_warnings += 1
            warning = (
                f"clock skew: an authentic packet is stamped {abs(skew):.1f} s {direction} "
                f"this node's clock, outside the +-{self._replay_window:g} s replay window, "
                f"and was refused ({self._skewed} so far); check NTP on this node and the "
                "sender (or an old packet was replayed)"
            )
        raise AuthenticationError(
            f"{reason} packet refused: stamped {skew:+.1f} s from this node's clock",
            reason,
            warning=warning,
            skew=skew,
        )
