"""Blob storage for everything that is not a Dagster asset: checkpoints, LLM caches, scratch results.

One small interface, two backends, chosen by a URL:

- ``LocalBlobStore("/data/blobs")`` or ``blob_store_from_url("/data/blobs")``: files under a folder;
- ``S3BlobStore(client, "bucket", "prefix")`` or ``blob_store_from_url("s3://bucket/prefix", client)``:
  objects under a prefix, with any boto3 S3 client (AWS, or an S3-compatible store through ``endpoint_url``).

Keys are ``/``-separated relative paths (``"checkpoints/qwq-32b/step-100.pt"``); ``..``, absolute keys and empty
segments are refused. Every write is complete-or-nothing: the local store writes a temporary file and renames it,
S3 makes an object visible only once its PUT (or multipart upload) completes. Credentials are never read from the
repository: boto3's default chain (environment, shared config, the pod's IAM role / IRSA) provides them.

Connection failures raise :class:`StorageUnavailableError` naming the URI and the endpoint, so a step that loses
its object store fails with a message that says so; a retry succeeds once the store is back.

This module never imports dagster.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

S3_SCHEME = "s3://"


class StorageUnavailableError(RuntimeError):
    """The object store could not be reached (connection refused, DNS, timeouts after boto3's retries)."""


@dataclass(frozen=True)
class S3Url:
    bucket: str
    prefix: str  # no leading or trailing slash; may be empty

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/"))

    def uri(self, *parts: str) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key(*parts)}"


def is_s3_url(url: str | os.PathLike | None) -> bool:
    return isinstance(url, str) and url.startswith(S3_SCHEME)


def parse_s3_url(url: str) -> S3Url:
    """``s3://bucket/some/prefix/`` -> ``S3Url("bucket", "some/prefix")``."""
    if not is_s3_url(url):
        raise ValueError(f"not an s3:// URL: {url!r}")
    rest = url[len(S3_SCHEME):]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"s3 URL without a bucket: {url!r}")
    return S3Url(bucket, prefix.strip("/"))


def check_key(key: str) -> str:
    """A relative ``/``-separated key without empty, ``.`` or ``..`` segments."""
    if not key or key.startswith("/") or "\\" in key:
        raise ValueError(f"invalid blob key {key!r}: use a relative path with '/' separators")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid blob key {key!r}: empty, '.' or '..' segment")
    return key


def _connection_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
        from botocore.exceptions import ConnectTimeoutError
    except ImportError:  # boto3 is a dependency, but keep the local store usable without it
        return ()
    return (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectTimeoutError)


@contextmanager
def s3_errors(client: Any, what: str) -> Iterator[None]:
    """Turn botocore connection errors into :class:`StorageUnavailableError` with the URI and endpoint."""
    try:
        yield
    except _connection_errors() as exc:
        endpoint = getattr(getattr(client, "meta", None), "endpoint_url", "?")
        raise StorageUnavailableError(
            f"S3 endpoint {endpoint} unreachable while {what}: {exc}. "
            "Check that the object store is up and DLCOT_S3_ENDPOINT_URL / AWS_ENDPOINT_URL point at it; "
            "the step can be retried once it is back."
        ) from exc


def is_not_found(exc: BaseException) -> bool:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class BlobStore(Protocol):
    """What checkpoint and cache code needs from storage (local folder or S3 prefix)."""

    def uri(self, key: str = "") -> str: ...

    def exists(self, key: str) -> bool: ...

    def put_bytes(self, key: str, data: bytes) -> str: ...

    def get_bytes(self, key: str) -> bytes: ...

    def put_file(self, key: str, path: str | Path) -> str: ...

    def get_file(self, key: str, path: str | Path) -> Path: ...

    def list_keys(self, prefix: str = "") -> list[str]: ...

    def delete(self, key: str) -> None: ...


class LocalBlobStore:
    """Blobs as files under ``root``; writes go to a temporary file renamed into place."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def uri(self, key: str = "") -> str:
        return str(self._path(key)) if key else str(self.root)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _atomic_write(self, key: str, write) -> str:
        return str(atomic_write(self._path(key), write))

    def put_bytes(self, key: str, data: bytes) -> str:
        return self._atomic_write(key, lambda tmp: tmp.write_bytes(data))

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"no blob at {path}")
        return path.read_bytes()

    def put_file(self, key: str, path: str | Path) -> str:
        return self._atomic_write(key, lambda tmp: shutil.copyfile(path, tmp))

    def get_file(self, key: str, path: str | Path) -> Path:
        src = self._path(key)
        if not src.is_file():
            raise FileNotFoundError(f"no blob at {src}")
        return atomic_write(path, lambda tmp: shutil.copyfile(src, tmp))

    def list_keys(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not Path(k).name.startswith("."))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def atomic_write(dest: str | Path, write: Callable[[Path], object]) -> Path:
    """Complete-or-nothing file write: ``write(tmp)`` fills a temporary file beside ``dest``, which is then
    renamed into place, so readers never see a partial file and a failure leaves the previous one intact."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


class S3BlobStore:
    """Blobs as objects under ``s3://bucket/prefix/``, with a boto3 S3 client passed in."""

    def __init__(self, client: Any, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_url(cls, url: str, client: Any) -> "S3BlobStore":
        u = parse_s3_url(url)
        return cls(client, u.bucket, u.prefix)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str = "") -> str:
        return f"{S3_SCHEME}{self.bucket}/{self._key(key) if key else self.prefix}"

    def exists(self, key: str) -> bool:
        with s3_errors(self.client, f"checking {self.uri(key)}"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
                return True
            except Exception as exc:  # botocore.exceptions.ClientError
                if is_not_found(exc):
                    return False
                raise

    def put_bytes(self, key: str, data: bytes) -> str:
        with s3_errors(self.client, f"writing {self.uri(key)}"):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        with s3_errors(self.client, f"reading {self.uri(key)}"):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
            except Exception as exc:
                if is_not_found(exc):
                    raise FileNotFoundError(f"no blob at {self.uri(key)}") from exc
                raise

    def put_file(self, key: str, path: str | Path) -> str:
        # upload_file switches to multipart above 8 MiB; the object appears only when the upload completes
        with s3_errors(self.client, f"uploading {path} to {self.uri(key)}"):
            self.client.upload_file(str(path), self.bucket, self._key(key))
        return self.uri(key)

    def get_file(self, key: str, path: str | Path) -> Path:
        dest = Path(path)

        def download(tmp: Path) -> None:
            try:
                self.client.download_file(self.bucket, self._key(key), str(tmp))
            except Exception as exc:
                if is_not_found(exc):
                    raise FileNotFoundError(f"no blob at {self.uri(key)}") from exc
                raise

        with s3_errors(self.client, f"downloading {self.uri(key)}"):
            return atomic_write(dest, download)

    def list_keys(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        with s3_errors(self.client, f"listing {self.uri()}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base + prefix):
                keys += [o["Key"][len(base):] for o in page.get("Contents", []) if not o["Key"].endswith("/")]
        return sorted(keys)

    def delete(self, key: str) -> None:
        with s3_errors(self.client, f"deleting {self.uri(key)}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def blob_store_from_url(url: str | Path, client: Any | None = None) -> LocalBlobStore | S3BlobStore:
    """``s3://bucket/prefix`` (needs a boto3 client) or a local folder."""
    if is_s3_url(str(url)):
        if client is None:
            raise ValueError(f"{url}: an S3 blob store needs a boto3 S3 client")
        return S3BlobStore.from_url(str(url), client)
    return LocalBlobStore(url)
