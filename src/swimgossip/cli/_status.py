"""The agent's read-only status endpoint (``--status``), and the client ``members`` uses.

How this works. ``serve_status`` listens on a loopback address only and answers each
connection with one HTTP/1.0 response, then closes it:

* ``GET /members`` -> a JSON list of ``member_record`` values, by name, each with the
  member's ``state`` (``state_record``: key -> text); filtered with ``?status=alive`` and
  ``&tag=role:db`` (both repeatable: any of the statuses, every tag);
* ``GET /metrics`` -> ``node.metrics_text()``: the Prometheus text exposition format, for
  a Prometheus server to scrape;
* ``GET /metrics.json`` -> ``node.metrics()`` as a JSON object;
* ``GET /`` -> the list of endpoints; anything else -> 404, another method -> 405,
  an unparsable request -> 400, all with a JSON ``{"error": ...}`` body.

Why not h11 (the model we follow for the core): it would be a new dependency for a server
that only ever reads one bounded request head (8 KiB, 5 s) and writes one response with
``Connection: close``. The request line is all it needs to parse, which is a few lines; a
client speaking HTTP/1.1 (curl, ``http.client``) is answered in HTTP/1.0 and copes. The
endpoint never changes anything and is refused on any non-loopback address: it shows the
member list and metadata, which is cluster-internal.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.parse
from functools import partial
from typing import Any, NamedTuple

import trio

from ..core.member import Member, Status
from ..net import format_address, parse_address
from ..node import Node
from ._format import member_record, state_record
from .errors import StatusError

__all__ = [
    "MAX_STATUS_BODY",
    "check_loopback",
    "fetch_members",
    "fetch_status",
    "serve_status",
    "status_record",
]

#: Largest status answer the CLI reads (a 20,000-member table is about 3 MB).
MAX_STATUS_BODY = 32 * 1024 * 1024

#: Largest request head read; beyond it the request is refused with 400.
MAX_REQUEST_HEAD = 8192
#: Seconds a client has to send its request head.
REQUEST_TIMEOUT = 5.0

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_ENDPOINTS = ("/members", "/metrics", "/metrics.json")
#: The content type of the Prometheus text exposition format.
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def check_loopback(address: str) -> tuple[str, int]:
    """Parse ``address`` and require a loopback host (127.0.0.0/8, ::1 or localhost).

    Raises:
        ValueError: not a "host:port" address, or not a loopback one.
    """
    host, port = parse_address(address)
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"the status endpoint serves loopback only (127.0.0.1, ::1, localhost), "
                f"not {host!r}"
            )
    return host, port


async def serve_status(
    node: Node,
    address: str,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the status endpoint for ``node`` at the loopback ``address`` until cancelled.

    ``await nursery.start(serve_status, node, "127.0.0.1:0")`` returns the bound
    "host:port" once it accepts connections.

    Raises:
        ValueError: ``address`` is not a loopback address.
        OSError: it cannot be bound.
    """
    host, port = check_loopback(address)
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()
    task_status.started(format_address(str(bound[0]), int(bound[1])))
    await trio.serve_listeners(partial(_handle, node), listeners)


async def _handle(node: Node, stream: trio.SocketStream) -> None:
    async with stream:
        try:
            with trio.move_on_after(REQUEST_TIMEOUT):
                head = await _read_head(stream)
                code, body = _route(node, head)
                await stream.send_all(_response(code, body))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away


async def _read_head(stream: trio.SocketStream) -> bytes | None:
    """The request head, or None if it is too large or the client closed too early."""
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data:
        if len(data) > MAX_REQUEST_HEAD:
            return None
        chunk = await stream.receive_some(4096)
        if not chunk:
            return data if data.endswith(b"\n") else None
        data += chunk
    return data


def _route(node: Node, head: bytes | None) -> tuple[int, Any]:
    if head is None:
        return 400, {"error": "request head missing or over 8 KiB"}
    parts = head.split(b"\n", 1)[0].decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return 400, {"error": "expected a request line like 'GET /members HTTP/1.0'"}
    method, target = parts[0], parts[1]
    path, _, query = target.partition("?")
    if path not in ("/", *_ENDPOINTS):
        return 404, {"error": f"no such endpoint {path!r}", "endpoints": list(_ENDPOINTS)}
    if method != "GET":
        return 405, {"error": "read-only endpoint: only GET is served"}
    if path == "/members":
        try:
            statuses, tags = parse_member_query(query)
        except ValueError as exc:
            return 400, {"error": str(exc)}
        members = node.members(status=statuses, tags=tags)
        return 200, [status_record(node, member) for member in members]
    if path == "/metrics":
        return 200, _Text(node.metrics_text(), PROMETHEUS_CONTENT_TYPE)
    if path == "/metrics.json":
        return 200, node.metrics()
    return 200, {"node": node.name, "address": node.address, "endpoints": list(_ENDPOINTS)}


def status_record(node: Node, member: Member) -> dict[str, Any]:
    """One row of ``/members``: ``member_record`` plus the member's ``state`` as held by
    ``node``."""
    return {**member_record(member), "state": state_record(node.state(member.name))}


def parse_member_query(query: str) -> tuple[set[Status] | None, dict[str, str]]:
    """The filters of ``/members?status=alive&tag=role:db`` (both repeatable: a member
    matches one of the statuses and every tag).

    Raises:
        ValueError: an unknown status, a tag without ``:``, or another parameter.
    """
    statuses: set[Status] | None = None
    tags: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if name == "status":
            try:
                status = Status[value.upper()]
            except KeyError:
                known = ", ".join(s.name.lower() for s in Status)
                raise ValueError(f"unknown status {value!r} (one of {known})") from None
            statuses = (statuses or set()) | {status}
        elif name == "tag":
            key, found, tag_value = value.partition(":")
            if not found or not key:
                raise ValueError(f"expected tag=KEY:VALUE, got tag={value!r}")
            tags[key] = tag_value
        else:
            raise ValueError(f"unknown parameter {name!r} (status, tag)")
    return statuses, tags


class _Text(NamedTuple):
    """A response body that is not JSON."""

    text: str
    content_type: str


def _response(code: int, body: Any) -> bytes:
    if isinstance(body, _Text):
        payload, content_type = body.text.encode("utf-8"), body.content_type
    else:
        payload, content_type = (json.dumps(body) + "\n").encode("utf-8"), "application/json"
    head = (
        f"HTTP/1.0 {code} {_REASONS[code]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + payload


def fetch_status(address: str, path: str, *, timeout: float = 5.0) -> Any:
    """GET ``path`` from the status endpoint at ``address`` and return the parsed JSON.

    Raises:
        StatusError: unreachable, an error status, or a body that is not JSON.
    """
    import http.client  # here, not at the top: an agent never needs it (about 0.6 MB RSS)

    try:
        host, port = parse_address(address)
    except ValueError as exc:
        raise StatusError(str(exc)) from None
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read(MAX_STATUS_BODY + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise StatusError(f"cannot reach the status endpoint at {address}: {exc}") from None
    finally:
        connection.close()
    if response.status != 200:
        raise StatusError(f"{address}{path} answered {response.status} {response.reason}")
    if len(body) > MAX_STATUS_BODY:
        raise StatusError(f"{address}{path} answered more than {MAX_STATUS_BODY} bytes")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise StatusError(f"{address}{path} did not answer JSON") from None


def fetch_members(
    address: str, path: str = "/members", *, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """GET ``path`` (``/members``, with filters if any: ``/members?status=alive``) and
    check its shape: a list of member records, each with a string ``name``, ``address``
    and ``status`` and (if present) a JSON object ``meta``.

    Raises:
        StatusError: as ``fetch_status``, or the answer is not a list of members.
    """
    records = fetch_status(address, path, timeout=timeout)
    if not isinstance(records, list) or not all(_is_member_record(r) for r in records):
        raise StatusError(f"{address}{path} did not answer a list of members")
    return records


def _is_member_record(record: object) -> bool:
    return (
        isinstance(record, dict)
        and all(isinstance(record.get(key), str) for key in ("name", "address", "status"))
        and isinstance(record.get("meta", {}), dict)
        and isinstance(record.get("state", {}), dict)
    )
