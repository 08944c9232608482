"""The node layer: the Trio runtime around the sans-IO engine, and the user's handle.

``open_node`` / ``serve_node`` / ``Node`` are in ``_node``; the tasks that drive the
engine in ``_runtime``; joining through seeds in ``_joining``; the metrics snapshot in
``_metrics``; event fan-out (``Subscription``, ``FullSubscription``, ``EventsLost``) in
``_events``; the errors in ``errors``; ``host_node`` (``_hosted``) holds a node for the
asyncio and threaded doors (``swimgossip.aio``, ``swimgossip.blocking``). It imports the
core, security and net layers. ``SerfEventStream`` and ``SerfHandle`` (``_serf``) load on
first use: they bring Serf's layer and memberlist's codec, which a node on its own wire
never needs (about a tenth of an agent's start).
"""

from typing import TYPE_CHECKING, Any

from ._callbacks import ListenCallbacks
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
from .errors import JoinError, SendFailed

if TYPE_CHECKING:
    from ._serf import SerfEventStream, SerfHandle

_LAZY = ("SerfEventStream", "SerfHandle")


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'swimgossip.node' has no attribute {name!r}")
    from . import _serf

    value = getattr(_serf, name)
    globals()[name] = value
    return value


__all__ = [
    "DirectMessageStream",
    "EventsLost",
    "FullEvent",
    "FullSubscription",
    "JoinError",
    "ListenCallbacks",
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
