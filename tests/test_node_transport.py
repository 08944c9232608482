"""Address spelling, stream frames and datagrams of the runtime transport."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from swimgossip.net import (
    FrameError,
    format_address,
    open_udp_transport,
    parse_address,
    read_frame,
    write_frame,
)


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


async def test_datagrams_go_out_without_a_scheduler_round_and_arrive_in_order() -> None:
    # Loopback only. A send with room in the socket buffer does not yield (one wake-up
    # fewer per datagram, issue 16); datagrams already waiting are read in order, and one
    # sent while the reader waits wakes it.
    with trio.fail_after(10):
        async with (
            open_udp_transport("127.0.0.1:0") as left,
            open_udp_transport("127.0.0.1:0") as right,
        ):
            with trio.testing.assert_no_checkpoints():
                for index in range(3):
                    await left.send_datagram(right.address, b"early %d" % index)
            received = [await right.receive_datagram() for _ in range(3)]
            assert received == [(b"early %d" % i, left.address) for i in range(3)]
            async with trio.open_nursery() as nursery:
                late: list[tuple[bytes, str]] = []

                async def read_one() -> None:
                    late.append(await right.receive_datagram())

                nursery.start_soon(read_one)
                await trio.testing.wait_all_tasks_blocked()
                await right.send_datagram(left.address, b"ignored")  # other direction
                await left.send_datagram(right.address, b"late")
            assert late == [(b"late", left.address)]
