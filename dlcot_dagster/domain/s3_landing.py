"""The landing zone on S3 (or any S3-compatible store): ``s3://bucket/prefix/<teacher>/<dump files>``.

Same layout and the same :class:`~dlcot_dagster.domain.landing.Landing` protocol as the local folder, so the
sensor's two-stage change detection works unchanged:

- **listing** (cheap, one paginated LIST per teacher): key suffix, size, LastModified and ETag per object. The
  listing signature includes the ETag, so a same-size rewrite within LastModified's one-second resolution is seen.
- **content hash** (no object is read): SHA-256 over ``(key suffix, ETag, size)`` of every tracked object. For a
  single-part PUT the ETag is the MD5 of the bytes, so the same bytes give the same hash and a touch/re-upload of
  identical content never runs twice. Limits: a multipart upload's ETag depends on the part size, and SSE-KMS/SSE-C
  ETags are not MD5s; the same bytes uploaded differently then hash differently, which costs one extra
  (idempotent) run, never a missed change. The hash differs from the local landing's byte hash by design.
- **local_files** downloads the teacher's data objects into a scratch folder (one per bucket/prefix/teacher);
  an object whose ETag and size match the previous download is not fetched again. Downloads go to a temporary
  name renamed into place, so an interrupted run never leaves a truncated dump that a later run would trust.

The boto3 client is passed in (credentials from boto3's default chain); this module never imports dagster.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from .ingest import SPEC_FILENAME
from .ingest.core import GROUP_SEP, split_group_key
from .landing import LandedFile, valid_teacher_name
from .ingest.readers import is_data_file
from .ingest.sources import SourceSpec
from .storage import parse_s3_url, s3_errors

HASH_SCHEME = "s3-etag-v1"


def default_scratch_dir() -> Path:
    return Path(tempfile.gettempdir()) / "dlcot-landing"


def _tracked(rel: str) -> bool:
    """Data files anywhere below the teacher prefix (no hidden names), plus the spec at its top."""
    if not rel or rel.endswith("/"):
        return False
    if rel == SPEC_FILENAME:
        return True
    return is_data_file(rel) and not rel.rsplit("/", 1)[-1].startswith(".")


class S3Landing:
    """A landing zone under ``s3://<bucket>/<prefix>/``: one "folder" (key prefix) per teacher."""

    def __init__(self, client: Any, bucket: str, prefix: str = "", scratch_dir: str | Path | None = None):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.scratch_dir = Path(scratch_dir) if scratch_dir else default_scratch_dir()

    @classmethod
    def from_url(cls, url: str, client: Any, scratch_dir: str | Path | None = None) -> "S3Landing":
        u = parse_s3_url(url)
        return cls(client, u.bucket, u.prefix, scratch_dir)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _base(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def _teacher_prefix(self, teacher: str) -> str:
        if not valid_teacher_name(teacher):
            raise ValueError(f"invalid teacher name {teacher!r}: use letters, digits and . _ + = @ -")
        return f"{self._base()}{split_group_key(teacher)[0]}/"

    def _folders(self) -> list[str]:
        base = self._base()
        names: list[str] = []
        with s3_errors(self.client, f"listing teachers under {self.url}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base, Delimiter="/")
            for page in pages:
                names += [p["Prefix"][len(base):].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return sorted(n for n in names if n)

    def teachers(self) -> list[str]:
        """One key per teacher prefix; ``<folder>:<group>`` keys for a dump holding several teachers' columns: the
        spec's ``teachers:``, or detected from the first line of the first JSONL object (one ranged GET)."""
        out = []
        for n in self._folders():
            if not valid_teacher_name(n) or GROUP_SEP in n:
                continue
            try:
                groups = self._groups(n)
            except Exception:  # an unreadable spec or object: the run reports it
                groups = []
            out += [f"{n}{GROUP_SEP}{g}" for g in groups if valid_teacher_name(g)] or [n]
        return out

    def _groups(self, folder: str) -> list[str]:
        from .ingest.formats import group_names

        spec = self.spec(folder)
        if spec.teachers:
            return list(spec.teachers)
        data = [o for o in self._objects(folder) if o["rel"] != SPEC_FILENAME]
        if not data or not data[0]["rel"].endswith((".jsonl", ".ndjson")):
            return []
        import json

        with s3_errors(self.client, f"reading the head of s3://{self.bucket}/{data[0]['Key']}"):
            head = self.client.get_object(Bucket=self.bucket, Key=data[0]["Key"], Range="bytes=0-1048575")["Body"].read()
        line = head.split(b"\n", 1)[0]
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            return []
        return group_names(list(obj) if isinstance(obj, dict) else None, spec)

    def invalid_folders(self) -> list[str]:
        return [n for n in self._folders() if not valid_teacher_name(n) and not n.startswith(".")]

    def _objects(self, teacher: str) -> list[dict]:
        prefix = self._teacher_prefix(teacher)  # a <folder>:<group> key lists its folder
        out: list[dict] = []
        with s3_errors(self.client, f"listing s3://{self.bucket}/{prefix}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(prefix):]
                    if _tracked(rel):
                        out.append({**obj, "rel": rel, "etag": str(obj.get("ETag", "")).strip('"')})
        return sorted(out, key=lambda o: o["rel"])

    def listing(self, teacher: str) -> list[LandedFile]:
        return [
            LandedFile(o["rel"], int(o["Size"]), _mtime_ns(o.get("LastModified")), o["etag"])
            for o in self._objects(teacher)
        ]

    def content_hash(self, teacher: str) -> str:
        h = hashlib.sha256(HASH_SCHEME.encode() + b"\n")
        for o in self._objects(teacher):
            h.update(f"{o['rel']}\0{o['etag']}\0{o['Size']}\n".encode())
        return h.hexdigest()

    def _scratch(self, teacher: str) -> Path:
        folder = split_group_key(teacher)[0]
        return self.scratch_dir.joinpath(self.bucket, *filter(None, self.prefix.split("/")), folder)

    def _download(self, teacher: str, obj: dict) -> Path:
        dest = self._scratch(teacher).joinpath(*obj["rel"].split("/"))
        marker = dest.with_name(f".{dest.name}.etag")
        stamp = f"{obj['etag']}:{obj['Size']}"
        if dest.is_file() and marker.is_file() and marker.read_text() == stamp and dest.stat().st_size == obj["Size"]:
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        os.close(fd)
        try:
            with s3_errors(self.client, f"downloading s3://{self.bucket}/{obj['Key']}"):
                self.client.download_file(self.bucket, obj["Key"], tmp_name)
            os.replace(tmp_name, dest)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
        marker.write_text(stamp)
        return dest

    def spec(self, teacher: str) -> SourceSpec:
        folder, group = split_group_key(teacher)
        spec = SourceSpec()
        objects = self._objects(folder)
        for obj in objects:
            if obj["rel"] == SPEC_FILENAME:
                raw = SourceSpec.from_yaml(self._download(folder, obj), resolve_paths=False)
                spec = SourceSpec.from_yaml(self._download(folder, obj))
                if raw.problems is not None and not Path(raw.problems.path).is_absolute():
                    rel = Path(raw.problems.path).as_posix()
                    hit = [o for o in objects if o["rel"] == rel]
                    if hit:  # the problems file lives beside the dumps: fetch it next to the spec
                        self._download(folder, hit[0])
        return spec.model_copy(update={"group": group}) if group else spec

    def _problems_rel(self, folder: str, objects: list[dict]) -> str | None:
        for obj in objects:
            if obj["rel"] == SPEC_FILENAME:
                raw = SourceSpec.from_yaml(self._download(folder, obj), resolve_paths=False)
                if raw.problems is not None and not Path(raw.problems.path).is_absolute():
                    return Path(raw.problems.path).as_posix()
        return None

    def local_files(self, teacher: str, only: Callable[[str], bool] | None = None) -> list[tuple[Path, str]]:
        """Download (or reuse) every data object (or those whose key suffix ``only`` accepts: one shard's);
        ``(local path, key suffix)`` in key order."""
        folder = split_group_key(teacher)[0]
        objects = self._objects(folder)
        problems = self._problems_rel(folder, objects)  # reference data, not traces
        return [
            (self._download(folder, o), o["rel"])
            for o in objects
            if o["rel"] not in (SPEC_FILENAME, problems) and (only is None or only(o["rel"]))
        ]


def _mtime_ns(when: Any) -> int:
    if when is None:
        return 0
    try:
        return int(when.timestamp() * 1_000_000_000)
    except AttributeError:
        return 0
