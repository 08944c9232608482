"""Tags: string key/value pairs carried in a member's metadata, in one encoding. Pure.

A member's metadata is opaque bytes to the protocol. Tags are one agreed way to fill it:
a compact UTF-8 JSON object whose keys and values are all strings, keys in the order given
(``{"role":"db","zone":"a"}``); no tags is empty metadata. It is the encoding the
``swimgossip agent --tag`` / ``--meta`` pairs have always produced, so agents and library
nodes read each other's tags. Metadata that is not such an object (raw bytes of your own,
another JSON value) simply has no tags: ``decode_tags`` returns an empty mapping and the
bytes stay available as ``Member.meta``. docs/protocol.md ("Tags") describes the format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType

from .errors import ConfigError

__all__ = ["decode_tags", "encode_tags", "matches_tags"]

_EMPTY: Mapping[str, str] = MappingProxyType({})


def encode_tags(tags: Mapping[str, str]) -> bytes:
    """The metadata bytes for ``tags`` (empty for no tags).

    Raises:
        ConfigError: a key is empty or holds ``=``, or a key or value is not a ``str``.
    """
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigError("tags", f"keys and values must be str, got {key!r}: {value!r}")
        if not key or "=" in key:
            raise ConfigError("tags", f"a tag key must be non-empty without '=', got {key!r}")
    if not tags:
        return b""
    return json.dumps(dict(tags), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_tags(meta: bytes) -> Mapping[str, str]:
    """The tags in ``meta``, read-only; empty when ``meta`` is empty or not a JSON object
    of strings (raw metadata has no tags). Never raises."""
    if not meta or meta[:1] != b"{":
        return _EMPTY
    try:
        value = json.loads(meta.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _EMPTY
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return _EMPTY
    return MappingProxyType(value)


def matches_tags(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
    """True when ``have`` holds every key of ``want`` with the same value."""
    return all(have.get(key) == value for key, value in want.items())
