"""The node layer: the Trio runtime around the sans-IO engine, and the user's handle.

``open_node`` / ``serve_node`` / ``Node`` are in ``_node``; the one task that owns the
engine in ``_runtime``; joining through seeds in ``_joining``; the metrics snapshot in
``_metrics``; event fan-out (``Subscription``, ``FullSubscription``, ``EventsLost``) in
``_events``; the errors in ``errors``; ``host_node`` (``_hosted``) holds a node for the
asyncio and threaded doors (``swimgossip.aio``, ``swimgossip.blocking``). It imports the
core, security and net layers.
"""

from ._events import (
    DirectMessageStream,
    EventsLost,
    FullEvent,
    FullSubscription,
    MessageStream,
    NodeEvent,
    Subscription,
)
from ._hosted import host_node, join_within
from ._node import Node, open_node, serve_node
from ._serf import SerfEventStream, SerfHandle
from .errors import JoinError, SendFailed

__all__ = [
    "DirectMessageStream",
    "EventsLost",
    "FullEvent",
    "FullSubscription",
    "JoinError",
    "MessageStream",
    "Node",
    "NodeEvent",
    "SendFailed",
    "SerfEventStream",
    "SerfHandle",
    "Subscription",
    "host_node",
    "join_within",
    "open_node",
    "serve_node",
]
