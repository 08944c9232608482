"""``swimgossip agent``: run one node, print every membership event as a JSON line.

How this works. ``run_agent`` opens the node (``open_node``), then in one nursery: listens
for SIGTERM / SIGINT, re-reads ``--meta-file`` (announcing changed metadata) and reloads
``--key-file`` on SIGHUP (``Node.reload_keys``: the new key
ids are logged; a bad file logs an error and the old keys stay), serves the optional status
endpoint (before it logs that it is running, so a port in use is the first thing said),
joins the seeds under ``trio.fail_after``, and only then prints events from
``node.subscribe(snapshot=True)`` (so the first lines are ``joined`` for the node itself
and every member it knows; a failed join prints no event line at all). A
signal makes the node leave gracefully and the command exit 0. A failed join exits 1
without leaving (there is no cluster to tell). Problems found before the node runs (a
bad key file, metadata too large) are ``AgentError`` with status 2, like argument errors.

Event lines are ``{"ts", "event", "member", "address", "incarnation", "status", "meta"}``
plus ``by`` and ``confirmations`` for ``suspected`` / ``failed``; member state changes
(``node.subscribe(state=True)``, in the same order) are ``{"ts", "event": "state",
"member", "key", "value", "version"}`` (``value`` null: deleted). ``--state KEY=VALUE``
pairs are this node's own state, set before it joins. With ``--wire serf``, Serf's user
events and queries are lines too: ``{"ts", "event": "user_event", "name", "payload",
"ltime", "coalesce"}`` and ``{"ts", "event": "query", "name", "payload", "ltime",
"from"}`` (``payload`` as text when it is UTF-8, else ``payload_base64``). If the printer
falls behind the node, it prints ``{"ts", "event": "events_lost", "count"}`` followed by a
fresh ``joined`` line per live member (see ``swimgossip.node``). Logs go to stderr.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..core.config import PRESETS
from ..core.errors import ConfigError, MetadataTooLarge, StateLimitExceeded
from ..core.events import (
    MemberConflict,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberRecovered,
    MemberSuspected,
    MemberUpdated,
    StateChanged,
)
from ..node import EventsLost, FullEvent, JoinError, Node, open_node
from ..security import Keyring, KeyringError, SecurityMode
from ._format import encode_meta, member_record, parse_meta_pair, state_record
from ._status import serve_status
from .errors import AgentError

if TYPE_CHECKING:  # memberlist's and Serf's layers load with --wire memberlist / serf only
    from ..net.memberlist import MemberlistKeyring
    from ..net.serf import QueryReceived, UserEventReceived
    from ..node import SerfEventStream

__all__ = ["PRESETS", "event_record", "run_agent", "serf_record"]

logger = logging.getLogger("swimgossip.agent")


_EVENT_NAMES: dict[type[Any], str] = {
    MemberJoined: "joined",
    MemberUpdated: "updated",
    MemberSuspected: "suspected",
    MemberFailed: "failed",
    MemberLeft: "left",
    MemberRecovered: "recovered",
    MemberConflict: "conflict",
}


def event_record(event: FullEvent, ts: float) -> dict[str, Any]:
    """One event as the JSON object of an agent's output line."""
    if isinstance(event, EventsLost):
        return {"ts": ts, "event": "events_lost", "count": event.count}
    if isinstance(event, StateChanged):
        value = None if event.value is None else state_record({"": event.value})[""]
        return {
            "ts": ts,
            "event": "state",
            "member": event.member,
            "key": event.key,
            "value": value,
            "version": event.version,
        }
    member = member_record(event.member)
    record: dict[str, Any] = {
        "ts": ts,
        "event": _EVENT_NAMES[type(event)],
        "member": member.pop("name"),
        **member,
    }
    if isinstance(event, MemberSuspected | MemberFailed):
        record["by"] = event.by
    if isinstance(event, MemberFailed):
        record["confirmations"] = event.confirmations
    if isinstance(event, MemberJoined) and event.restarted:
        record["restarted"] = True  # a new process under this name (new boot id)
    if isinstance(event, MemberConflict):
        record["claimed_from"] = event.address
    return record


def agent_meta(args: argparse.Namespace, limit: int) -> bytes:
    """The agent's metadata: ``--meta-file`` pairs, then ``--meta`` pairs over them.

    Raises:
        ValueError: the file cannot be read or parsed, or the result is over ``limit``.
    """
    pairs: list[tuple[str, str]] = []
    path = getattr(args, "meta_file", None)
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--meta-file: cannot read {path}: {exc}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if line and not line.startswith("#"):
                try:
                    pairs.append(parse_meta_pair(line))
                except ValueError as exc:
                    raise ValueError(f"--meta-file: {path}: line {number}: {exc}") from None
    meta = encode_meta([*pairs, *args.meta])
    if len(meta) > limit:
        raise ValueError(f"metadata is {len(meta)} bytes as JSON, over the {limit}-byte limit")
    return meta


def _node_options(args: argparse.Namespace) -> dict[str, Any]:
    """``open_node`` keyword arguments from the parsed flags.

    Raises:
        AgentError: (status 2) unreadable or invalid key file, metadata too large.
    """
    config = PRESETS[args.preset]()
    try:
        meta = agent_meta(args, config.meta_max_size)
    except ValueError as exc:
        raise AgentError(str(exc), 2) from None
    options: dict[str, Any] = {
        "bind": args.bind,
        "advertise": args.advertise,
        "config": config,
        "meta": meta,
    }
    wire = getattr(args, "wire", "own")
    if wire != "own":
        return _memberlist_options(args, options, wire)
    if args.key_file is not None:
        try:
            options["keyring"] = Keyring.from_file(args.key_file)
        except OSError as exc:
            raise AgentError(
                f"--key-file: cannot read {args.key_file}: {exc.strerror}", 2
            ) from None
        except KeyringError as exc:
            raise AgentError(f"--key-file: {args.key_file}: {exc}", 2) from None
    security = getattr(args, "security", None)
    if security is not None:
        mode = SecurityMode(security)
        if mode is not SecurityMode.OFF and args.key_file is None:
            raise AgentError(f"--security {security} needs --key-file", 2)
        options["security"] = mode
    if args.label:
        options["label"] = args.label
    return options


def _memberlist_options(
    args: argparse.Namespace, options: dict[str, Any], wire: str
) -> dict[str, Any]:
    """``--wire memberlist`` / ``serf``: memberlist's keys (Serf's base64) and label, no
    signing."""
    if getattr(args, "security", None) is not None:
        raise AgentError(
            f"--security does not apply to --wire {wire} (it encrypts "
            "with the --key-file keys or not at all)",
            2,
        )
    options["wire"] = wire
    if args.key_file is not None:
        options["memberlist_keyring"] = _memberlist_keyring(args.key_file)
    if args.label:
        options["label"] = args.label
    return options


def _memberlist_keyring(path: str) -> MemberlistKeyring:
    """memberlist's keyring from ``path``: Serf's base64 keys, one per line (primary
    first), or Serf's keyring file (a JSON list of them).

    Raises:
        AgentError: (status 2) unreadable file, or no valid key in it.
    """
    from ..net.memberlist import MemberlistKeyring, parse_serf_key

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentError(f"--key-file: cannot read {path}: {exc}", 2) from None
    stripped = text.strip()
    try:
        entries = json.loads(stripped) if stripped.startswith("[") else stripped.split()
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise ValueError("a JSON keyring file is a list of base64 keys")
        keys = [parse_serf_key(entry) for entry in entries]
        return MemberlistKeyring(keys)
    except ValueError as exc:
        raise AgentError(f"--key-file: {path}: {exc}", 2) from None


def serf_record(event: UserEventReceived | QueryReceived, ts: float) -> dict[str, Any]:
    """A Serf user event or query as the JSON object of an agent's output line."""
    from ..net.serf import UserEventReceived

    extra: dict[str, Any]
    if isinstance(event, UserEventReceived):
        record: dict[str, Any] = {"ts": ts, "event": "user_event", "name": event.name}
        payload, extra = event.payload, {"ltime": event.ltime, "coalesce": event.coalesce}
    else:
        query = event.query
        record = {"ts": ts, "event": "query", "name": query.name}
        payload, extra = query.payload, {"ltime": query.ltime, "from": query.source_node}
    try:
        record["payload"] = payload.decode("utf-8")
    except UnicodeDecodeError:
        record["payload_base64"] = base64.b64encode(payload).decode("ascii")
    record.update(extra)
    return record


async def _print_serf_events(stream: SerfEventStream) -> None:
    async for event in stream:
        try:
            _emit(serf_record(event, time.time()))
        except BrokenPipeError:
            return


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, separators=(", ", ": ")) + "\n")
    sys.stdout.flush()


async def _print_events(node: Node) -> None:
    async with node.subscribe(snapshot=True, state=True) as events:
        async for event in events:
            if isinstance(event, EventsLost):
                logger.warning("%d events were lost; a fresh snapshot follows", event.count)
            try:
                _emit(event_record(event, time.time()))
            except BrokenPipeError:
                logger.warning("stdout is closed: events are no longer printed")
                return


@attrs.define
class _Outcome:
    status: int = 0
    message: str = ""


async def _join(node: Node, seeds: list[str], timeout: float, outcome: _Outcome) -> None:
    try:
        with trio.fail_after(timeout):
            joined = await node.join(seeds)
    except JoinError as exc:
        reasons = "; ".join(f"seed {seed}: {why}" for seed, why in exc.reasons.items())
        outcome.status, outcome.message = 1, f"could not join within {timeout:g} s: {reasons}"
    except trio.TooSlowError:
        listed = ", ".join(seeds)
        outcome.status = 1
        outcome.message = f"could not join within {timeout:g} s: no answer from seed {listed}"
    else:
        logger.info("%s: joined through %d of %d seed(s)", node.name, joined, len(seeds))


async def _reload_meta(node: Node, args: argparse.Namespace) -> None:
    """Re-read ``--meta-file`` and announce the metadata if it changed; never raises for a
    bad file (the old metadata stays and an error is logged)."""
    try:
        meta = agent_meta(args, node.config.meta_max_size)
    except ValueError as exc:
        logger.error("%s: SIGHUP: metadata not changed: %s", node.name, exc)
        return
    me = node.member(node.name)
    if me is not None and me.meta != meta:
        await node.update_meta(meta)
        logger.info("%s: SIGHUP: metadata updated from %s", node.name, args.meta_file)


async def _reload_on_sighup(node: Node, args: argparse.Namespace) -> None:
    """On every SIGHUP, reload ``--meta-file`` (if given) and ``--key-file``."""
    path = args.key_file
    with trio.open_signal_receiver(signal.SIGHUP) as hangups:
        async for _ in hangups:
            if getattr(args, "meta_file", None) is not None:
                await _reload_meta(node, args)
                if path is None:
                    continue
            if path is None or node.keyring is None:
                logger.warning("%s: SIGHUP ignored: no --key-file to reload", node.name)
                continue
            try:
                ids = node.reload_keys(path)
            except OSError as exc:
                problem = f"cannot read it: {exc.strerror or exc}"
            except KeyringError as exc:
                problem = str(exc)
            else:
                logger.info(
                    "%s: reloaded %s: key ids %s (primary first)", node.name, path, ", ".join(ids)
                )
                continue
            logger.error(
                "%s: SIGHUP: key file %s not reloaded, %s; keeping key ids %s",
                node.name,
                path,
                problem,
                ", ".join(node.keyring.key_ids),
            )


async def _until_signal(node: Node, signals: AsyncIterator[int]) -> bool:
    """Wait for SIGTERM / SIGINT (True) or for the node to stop by itself (False)."""
    stopped_by_itself = True
    async with trio.open_nursery() as race:

        async def on_signal() -> None:
            nonlocal stopped_by_itself
            async for signum in signals:
                logger.info("%s: %s received, leaving", node.name, signal.Signals(signum).name)
                stopped_by_itself = False
                break
            race.cancel_scope.cancel()

        async def on_stop() -> None:
            await node.wait_stopped()
            race.cancel_scope.cancel()

        race.start_soon(on_signal)
        race.start_soon(on_stop)
    return not stopped_by_itself


def _log_running(node: Node, args: argparse.Namespace) -> None:
    wire = getattr(args, "wire", "own")
    if wire != "own":
        logger.info(
            "%s: running at %s (%s preset, %s wire, %s)",
            node.name,
            node.address,
            args.preset,
            wire,
            "encrypted" if args.key_file else "not encrypted",
        )
        return
    logger.info(
        "%s: running at %s (%s preset, security %s%s)",
        node.name,
        node.address,
        args.preset,
        node.security.value,
        f", key ids {', '.join(node.keyring.key_ids)}" if node.keyring else "",
    )


async def _serve(node: Node, args: argparse.Namespace) -> _Outcome:
    """Bind the status endpoint, join, then print events until a signal.

    The order is what an operator reads: a ``--status`` port in use fails before the node
    says it is running, and a failed join prints no event line (not even ``joined`` for
    this node) before the error; after a join the first lines are the snapshot.
    """
    outcome = _Outcome()
    serf_events = node.serf.events() if getattr(args, "wire", "own") == "serf" else None
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            where = None
            if args.status is not None:
                try:
                    where = await nursery.start(serve_status, node, args.status)
                except OSError as exc:
                    outcome.status, outcome.message = 1, f"--status {args.status}: {exc}"
                    nursery.cancel_scope.cancel()
                    return outcome
            _log_running(node, args)
            if where is not None:
                logger.info(
                    "status endpoint on http://%s/ (/members, /metrics, /metrics.json)", where
                )
            nursery.start_soon(_reload_on_sighup, node, args)
            if args.join:
                await _join(node, args.join, args.join_timeout, outcome)
            if not outcome.status:
                nursery.start_soon(_print_events, node)
                if serf_events is not None:
                    nursery.start_soon(_print_serf_events, serf_events)
            if not outcome.status and not await _until_signal(node, signals):
                outcome.status, outcome.message = 1, "the node stopped unexpectedly"
        if outcome.status:
            nursery.cancel_scope.cancel()
            return outcome
        await node.leave()
        nursery.cancel_scope.cancel()
    return outcome


async def _set_state(node: Node, pairs: list[tuple[str, str]]) -> None:
    """Write the ``--state`` pairs (UTF-8 values) as this node's state.

    Raises:
        AgentError: (status 2) a key or value the state limits refuse.
    """
    for key, value in pairs:
        try:
            await node.set_state(key, value.encode("utf-8"))
        except (StateLimitExceeded, ValueError) as exc:
            raise AgentError(f"--state {key}: {exc}", 2) from None


async def run_agent(args: argparse.Namespace) -> int:
    """Run the agent until a signal; returns the exit status.

    Raises:
        AgentError: the node cannot start (status 2 for bad input, 1 otherwise), or the
            join failed (status 1).
    """
    options = _node_options(args)
    try:
        async with open_node(args.name, **options) as node:
            await _set_state(node, getattr(args, "state", []))
            outcome = await _serve(node, args)
            if outcome.status:
                # Raised inside the block so that open_node stops at once without leaving.
                raise AgentError(outcome.message, outcome.status)
    except OSError as exc:
        raise AgentError(f"cannot bind {args.bind}: {exc.strerror or exc}", 1) from None
    except (ConfigError, MetadataTooLarge) as exc:
        raise AgentError(str(exc), 2) from None
    return 0
