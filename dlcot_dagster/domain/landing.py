"""The landing zone: one sub-folder per teacher, holding that teacher's dumps.

``<landing>/<teacher>/*.jsonl|*.json|*.parquet`` (sub-folders allowed), plus an
optional ``dlcot_source.yaml`` field mapping. This module lists teachers and
files and decides, from a cursor, which teachers changed. Change detection is
two-staged: a cheap signature over names, sizes and mtimes says *whether to
look*; a content hash says *whether the data really changed*, so touching a
file never reprocesses it, and the same content never runs twice.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .ingest import SPEC_FILENAME, list_data_files, load_spec, named_files
from .ingest.sources import SourceSpec

# Dagster partition keys and path segments: keep teacher names simple
TEACHER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=@-]{0,127}$")


def valid_teacher_name(name: str) -> bool:
    return bool(TEACHER_NAME_RE.match(name))


@dataclass(frozen=True)
class LandedFile:
    name: str  # path relative to the teacher folder (or object key suffix)
    size: int
    mtime_ns: int
    etag: str = ""  # object stores: the object's ETag (a rewrite within the same second changes it)


class Landing(Protocol):
    """What the pipeline needs from a landing zone (local folder or object store)."""

    def teachers(self) -> list[str]: ...

    def listing(self, teacher: str) -> list[LandedFile]: ...

    def content_hash(self, teacher: str) -> str: ...

    def spec(self, teacher: str) -> SourceSpec: ...

    def local_files(self, teacher: str) -> list[tuple[Path, str]]: ...


def listing_signature(listing: list[LandedFile]) -> str:
    h = hashlib.sha256()
    for f in sorted(listing, key=lambda f: f.name):
        etag = f"\0{f.etag}" if f.etag else ""  # local files have none: their signatures are unchanged
        h.update(f"{f.name}\0{f.size}\0{f.mtime_ns}{etag}\n".encode())
    return h.hexdigest()


class LocalLanding:
    """A landing zone on a local (or mounted) file system."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    def _folder(self, teacher: str) -> Path:
        if not valid_teacher_name(teacher):
            raise ValueError(f"invalid teacher name {teacher!r}: use letters, digits and . _ + = @ -")
        return self.root / teacher

    def teachers(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and valid_teacher_name(p.name))

    def invalid_folders(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not valid_teacher_name(p.name) and not p.name.startswith(".")
        )

    def _tracked(self, teacher: str) -> list[Path]:
        folder = self._folder(teacher)
        if not folder.is_dir():
            return []
        files = list_data_files(folder)
        if (folder / SPEC_FILENAME).is_file():
            files.append(folder / SPEC_FILENAME)
        return files

    def listing(self, teacher: str) -> list[LandedFile]:
        folder = self._folder(teacher)
        out = []
        for p in self._tracked(teacher):
            try:
                st = p.stat()
            except OSError:
                continue  # vanished between listing and stat
            out.append(LandedFile(p.relative_to(folder).as_posix(), st.st_size, st.st_mtime_ns))
        return sorted(out, key=lambda f: f.name)

    def content_hash(self, teacher: str) -> str:
        folder = self._folder(teacher)
        h = hashlib.sha256()
        for p in sorted(self._tracked(teacher)):
            h.update(p.relative_to(folder).as_posix().encode() + b"\0")
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            h.update(b"\0")
        return h.hexdigest()

    def spec(self, teacher: str) -> SourceSpec:
        return load_spec(self._folder(teacher))

    def local_files(self, teacher: str) -> list[tuple[Path, str]]:
        folder = self._folder(teacher)
        return named_files(folder)


@dataclass(frozen=True)
class LandingChange:
    teacher: str
    content_hash: str

    @property
    def run_key(self) -> str:
        return f"{self.teacher}:{self.content_hash[:20]}"


def plan_changes(landing: Landing, cursor: dict[str, dict]) -> tuple[list[str], list[LandingChange], dict[str, dict]]:
    """Compare the landing zone with a cursor.

    Returns (teachers present, changed teachers to run, new cursor). The cursor
    maps teacher -> {"sig": listing signature, "hash": content hash}. A teacher
    folder without data files is listed but never run, unless the landing says
    ``runs_when_empty(key)`` (a sharded landing, for shard keys emptied by a split
    or by deletions): such a key runs once each time it becomes empty, with no
    files, so its tables stop holding rows that now live in other partitions.
    """
    teachers = landing.teachers()
    runs_when_empty = getattr(landing, "runs_when_empty", None)
    changes: list[LandingChange] = []
    new_cursor: dict[str, dict] = {}
    for teacher in teachers:
        listing = landing.listing(teacher)
        sig = listing_signature(listing)
        prev = cursor.get(teacher, {})
        if prev.get("sig") == sig:
            new_cursor[teacher] = prev
            continue
        has_data = any(not f.name.endswith(SPEC_FILENAME) for f in listing)
        if not has_data and runs_when_empty is not None and runs_when_empty(teacher):
            if prev.get("empty"):  # already emptied: nothing to run
                new_cursor[teacher] = {**prev, "sig": sig}
                continue
            # unique per emptying (after content X), so a later emptying is not deduplicated away by the run key
            digest = hashlib.sha256(f"empty\0{prev.get('hash', '')}".encode()).hexdigest()
            new_cursor[teacher] = {"sig": sig, "hash": digest, "empty": True}
            changes.append(LandingChange(teacher, digest))
            continue
        digest = landing.content_hash(teacher) if has_data else ""
        new_cursor[teacher] = {"sig": sig, "hash": digest}
        if has_data and digest != prev.get("hash"):
            changes.append(LandingChange(teacher, digest))
    return teachers, changes, new_cursor
