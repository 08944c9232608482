"""``swimgossip.blocking``: cluster membership for plain threaded code (Django, Flask,
scripts, Celery workers).

::

    with swimgossip.blocking.start_node("a", bind="0.0.0.0:7946") as node:
        node.join(["10.0.0.1:7946"], timeout=10)
        for event in node.events(timeout=1.0):
            ...

The node is the Trio runtime's own (``swimgossip.open_node``), run by ``trio.run`` in one
background thread per node and driven with ``trio.from_thread``: one protocol
implementation, the same event classes, ``seq`` numbers and errors. See
docs/architecture.md, "asyncio and threads". A door above the node layer: it imports core,
security, net and node.
"""

from ._node import BlockingNode, BlockingStream, start_node

__all__ = ["BlockingNode", "BlockingStream", "start_node"]
