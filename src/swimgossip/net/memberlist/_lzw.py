"""LZW as Go's ``compress/lzw`` does it with ``LSB`` order and literal width 8.

memberlist compresses with ``lzw.NewWriter(w, lzw.LSB, 8)``: codes start 9 bits wide,
256 is the clear code, 257 end of data, the width grows to at most 12 bits and the writer
sends a clear code when it runs out. This module mirrors Go's reader and writer step by
step (including when the width grows), bounded by an output limit.
"""

from __future__ import annotations

from .errors import CompressionError

__all__ = ["compress", "decompress"]

_CLEAR = 256
_EOF = 257
_MAX_WIDTH = 12
_MAX_CODE = (1 << _MAX_WIDTH) - 1


def compress(data: bytes) -> bytes:
    """Compress ``data`` exactly as Go's ``lzw.NewWriter(w, lzw.LSB, 8)`` would."""
    out = bytearray()
    bits = 0
    nbits = 0
    width = 9

    def write(code: int) -> None:
        nonlocal bits, nbits
        bits |= code << nbits
        nbits += width
        while nbits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8

    hi = _EOF
    overflow = 512
    table: dict[int, int] = {}

    def inc_hi() -> bool:
        """Go's incHi: True when the codes ran out (a clear code was sent)."""
        nonlocal hi, overflow, width
        hi += 1
        if hi == overflow:
            width += 1
            overflow <<= 1
        if hi == _MAX_CODE:
            write(_CLEAR)
            width, hi, overflow = 9, _EOF, 512
            table.clear()
            return True
        return False

    write(_CLEAR)
    if data:
        code = data[0]
        for literal in data[1:]:
            key = code << 8 | literal
            found = table.get(key)
            if found is not None:
                code = found
                continue
            write(code)
            code = literal
            if inc_hi():
                continue
            table[key] = hi
        write(code)
        inc_hi()
    write(_EOF)
    if nbits > 0:
        out.append(bits & 0xFF)
    return bytes(out)


def decompress(data: bytes, limit: int) -> bytes:
    """Decompress Go-LZW ``data``; raise ``CompressionError`` if it is malformed or would
    produce more than ``limit`` bytes."""
    prefix = [0] * (1 << _MAX_WIDTH)
    suffix = [0] * (1 << _MAX_WIDTH)
    out = bytearray()
    width = 9
    hi = _EOF
    overflow = 512
    last = -1
    bits = 0
    nbits = 0
    pos = 0
    n = len(data)
    while True:
        while nbits < width:
            if pos >= n:
                raise CompressionError("lzw data ends without an end code")
            bits |= data[pos] << nbits
            pos += 1
            nbits += 8
        code = bits & ((1 << width) - 1)
        bits >>= width
        nbits -= width
        if code < _CLEAR:
            out.append(code)
            if last != -1:
                suffix[hi] = code
                prefix[hi] = last
        elif code == _CLEAR:
            width, hi, overflow, last = 9, _EOF, 512, -1
            continue
        elif code == _EOF:
            return bytes(out)
        elif code <= hi:
            chunk = bytearray()
            c = code
            if code == hi and last != -1:
                # the code being defined right now: its last byte is its own first byte
                c = last
                while c >= _CLEAR:
                    c = prefix[c]
                chunk.append(c)
                c = last
            while c >= _CLEAR:
                chunk.append(suffix[c])
                c = prefix[c]
            chunk.append(c)
            chunk.reverse()
            if last != -1:
                suffix[hi] = c
                prefix[hi] = last
            out += chunk
        else:
            raise CompressionError(f"lzw code {code} is not yet defined")
        if len(out) > limit:
            raise CompressionError(f"decompressed data is over the {limit}-byte limit")
        last, hi = code, hi + 1
        if hi >= overflow:
            if width == _MAX_WIDTH:
                last = -1
                hi -= 1
            else:
                width += 1
                overflow <<= 1
