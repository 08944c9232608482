"""memberlist messages <-> the engine's messages: the translation a memberlist wire mode
needs, pure functions. Each semantic difference is listed in docs/protocol.md
("memberlist wire"); the ones handled here:

- memberlist addresses are raw IP bytes (4 or 16) plus a port; ours are ``"host:port"``
  strings (``format_address`` / ``parse_address``). A host that is not an IP literal
  cannot be sent to memberlist (``ValueError``).
- ``dead`` with ``From == Node`` is memberlist's graceful leave: it becomes our ``Left``,
  and our ``Left`` becomes such a ``dead``.
- memberlist has no boot id: ours is dropped on the way out and 0 (unknown) on the way in.
- memberlist's push-pull has no sender and no ``suspected_by``: the caller supplies the
  peer's name; suspicions arrive without who raised them.
- ``Vsn`` (protocol and delegate versions) has no counterpart in our messages: outgoing
  alives and node states carry ``vsn`` as given (``DEFAULT_VSN`` by default), or what
  ``vsn_of(name)`` says (a wire remembers each member's own: a Go node refutes an alive
  about itself whose versions differ from its own).
- Incarnations: memberlist ignores an alive at incarnation 0 for a node it does not know
  (its own nodes start at 1), ours start at 0; ``shift`` is added on the way out and taken
  off on the way in (never below 0): the memberlist wire mode uses 1.
- memberlist's ``userMsg`` is the delegate's (Serf's) and has no mapping here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import attrs

from ...core import messages as core
from ...core.member import Member, Status
from .._transport import format_address, parse_address
from . import codec as ml
from .errors import WireError

__all__ = ["DEFAULT_VSN", "from_memberlist", "from_push_pull", "to_memberlist", "to_push_pull"]

#: Protocol min 1, max 5, current 2; delegate min 2, max 5, current 4: what a Serf 0.8/0.9
#: agent accepts from a member (a Go agent sends 1,5,2,2,5,5 for itself).
DEFAULT_VSN = bytes((1, 5, 2, 2, 5, 4))


def _address(addr: bytes, port: int) -> str:
    try:
        host = str(ipaddress.ip_address(addr))
    except ValueError as exc:
        raise WireError(f"memberlist address of {len(addr)} bytes is not IPv4 or IPv6") from exc
    return format_address(host, port)


def _ip_port(address: str) -> tuple[bytes, int]:
    host, port = parse_address(address)
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).packed, port
    except ValueError:
        raise ValueError(f"memberlist needs an IP address, not {host!r}") from None


def from_memberlist(message: ml.Message, *, shift: int = 0) -> core.Message | None:
    """The engine message for a memberlist one; ``None`` for what has no counterpart
    (``userMsg``, ``errResp``). ``WireError`` for an address that is not an IP."""
    if shift and isinstance(message, (ml.Alive, ml.Suspect, ml.Dead)):
        message = attrs.evolve(message, incarnation=max(0, message.incarnation - shift))
    if isinstance(message, ml.Ping):
        return core.Ping(seq=message.seq_no, target=message.node)
    if isinstance(message, ml.Ack):
        return core.Ack(seq=message.seq_no)
    if isinstance(message, ml.Nack):
        return core.Nack(seq=message.seq_no)
    if isinstance(message, ml.IndirectPing):
        return core.PingReq(
            seq=message.seq_no,
            target=message.node,
            target_address=_address(message.target, message.port),
            nack=message.nack,
        )
    if isinstance(message, ml.Alive):
        return core.Alive(
            name=message.node,
            address=_address(message.addr, message.port),
            incarnation=message.incarnation,
            meta=message.meta,
        )
    if isinstance(message, ml.Suspect):
        return core.Suspect(
            name=message.node, incarnation=message.incarnation, source=message.sender
        )
    if isinstance(message, ml.Dead):
        if message.sender == message.node:
            return core.Left(name=message.node, incarnation=message.incarnation)
        return core.Dead(name=message.node, incarnation=message.incarnation, source=message.sender)
    return None


def to_memberlist(
    message: core.Message, *, vsn: bytes = DEFAULT_VSN, shift: int = 0
) -> ml.Message | None:
    """The memberlist message for an engine one; ``None`` for what memberlist has no
    counterpart for (our user and direct messages, push-pull: see ``to_push_pull``)."""
    if shift and isinstance(message, (core.Alive, core.Suspect, core.Dead, core.Left)):
        message = attrs.evolve(message, incarnation=message.incarnation + shift)
    if isinstance(message, core.Ping):
        return ml.Ping(seq_no=message.seq, node=message.target)
    if isinstance(message, core.Ack):
        return ml.Ack(seq_no=message.seq)
    if isinstance(message, core.Nack):
        return ml.Nack(seq_no=message.seq)
    if isinstance(message, core.PingReq):
        addr, port = _ip_port(message.target_address)
        return ml.IndirectPing(
            seq_no=message.seq, target=addr, port=port, node=message.target, nack=message.nack
        )
    if isinstance(message, core.Alive):
        addr, port = _ip_port(message.address)
        return ml.Alive(
            incarnation=message.incarnation,
            node=message.name,
            addr=addr,
            port=port,
            meta=message.meta,
            vsn=vsn,
        )
    if isinstance(message, core.Suspect):
        return ml.Suspect(incarnation=message.incarnation, node=message.name, sender=message.source)
    if isinstance(message, core.Dead):
        return ml.Dead(incarnation=message.incarnation, node=message.name, sender=message.source)
    if isinstance(message, core.Left):
        return ml.Dead(incarnation=message.incarnation, node=message.name, sender=message.name)
    return None


def from_push_pull(message: ml.PushPull, *, source: str, shift: int = 0) -> core.PushPull:
    """Our push-pull for memberlist's; ``source`` is the peer's name (memberlist's
    push-pull does not carry it). ``WireError`` for an unknown state or a bad address."""
    members = []
    for node in message.nodes:
        try:
            status = Status(node.state)
        except ValueError:
            raise WireError(f"unknown memberlist node state {node.state}") from None
        members.append(
            Member(
                name=node.name,
                address=_address(node.addr, node.port),
                status=status,
                incarnation=max(0, node.incarnation - shift),
                meta=node.meta,
            )
        )
    return core.PushPull(source=source, join=message.join, members=tuple(members))


def to_push_pull(
    message: core.PushPull,
    *,
    user_state: bytes = b"",
    vsn: bytes = DEFAULT_VSN,
    vsn_of: Callable[[str], bytes] | None = None,
    shift: int = 0,
) -> ml.PushPull:
    """memberlist's push-pull for ours (``suspected_by`` and boot ids are dropped)."""
    nodes = []
    for member in message.members:
        addr, port = _ip_port(member.address)
        nodes.append(
            ml.PushNodeState(
                name=member.name,
                addr=addr,
                port=port,
                meta=member.meta,
                incarnation=member.incarnation + shift,
                state=int(member.status),
                vsn=vsn if vsn_of is None else vsn_of(member.name),
            )
        )
    return ml.PushPull(join=message.join, nodes=tuple(nodes), user_state=user_state)
