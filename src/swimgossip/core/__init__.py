"""The sans-IO protocol core: SWIM + Lifeguard as a pure state machine.

Imports only the standard library, attrs and msgpack. It never reads a clock, opens a
socket or uses global randomness: ``now`` is an argument, randomness an injected
``random.Random``, and every effect is a returned value (see ``outputs``).
"""

from .codec import decode_packet, decode_stream, encode_message, encode_packet, encode_stream
from .config import PRESETS, Config
from .engine import Engine
from .errors import (
    ConfigError,
    DecodeError,
    LocalError,
    MessageTooLarge,
    MetadataTooLarge,
    NotRunning,
    RemoteError,
    SwimError,
)
from .events import (
    MemberConflict,
    MemberEvent,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberRecovered,
    MemberSuspected,
    MemberUpdated,
)
from .inputs import (
    BroadcastCommand,
    Command,
    DatagramReceived,
    Input,
    JoinCommand,
    LeaveCommand,
    NetworkInput,
    StreamAnswered,
    StreamFailed,
    StreamFailure,
    StreamReceived,
    UpdateMetaCommand,
)
from .member import Member, Status, supersedes
from .outputs import (
    JoinOutcome,
    LeaveComplete,
    Output,
    PublishEvent,
    ScheduleTimer,
    SendDatagram,
    StreamPurpose,
    StreamReply,
    StreamRequest,
    UserDelivery,
)

__all__ = [
    "BroadcastCommand",
    "Command",
    "Config",
    "ConfigError",
    "DatagramReceived",
    "DecodeError",
    "Engine",
    "Input",
    "JoinCommand",
    "JoinOutcome",
    "LeaveCommand",
    "LeaveComplete",
    "LocalError",
    "Member",
    "MemberConflict",
    "MemberEvent",
    "MemberFailed",
    "MemberJoined",
    "MemberLeft",
    "MemberRecovered",
    "MemberSuspected",
    "MemberUpdated",
    "MessageTooLarge",
    "MetadataTooLarge",
    "NetworkInput",
    "NotRunning",
    "Output",
    "PRESETS",
    "PublishEvent",
    "RemoteError",
    "ScheduleTimer",
    "SendDatagram",
    "Status",
    "StreamAnswered",
    "StreamFailed",
    "StreamFailure",
    "StreamPurpose",
    "StreamReceived",
    "StreamReply",
    "StreamRequest",
    "SwimError",
    "UpdateMetaCommand",
    "UserDelivery",
    "decode_packet",
    "decode_stream",
    "encode_message",
    "encode_packet",
    "encode_stream",
    "supersedes",
]
