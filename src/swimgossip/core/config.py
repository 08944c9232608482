"""Protocol configuration: one frozen value, four presets, validated on construction.

The numbers of three presets are hashicorp/memberlist's (DefaultLANConfig, DefaultWANConfig,
DefaultLocalConfig) so that a memberlist user recognises them; ``fast`` is ours (a LAN
preset that halves detection time and still outlives a 3 s stall). The fields memberlist does
not have (reaping, reconnect, stream fallback) follow Serf's defaults scaled to each preset.
Everything derived from the cluster size (suspicion bounds, retransmit limit, push-pull
interval) lives as pure functions in ``suspicion.py`` and ``broadcast.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from .codec import MAX_NAME_LENGTH
from .errors import ConfigError

__all__ = ["MAX_MEMBER_NAME_LENGTH", "MESSAGE_ROOM", "PRESETS", "Config", "check_member_name"]

#: Longest member name, in characters (the wire's bound on every name).
MAX_MEMBER_NAME_LENGTH = MAX_NAME_LENGTH
#: Bytes a datagram must hold beyond the largest metadata: an alive claim's name, address
#: and framing, the packet header and a signed or sealed envelope. ``Engine`` checks the
#: exact size for its own name and address.
MESSAGE_ROOM = 128


def check_member_name(name: object) -> None:
    """Refuse a member name that is empty, longer than ``MAX_MEMBER_NAME_LENGTH``
    characters, or not printable (control characters, tabs, newlines).

    Raises:
        ConfigError: naming the problem (a ``ValueError`` too).
    """
    if type(name) is not str:
        raise ConfigError("name", f"must be a string, got {name!r}")
    if not name:
        raise ConfigError("name", "must not be empty")
    if len(name) > MAX_MEMBER_NAME_LENGTH:
        raise ConfigError(
            "name", f"must be at most {MAX_MEMBER_NAME_LENGTH} characters, got {len(name)}"
        )
    if not name.isprintable():
        raise ConfigError("name", f"must be printable (no control characters), got {name!r}")


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(name, f"must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and (value > 0 or (allow_zero and value == 0))):
        wanted = "finite and >= 0" if allow_zero else "a positive finite number"
        raise ConfigError(name, f"must be {wanted}, got {value!r}")


def _at_least(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(name, f"must be an integer >= {minimum}, got {value!r}")


@attrs.frozen(kw_only=True)
class Config:
    """Tunables of one node. Build with a preset and change fields with ``evolve``.

    Durations are seconds. ``Config.lan()`` is the default; invalid values raise
    :class:`ConfigError` naming the field.
    """

    #: Time between two probes of the failure detector (scaled by local health).
    probe_interval: float = 1.0
    #: Time to wait for a direct ack before asking others to probe (scaled by health).
    probe_timeout: float = 0.5
    #: Number of members asked to probe indirectly (ping-req) when a direct ping fails.
    indirect_checks: int = 3
    #: Suspicion timeout floor is ``suspicion_mult * max(1, log10(N)) * probe_interval``.
    suspicion_mult: int = 4
    #: ...and never below ``suspicion_floor`` seconds, whatever the probe interval: a member
    #: silent for less than this (a GC pause, a stopped process) is never declared failed.
    #: 0 (the default, as in memberlist) leaves the floor to the formula.
    suspicion_floor: float = 0.0
    #: Suspicion timeout ceiling is ``suspicion_max_timeout_mult`` times the floor.
    suspicion_max_timeout_mult: int = 6
    #: Each update is retransmitted ``retransmit_mult * ceil(log10(N + 1))`` times.
    retransmit_mult: int = 4
    #: Time between two gossip rounds, and members gossiped to per round.
    gossip_interval: float = 0.2
    gossip_nodes: int = 3
    #: Dead members keep receiving gossip for this long, so a healed partition learns.
    gossip_to_the_dead_time: float = 30.0
    #: Full state exchange over a stream with one random member; scaled up above 32 nodes.
    push_pull_interval: float = 30.0
    #: Deadline of a stream exchange (push-pull, join, stream ping).
    stream_timeout: float = 10.0
    #: Also probe over the stream transport when UDP fails (memberlist's TCP ping).
    stream_fallback: bool = True
    #: Lifeguard local health: probe interval and timeout are scaled by (score + 1),
    #: with score in [0, awareness_max_multiplier - 1]. 1 disables the multiplier.
    awareness_max_multiplier: int = 8
    #: Largest datagram we send, including piggybacked gossip and signing overhead.
    udp_payload_size: int = 1400
    #: Largest metadata a member may carry, in bytes.
    meta_max_size: int = 512
    #: Dead and left members are removed from the member table after this long.
    reap_timeout: float = 600.0
    #: Failed (not left) members are retried this often, for this long after failing.
    reconnect_interval: float = 30.0
    reconnect_timeout: float = 6 * 3600.0
    #: A member held dead for at least this long may be claimed by a process at another
    #: address (a restart elsewhere); before that, and always while it is alive or suspect,
    #: such a claim is a name conflict, refused and reported. Left members may always be
    #: reclaimed. 0: as soon as it is declared dead.
    dead_reclaim_time: float = 0.0
    #: A graceful leave waits at most this long for its broadcast to go out.
    leave_timeout: float = 5.0
    #: Largest member table accepted; unknown members beyond it are refused and counted.
    max_members: int = 20_000
    #: Member state (``Engine.set_state``): the largest value of one key, in bytes (at
    #: most 64 KiB, the codec's bound; a value larger than a datagram travels on the
    #: stream exchange only) ...
    state_value_max: int = 60 * 1024
    #: ... the most keys (tombstones included) and value bytes one member may hold ...
    state_keys_max: int = 64
    state_bytes_max: int = 256 * 1024
    #: ... the most tombstones (deleted keys) one member may hold at once, and how long a
    #: tombstone is kept before it is reaped.
    state_tombstones_max: int = 64
    state_tombstone_grace: float = 3600.0
    #: Time between two state exchanges (digests, then missing deltas) with one random
    #: member, while this member holds some state (after its first exchange, a member
    #: that holds none starts none: ``core/_state.py``).
    state_sync_interval: float = 10.0

    def __attrs_post_init__(self) -> None:
        for name in (
            "probe_interval",
            "probe_timeout",
            "gossip_interval",
            "gossip_to_the_dead_time",
            "push_pull_interval",
            "stream_timeout",
            "reap_timeout",
            "reconnect_interval",
            "reconnect_timeout",
            "leave_timeout",
            "state_tombstone_grace",
            "state_sync_interval",
        ):
            _positive(name, getattr(self, name))
        _positive("suspicion_floor", self.suspicion_floor, allow_zero=True)
        _positive("dead_reclaim_time", self.dead_reclaim_time, allow_zero=True)
        _at_least("indirect_checks", self.indirect_checks, 0)
        _at_least("suspicion_mult", self.suspicion_mult, 1)
        _at_least("suspicion_max_timeout_mult", self.suspicion_max_timeout_mult, 1)
        _at_least("retransmit_mult", self.retransmit_mult, 1)
        _at_least("gossip_nodes", self.gossip_nodes, 1)
        _at_least("awareness_max_multiplier", self.awareness_max_multiplier, 1)
        _at_least("udp_payload_size", self.udp_payload_size, 512)
        _at_least("meta_max_size", self.meta_max_size, 0)
        _at_least("max_members", self.max_members, 2)
        _at_least("state_value_max", self.state_value_max, 0)
        _at_least("state_keys_max", self.state_keys_max, 1)
        _at_least("state_bytes_max", self.state_bytes_max, 0)
        _at_least("state_tombstones_max", self.state_tombstones_max, 0)
        if self.state_value_max > 64 * 1024:
            raise ConfigError("state_value_max", "must be at most 65536 bytes (the codec's bound)")
        if not isinstance(self.stream_fallback, bool):
            raise ConfigError("stream_fallback", "must be a bool")
        if self.udp_payload_size > 65_000:
            raise ConfigError("udp_payload_size", "must fit in one UDP datagram (<= 65000)")
        if self.meta_max_size > 64 * 1024:
            raise ConfigError("meta_max_size", "must be at most 65536 bytes")
        if self.probe_timeout >= self.probe_interval:
            raise ConfigError("probe_timeout", "must be shorter than probe_interval")
        if self.udp_payload_size < self.meta_max_size + MESSAGE_ROOM:
            raise ConfigError(
                "udp_payload_size",
                f"must hold the largest metadata plus {MESSAGE_ROOM} bytes for the rest of "
                f"an alive claim (>= {self.meta_max_size + MESSAGE_ROOM} with meta_max_size="
                f"{self.meta_max_size}), got {self.udp_payload_size}: a member could not "
                "announce or refute",
            )

    @property
    def relay_timeout(self) -> float:
        """How long a member pinging on another's behalf (ping-req) waits for an ack
        before it nacks the requester.

        The requester asks at ``probe_timeout`` and judges just before ``probe_interval``
        (both scaled by its health), so the nack must come within the gap between them:
        80 % of the smaller of that gap and ``probe_timeout`` leaves the rest for the
        round trips. (Lifeguard's relay timeout is a fraction of the prober's; with the
        unscaled ``probe_timeout`` every nack of ``lan`` and ``wan`` came after the verdict.)
        """
        return 0.8 * min(self.probe_timeout, self.probe_interval - self.probe_timeout)

    @classmethod
    def lan(cls, **changes: Any) -> Config:
        """memberlist's DefaultLANConfig: a local network, sub-millisecond round trips."""
        return cls(**changes)

    @classmethod
    def wan(cls, **changes: Any) -> Config:
        """memberlist's DefaultWANConfig: members across data centres."""
        values: dict[str, Any] = {
            "probe_interval": 5.0,
            "probe_timeout": 3.0,
            "suspicion_mult": 6,
            "gossip_interval": 0.5,
            "gossip_nodes": 4,
            "gossip_to_the_dead_time": 60.0,
            "push_pull_interval": 60.0,
            "stream_timeout": 30.0,
            "reap_timeout": 1800.0,
            "reconnect_interval": 60.0,
            "reconnect_timeout": 24 * 3600.0,
            "leave_timeout": 15.0,
        }
        values.update(changes)
        return cls(**values)

    @classmethod
    def fast(cls, **changes: Any) -> Config:
        """A LAN preset that detects a crash in about half the time of ``lan()``.

        Not a memberlist preset. Probes twice as often (0.5 s, 200 ms ack timeout) and
        gossips every 100 ms, for about twice ``lan()``'s idle traffic. The suspicion
        timeout keeps a 3.5 s floor (``suspicion_floor``) so that a member stalled for up to
        about 3 s (a long GC pause, a SIGSTOP, a saturated host) refutes in time instead of
        being declared failed; measured in docs/benchmarks.md.
        """
        values: dict[str, Any] = {
            "probe_interval": 0.5,
            "probe_timeout": 0.2,
            "gossip_interval": 0.1,
            "suspicion_floor": 3.5,
        }
        values.update(changes)
        return cls(**values)

    @classmethod
    def local(cls, **changes: Any) -> Config:
        """memberlist's DefaultLocalConfig: one host or a fast lab network."""
        values: dict[str, Any] = {
            "probe_interval": 1.0,
            "probe_timeout": 0.2,
            "indirect_checks": 1,
            "suspicion_mult": 3,
            "retransmit_mult": 2,
            "gossip_interval": 0.1,
            "gossip_to_the_dead_time": 15.0,
            "push_pull_interval": 15.0,
            "stream_timeout": 1.0,
            "reap_timeout": 120.0,
            "reconnect_interval": 5.0,
            "reconnect_timeout": 3600.0,
            "leave_timeout": 2.0,
        }
        values.update(changes)
        return cls(**values)

    def evolve(self, **changes: Any) -> Config:
        """Return a copy with ``changes`` applied (validated again)."""
        return attrs.evolve(self, **changes)


#: The presets by name, as the CLI and the simulator offer them.
PRESETS: dict[str, Callable[..., Config]] = {
    "lan": Config.lan,
    "fast": Config.fast,
    "local": Config.local,
    "wan": Config.wan,
}
