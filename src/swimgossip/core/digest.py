"""The digest of a member table: per-bucket hashes of its rows, kept up to date in O(1).

The periodic push-pull exchanges digests first (``MemberSync``, see ``_sync.py``) and then
only the rows of the buckets that differ, so two members holding the same table move a few
hundred bytes instead of the whole table.

* Each row (a ``Member``) has a 64-bit hash over every field a push-pull conveys: name,
  address, status, incarnation, metadata and boot id (``row_hash``: BLAKE2b, never
  Python's salted ``hash``, so every process and version agrees).
* Each name has a bucket: the low bits of the CRC-32 of its UTF-8 bytes (``bucket_of``).
  A member's every version lands in the same bucket.
* A table keeps ``FINE_BUCKETS`` (1,024) bucket hashes, each the XOR of the hashes of its
  rows: storing, replacing or removing a row is two XORs. Equal tables have equal digests;
  unequal ones differ in the buckets of the rows that differ (but for a 2**-64 chance).
* A coarser digest of ``B`` buckets (a power of two up to 1,024) is the fine one folded
  (bucket ``i`` of ``B`` is the XOR of the fine buckets ``j`` with ``j % B == i``), so the
  requester chooses ``B`` for its table size (``buckets_for``) and the replier folds its own
  digest to match. On the wire a digest is ``B`` little-endian unsigned 64-bit integers.

Suspicions' accusers (``PushPull.suspected_by``) are left out of the hash: two members
agreeing that a member is suspect may credit different accusers, and that is no reason to
exchange rows.
"""

from __future__ import annotations

import sys
import zlib
from array import array
from collections.abc import Iterable
from hashlib import blake2b

from .member import Member

__all__ = [
    "FINE_BUCKETS",
    "MAX_DIGEST_BUCKETS",
    "ROWS_PER_BUCKET",
    "TableDigest",
    "bucket_of",
    "buckets_for",
    "differing_buckets",
    "is_digest_size",
    "row_hash",
]

#: Buckets a table keeps (the finest digest; every coarser one is folded from it).
FINE_BUCKETS = 1024
#: The most buckets a digest on the wire may have.
MAX_DIGEST_BUCKETS = FINE_BUCKETS
#: About how many rows share a bucket in the digest a requester chooses.
ROWS_PER_BUCKET = 8

_BIG_ENDIAN = sys.byteorder == "big"


def row_hash(member: Member) -> int:
    """The 64-bit hash of ``member`` over every field a push-pull conveys."""
    name = member.name.encode("utf-8", "surrogatepass")
    address = member.address.encode("utf-8", "surrogatepass")
    head = b"".join(
        (
            len(name).to_bytes(4, "little"),
            len(address).to_bytes(4, "little"),
            len(member.meta).to_bytes(4, "little"),
            int(member.status).to_bytes(1, "little"),
            member.incarnation.to_bytes(8, "little"),
            member.boot.to_bytes(8, "little"),
        )
    )
    digest = blake2b(head + name + address + member.meta, digest_size=8).digest()
    return int.from_bytes(digest, "little")


def bucket_of(name: str, buckets: int = FINE_BUCKETS) -> int:
    """The bucket of ``name`` in a digest of ``buckets`` buckets (a power of two)."""
    return zlib.crc32(name.encode("utf-8", "surrogatepass")) & (buckets - 1)


def buckets_for(rows: int) -> int:
    """The number of buckets a requester holding ``rows`` rows asks with: the power of
    two nearest below ``rows / ROWS_PER_BUCKET``, at least 1, at most 1,024."""
    wanted = max(1, rows // ROWS_PER_BUCKET)
    return min(MAX_DIGEST_BUCKETS, 1 << (wanted.bit_length() - 1))


def is_digest_size(size: int) -> bool:
    """Whether ``size`` bytes can be a digest: 1 to 1,024 buckets, a power of two, of 8
    bytes each."""
    buckets, rest = divmod(size, 8)
    return rest == 0 and 0 < buckets <= MAX_DIGEST_BUCKETS and buckets & (buckets - 1) == 0


def differing_buckets(ours: bytes, theirs: bytes) -> list[int]:
    """The indices of the buckets where two digests of the same size differ."""
    if ours == theirs:
        return []
    return [
        index
        for index, (a, b) in enumerate(zip(_values(ours), _values(theirs), strict=True))
        if a != b
    ]


def _values(digest: bytes) -> array[int]:
    values = array("Q", digest)
    if _BIG_ENDIAN:
        values.byteswap()
    return values


class TableDigest:
    """The fine bucket hashes of one member table (see the module comment).

    Tables that start from the same view may start from one digest: ``copy`` is a
    memory copy of 8 kB, where ``of`` hashes every row.
    """

    __slots__ = ("_buckets",)

    def __init__(self) -> None:
        self._buckets = array("Q", bytes(8 * FINE_BUCKETS))

    @classmethod
    def of(cls, members: Iterable[Member]) -> TableDigest:
        """The digest of a table holding ``members`` (computed from scratch)."""
        digest = cls()
        for member in members:
            digest.add(member)
        return digest

    def copy(self) -> TableDigest:
        """An independent copy."""
        other = TableDigest()
        other._buckets = array("Q", self._buckets)
        return other

    def add(self, member: Member) -> None:
        """A row was stored (call ``remove`` for the row it replaced first)."""
        self._buckets[bucket_of(member.name)] ^= row_hash(member)

    def remove(self, member: Member) -> None:
        """A row was removed (or is being replaced)."""
        self._buckets[bucket_of(member.name)] ^= row_hash(member)

    def folded(self, buckets: int) -> bytes:
        """The digest in ``buckets`` buckets (a power of two up to 1,024), as on the wire.

        Folded as one integer (its low and high halves XORed, in C), not bucket by bucket.
        """
        values = self._buckets
        if _BIG_ENDIAN:
            values = array("Q", values)
            values.byteswap()
        whole = int.from_bytes(values.tobytes(), "little")
        width = 64 * len(values)
        while width > 64 * buckets:
            width //= 2
            whole = (whole & ((1 << width) - 1)) ^ (whole >> width)
        return whole.to_bytes(8 * buckets, "little")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TableDigest) and self._buckets == other._buckets

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"TableDigest({self.folded(1).hex()})"
