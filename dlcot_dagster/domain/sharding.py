"""Shards: split a large teacher dump into sub-partitions so one teacher fans out over many runs and pods.

A sharded teacher (``N > 1``) is exposed as dynamic partition keys ``<teacher>~shard-<i>`` (``~`` never occurs in
teacher names, so the split is unambiguous). A data file belongs to shard ``sha256(file name) mod N``: the
assignment depends on the file's own name only, so adding, changing or removing one file touches exactly one shard
and never moves other files between shards. :class:`ShardedLanding` wraps any landing (local or S3) and keeps the
:class:`~.landing.Landing` protocol, so the sensor requests one run per changed shard and ``raw_traces`` ingests
only the shard's files (S3: downloads only those).

How N is chosen, per teacher (:meth:`ShardedLanding.shard_count`), the largest of:
- the explicit count (``shards``, env ``DLCOT_SHARDS``), as before;
- by size (``above_bytes``, env ``DLCOT_SHARD_ABOVE_BYTES``; off by default): a teacher whose data files total
  more than X bytes gets the smallest power of two N with ``total / N <= X`` (:func:`shards_for_size`);
- a floor from the partitions already registered: never fewer than the smallest power of two above the highest
  registered shard index, so N is monotone (deleting data never shrinks N and never strands a registered shard).
Powers of two on purpose: going from N to 2N splits shard i into i and i + N and moves no file between unrelated
shards. The listing signature of shard i then changes, so the sensor re-runs exactly the shards whose file set
changed (unchanged shards keep their run), adds the new keys, and no row sits in two shard tables once those runs
finished.

Keys that hold no files any more (:meth:`ShardedLanding.runs_when_empty`): a registered shard emptied by a split
or by deletions, and the bare ``<teacher>`` key of a teacher that ran unsharded before crossing the threshold (for
a sharded teacher the bare key holds no files). The sensor requests one run of such a key; it ingests nothing, so
its tables become empty (0 rows) instead of keeping rows that now live in the shard partitions. The partition
itself is left registered (delete it by hand if unwanted); the sensor warns about a superseded bare key.

Limits (see k8s/README.md, "Sharding"):
- a file is the smallest unit: one huge file stays one shard; split such dumps upstream (e.g. ``split -l``);
- the duplicate-id check runs within a shard: with ``id_scope: teacher`` an id repeated in two shards is not
  caught (the default ``id_scope: file`` makes ids file-scoped, hence unique across shards);
- the partition key (``qwq~shard-003``) is what the stage tables record as ``teacher`` and what
  ``tokenizer.per_teacher`` is looked up by; :func:`split_partition_key` recovers the teacher;
- N only grows; an N that is not a power of two (an explicit count such as 12) re-shards broadly when it changes
  (still no double counting once the requested runs finished, but many shards re-run);
- between the sensor tick and the run, new data can raise N: the run then ingests the shard under the new N and the
  next tick re-runs whatever changed;
- the per-teacher result is the union of its shard partitions (``<asset>/<teacher>~shard-*.parquet``).

This module never imports dagster.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .ingest import SPEC_FILENAME
from .landing import LandedFile

SHARD_SEP = "~"


def shard_partition_key(teacher: str, index: int) -> str:
    return f"{teacher}{SHARD_SEP}shard-{index:03d}"


def split_partition_key(key: str) -> tuple[str, int | None]:
    """``"qwq~shard-003"`` -> ``("qwq", 3)``; ``"qwq"`` -> ``("qwq", None)``."""
    teacher, sep, rest = key.partition(SHARD_SEP)
    if not sep:
        return key, None
    if not rest.startswith("shard-") or not rest[6:].isdigit():
        raise ValueError(f"invalid shard partition key {key!r}: expected <teacher>~shard-<number>")
    return teacher, int(rest[6:])


def shard_of(name: str, shards: int) -> int:
    """The shard of a data file, from its name relative to the teacher folder; stable across runs and machines."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % shards


def next_power_of_two(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def shards_for_size(total_bytes: int, above_bytes: int | None) -> int:
    """The smallest power of two N with ``total_bytes / N <= above_bytes``; 1 when the threshold is off or not hit."""
    if not above_bytes or total_bytes <= above_bytes:
        return 1
    return next_power_of_two(-(-total_bytes // above_bytes))  # ceil(total / X), rounded up to a power of two


class ShardedLanding:
    """A landing whose large teachers (``N > 1``, see :meth:`shard_count`) appear as ``<teacher>~shard-<i>`` keys.

    ``registered``: the partition keys already registered (the sensor and ``raw_traces`` pass the instance's
    dynamic partitions): they keep N from shrinking, and registered keys without files stay listed (so an emptied
    shard is re-run empty).
    """

    def __init__(self, inner: Any, shards: dict[str, int], above_bytes: int | None = None, registered: Iterable[str] = ()):
        self.inner = inner
        self.shards = {t: int(n) for t, n in shards.items() if int(n) > 1}
        if above_bytes is not None and int(above_bytes) < 0:
            raise ValueError(f"shard_above_bytes must be a number of bytes (None or 0 = off), got {above_bytes!r}")
        self.above_bytes = int(above_bytes) if above_bytes else None
        self.registered: dict[str, set[int | None]] = {}
        for key in registered:
            try:
                teacher, index = split_partition_key(key)
            except ValueError:
                continue
            self.registered.setdefault(teacher, set()).add(index)

    def shard_count(self, teacher: str, listing: list[LandedFile] | None = None) -> int:
        """N for a teacher: max(explicit count, by size, registered floor); 1 = unsharded."""
        n = self.shards.get(teacher, 1)
        if self.above_bytes:
            files = self.inner.listing(teacher) if listing is None else listing
            n = max(n, shards_for_size(sum(f.size for f in files if f.name != SPEC_FILENAME), self.above_bytes))
        indices = [i for i in self.registered.get(teacher, ()) if i is not None]
        floor = max(2, max(indices) + 1) if indices else 1  # a registered shard key: the teacher stays sharded
        return n if floor <= n else next_power_of_two(floor)

    def _split(self, key: str) -> tuple[str, int | None, int, list[LandedFile]]:
        teacher, index = split_partition_key(key)
        files = self.inner.listing(teacher)
        n = self.shard_count(teacher, files)
        if index is not None and not (n > 1 and 0 <= index < n):
            raise ValueError(f"{key!r}: teacher {teacher!r} has {n} shard(s), not a shard {index}")
        return teacher, index, n, files

    def _in_shard(self, name: str, index: int | None, n: int) -> bool:
        if name == SPEC_FILENAME:
            return True
        if index is None:  # the bare key: the whole teacher if unsharded, nothing once sharded
            return n == 1
        return shard_of(name, n) == index

    def teachers(self) -> list[str]:
        out: list[str] = []
        for teacher in self.inner.teachers():
            files = self.inner.listing(teacher)
            n = self.shard_count(teacher, files)
            if n == 1:
                out.append(teacher)
                continue
            keys = {shard_of(f.name, n) for f in files if f.name != SPEC_FILENAME} | self.registered.get(teacher, set())
            out += [teacher] if None in keys else []  # a bare key registered before the teacher was sharded
            out += [shard_partition_key(teacher, i) for i in sorted(i for i in keys if i is not None)]
        return out

    def runs_when_empty(self, key: str) -> bool:
        """True for keys of a sharded teacher: without files they still get one run, which empties their tables."""
        teacher, _ = split_partition_key(key)
        return self.shard_count(teacher) > 1

    def superseded(self, key: str) -> bool:
        """The bare ``<teacher>`` key of a teacher that is sharded now (it ran unsharded before)."""
        teacher, index = split_partition_key(key)
        return index is None and self.shard_count(teacher) > 1

    def invalid_folders(self) -> list[str]:
        return self.inner.invalid_folders() if hasattr(self.inner, "invalid_folders") else []

    def listing(self, key: str) -> list[LandedFile]:
        _, index, n, files = self._split(key)
        return [f for f in files if self._in_shard(f.name, index, n)]

    def content_hash(self, key: str) -> str:
        teacher, index, n, files = self._split(key)
        if n == 1:
            return self.inner.content_hash(teacher)
        h = hashlib.sha256(f"shard-v1\0{index}/{n}\n".encode())
        h.update(self.inner.spec(teacher).model_dump_json().encode() + b"\n")  # a mapping change reruns every shard
        listing = [f for f in files if f.name != SPEC_FILENAME and self._in_shard(f.name, index, n)]
        if listing and all(f.etag for f in listing):  # object store: ETags stand for the bytes
            for f in listing:
                h.update(f"{f.name}\0{f.etag}\0{f.size}\n".encode())
        elif listing:  # local files: the bytes themselves
            for path, name in self._local(teacher, index, n):
                h.update(name.encode() + b"\0")
                with open(path, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
                h.update(b"\0")
        return h.hexdigest()

    def spec(self, key: str):
        return self.inner.spec(split_partition_key(key)[0])

    def _local(self, teacher: str, index: int | None, n: int) -> list[tuple[Path, str]]:
        if index is None:
            return []  # the bare key of a sharded teacher holds no files
        if "only" in inspect.signature(self.inner.local_files).parameters:  # S3Landing: download only the shard
            return self.inner.local_files(teacher, only=lambda name: shard_of(name, n) == index)
        return [(p, name) for p, name in self.inner.local_files(teacher) if shard_of(name, n) == index]

    def local_files(self, key: str) -> list[tuple[Path, str]]:
        teacher, index, n, _ = self._split(key)
        return self.inner.local_files(teacher) if n == 1 else self._local(teacher, index, n)
