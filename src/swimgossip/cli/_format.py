"""How the command line shows members: one JSON shape, one aligned table, one meta encoding.

The agent's event lines, the status endpoint's ``/members`` and ``swimgossip members`` all
describe a member with ``member_record``, so a script sees the same keys everywhere. The
agent's ``--meta KEY=VALUE`` pairs become the node's metadata as a compact JSON object
(``encode_meta``); ``decode_meta`` turns metadata back into JSON when it parses, and into
text otherwise (metadata set by another program need not be JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core.member import Member

__all__ = [
    "decode_meta",
    "encode_meta",
    "format_columns",
    "format_meta",
    "format_table",
    "member_record",
    "parse_meta_pair",
    "state_record",
]


def parse_meta_pair(text: str) -> tuple[str, str]:
    """Split ``"KEY=VALUE"``; the key must not be empty.

    Raises:
        ValueError: no ``=`` or an empty key.
    """
    key, found, value = text.partition("=")
    if not found or not key:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def encode_meta(pairs: Iterable[tuple[str, str]]) -> bytes:
    """The metadata bytes for ``pairs``: a compact JSON object, keys in the given order
    (a repeated key keeps its last value). No pairs gives empty metadata."""
    values = dict(pairs)
    if not values:
        return b""
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_meta(meta: bytes) -> Any:
    """Metadata as a JSON value: ``{}`` when empty, the parsed value when it is JSON,
    else the text (undecodable bytes escaped)."""
    if not meta:
        return {}
    text = meta.decode("utf-8", "backslashreplace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def format_meta(meta: Any) -> str:
    """One-cell text for a decoded metadata value: ``k=v,k=v`` for objects, like serf tags."""
    if isinstance(meta, Mapping):
        return ",".join(f"{key}={_plain(value)}" for key, value in meta.items())
    return _plain(meta)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def member_record(member: Member) -> dict[str, Any]:
    """A member as plain JSON values: name, address, status, incarnation, meta."""
    return {
        "name": member.name,
        "address": member.address,
        "status": member.status.name.lower(),
        "incarnation": member.incarnation,
        "meta": decode_meta(member.meta),
    }


def state_record(values: Mapping[str, bytes]) -> dict[str, str]:
    """A member's state (``Node.state``) as JSON: each value as UTF-8 text (undecodable
    bytes escaped, like ``decode_meta``)."""
    return {key: value.decode("utf-8", "backslashreplace") for key, value in values.items()}


_TABLE_COLUMNS = ("name", "address", "status", "incarnation", "meta")


def format_columns(rows: Sequence[Sequence[str]]) -> str:
    """Rows of cells as left-aligned columns two spaces apart (the last one unpadded)."""
    if not rows:
        return ""
    count = max(len(row) for row in rows)
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(count - 1)]
    lines = []
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)


def format_table(records: Sequence[Mapping[str, Any]]) -> str:
    """``member_record`` values as aligned columns (like ``serf members``), with a header;
    a last ``State`` column (``k=v,k=v``) when a record holds member state."""
    with_state = any(record.get("state") for record in records)
    rows = [[column.capitalize() for column in _TABLE_COLUMNS] + (["State"] * with_state)]
    for record in records:
        cells = [str(record.get(column, "")) for column in _TABLE_COLUMNS[:-1]]
        cells.append(format_meta(record.get("meta", {})))
        if with_state:
            cells.append(format_meta(record.get("state", {})))
        rows.append(cells)
    return format_columns(rows)
