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
        return f"{self._base()}{teacher}/"

    def _folders(self) -> list[str]:
        base = self._base()
        names: list[str] = []
        with s3_errors(self.client, f"listing teachers under {self.url}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base, Delimiter="/")
            for page in pages:
                names += [p["Prefix"][len(base):].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return sorted(n for n in names if n)

    def teachers(self) -> list[str]:
        return [n for n in self._folders() if valid_teacher_name(n)]

    def invalid_folders(self) -> list[str]:
        return [n for n in self._folders() if not valid_teacher_name(n) and not n.startswith(".")]

    def _objects(self, teacher: str) -> list[dict]:
        prefix = self._teacher_prefix(teacher)
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
        return self.scratch_dir.joinpath(self.bucket, *filter(None, self.prefix.split("/")), teacher)

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
        for obj in self._objects(teacher):
            if obj["rel"] == SPEC_FILENAME:
                return SourceSpec.from_yaml(self._download(teacher, obj))
        return SourceSpec()

    def local_files(self, teacher: str, only: Callable[[str], bool] | None = None) -> list[tuple[Path, str]]:
        """Download (or reuse) every data object (or those whose key suffix ``only`` accepts: one shard's);
        ``(local path, key suffix)`` in key order."""
        return [
            (self._download(teacher, o), o["rel"])
            for o in self._objects(teacher)
            if o["rel"] != SPEC_FILENAME and (only is None or only(o["rel"]))
        ]


def _mtime_ns(when: Any) -> int:
    if when is None:
        return 0
    try:
        return int(when.timestamp() * 1_000_000_000)
    except AttributeError:
        return 0
