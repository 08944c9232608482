"""Joining a cluster through seeds: resolve, exchange state, retry, explain failures.

``Joiner.join`` resolves each seed (``resolve_seed``: every address a name stands for,
so a headless service or DNS round robin joins through all of its members; else the
transport's ``resolve``), asks the engine for a join
exchange (a push-pull over a stream) with every seed at once, and counts the
``JoinOutcome`` values the runtime routes back. It retries with backoff until a seed
answers or the caller's deadline (``trio.fail_after``) is near; without a deadline it tries
a few times. When every seed refuses our primary key as unknown (we were down while the
cluster rotated it out), it tries the other installed keys as primary. Failing all that, a
``JoinError`` says, per seed, why: refused, timed out, cannot resolve, or the refusal the
seed reported (label mismatch, unknown key, unsigned, clock skew). A seed that stands for
several addresses is reported per address, as ``"seed (address)"``. A seed that holds our
name for a live member at another address (a name conflict) ends the join at once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence

import attrs
import trio

from ..core.engine import Engine
from ..core.inputs import JoinCommand
from ..core.member import Member
from ..net import Transport
from ..security import Keyring, RejectReason, key_id
from ._runtime import Runtime
from .errors import JoinError

__all__ = ["Joiner", "SeedResolver"]

logger = logging.getLogger("swimgossip")

_JOIN_ATTEMPTS_WITHOUT_DEADLINE = 3

#: Every address a seed stands for (``UdpTransport.resolve_all``).
SeedResolver = Callable[[str], Awaitable[list[str]]]


@attrs.define(eq=False, kw_only=True)
class Joiner:
    """One node's join attempt (see the module comment)."""

    name: str
    address: str
    keyring: Keyring | None
    engine: Engine
    runtime: Runtime
    transport: Transport
    resolve_seed: SeedResolver | None = None

    async def join(self, seeds: Sequence[str]) -> int:
        """Run the join; ``Node.join`` documents the behaviour (see also the module comment).

        Raises:
            JoinError: no seed answered; ``reasons`` says why, per seed.
        """
        reasons: dict[str, str] = {}
        deadline = trio.current_effective_deadline()
        stop_at = deadline - min(1.0, 0.1 * (deadline - trio.current_time()))
        delay, attempt = 0.1, 0
        original = self.keyring.primary if self.keyring is not None else None
        tried: set[bytes] = set()
        while True:
            attempt += 1
            addresses = await self._resolve(seeds, reasons)
            if addresses:
                conflicts: list[Member] = []
                joined = await self._join_once(addresses, reasons, stop_at, conflicts)
                if joined:
                    self._note_key_fallback(original)
                    return joined
                if conflicts:  # our name is taken: retrying cannot help
                    logger.warning("%s: join refused: %s", self.name, next(iter(reasons.values())))
                    raise JoinError(reasons, conflict=conflicts[0])
                if self._try_another_key(addresses, tried):
                    attempt -= 1
                    continue
            if not addresses and not reasons:
                return 0  # only ourselves as seeds
            out_of_time = trio.current_time() + delay >= stop_at
            if out_of_time or (math.isinf(stop_at) and attempt >= _JOIN_ATTEMPTS_WITHOUT_DEADLINE):
                keyring = self.keyring
                if keyring is not None and original in keyring.keys[1:]:
                    keyring.use(original)  # no key joined: undo the fallback
                raise JoinError(reasons)
            await trio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _try_another_key(self, addresses: dict[str, str], tried: set[bytes]) -> bool:
        """If every seed refused our primary key as unknown, make the next installed key not
        yet tried primary and return True."""
        keyring, refused = self.keyring, self.runtime.refused_by
        if keyring is None or len(keyring) < 2:
            return False
        if any(refused.get(a) is not RejectReason.UNKNOWN_KEY for a in addresses.values()):
            return False
        tried.add(keyring.primary)
        untried = [key for key in keyring.keys if key not in tried]
        if not untried:
            return False
        logger.warning(
            "%s: the seeds do not know key %s; trying installed key %s as primary",
            self.name,
            key_id(keyring.primary),
            key_id(untried[0]),
        )
        keyring.use(untried[0])
        return True

    def _note_key_fallback(self, original: bytes | None) -> None:
        if self.keyring is not None and original is not None and self.keyring.primary != original:
            logger.warning(
                "%s: joined with key %s as primary; the cluster no longer accepts key %s: "
                "update this node's key file",
                self.name,
                key_id(self.keyring.primary),
                key_id(original),
            )

    async def _resolve(self, seeds: Sequence[str], reasons: dict[str, str]) -> dict[str, str]:
        """Seed label -> address to join: the seed itself, or ``"seed (address)"`` for each
        address of a seed that stands for several."""
        addresses: dict[str, str] = {}
        for seed in seeds:
            try:
                if self.resolve_seed is not None:
                    found = await self.resolve_seed(seed)
                else:
                    found = [await self.transport.resolve(seed)]
            except (ValueError, OSError) as exc:
                reasons[seed] = f"cannot resolve: {exc}"
                continue
            reasons.pop(seed, None)
            ours = (self.address, self.transport.address)
            found = [a for a in found if a not in ours and a not in addresses.values()]
            for address in found:
                addresses[seed if len(found) == 1 else f"{seed} ({address})"] = address
        return addresses

    async def _join_once(
        self,
        addresses: dict[str, str],
        reasons: dict[str, str],
        stop_at: float,
        conflicts: list[Member],
    ) -> int:
        targets = list(addresses.values())
        for target in targets:
            self.runtime.refused_by.pop(target, None)
        outcomes = self.runtime.wait_join(targets)
        await self.runtime.call(JoinCommand(seeds=tuple(targets)))
        by_address = {address: seed for seed, address in addresses.items()}
        for seed in addresses:
            reasons[seed] = "timed out"
        joined = 0
        with trio.move_on_at(stop_at):
            for _ in targets:
                try:
                    outcome = await outcomes.receive()
                except trio.EndOfChannel:
                    break
                seed = by_address.get(outcome.address, outcome.address)
                if outcome.ok:
                    joined += 1
                    reasons.pop(seed, None)
                else:
                    reasons[seed] = outcome.reason
                    if outcome.conflict is not None:
                        conflicts.append(outcome.conflict)
        return joined
