"""What one node's member table costs: bytes per member, and CPU per push-pull (issue 16).

How this works, for each N (default 1,000 and 10,000 members, LAN preset):

- **Bytes per member** (``tracemalloc``): a node's table as a real node holds it, every
  member its own decoded record. A converged view of N members (10-byte metadata each) is
  encoded as one push-pull frame and decoded (distinct objects, as off the wire); a fresh
  engine installs the decoded members; the frame and the message are dropped. The figure
  is the memory still held, divided by N.
- **One push-pull, both ways, of a converged state**: the CPU seconds of what a node does
  in one exchange with a peer that holds the same table: encode its own state
  (``local_state`` + ``codec.encode_stream``), decode the peer's frame
  (``codec.decode_stream`` given the table, as the engine does: rows equal to what it
  holds decode as the held values) and merge it (``merge_state``: every row is "no
  news"). Also reported: decoding the frame with nothing held (what a joiner pays).
  Best of ``--repeat`` (CPU time, ``time.process_time``).
- **One digest-first push-pull** (``MemberSync``, the periodic exchange since issue 16's
  third pass), both sides through the engines' own entry points (the requester's
  ``PushPullTick``, the replier's ``receive_stream``, the requester's ``stream_reply``, and
  the push and its ack when a bucket differs): converged, and with one row the peer lacks.
  The full exchange is timed the same way (both sides, engine entry points) beside it,
  with the bytes each moves.
- **Members one node can follow at 1 % of a core**: a node starts one push-pull every
  ``push_pull_interval(30 s, N)`` and answers one on average, so it pays about two
  exchanges per interval; the cost grows linearly with N while the interval grows with
  log2 N. Solved for 1 % from the measured cost per member (probes and gossip, about
  0.1 CPU s per minute, 0.17 % of a core, are left out and said so).

    python benchmarks/bench_table.py [--nodes 1000,10000] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import time
import tracemalloc
from typing import Any

from swimgossip.core import codec
from swimgossip.core._sync import push_pull_interval
from swimgossip.core.config import Config
from swimgossip.core.engine import Engine
from swimgossip.core.member import Member, Status
from swimgossip.core.messages import Alive
from swimgossip.core.outputs import StreamPurpose, StreamReply, StreamRequest
from swimgossip.core.timers import PushPullTick


def _engine(name: str, config: Config) -> Engine:
    return Engine(name=name, address=f"10.0.{name[1:]}:7946", config=config, rng=random.Random(1))


def _view(n: int) -> dict[str, Member]:
    return {
        f"n{i}": Member(
            name=f"n{i}",
            address=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}:7946",
            status=Status.ALIVE,
            incarnation=i % 7,
            meta=b"role=cache",
        )
        for i in range(n)
    }


def table_bytes(n: int, config: Config) -> float:
    source = _engine("n0", config)
    source.install_view(_view(n), [f"n{i}" for i in range(1, n)])
    frame = codec.encode_stream(source.local_state())
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    node = _engine("n1", config)
    decoded = codec.decode_stream(frame)
    members = {m.name: m for m in decoded.members}  # type: ignore[attr-defined]
    node.install_view(members, [name for name in members if name != "n1"])
    del decoded, members
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(node.members()) == n
    return held / n


def push_pull_cpu(n: int, config: Config, repeat: int) -> dict[str, float]:
    view = _view(n)
    order = list(view)
    ours, theirs = _engine("n0", config), _engine("n1", config)
    ours.install_view(view, [x for x in order if x != "n0"])
    theirs.install_view(dict(view), [x for x in order if x != "n1"])
    frame = codec.encode_stream(theirs.local_state())
    held = ours._membership.table.by_name  # what the engine hands the decoder
    best = {key: float("inf") for key in ("encode", "decode", "merge", "decode_cold")}
    for _ in range(repeat):
        t0 = time.process_time()
        codec.encode_stream(ours.local_state())
        t1 = time.process_time()
        state = codec.decode_stream(frame, held)
        t2 = time.process_time()
        ours._membership.merge_state(state, 100.0)  # type: ignore[arg-type]
        t3 = time.process_time()
        codec.decode_stream(frame)  # a node that holds none of the rows (a joiner)
        t4 = time.process_time()
        for key, spent in (
            ("encode", t1 - t0),
            ("decode", t2 - t1),
            ("merge", t3 - t2),
            ("decode_cold", t4 - t3),
        ):
            best[key] = min(best[key], spent)
    best["total"] = best["encode"] + best["decode"] + best["merge"]
    best["frame_bytes"] = len(frame)
    return best


def _stream_requests(outputs: list[Any]) -> list[StreamRequest]:
    return [o for o in outputs if type(o) is StreamRequest and o.purpose is StreamPurpose.PUSH_PULL]


def _reply(outputs: list[Any]) -> bytes:
    (reply,) = [o for o in outputs if type(o) is StreamReply]
    return reply.payload


def exchange_cpu(n: int, config: Config, repeat: int) -> dict[str, float]:
    """Both sides of one push-pull through the engines: full, digest converged, digest
    with one row the peer lacks (CPU s, best of ``repeat``; bytes moved)."""
    view = _view(n)
    order = list(view)
    ours, theirs = _engine("n0", config), _engine("n1", config)
    ours.install_view(view, [x for x in order if x != "n0"])
    theirs.install_view(dict(view), [x for x in order if x != "n1"])
    best = {key: float("inf") for key in ("full", "digest", "digest_one_row")}
    moved = {key: 0 for key in best}
    now = 100.0
    for r in range(repeat):
        now += 1.0
        # Full: our state to the peer (it merges, answers with its own), we merge it.
        t0 = time.process_time()
        request = codec.encode_stream(ours.local_state())
        reply = _reply(theirs.receive_stream(request, ours.address, 1, now))
        ours.receive_stream(reply, theirs.address, 2, now)  # merges the same way
        t1 = time.process_time()
        moved["full"] = len(request) + len(reply)
        # Digest, converged: the request and the reply carry the digests alone.
        (ask,) = _stream_requests(ours.handle_timer(PushPullTick(), now))
        answer = _reply(theirs.receive_stream(ask.payload, ours.address, 3, now))
        assert _stream_requests(ours.stream_reply(ask.token, answer, now)) == []
        t2 = time.process_time()
        moved["digest"] = len(ask.payload) + len(answer)
        # Digest with one row the peer lacks: its bucket travels both ways, then a push.
        name = f"x{r}"
        alive = Alive(name=name, address=f"11.0.0.{r}:7946", incarnation=0, meta=b"")
        ours.receive_message(alive, "", now)
        t3 = time.process_time()
        (ask,) = _stream_requests(ours.handle_timer(PushPullTick(), now))
        answer = _reply(theirs.receive_stream(ask.payload, ours.address, 4, now))
        (push,) = _stream_requests(ours.stream_reply(ask.token, answer, now))
        ack = _reply(theirs.receive_stream(push.payload, ours.address, 5, now))
        ours.stream_reply(push.token, ack, now)
        t4 = time.process_time()
        assert theirs.member(name) is not None
        moved["digest_one_row"] = len(ask.payload) + len(answer) + len(push.payload) + len(ack)
        for key, spent in (("full", t1 - t0), ("digest", t2 - t1), ("digest_one_row", t4 - t3)):
            best[key] = min(best[key], spent)
    return {
        **{f"{key}_cpu": value for key, value in best.items()},
        **{f"{key}_bytes": value for key, value in moved.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="1000,10000")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    repeat = 3 if args.quick else max(1, min(args.repeat, 50))
    config = Config.lan()
    sizes = [int(x) for x in args.nodes.split(",")]
    print(f"member table cost, LAN preset; load average {os.getloadavg()[0]:.2f} (1 min)")
    results: list[dict[str, Any]] = []
    for n in sizes:
        per_member = table_bytes(n, config)
        cost = push_pull_cpu(n, config, repeat)
        interval = push_pull_interval(config.push_pull_interval, n)
        share = 2 * cost["total"] / interval
        both = exchange_cpu(n, config, repeat)
        row = {"nodes": n, "bytes_per_member": round(per_member), **cost, **both}
        row.update(interval_s=interval, core_share=share)
        results.append(row)
        print(
            f"N={n:>6}: {per_member:,.0f} B per member ({per_member * n / 1e6:.1f} MB table); "
            f"push-pull frame {cost['frame_bytes'] / 1e3:,.0f} kB; one exchange CPU "
            f"{cost['total'] * 1e3:.1f} ms (encode {cost['encode'] * 1e3:.1f}, decode "
            f"{cost['decode'] * 1e3:.1f}, merge {cost['merge'] * 1e3:.1f}; decoding rows "
            f"not held: {cost['decode_cold'] * 1e3:.1f}); every "
            f"{interval:g} s, 2 per interval = {share * 100:.3f} % of a core"
        )
        print(
            f"N={n:>6}: one exchange, both sides: full {both['full_cpu'] * 1e3:.2f} ms "
            f"({both['full_bytes'] / 1e3:,.1f} kB); digest converged "
            f"{both['digest_cpu'] * 1e3:.2f} ms ({both['digest_bytes'] / 1e3:,.2f} kB); digest "
            f"with one row missing {both['digest_one_row_cpu'] * 1e3:.2f} ms "
            f"({both['digest_one_row_bytes'] / 1e3:,.2f} kB)"
        )
    # Members at 1 % of a core: cost per member c (from the largest N), 2 c N / interval(N).
    largest = results[-1]
    per_member_s = largest["total"] / largest["nodes"]
    n = 32
    while (
        n < 10_000_000
        and 2 * per_member_s * n * 2 / push_pull_interval(config.push_pull_interval, n * 2) <= 0.01
    ):
        n *= 2
    lo, hi = n, n * 2
    while hi - lo > 100:
        mid = (lo + hi) // 2
        interval = push_pull_interval(config.push_pull_interval, mid)
        lo, hi = (mid, hi) if 2 * per_member_s * mid / interval <= 0.01 else (lo, mid)
    print(
        f"one node follows about {lo:,} members at 1 % of a core in push-pull alone "
        f"({per_member_s * 1e6:.2f} us CPU per member per exchange; probes and gossip, about "
        f"0.17 % of a core, not included); load average {os.getloadavg()[0]:.2f}"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"sizes": results, "members_at_1pct": lo}, out, indent=2)


if __name__ == "__main__":
    main()
