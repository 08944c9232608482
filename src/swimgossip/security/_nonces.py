"""Unique 96-bit nonces for signed and sealed packets, without a system call per packet.

See ``NonceSequence`` for the construction and why it keeps every nonce unique under one
key across processes, restarts and forks.
"""

from __future__ import annotations

import itertools
import os
import threading

__all__ = ["NONCES", "NonceSequence"]


class NonceSequence:
    """Unique 96-bit nonces for the default ``nonce_source``, cheaper than ``os.urandom(12)``
    (a system call) per packet: a random 64-bit prefix from ``os.urandom`` followed by a
    32-bit big-endian counter that starts at a random value; a fresh prefix and start are
    drawn before the counter would wrap, and in the child after a ``fork``.

    Why this keeps ChaCha20-Poly1305's one requirement (never two packets with the same key
    and nonce; every node of a cluster shares the key) and the replay guard's (a nonce names
    one packet): within one prefix the counter never repeats. Two runs of the sequence
    (another process, node or restart, or a later prefix here) collide only if they drew
    the same 64-bit prefix *and* their counter ranges overlap: at most
    ``(len_a + len_b) / 2**96`` for runs of ``len_a`` and ``len_b`` nonces, so at most
    ``(runs - 1) * packets / 2**96`` over a cluster's life, against ``packets**2 / 2**97``
    for independent random nonces: never worse than twice that, and far better since runs
    are few and long. The nonce need not be secret or unpredictable for either use.

    Thread-safe: the prefix and its counter are one tuple read at once, and
    ``next(itertools.count)`` is atomic; one sequence serves every signer of the process.
    """

    _LAST = (1 << 32) - 1

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = self._fresh()

    @staticmethod
    def _fresh() -> tuple[bytes, itertools.count[int]]:
        return os.urandom(8), itertools.count(int.from_bytes(os.urandom(4), "big"))

    def restart(self) -> None:
        """Draw a new prefix and counter start (and a new lock: a fork keeps no holder)."""
        self._lock = threading.Lock()
        self._state = self._fresh()

    def next(self) -> bytes:
        prefix, counter = self._state
        number = next(counter)
        if number > self._LAST:
            with self._lock:
                if self._state[1] is counter:  # not already restarted by another thread
                    self._state = self._fresh()
            return self.next()
        return prefix + number.to_bytes(4, "big")


NONCES = NonceSequence()
if hasattr(os, "register_at_fork"):  # POSIX; a forked child must not repeat the parent's
    os.register_at_fork(after_in_child=NONCES.restart)
