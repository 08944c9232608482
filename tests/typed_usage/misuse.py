"""Mistakes ``mypy --strict`` must catch: tests/test_typing.py expects an error on exactly
the lines marked ``# error``, and none elsewhere. Never run."""

from __future__ import annotations

import swimgossip
from swimgossip import EventsLost, MemberJoined, Node, NodeEvent
from swimgossip.aio import AioNode
from swimgossip.blocking import BlockingNode


def on_join(event: MemberJoined) -> None:
    print(event.member.name)


async def misuse(node: Node, event: NodeEvent) -> None:
    async with swimgossip.open_node("a", bnd="127.0.0.1:0"):  # error
        pass
    await swimgossip.serve_node("a", config="lan")  # error
    await swimgossip.serve_node("a", bnd="127.0.0.1:0")  # error
    node.listen(on_fail=on_join)  # error
    print(event.member.name)  # error
    node.listen(on_direct=on_join)  # error
    node.listen(on_state=on_join)  # error
    async with node.subscribe(state=True) as events:
        async for change in events:
            if not isinstance(change, EventsLost):
                print(change.member.name)  # error


def door_misuse(aio_node: AioNode, blocking_node: BlockingNode) -> None:
    aio_node.listen(on_suspect=on_join)  # error
    blocking_node.listen(on_direct=on_join)  # error
