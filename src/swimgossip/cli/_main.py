"""The ``swimgossip`` command (also ``python -m swimgossip``).

Subcommands: ``agent`` runs one node and prints its membership events as JSON lines
(``_agent``); ``members`` prints the member table of a running agent through its status
endpoint (``_status``); ``keygen`` prints a new key for a key file; ``demo`` runs a live
8-node cluster on loopback and shows a failure being detected (``_demo``);
``simulate`` runs the deterministic simulator's standard scenario (``_simulate``).

This module only parses arguments and dispatches. Exit statuses: 0 success, 1 a runtime
failure (a join, an unreachable endpoint), 2 bad input (a flag, a key file), each with one
line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .errors import AgentError, StatusError

__all__ = ["main"]

_PROG = "swimgossip"
#: The top-level --help text: plain words (the module docstring is RST, for the docs).
_DESCRIPTION = (
    "swimgossip: SWIM + Lifeguard cluster membership. Run a node with 'swimgossip agent', "
    "read a running agent's member table with 'swimgossip members'; 'swimgossip COMMAND "
    "--help' says more."
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``swimgossip agent: error: ...``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _address(text: str) -> str:
    from ..net import parse_address

    try:
        parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _seed(text: str) -> str:
    from ..net import split_seed

    try:
        split_seed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _meta_pair(text: str) -> tuple[str, str]:
    from ._format import parse_meta_pair

    try:
        return parse_meta_pair(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _add_agent(commands: argparse._SubParsersAction[_Parser]) -> None:
    agent = commands.add_parser(
        "agent",
        help="run one node; print membership events as JSON lines",
        description=(
            "Run one cluster member. Every membership event is printed to stdout as one "
            'JSON object per line: {"ts", "event" (joined|updated|suspected|failed|left|'
            'recovered), "member", "address", "incarnation", "status", "meta"}, plus "by" '
            'and "confirmations" for suspected and failed, and "restarted": true on a joined '
            "line for a member whose process restarted. Logs go to stderr. SIGTERM or "
            "SIGINT leaves the cluster gracefully and exits 0; a failed join exits 1; bad "
            "flags or an unreadable key file exit 2."
        ),
    )
    agent.add_argument("--name", required=True, help="this member's unique name")
    agent.add_argument(
        "--bind", required=True, type=_address, metavar="HOST:PORT", help="UDP and TCP address"
    )
    agent.add_argument(
        "--advertise", type=_address, metavar="HOST:PORT", help="address others should use"
    )
    agent.add_argument(
        "--join",
        action="append",
        type=_seed,
        default=[],
        metavar="HOST[:PORT]",
        help=(
            "a seed to join through (repeat for several); port 7946 if none; a name with "
            "several addresses joins through all of them"
        ),
    )
    agent.add_argument(
        "--join-timeout",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="give up joining after S seconds and exit 1 (default 10)",
    )
    agent.add_argument(
        "--preset",
        choices=("lan", "fast", "local", "wan"),
        default="lan",
        help="timing preset (fast: about half lan's detection time, see docs/tuning.md)",
    )
    agent.add_argument(
        "--wire",
        choices=("own", "memberlist", "serf"),
        default="own",
        help="the wire format: own (default), memberlist (join a hashicorp/memberlist "
        "pool), serf (join serf agents: --tag pairs are Serf tags; Serf user events and "
        "queries are printed as user_event / query lines); see docs/interop.md",
    )
    agent.add_argument(
        "--key-file",
        metavar="FILE",
        help="sign packets with these keys: one base64 key per line, primary first "
        "(make one with `swimgossip keygen`); with --wire memberlist or serf: encrypt as "
        "memberlist does with Serf's base64 keys (`serf keygen`, one per line, or Serf's "
        "keyring file, a JSON list)",
    )
    agent.add_argument(
        "--label",
        default="",
        help="the cluster label (at most 255 bytes): packets of another label are refused",
    )
    agent.add_argument(
        "--security",
        choices=("off", "sign-accept-unsigned", "required", "seal-accept-signed", "sealed"),
        help="what to send and accept (docs/security.md); default: required with "
        "--key-file, else off. SIGHUP reloads --key-file",
    )
    agent.add_argument(
        "--meta",
        action="append",
        type=_meta_pair,
        default=[],
        metavar="KEY=VALUE",
        help="metadata pair (repeatable); the pairs are sent as the node's metadata encoded "
        'as one compact JSON object, e.g. {"role":"web"}',
    )
    agent.add_argument(
        "--tag",
        dest="meta",
        action="append",
        type=_meta_pair,
        metavar="KEY=VALUE",
        help="a tag (repeatable): the same pairs as --meta, read back as Member.tags and "
        "filtered on by 'members --tag'",
    )
    agent.add_argument(
        "--state",
        action="append",
        type=_meta_pair,
        default=[],
        metavar="KEY=VALUE",
        help="this node's member state (repeatable; the value as UTF-8): versioned keys "
        "every member holds a copy of, shown by 'members' and printed as \"state\" lines",
    )
    agent.add_argument(
        "--meta-file",
        metavar="FILE",
        help="more metadata, one KEY=VALUE per line (# comments); --meta pairs override "
        "it. SIGHUP re-reads it and announces the new metadata to the cluster",
    )
    agent.add_argument(
        "--status",
        type=_address,
        metavar="HOST:PORT",
        help=(
            "serve a read-only endpoint over HTTP/1.0 here (GET /members, /metrics.json: JSON; "
            "/metrics: Prometheus text); loopback only"
        ),
    )
    agent.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="stderr log level (default info)",
    )


class _VersionAction(argparse.Action):
    """``--version``: the installed package's version (swimgossip.__version__, via
    pyproject), looked up only when asked: importlib.metadata costs an agent's start
    about 25 ms (it loads importlib.abc and importlib.resources)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from importlib.metadata import version

        print(f"{_PROG} {version(_PROG)}")
        parser.exit()


def _parser() -> _Parser:
    from ._simulate import add_simulate_arguments

    parser = _Parser(prog=_PROG, description=_DESCRIPTION)
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_agent(commands)
    members = commands.add_parser(
        "members",
        help="print the member table of a running agent (via its --status)",
        description="Print the member table of a running agent, read from its status "
        "endpoint (the agent's --status HOST:PORT). Filters: --status alive (repeatable: any "
        "of them) and --tag role=db (repeatable: all of them).",
    )
    members.add_argument(
        "--endpoint", type=_address, metavar="HOST:PORT", help="the agent's --status address"
    )
    members.add_argument(
        "--status",
        action="append",
        default=[],
        metavar="STATUS|HOST:PORT",
        help="only members with this status (alive, suspect, dead, left; repeatable); a "
        "HOST:PORT here is the endpoint, as in earlier versions",
    )
    members.add_argument(
        "--tag",
        action="append",
        type=_meta_pair,
        default=[],
        metavar="KEY=VALUE",
        help="only members with this tag (repeatable: all must match)",
    )
    members.add_argument("--json", action="store_true", help="print the JSON list instead")
    commands.add_parser("keygen", help="print a new random key (base64) for a key file")
    commands.add_parser("demo", help="a live 8-node cluster on loopback: crash, leave, rejoin")
    add_simulate_arguments(commands.add_parser("simulate", help="run the deterministic simulator"))
    return parser


def _fail(command: str, message: str, status: int) -> int:
    print(f"{_PROG} {command}: error: {message}", file=sys.stderr)
    return status


def _agent(args: argparse.Namespace) -> int:
    import trio

    from ._agent import run_agent
    from ._status import check_loopback

    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.status is not None:
        try:
            check_loopback(args.status)
        except ValueError as exc:
            return _fail("agent", f"--status: {exc}", 2)
    try:
        return trio.run(run_agent, args)
    except AgentError as exc:
        return _fail("agent", str(exc), exc.status)
    except KeyboardInterrupt:  # before the signal handler was installed
        return 130


_STATUSES = ("alive", "suspect", "dead", "left")


def _members_query(args: argparse.Namespace) -> tuple[str | None, str]:
    """The endpoint and the ``/members?...`` path from ``members``' flags.

    Raises:
        ValueError: a ``--status`` that is neither a status nor an address.
    """
    from urllib.parse import urlencode

    endpoint = args.endpoint
    query: list[tuple[str, str]] = []
    for value in args.status:
        if value.lower() in _STATUSES:
            query.append(("status", value.lower()))
        else:
            try:
                endpoint = _address(value)
            except argparse.ArgumentTypeError:
                raise ValueError(
                    f"--status: {value!r} is neither a status ({', '.join(_STATUSES)}) nor "
                    "the endpoint's HOST:PORT"
                ) from None
    query += [("tag", f"{key}:{value}") for key, value in args.tag]
    return endpoint, "/members" + (f"?{urlencode(query)}" if query else "")


def _members(args: argparse.Namespace) -> int:
    from ._format import format_table
    from ._status import fetch_members

    try:
        endpoint, path = _members_query(args)
    except ValueError as exc:
        return _fail("members", str(exc), 2)
    if endpoint is None:
        return _fail("members", "give the agent's status endpoint: --endpoint HOST:PORT", 2)
    try:
        records = fetch_members(endpoint, path)
    except StatusError as exc:
        return _fail("members", str(exc), 1)
    print(json.dumps(records) if args.json else format_table(records))
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from ..security import encode_key, generate_key

    print(encode_key(generate_key()))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo()


def _simulate(args: argparse.Namespace) -> int:
    from ._simulate import run_simulate

    return run_simulate(args)


_COMMANDS = {
    "agent": _agent,
    "members": _members,
    "keygen": _keygen,
    "demo": _demo,
    "simulate": _simulate,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    return _COMMANDS[args.command](args)
