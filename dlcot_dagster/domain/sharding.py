"""Shards: split a large teacher dump into sub-partitions so one teacher fans out over many runs and pods.

A teacher configured with ``N > 1`` shards is exposed as dynamic partition keys ``<teacher>~shard-<i>`` (``~``
never occurs in teacher names, so the split is unambiguous). A data file belongs to shard
``sha256(file name) mod N``: the assignment depends on the file's own name only, so adding, changing or removing
one file touches exactly one shard and never moves other files between shards. :class:`ShardedLanding` wraps any
landing (local or S3) and keeps the :class:`~.landing.Landing` protocol, so the sensor requests one run per changed
shard and ``raw_traces`` ingests only the shard's files (S3: downloads only those), with no change to either.

Limits (see k8s/README.md, "Sharding"):
- a file is the smallest unit: one huge file stays one shard; split such dumps upstream (e.g. ``split -l``);
- the duplicate-id check runs within a shard: with ``id_scope: teacher`` an id repeated in two shards is not
  caught (the default ``id_scope: file`` makes ids file-scoped, hence unique across shards);
- the partition key (``qwq~shard-003``) is what the stage tables record as ``teacher`` and what
  ``tokenizer.per_teacher`` is looked up by; :func:`split_partition_key` recovers the teacher;
- changing N re-shards the teacher: the old shard partitions must be deleted by hand, or their rows are stale;
- the per-teacher result is the union of its shard partitions (``<asset>/<teacher>~shard-*.parquet``).

This module never imports dagster.
"""

from __future__ import annotations

import hashlib
import inspect
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


class ShardedLanding:
    """A landing whose large teachers (``shards[teacher] > 1``) appear as ``<teacher>~shard-<i>`` keys."""

    def __init__(self, inner: Any, shards: dict[str, int]):
        self.inner = inner
        self.shards = {t: int(n) for t, n in shards.items() if int(n) > 1}

    def _split(self, key: str) -> tuple[str, int | None, int]:
        teacher, index = split_partition_key(key)
        n = self.shards.get(teacher, 0)
        if index is not None and not (n and 0 <= index < n):
            raise ValueError(f"{key!r}: teacher {teacher!r} is not configured with a shard {index}")
        return teacher, index, n

    def _in_shard(self, name: str, index: int, n: int) -> bool:
        return name == SPEC_FILENAME or shard_of(name, n) == index

    def teachers(self) -> list[str]:
        out: list[str] = []
        for teacher in self.inner.teachers():
            n = self.shards.get(teacher, 0)
            if not n:
                out.append(teacher)
                continue
            used = {shard_of(f.name, n) for f in self.inner.listing(teacher) if f.name != SPEC_FILENAME}
            out += [shard_partition_key(teacher, i) for i in sorted(used)]
        return out

    def invalid_folders(self) -> list[str]:
        return self.inner.invalid_folders() if hasattr(self.inner, "invalid_folders") else []

    def listing(self, key: str) -> list[LandedFile]:
        teacher, index, n = self._split(key)
        files = self.inner.listing(teacher)
        return files if index is None else [f for f in files if self._in_shard(f.name, index, n)]

    def content_hash(self, key: str) -> str:
        teacher, index, n = self._split(key)
        if index is None:
            return self.inner.content_hash(teacher)
        h = hashlib.sha256(f"shard-v1\0{index}/{n}\n".encode())
        h.update(self.inner.spec(teacher).model_dump_json().encode() + b"\n")  # a mapping change reruns every shard
        listing = [f for f in self.listing(key) if f.name != SPEC_FILENAME]
        if listing and all(f.etag for f in listing):  # object store: ETags stand for the bytes
            for f in listing:
                h.update(f"{f.name}\0{f.etag}\0{f.size}\n".encode())
        else:  # local files: the bytes themselves
            for path, name in self._local(teacher, index, n):
                h.update(name.encode() + b"\0")
                with open(path, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
                h.update(b"\0")
        return h.hexdigest()

    def spec(self, key: str):
        return self.inner.spec(self._split(key)[0])

    def _local(self, teacher: str, index: int, n: int) -> list[tuple[Path, str]]:
        if "only" in inspect.signature(self.inner.local_files).parameters:  # S3Landing: download only the shard
            return self.inner.local_files(teacher, only=lambda name: shard_of(name, n) == index)
        return [(p, name) for p, name in self.inner.local_files(teacher) if shard_of(name, n) == index]

    def local_files(self, key: str) -> list[tuple[Path, str]]:
        teacher, index, n = self._split(key)
        return self.inner.local_files(teacher) if index is None else self._local(teacher, index, n)
