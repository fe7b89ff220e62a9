"""Parquet storage for Polars frames, one file per asset partition.

Outputs are Polars frames, or a :class:`~dlcot_dagster.domain.stream.StagedTable` (a finished Parquet file a
streaming stage wrote batch by batch), which is moved (local) or uploaded (S3) into place without loading it.
An input annotated :class:`~dlcot_dagster.domain.stream.ParquetTable` is handed over unread, to be consumed in
batches; any other input is read into a frame.
"""

from __future__ import annotations

from pathlib import Path

import tempfile
import time
import typing

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource
from pydantic import Field

import shutil
import weakref

from ..domain.storage import S3BlobStore, atomic_write
from ..domain.stream import ParquetTable, StagedTable, StorageWriteError, place_file
from .settings import default_storage_dir, scratch_dir, storage_location


def _wants_table(context: dg.InputContext) -> bool:
    """The input is annotated ParquetTable (or dict[str, ParquetTable] for every partition of an upstream)."""
    try:
        t = getattr(context.dagster_type, "typing_type", None)
    except dg.DagsterInvariantViolationError:  # a hand-built context (tests, scripts) without a type
        return False
    return t is ParquetTable or (typing.get_origin(t) is dict and ParquetTable in typing.get_args(t))


def _check_obj(context: dg.OutputContext, obj, who: str) -> None:
    if not isinstance(obj, (pl.DataFrame, StagedTable)):
        raise TypeError(
            f"{context.asset_key.to_user_string()}: {who} stores polars DataFrames or staged Parquet tables, "
            f"got {type(obj).__name__}"
        )


def _describe_write_error(context: dg.OutputContext, where: str, exc: BaseException) -> StorageWriteError:
    what = context.asset_key.to_user_string()
    if context.has_asset_partitions:
        what += f" partition {context.asset_partition_key!r}"
    return StorageWriteError(
        getattr(exc, "errno", 0) or 0,
        f"could not store {what} at {where}: {type(exc).__name__}: {exc}. The previous materialization is intact.",
    )


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

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | StagedTable) -> None:
        _check_obj(context, obj, "ParquetIOManager")
        dest = self._path(context)
        try:
            if isinstance(obj, StagedTable):
                path, rows = place_file(obj.path, dest), obj.rows
            else:
                path, rows = atomic_write(dest, lambda tmp: obj.write_parquet(tmp, compression="zstd")), obj.height
        except OSError as exc:
            raise _describe_write_error(context, str(dest), exc) from exc
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path)), "stored_rows": rows})

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | ParquetTable | dict:
        if _all_partitions(context):
            return {k: self._load(context, self._partition_path(context, k)) for k in context.asset_partition_keys}
        return self._load(context, self._path(context))

    def _partition_path(self, context: dg.InputContext, key: str) -> Path:
        return Path(self.base_dir).joinpath(*context.asset_key.path) / f"{key}.parquet"

    def _load(self, context: dg.InputContext, path: Path) -> pl.DataFrame | ParquetTable:
        if not path.is_file():
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()}: no stored output at {path}; materialize it first"
            )
        if _wants_table(context):
            return ParquetTable(path)
        return pl.read_parquet(path)


def _all_partitions(context: dg.InputContext) -> bool:
    """An unpartitioned step reading every partition of a partitioned upstream (AllPartitionMapping): the input is
    a dict partition key -> table."""
    return context.has_asset_partitions and not context.has_partition_key


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

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | StagedTable) -> None:
        _check_obj(context, obj, "S3ParquetIOManager")
        store, key = self._store(), _rel_key(context)
        with tempfile.TemporaryDirectory(prefix="dlcot-parquet-", dir=scratch_dir()) as tmp:
            if isinstance(obj, StagedTable):
                path, rows = obj.path, obj.rows
            else:
                path, rows = Path(tmp) / "out.parquet", obj.height
                try:
                    obj.write_parquet(path, compression="zstd")
                except OSError as exc:
                    raise _describe_write_error(context, str(path), exc) from exc
            size = path.stat().st_size
            t0 = time.perf_counter()
            uri = store.put_file(key, path)
            seconds = time.perf_counter() - t0
        context.add_output_metadata(
            {
                "path": dg.MetadataValue.path(uri),
                "stored_rows": rows,
                "stored_bytes": size,
                "upload_seconds": round(seconds, 4),
            }
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | ParquetTable | dict:
        if _all_partitions(context):
            base = "/".join(context.asset_key.path)
            return {k: self._load(context, f"{base}/{k}.parquet") for k in context.asset_partition_keys}
        return self._load(context, _rel_key(context))

    def _load(self, context: dg.InputContext, key: str) -> pl.DataFrame | ParquetTable:
        store = self._store()
        tmp = tempfile.mkdtemp(prefix="dlcot-parquet-", dir=scratch_dir())
        try:
            path = store.get_file(key, Path(tmp) / "in.parquet")
        except FileNotFoundError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()}: no stored output at {store.uri(key)}; materialize it first"
            ) from exc
        if _wants_table(context):
            table = ParquetTable(path)  # the local copy lives as long as the handle
            weakref.finalize(table, shutil.rmtree, tmp, True)
            return table
        try:
            return pl.read_parquet(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
