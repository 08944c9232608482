"""A node held inside a Trio run on behalf of code outside it (the asyncio and threaded doors).

``host_node`` opens a node with ``open_node`` and holds it until it stops. It hands the
caller, once the node is bound, the ``Node`` and the cancel scope around it, through a
plain callback: that is all ``swimgossip.aio`` (Trio as a guest on an asyncio loop) and
``swimgossip.blocking`` (Trio in a thread of its own) need to drive it from outside.

* A graceful leave is ``await node.leave()`` run in the Trio run: the node stops, the
  block of ``open_node`` ends normally (its own leave is then a no-op) and ``host_node``
  returns.
* A crash is ``scope.cancel()`` run in the Trio run: ``open_node`` sees ``Cancelled`` and
  stops at once without leaving, exactly like a cancelled Trio task holding a node.

Either way ``host_node`` returns only when the node's tasks and sockets are gone. An error
while opening (``OSError`` for a taken port, ``ConfigError``) is raised by ``host_node``
before the callback is called.

``door_callbacks`` gives a door's handle its own ``Callbacks`` (the door runs them where
it documents), whose errors count in the node's ``callback_errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import trio

from ._callbacks import Callbacks
from ._node import Node, open_node

__all__ = ["door_callbacks", "host_node", "join_within"]

#: Called once the node is bound: the node and the cancel scope that crashes it.
Started = Callable[[Node, trio.CancelScope], None]


async def host_node(name: str, options: dict[str, Any], started: Started) -> None:
    """Run ``open_node(name, **options)`` until the node stops (see the module comment).

    Raises:
        whatever ``open_node`` raises while opening (``OSError``, ``ConfigError``...).
    """
    with trio.CancelScope() as scope:
        async with open_node(name, **options) as node:
            started(node, scope)
            await node.wait_stopped()


async def join_within(node: Node, seeds: Sequence[str], timeout: float | None) -> int:
    """``node.join(seeds)``, under ``trio.fail_after(timeout)`` unless it is None: the
    ``join(..., timeout=)`` of the doors, which cannot hand Trio a deadline of their own.

    Raises:
        JoinError: as ``Node.join`` (retrying stops shortly before the deadline).
        NotRunning: the node has left.
    """
    if timeout is None:
        return await node.join(seeds)
    with trio.fail_after(timeout):
        return await node.join(seeds)


def door_callbacks(
    node: Node, call_soon: Callable[[Callable[[], None]], None] | None = None
) -> Callbacks:
    """Callbacks for a door's handle on ``node``, counting their errors in its
    ``callback_errors``. A door whose callbacks run outside the node's Trio thread passes
    ``call_soon`` (``TrioToken.run_sync_soon``) to hand the count to that thread."""
    count = node._count_callback_error
    if call_soon is None:
        return Callbacks(node.name, count)
    return Callbacks(node.name, lambda: call_soon(count))
