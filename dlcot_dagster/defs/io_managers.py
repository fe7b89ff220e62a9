"""Parquet storage for Polars frames, one file per asset partition."""

from __future__ import annotations

from pathlib import Path

import tempfile
import time

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource
from pydantic import Field

from ..domain.storage import S3BlobStore
from .settings import default_storage_dir, storage_location
from ..domain.storage import atomic_write


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores each output as ``<base_dir>/<asset key path>/<partition>.parquet``.

    Writes go to a temporary file that is renamed into place, so a failed or
    interrupted step leaves the previous materialization intact.
    """

    base_dir: str = Field(default_factory=default_storage_dir, description="root folder for asset files")

    def _path(self, context: dg.OutputContext | dg.InputContext) -> Path:
        key = context.asset_key.path
        base = Path(self.base_dir).joinpath(*key)
        if context.has_asset_partitions:
            return base / f"{context.asset_partition_key}.parquet"
        return base.with_suffix(".parquet")

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: ParquetIOManager stores polars DataFrames, got {type(obj).__name__}")
        path = atomic_write(self._path(context), lambda tmp: obj.write_parquet(tmp, compression="zstd"))
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path)), "stored_rows": obj.height})

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        path = self._path(context)
        if not path.is_file():
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()}: no stored output at {path}; materialize it first"
            )
        return pl.read_parquet(path)


def _rel_key(context: dg.OutputContext | dg.InputContext) -> str:
    key = "/".join(context.asset_key.path)
    if context.has_asset_partitions:
        return f"{key}/{context.asset_partition_key}.parquet"
    return f"{key}.parquet"


class S3ParquetIOManager(dg.ConfigurableIOManager):
    """Stores each output as ``s3://<bucket>/<prefix>/<asset key path>/<partition>.parquet`` (the local layout).

    The frame is written to a local temporary Parquet file and then uploaded: an S3 object becomes visible only
    when its PUT (or multipart upload) completes, so a failed or killed step leaves the previous object intact
    and never a partial one. Connection failures raise ``StorageUnavailableError`` naming the endpoint.
    """

    url: str = Field(default_factory=storage_location, description="s3://bucket/prefix for asset files")
    s3: S3Resource

    def _store(self) -> S3BlobStore:
        return S3BlobStore.from_url(self.url, self.s3.get_client())

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: S3ParquetIOManager stores polars DataFrames, got {type(obj).__name__}"
            )
        store, key = self._store(), _rel_key(context)
        with tempfile.TemporaryDirectory(prefix="dlcot-parquet-") as tmp:
            path = Path(tmp) / "out.parquet"
            obj.write_parquet(path, compression="zstd")
            size = path.stat().st_size
            t0 = time.perf_counter()
            uri = store.put_file(key, path)
            seconds = time.perf_counter() - t0
        context.add_output_metadata(
            {
                "path": dg.MetadataValue.path(uri),
                "stored_rows": obj.height,
                "stored_bytes": size,
                "upload_seconds": round(seconds, 4),
            }
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        store, key = self._store(), _rel_key(context)
        with tempfile.TemporaryDirectory(prefix="dlcot-parquet-") as tmp:
            try:
                path = store.get_file(key, Path(tmp) / "in.parquet")
            except FileNotFoundError as exc:
                raise FileNotFoundError(
                    f"{context.asset_key.to_user_string()}: no stored output at {store.uri(key)}; materialize it first"
                ) from exc
            return pl.read_parquet(path)
