"""Tests for the stream frame length check (swimgossip.net._framing)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimgossip.core.codec import MAX_STREAM_SIZE
from swimgossip.core.errors import MessageTooLarge, RemoteError
from swimgossip.net import (
    MAX_FRAME_SIZE,
    FrameTooLarge,
    MalformedFramePrefix,
    frame_length,
    frame_prefix,
)
from swimgossip.security import Keyring, PacketSigner, SecurityMode


def test_frame_length_within_limit() -> None:
    assert frame_length(b"\x00\x00\x00\x27") == 39
    assert frame_length(struct.pack(">I", 1000), max_size=1000) == 1000
    assert frame_length(b"\x00\x00\x00\x00") == 0


def test_frame_too_large() -> None:
    with pytest.raises(FrameTooLarge) as info:
        frame_length(struct.pack(">I", 1001), max_size=1000)
    assert (info.value.size, info.value.limit) == (1001, 1000)
    assert isinstance(info.value, RemoteError)
    with pytest.raises(FrameTooLarge):
        frame_length(b"\xff\xff\xff\xff")  # 4 GiB announced: refused before any read


@pytest.mark.parametrize("prefix", [b"", b"\x00", b"\x00\x00\x00", b"\x00\x00\x00\x00\x00"])
def test_malformed_prefix(prefix: bytes) -> None:
    with pytest.raises(MalformedFramePrefix):
        frame_length(prefix)


def test_frame_prefix() -> None:
    assert frame_prefix(39) == b"\x00\x00\x00\x27"
    with pytest.raises(MessageTooLarge):
        frame_prefix(1001, max_size=1000)
    with pytest.raises(ValueError):
        frame_prefix(-1)


def test_largest_sent_frame_fits_the_default_limit() -> None:
    sender = PacketSigner(Keyring([bytes(32)]), SecurityMode.SEALED, label=b"x" * 255)
    assert MAX_STREAM_SIZE + sender.overhead == MAX_FRAME_SIZE
    assert frame_length(frame_prefix(MAX_FRAME_SIZE)) == MAX_FRAME_SIZE


@given(prefix=st.binary(max_size=6), limit=st.integers(0, 2**33))
def test_only_typed_errors(prefix: bytes, limit: int) -> None:
    try:
        size = frame_length(prefix, max_size=limit)
    except (FrameTooLarge, MalformedFramePrefix):
        return
    assert 0 <= size <= limit and len(prefix) == 4
