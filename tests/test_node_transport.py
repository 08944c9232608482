"""Address spelling and stream frames of the runtime transport."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from swimgossip.net import FrameError, format_address, parse_address, read_frame, write_frame


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:7946", ("127.0.0.1", 7946)),
        ("[::1]:0", ("::1", 0)),
        ("[fe80::1%eth0]:80", ("fe80::1%eth0", 80)),
        ("seed.example:7946", ("seed.example", 7946)),
    ],
)
def test_parse_and_format_round_trip(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected
    assert format_address(*expected) == text


@pytest.mark.parametrize("text", ["", "host", "::1:80", "[::1]80", ":80", "h:99999", "h:x"])
def test_parse_rejects_bad_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)


async def test_frames_round_trip_and_are_bounded() -> None:
    left, right = trio.testing.memory_stream_pair()
    await write_frame(left, b"hello")
    assert await read_frame(right) == b"hello"
    await write_frame(left, b"x" * 100)
    with pytest.raises(FrameError):
        await read_frame(right, max_frame=99)
    await left.send_all(b"\x00\x00\x00\x05ab")
    await left.aclose()
    with pytest.raises(FrameError):
        await read_frame(right)
