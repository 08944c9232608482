"""hashicorp/memberlist's wire format: a codec at the edge, sans I/O.

``codec`` turns memberlist packets and push-pull streams into typed values and back
(messages, compound, CRC, labels, LZW compression); ``_crypto`` is memberlist's AES-GCM
encryption and keyring and Serf's base64 key; ``translate`` maps memberlist's messages to
the engine's and back; ``MemberlistWire`` is the engine's wire in memberlist mode and
``MemberlistTransport`` memberlist's envelopes over our sockets
(``open_node(wire="memberlist")``); ``Delegate`` the hooks of a layer above (Serf's). See
docs/protocol.md, "memberlist wire mode".
"""

from ._crypto import (
    KEY_SIZES,
    MemberlistKeyring,
    decrypt_payload,
    decrypt_stream,
    encrypt_payload,
    encrypt_stream,
    encrypted_length,
    parse_serf_key,
)
from ._delegate import (
    USER_MESSAGE_OVERHEAD,
    Delegate,
    GuardedDelegate,
    NoDelegate,
    notify_delegate,
    retransmit_limit,
)
from ._transport import MemberlistTransport
from ._wire import MemberlistWire
from .codec import (
    Ack,
    Alive,
    Dead,
    ErrorResponse,
    IndirectPing,
    Message,
    MessageType,
    Nack,
    NodeState,
    Ping,
    PushNodeState,
    PushPull,
    Suspect,
    UserMessage,
    add_crc,
    add_label,
    compress,
    decode_message,
    decode_packet,
    decode_push_pull,
    encode_message,
    encode_push_pull,
    make_compound,
    remove_label,
    split_compound,
)
from .errors import (
    ChecksumMismatch,
    CompressionError,
    DecryptError,
    LabelError,
    MsgpackError,
    UnknownMessageType,
    WireError,
)
from .translate import DEFAULT_VSN, from_memberlist, from_push_pull, to_memberlist, to_push_pull

__all__ = [
    "USER_MESSAGE_OVERHEAD",
    "Delegate",
    "GuardedDelegate",
    "NoDelegate",
    "MemberlistTransport",
    "MemberlistWire",
    "notify_delegate",
    "retransmit_limit",
    "DEFAULT_VSN",
    "from_memberlist",
    "from_push_pull",
    "to_memberlist",
    "to_push_pull",
    "KEY_SIZES",
    "Ack",
    "Alive",
    "ChecksumMismatch",
    "CompressionError",
    "Dead",
    "DecryptError",
    "ErrorResponse",
    "IndirectPing",
    "LabelError",
    "MemberlistKeyring",
    "Message",
    "MessageType",
    "MsgpackError",
    "Nack",
    "NodeState",
    "Ping",
    "PushNodeState",
    "PushPull",
    "Suspect",
    "UnknownMessageType",
    "UserMessage",
    "WireError",
    "add_crc",
    "add_label",
    "compress",
    "decode_message",
    "decode_packet",
    "decode_push_pull",
    "decrypt_payload",
    "decrypt_stream",
    "encode_message",
    "encode_push_pull",
    "encrypt_payload",
    "encrypt_stream",
    "encrypted_length",
    "make_compound",
    "parse_serf_key",
    "remove_label",
    "split_compound",
]
