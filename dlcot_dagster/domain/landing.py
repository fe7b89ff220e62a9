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
from .ingest.core import GROUP_SEP, split_group_key, teacher_groups
from .ingest.sources import SourceSpec

# Dagster partition keys and path segments: keep teacher names simple
TEACHER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=@-]{0,127}$")


def valid_teacher_name(name: str) -> bool:
    """A folder name, or ``<folder>:<group>`` (one teacher's columns of a multi-teacher dump)."""
    folder, group = split_group_key(name)
    return bool(TEACHER_NAME_RE.match(folder)) and (group is None or bool(TEACHER_NAME_RE.match(group)))


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
        return self.root / split_group_key(teacher)[0]

    def teachers(self) -> list[str]:
        """One key per teacher folder; a folder whose dumps hold several teachers' columns (s1K-1.1) gives one
        ``<folder>:<group>`` key per teacher instead."""
        if not self.root.is_dir():
            return []
        out = []
        for p in sorted(self.root.iterdir()):
            if not (p.is_dir() and valid_teacher_name(p.name) and GROUP_SEP not in p.name):
                continue
            try:
                groups = teacher_groups(list_data_files(p), load_spec(p))
            except ValueError:  # an invalid spec: the run reports it
                groups = []
            out += [f"{p.name}{GROUP_SEP}{g}" for g in groups if valid_teacher_name(g)] or [p.name]
        return out

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
            problems = _problems_file(folder)
            if problems is not None:
                files.append(problems)  # reference data: a change re-runs the teacher, but it is not ingested
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
        spec = load_spec(self._folder(teacher))
        group = split_group_key(teacher)[1]
        return spec.model_copy(update={"group": group}) if group else spec

    def local_files(self, teacher: str) -> list[tuple[Path, str]]:
        folder = self._folder(teacher)
        return named_files(folder)


def _problems_file(folder: Path) -> Path | None:
    """The problems file the folder's spec joins, when it lies inside the folder."""
    try:
        spec = load_spec(folder)
    except ValueError:
        return None
    if spec.problems is None:
        return None
    p = Path(spec.problems.path)
    try:
        p.resolve().relative_to(folder.resolve())
    except ValueError:
        return None
    return p if p.is_file() else None


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
