"""Completed LLM results, keyed by a hash of (model, prompt, schema, sampling parameters).

The cache sits behind a tiny interface (:class:`ResultCache`: ``get`` / ``put``) so that the local folder used by
default can be swapped for object storage without touching the callers. A retried or re-run partition asks the
cache first and only generates what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from ..storage import atomic_write


@runtime_checkable
class ResultCache(Protocol):
    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...


def cache_key(model: str, messages: list[dict[str, str]], schema: dict | None, sampling: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines a reply."""
    payload = {"model": model, "messages": messages, "schema": schema, "sampling": sampling}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


class LocalDirCache:
    """``<root>/<key[:2]>/<key>.json``; writes are atomic (temporary file + rename)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            return self._path(key).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def put(self, key: str, value: str) -> None:
        atomic_write(self._path(key), lambda tmp: tmp.write_text(value, encoding="utf-8"))

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.is_dir() else 0


class MemoryCache:
    """In-process cache (tests, one-off runs)."""

    def __init__(self):
        self._d: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._d.get(key)

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._d[key] = value

    def __len__(self) -> int:
        return len(self._d)


class BlobStoreCache:
    """Over any blob store with ``get_bytes`` / ``put_bytes`` (see :mod:`dlcot_dagster.domain.storage`: a local
    folder or an S3 prefix); a missing key raises ``FileNotFoundError`` there."""

    def __init__(self, store, prefix: str = ""):
        self.store = store
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        return "/".join(p for p in (self.prefix, key[:2], f"{key}.json") if p)

    def get(self, key: str) -> str | None:
        try:
            return self.store.get_bytes(self._key(key)).decode("utf-8")
        except FileNotFoundError:
            return None

    def put(self, key: str, value: str) -> None:
        self.store.put_bytes(self._key(key), value.encode("utf-8"))
