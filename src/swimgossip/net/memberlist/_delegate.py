"""The hooks a layer above memberlist's wire plugs in (Serf's layer is one): ``Delegate``.

Modelled on memberlist's ``Delegate`` and ``EventDelegate`` (delegate.go,
event_delegate.go). A node in memberlist mode holds one delegate object::

    async with swimgossip.open_node("py1", wire="memberlist", delegate=my_delegate) as node:
        ...

and calls it, synchronously, from the one task that drives its engine (so a hook must
not block or await; it may keep state, it runs one call at a time):

- ``node_meta(limit)`` once, when the node opens: the meta bytes this member announces in
  its ``alive`` (at most ``limit`` bytes; memberlist's ``MetaMaxSize`` is 512); it takes
  the place of ``open_node(meta=...)``. Serf puts its encoded tags here. It is not asked
  again: new meta is announced with ``node.update_meta(meta)`` or ``node.update_tags(tags)``
  (in serf mode the bytes are tags, put in Serf's form), which sends those bytes in a new
  ``alive`` with a higher incarnation; the peers' delegates see ``notify_update``.
- ``notify_message(payload)`` for every ``userMsg`` that arrives, by datagram (also inside
  a compound) or on a stream; ``payload`` is the message body without memberlist's type
  byte (Serf's first byte is its own message type).
- ``get_broadcasts(overhead, limit)`` each time a datagram leaves with room to spare: the
  payloads to piggyback as ``userMsg`` s, each at most ``limit - overhead`` bytes with its
  ``overhead`` bytes of framing counted, the sum within ``limit``. The delegate owns its
  queue and its transmit limits (as memberlist's ``TransmitLimitedQueue`` in Serf);
  ``retransmit_limit(mult, n)`` gives memberlist's figure. What it returns is sent once.
- ``local_state(join)`` when this node sends a push-pull (``join`` says whether it is a
  join): the user state bytes that go with it (Serf: its Lamport clocks, member intents).
- ``merge_remote_state(state, join)`` for the user state of a push-pull received (as a
  request or as the answer to ours); not called when the peer sent none.
- ``notify_join(member)``, ``notify_leave(member)``, ``notify_update(member)`` as the
  member table changes, like memberlist's ``EventDelegate``: join when a member becomes
  known alive (also after it failed or left and came back), leave when it fails or leaves
  (``member.status`` says which), update when its meta or address changes.

A hook that raises does not stop the node: the node calls the delegate through
``GuardedDelegate``, which logs the exception with its traceback (ERROR), counts it
(``delegate_errors`` in ``node.metrics()``) and goes on as if the hook had returned
nothing (no meta, no broadcasts, no user state).

``NoDelegate`` does nothing and is what a node uses without one: ``userMsg`` s are counted
(``user_messages_in``) and dropped, the meta is the node's own (``open_node(meta=...)``).
Subclass it to implement only some hooks.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

from ...core.events import Event, MemberFailed, MemberJoined, MemberLeft, MemberUpdated
from ...core.member import Member

__all__ = [
    "USER_MESSAGE_OVERHEAD",
    "Delegate",
    "GuardedDelegate",
    "NoDelegate",
    "notify_delegate",
    "retransmit_limit",
]

logger = logging.getLogger("swimgossip")

_T = TypeVar("_T")

#: Bytes a ``userMsg`` costs in a compound datagram besides its payload: its type byte
#: and the compound's 2-byte length.
USER_MESSAGE_OVERHEAD = 3


def retransmit_limit(retransmit_mult: int, cluster_size: int) -> int:
    """memberlist's transmit limit for a broadcast: ``mult * ceil(log10(n + 1))``."""
    return retransmit_mult * math.ceil(math.log10(cluster_size + 1))


@runtime_checkable
class Delegate(Protocol):
    """What a layer above memberlist's wire implements (see the module docstring)."""

    def node_meta(self, limit: int) -> bytes:
        """This member's meta, at most ``limit`` bytes."""
        ...

    def notify_message(self, payload: bytes) -> None:
        """A ``userMsg`` arrived (its body, without memberlist's type byte)."""
        ...

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        """Payloads to piggyback on an outgoing datagram, with ``overhead`` bytes of
        framing each and all within ``limit`` bytes."""
        ...

    def local_state(self, join: bool) -> bytes:
        """The user state to send with a push-pull."""
        ...

    def merge_remote_state(self, state: bytes, join: bool) -> None:
        """The user state a peer sent with its push-pull."""
        ...

    def notify_join(self, member: Member) -> None:
        """``member`` is alive and known (new, or back after failing or leaving)."""
        ...

    def notify_leave(self, member: Member) -> None:
        """``member`` failed or left (``member.status`` says which)."""
        ...

    def notify_update(self, member: Member) -> None:
        """``member`` changed its meta or address."""
        ...


class NoDelegate:
    """A delegate that does nothing: subclass it and override the hooks you need."""

    def __init__(self, meta: bytes = b"") -> None:
        self.meta = meta

    def node_meta(self, limit: int) -> bytes:
        """The ``meta`` given at construction."""
        return self.meta[:limit]

    def notify_message(self, payload: bytes) -> None:
        """Ignore the message."""

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        """Nothing to send."""
        return []

    def local_state(self, join: bool) -> bytes:
        """No user state."""
        return b""

    def merge_remote_state(self, state: bytes, join: bool) -> None:
        """Ignore the peer's user state."""

    def notify_join(self, member: Member) -> None:
        """Ignore."""

    def notify_leave(self, member: Member) -> None:
        """Ignore."""

    def notify_update(self, member: Member) -> None:
        """Ignore."""


class GuardedDelegate:
    """``delegate`` behind a guard: an exception from a hook is logged, counted in
    ``counters["delegate_errors"]`` and replaced by the hook's empty answer."""

    def __init__(self, delegate: Delegate, counters: Counter[str]) -> None:
        self.delegate = delegate
        self.counters = counters

    def _call(self, hook: str, default: _T, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except Exception:
            self.counters["delegate_errors"] += 1
            logger.exception("memberlist delegate: %s raised; the node goes on", hook)
            return default

    def node_meta(self, limit: int) -> bytes:
        """The delegate's meta (``b""`` if the hook raised)."""
        return self._call("node_meta", b"", lambda: self.delegate.node_meta(limit))

    def notify_message(self, payload: bytes) -> None:
        """Hand on a user message."""
        self._call("notify_message", None, lambda: self.delegate.notify_message(payload))

    def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        """The delegate's broadcasts (none if the hook raised)."""
        empty: list[bytes] = []
        return self._call(
            "get_broadcasts", empty, lambda: self.delegate.get_broadcasts(overhead, limit)
        )

    def local_state(self, join: bool) -> bytes:
        """The delegate's user state (``b""`` if the hook raised)."""
        return self._call("local_state", b"", lambda: self.delegate.local_state(join))

    def merge_remote_state(self, state: bytes, join: bool) -> None:
        """Hand on a peer's user state."""
        self._call(
            "merge_remote_state", None, lambda: self.delegate.merge_remote_state(state, join)
        )

    def notify_join(self, member: Member) -> None:
        """Hand on a join."""
        self._call("notify_join", None, lambda: self.delegate.notify_join(member))

    def notify_leave(self, member: Member) -> None:
        """Hand on a failure or leave."""
        self._call("notify_leave", None, lambda: self.delegate.notify_leave(member))

    def notify_update(self, member: Member) -> None:
        """Hand on an update."""
        self._call("notify_update", None, lambda: self.delegate.notify_update(member))


def notify_delegate(delegate: Delegate, event: Event) -> None:
    """Call the delegate's join / leave / update hook for a membership event (the others,
    suspicion and recovery, have no counterpart in memberlist's ``EventDelegate``)."""
    if isinstance(event, MemberJoined):
        delegate.notify_join(event.member)
    elif isinstance(event, MemberUpdated):
        delegate.notify_update(event.member)
    elif isinstance(event, (MemberFailed, MemberLeft)):
        delegate.notify_leave(event.member)
