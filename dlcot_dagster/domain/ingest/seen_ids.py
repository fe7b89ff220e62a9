"""The ids already used in one partition, and where each was first seen, in a few bytes per id.

Ingestion rejects a record whose id an earlier record of the partition already used, naming that earlier
record's file and line. A ``dict`` of id strings to ``(file, line)`` tuples costs about 230 bytes per id: the
largest term of a million-trace partition that grows with its size. :class:`SeenIds` keeps a 128-bit blake2b
fingerprint of each id and a packed ``(file index, line)`` in an open-addressing hash table of three numpy
arrays (24 bytes per slot, a quarter to a half of the slots in use: 48 to 96 bytes per id, 50 MB for a
million). Two distinct ids share a
fingerprint with probability about n² / 2¹²⁹ (10⁻²⁶ for a million ids), so a fingerprint match is taken as the
same id. Nothing here imports dagster.
"""

from __future__ import annotations

from hashlib import blake2b

import numpy as np

_LINE_BITS = 40  # lines up to ~10^12 per file; file index in the upper 23 bits
_LINE_MASK = (1 << _LINE_BITS) - 1


class SeenIds:
    """``first_seen(id, file, line)``: ``None`` the first time an id is offered, else its first ``(file, line)``."""

    def __init__(self, capacity: int = 1 << 12):
        cap = 1
        while cap < max(8, capacity):
            cap <<= 1
        self._alloc(cap)
        self._files: list[str] = []
        self._file_index: dict[str, int] = {}
        self.count = 0

    def _alloc(self, cap: int) -> None:
        self._hi = np.zeros(cap, dtype=np.uint64)
        self._lo = np.zeros(cap, dtype=np.uint64)
        self._where = np.zeros(cap, dtype=np.int64)
        self._mask = cap - 1

    @property
    def capacity(self) -> int:
        return self._mask + 1

    @property
    def nbytes(self) -> int:
        return self._hi.nbytes + self._lo.nbytes + self._where.nbytes

    def __len__(self) -> int:
        return self.count

    @staticmethod
    def _fingerprint(rid: str) -> tuple[int, int]:
        d = blake2b(rid.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        hi, lo = int.from_bytes(d[:8], "little"), int.from_bytes(d[8:], "little")
        if hi == 0 and lo == 0:  # (0, 0) marks an empty slot
            lo = 1
        return hi, lo

    def _slot(self, hi: int, lo: int) -> tuple[int, bool]:
        """(slot, found): the slot holding this fingerprint, or the empty slot where it would go."""
        h, lw, mask = self._hi, self._lo, self._mask
        i = hi & mask
        while True:
            sh, sl = int(h[i]), int(lw[i])
            if sh == 0 and sl == 0:
                return i, False
            if sh == hi and sl == lo:
                return i, True
            i = (i + 1) & mask

    def first_seen(self, rid: str, file: str, line: int) -> tuple[str, int] | None:
        hi, lo = self._fingerprint(rid)
        i, found = self._slot(hi, lo)
        if found:
            w = int(self._where[i])
            return self._files[w >> _LINE_BITS], w & _LINE_MASK
        fi = self._file_index.get(file)
        if fi is None:
            fi = self._file_index[file] = len(self._files)
            self._files.append(file)
        self._hi[i], self._lo[i] = hi, lo
        self._where[i] = (fi << _LINE_BITS) | (int(line) & _LINE_MASK)
        self.count += 1
        if 2 * self.count > self.capacity:
            self._grow()
        return None

    def _grow(self) -> None:
        hi, lo, where = self._hi, self._lo, self._where
        used = np.flatnonzero((hi != 0) | (lo != 0))
        self._alloc(2 * self.capacity)
        for j in used.tolist():
            a, b = int(hi[j]), int(lo[j])
            i, _ = self._slot(a, b)
            self._hi[i], self._lo[i], self._where[i] = a, b, where[j]
