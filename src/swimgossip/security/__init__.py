"""The security layer: keys, packet signing and sealing, replay, refusals (bytes -> bytes).

Above the core, below the transports: it imports only ``swimgossip.core`` and (lazily)
``cryptography``, and touches no socket. The names below are the layer's public API; the
private modules are ``_keyring`` (keys and key files), ``_envelope`` (the byte layouts),
``_replay`` (the replay guard), ``_nonces``, ``_refusals`` (why a packet was refused, its
counters, and the plain error frame that tells a stream's client why) and ``_signer`` (the
policy: ``PacketSigner``). The errors are in ``errors``. docs/security.md is the guide.
"""

from ._envelope import (
    ENVELOPE_OVERHEAD,
    LABEL_MARKER,
    MAX_ENVELOPE_OVERHEAD,
    SEALED_MARKER,
    SIGNED_MARKER,
    TAG_SIZE,
)
from ._keyring import KEY_SIZES, Keyring, encode_key, generate_key, key_id
from ._refusals import ERROR_MARKER, RejectReason, SecurityStats, read_refusal, refusal_frame
from ._replay import DEFAULT_REPLAY_CACHE_SIZE, DEFAULT_REPLAY_WINDOW
from ._signer import NO_KEY_MESSAGE, SEAL_OVERHEAD, SIGNATURE_OVERHEAD, PacketSigner, SecurityMode
from .errors import AuthenticationError, KeyringError, PayloadError, PeerRefused, SecurityError

__all__ = [
    "DEFAULT_REPLAY_CACHE_SIZE",
    "DEFAULT_REPLAY_WINDOW",
    "ENVELOPE_OVERHEAD",
    "ERROR_MARKER",
    "KEY_SIZES",
    "LABEL_MARKER",
    "MAX_ENVELOPE_OVERHEAD",
    "NO_KEY_MESSAGE",
    "SEALED_MARKER",
    "SEAL_OVERHEAD",
    "SIGNATURE_OVERHEAD",
    "SIGNED_MARKER",
    "TAG_SIZE",
    "AuthenticationError",
    "Keyring",
    "KeyringError",
    "PacketSigner",
    "PayloadError",
    "PeerRefused",
    "RejectReason",
    "SecurityError",
    "SecurityMode",
    "SecurityStats",
    "encode_key",
    "generate_key",
    "key_id",
    "read_refusal",
    "refusal_frame",
]
