"""``swimgossip.aio``: cluster membership for asyncio programs (FastAPI, aiohttp, workers).

::

    async with swimgossip.aio.open_node("a", bind="127.0.0.1:0") as node:
        await node.join(["10.0.0.1:7946"])
        async with node.subscribe(snapshot=True) as events:
            async for event in events:
                ...

The node is the Trio runtime's own (``swimgossip.open_node``), run as a Trio guest on the
asyncio loop (``trio.lowlevel.start_guest_run``): one protocol implementation, the same
event classes, ``seq`` numbers and errors. See docs/architecture.md, "asyncio and threads".
A door above the node layer: it imports core, security, net and node.
"""

from ._node import AioNode, AioStream, open_node

__all__ = ["AioNode", "AioStream", "open_node"]
