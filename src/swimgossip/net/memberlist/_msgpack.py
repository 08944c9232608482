"""A small msgpack reader and writer matching go-msgpack's ``MsgpackHandle{}`` defaults.

memberlist encodes with ``codec.MsgpackHandle{}`` (``WriteExt`` false): strings and byte
slices are both written as the old "raw" family (fixstr, str16, str32; never str8 nor
bin), structs as maps keyed by field name in declaration order, unsigned Go integers with
the smallest unsigned form, signed ones (``int``) with the smallest *signed* form. The
reader accepts every standard form (str8, bin8/16/32, all integer widths) because other
msgpack writers may use them. Decoding is bounded: lengths are checked against the bytes
left before anything is allocated, and nesting is limited.
"""

from __future__ import annotations

import struct
from typing import Union

from .errors import MsgpackError, Truncated

__all__ = [
    "MAX_DEPTH",
    "Value",
    "pack_array",
    "pack_bytes",
    "pack_int",
    "pack_map",
    "pack_uint",
    "unpack",
]

#: Deepest nesting of arrays and maps the reader accepts (memberlist uses depth 1).
MAX_DEPTH = 8

Value = Union[None, bool, int, float, bytes, list["Value"], dict[bytes, "Value"]]  # noqa: UP007


def pack_uint(value: int) -> bytes:
    """A Go unsigned integer (uint8..uint64), smallest unsigned form."""
    if value < 0 or value > 0xFFFFFFFFFFFFFFFF:
        raise ValueError(f"unsigned integer out of range: {value}")
    if value <= 0x7F:
        return bytes((value,))
    if value <= 0xFF:
        return b"\xcc" + bytes((value,))
    if value <= 0xFFFF:
        return b"\xcd" + struct.pack(">H", value)
    if value <= 0xFFFFFFFF:
        return b"\xce" + struct.pack(">I", value)
    return b"\xcf" + struct.pack(">Q", value)


def pack_int(value: int) -> bytes:
    """A Go signed integer (``int``), smallest signed form as go-msgpack writes it."""
    if value > 0x7F:
        if value <= 0x7FFF:
            return b"\xd1" + struct.pack(">h", value)
        if value <= 0x7FFFFFFF:
            return b"\xd2" + struct.pack(">i", value)
        return b"\xd3" + struct.pack(">q", value)
    if value >= -32:
        return struct.pack(">b", value)
    if value >= -0x80:
        return b"\xd0" + struct.pack(">b", value)
    if value >= -0x8000:
        return b"\xd1" + struct.pack(">h", value)
    if value >= -0x80000000:
        return b"\xd2" + struct.pack(">i", value)
    return b"\xd3" + struct.pack(">q", value)


def pack_bytes(value: bytes | None) -> bytes:
    """A Go string or ``[]byte`` in the raw family; ``None`` (a nil slice) is msgpack nil."""
    if value is None:
        return b"\xc0"
    n = len(value)
    if n <= 31:
        return bytes((0xA0 | n,)) + value
    if n <= 0xFFFF:
        return b"\xda" + struct.pack(">H", n) + value
    return b"\xdb" + struct.pack(">I", n) + value


def pack_bool(value: bool) -> bytes:
    """A Go bool."""
    return b"\xc3" if value else b"\xc2"


def _head(n: int, fix: int, head16: bytes, head32: bytes) -> bytes:
    if n < 16:
        return bytes((fix | n,))
    if n <= 0xFFFF:
        return head16 + struct.pack(">H", n)
    return head32 + struct.pack(">I", n)


def pack_map(fields: list[tuple[str, bytes]]) -> bytes:
    """A Go struct (or ``map[string]T``): a map of field name to already-packed value, in
    the given order."""
    head = _head(len(fields), 0x80, b"\xde", b"\xdf")
    return head + b"".join(pack_bytes(name.encode()) + packed for name, packed in fields)


def pack_array(items: list[bytes]) -> bytes:
    """A Go slice of already-packed values."""
    return _head(len(items), 0x90, b"\xdc", b"\xdd") + b"".join(items)


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise Truncated(f"msgpack truncated: need {n} bytes at offset {self.pos}")
        out = self.buf[self.pos : end]
        self.pos = end
        return out

    def length(self, fmt: str, size: int) -> int:
        value: int = struct.unpack(fmt, self.take(size))[0]
        return value

    def container(self, n: int) -> int:
        # every element takes at least one byte: refuse a count the bytes cannot hold
        if n > len(self.buf) - self.pos:
            raise Truncated(f"msgpack container of {n} items is longer than the input")
        return n

    def value(self, depth: int) -> Value:
        b = self.take(1)[0]
        if b <= 0x7F:
            return b
        if b >= 0xE0:
            return b - 0x100
        if 0xA0 <= b <= 0xBF:
            return self.take(b & 0x1F)
        if 0x90 <= b <= 0x9F:
            return self.array(b & 0x0F, depth)
        if 0x80 <= b <= 0x8F:
            return self.map(b & 0x0F, depth)
        if b == 0xC0:
            return None
        if b == 0xC2:
            return False
        if b == 0xC3:
            return True
        simple = _SIMPLE.get(b)
        if simple is not None:
            fmt, size = simple
            out: int | float = struct.unpack(fmt, self.take(size))[0]
            return out
        if b in (0xC4, 0xD9):
            return self.take(self.length(">B", 1))
        if b in (0xC5, 0xDA):
            return self.take(self.length(">H", 2))
        if b in (0xC6, 0xDB):
            return self.take(self.length(">I", 4))
        if b == 0xDC:
            return self.array(self.length(">H", 2), depth)
        if b == 0xDD:
            return self.array(self.length(">I", 4), depth)
        if b == 0xDE:
            return self.map(self.length(">H", 2), depth)
        if b == 0xDF:
            return self.map(self.length(">I", 4), depth)
        raise MsgpackError(f"unsupported msgpack type byte 0x{b:02x}")

    def array(self, n: int, depth: int) -> list[Value]:
        if depth >= MAX_DEPTH:
            raise MsgpackError("msgpack nested too deeply")
        return [self.value(depth + 1) for _ in range(self.container(n))]

    def map(self, n: int, depth: int) -> dict[bytes, Value]:
        if depth >= MAX_DEPTH:
            raise MsgpackError("msgpack nested too deeply")
        out: dict[bytes, Value] = {}
        for _ in range(self.container(n)):
            key = self.value(depth + 1)
            if not isinstance(key, bytes):
                raise MsgpackError("msgpack map key is not a string")
            out[key] = self.value(depth + 1)
        return out


_SIMPLE: dict[int, tuple[str, int]] = {
    0xCA: (">f", 4),
    0xCB: (">d", 8),
    0xCC: (">B", 1),
    0xCD: (">H", 2),
    0xCE: (">I", 4),
    0xCF: (">Q", 8),
    0xD0: (">b", 1),
    0xD1: (">h", 2),
    0xD2: (">i", 4),
    0xD3: (">q", 8),
}


def unpack(buf: bytes, pos: int = 0) -> tuple[Value, int]:
    """Read one msgpack value from ``buf`` at ``pos``; return it and the offset after it.

    Raises ``MsgpackError`` for anything truncated, unsupported (ext types) or too deep.
    """
    reader = _Reader(buf, pos)
    return reader.value(0), reader.pos
