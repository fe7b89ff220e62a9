"""Parquet storage for Polars frames, one file per asset partition."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from .settings import default_storage_dir


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
        path = self._path(context)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            obj.write_parquet(tmp, compression="zstd")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path)), "stored_rows": obj.height})

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        path = self._path(context)
        if not path.is_file():
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()}: no stored output at {path}; materialize it first"
            )
        return pl.read_parquet(path)
