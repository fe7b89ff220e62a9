"""Stream one partition's corrected_traces into an SFT dataset under a blob-store prefix (local folder or S3).

:func:`export_partition` reads the stored Parquet table in batches (one row group's worth at a time, as the DLCoT
stages do), converts each batch to the target's rows, and appends it to the current shard of a staging folder:

* ``jsonl`` / ``parquet``: ``data/train-NNNNN-of-NNNNN.<ext>``, at most ``shard_rows`` rows per shard;
* ``hf``: one Arrow stream file, written batch by batch, opened memory-mapped by ``datasets.Dataset.from_file``
  and written by ``save_to_disk`` into the folder that ``datasets.load_from_disk`` reads (``datasets`` owns that
  layout; its ``from_parquet`` is not used: its reader keeps every row group of a file it has read in memory).

Then the card is rendered and the folder is published through the :class:`~..storage.BlobStore` (renamed into
place for a local store, uploaded for S3): data files first, then the files of a previous export at the same
prefix that this one did not rewrite are removed (only files that the previous card lists), and ``README.md`` last,
so a card names a complete export. Peak memory depends on ``batch_size``, not on the partition.

When ``raw`` (the partition's raw_traces table) is given it is read once, in step with corrected_traces (whose rows
are a subsequence of raw_traces' rows, in the same order), for each row's source file and, when corrected_traces
has no ``reference_source`` column, the one raw_traces has. Rows without one count as ``given``.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..stats import token_stats
from ..storage import LocalBlobStore, check_key
from ..stream import iter_batches, place_file, staging_dir
from .card import CARD_NAME, CardFacts, parse_card
from .formats import DEFAULT_REFERENCE_SOURCE, SOURCE_COLUMNS, ExportError, ExportTarget, arrow_schema, to_arrow

DEFAULT_EXPORT_BATCH = 1024
DEFAULT_SHARD_ROWS = 100_000
HF_MAX_SHARD_SIZE = "500MB"


@dataclass
class ExportReport:
    """What one export wrote, and how fast."""

    target: str
    uri: str
    rows: int
    files: list[str]
    bytes: int
    seconds: float
    reference_sources: dict[str, int]
    sources: list[dict[str, Any]] = field(default_factory=list)
    card: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("card")
        d["rows_per_s"] = round(self.rows_per_s, 1)
        return d


# ------------------------------------------------------------------------------------------ raw_traces in step


class RawColumns:
    """raw_traces columns for corrected_traces batches, reading raw_traces once, in order.

    corrected_traces keeps raw_traces' order (a subsequence of its rows), so the raw rows a batch needs follow the
    ones the previous batch used; the buffer holds only raw rows not yet passed (narrow columns)."""

    def __init__(self, raw: str | Path, columns: list[str], batch_size: int, what: str = "raw_traces"):
        self.columns = columns
        self.what = what
        self._batches = iter_batches(raw, batch_size, columns=["id", *columns])
        self._buf: pl.DataFrame | None = None

    def attach(self, batch: pl.DataFrame) -> pl.DataFrame:
        ids = batch.select("id")
        found = None
        while True:
            if self._buf is not None and self._buf.height:
                found = ids.join(self._buf.with_row_index("_pos"), on="id", how="left", maintain_order="left")
                if found["_pos"].null_count() == 0:
                    break
            nxt = next(self._batches, None)
            if nxt is None:
                missing = ids["id"][0] if found is None else found.filter(pl.col("_pos").is_null())["id"][0]
                raise ExportError(
                    f"corrected_traces row {missing!r} is not in {self.what} (or not in its order): the tables are "
                    "out of step; re-materialize corrected_traces"
                )
            self._buf = nxt if self._buf is None else pl.concat([self._buf, nxt], how="vertical")
        self._buf = self._buf.slice(int(found["_pos"].max()) + 1)
        return found.select(self.columns)


# ------------------------------------------------------------------------------------------ shards


class ShardWriter:
    """Appends Arrow tables to ``data/train-NNNNN-of-NNNNN.<ext>`` shards of at most ``shard_rows`` rows."""

    def __init__(self, root: Path, container: str, schema: pa.Schema, total_rows: int, shard_rows: int):
        self.root = root
        self.container = container  # jsonl | parquet | arrow (an Arrow IPC stream)
        self.schema = schema
        self.shard_rows = max(1, int(shard_rows))
        self.n_shards = max(1, math.ceil(total_rows / self.shard_rows))
        self.files: list[str] = []
        self._shard = -1
        self._in_shard = 0
        self._pq: pq.ParquetWriter | None = None
        self._ipc: pa.ipc.RecordBatchStreamWriter | None = None
        self._fh = None
        (root / "data").mkdir(parents=True, exist_ok=True)
        self._next()

    def _name(self, i: int) -> str:
        return f"data/train-{i:05d}-of-{self.n_shards:05d}.{self.container}"

    def _close_current(self) -> None:
        if self._pq is not None:
            self._pq.close()
            self._pq = None
        if self._ipc is not None:
            self._ipc.close()
            self._ipc = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _next(self) -> None:
        self._close_current()
        self._shard += 1
        self._in_shard = 0
        rel = self._name(self._shard)
        self.files.append(rel)
        if self.container == "parquet":
            self._pq = pq.ParquetWriter(self.root / rel, self.schema, compression="zstd")
        else:
            self._fh = open(self.root / rel, "wb")
            if self.container == "arrow":
                self._ipc = pa.ipc.new_stream(self._fh, self.schema)

    def _append(self, table: pa.Table) -> None:
        if self._pq is not None:
            self._pq.write_table(table)
        elif self._ipc is not None:
            self._ipc.write_table(table)
        else:
            pl.from_arrow(table).write_ndjson(self._fh)

    def write(self, table: pa.Table) -> None:
        while table.num_rows:
            if self._in_shard >= self.shard_rows and self._shard + 1 < self.n_shards:
                self._next()
            take = table.num_rows if self._shard + 1 == self.n_shards else min(table.num_rows, self.shard_rows - self._in_shard)
            self._append(table.slice(0, take))
            self._in_shard += take
            table = table.slice(take)

    def close(self) -> list[str]:
        while self._shard + 1 < self.n_shards:  # fewer rows than announced: keep the -of-N names honest
            self._next()
        self._close_current()
        return list(self.files)


# ------------------------------------------------------------------------------------------ publishing


def _key(prefix: str, rel: str) -> str:
    return check_key(f"{prefix.strip('/')}/{rel}" if prefix.strip("/") else rel)


def previous_files(store, prefix: str) -> list[str]:
    """The files the card at ``prefix`` lists (a previous export), else none."""
    try:
        text = store.get_bytes(_key(prefix, CARD_NAME)).decode("utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return []
    head, _ = parse_card(text)
    files = (head.get("dlcot") or {}).get("files") or []
    out = []
    for rel in files:
        try:
            check_key(str(rel))
            out.append(str(rel))
        except ValueError:
            continue
    return out


def _put(store, key: str, path: Path) -> None:
    if isinstance(store, LocalBlobStore):
        place_file(path, store.uri(key))  # a rename on the same file system, else an atomic copy
    else:
        store.put_file(key, path)


def publish(root: Path, files: list[str], store, prefix: str) -> str:
    """Data files, then stale files of the previous export removed, then the card."""
    old = previous_files(store, prefix)
    for rel in files:
        if rel != CARD_NAME:
            _put(store, _key(prefix, rel), root / rel)
    for rel in sorted(set(old) - set(files) - {CARD_NAME}):
        store.delete(_key(prefix, rel))
    _put(store, _key(prefix, CARD_NAME), root / CARD_NAME)
    return store.uri(prefix.strip("/")) if prefix.strip("/") else store.uri()


# ------------------------------------------------------------------------------------------ hf


def _save_hf(arrow_file: Path, out: Path) -> list[str]:
    """A ``save_to_disk`` folder from an Arrow stream file (memory-mapped, copied in shards of 500 MB)."""
    import datasets

    was_quiet = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        ds = datasets.Dataset.from_file(str(arrow_file), split="train")
        # an empty dataset saved by size gets no data file at all, which load_from_disk cannot read
        ds.save_to_disk(str(out), **({"max_shard_size": HF_MAX_SHARD_SIZE} if ds.num_rows else {"num_shards": 1}))
        del ds
    finally:
        if not was_quiet:
            datasets.enable_progress_bars()
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------ the export


def _table_columns(path: str | Path) -> tuple[int, list[str]]:
    pf = pq.ParquetFile(path)
    return pf.metadata.num_rows, pf.schema_arrow.names


def _distinct(path: Path, col: str) -> list[str]:
    return sorted(v for v in pl.scan_parquet(path).select(pl.col(col).unique()).collect()[col].to_list() if v)


def _stats(corrected: Path, names: list[str]) -> tuple[dict[str, dict], float | None]:
    cols = [c for c in ("seq_tokens", "corrected_tokens", "raw_tokens") if c in names]
    tok = pl.scan_parquet(corrected).select(cols).collect()
    stats = {c: token_stats(tok[c]) for c in cols}
    red = None
    if tok.height and {"corrected_tokens", "raw_tokens"} <= set(cols):
        r = tok.select((1 - pl.col("corrected_tokens") / pl.col("raw_tokens")).median()).item()
        red = None if r is None else round(float(r), 4)
    return stats, red


def iter_export_batches(
    corrected: str | Path, raw: str | Path | None, batch_size: int
) -> Iterator[tuple[pl.DataFrame, pl.Series | None]]:
    """(batch with a filled ``reference_source`` column, source files or None) per batch of corrected_traces."""
    n, names = _table_columns(corrected)
    missing = [c for c in SOURCE_COLUMNS if c not in names]
    if missing:
        raise ExportError(f"{corrected}: not a corrected_traces table, missing column(s) {', '.join(missing)}")
    has_ref = "reference_source" in names
    cols = [*SOURCE_COLUMNS, *(["reference_source"] if has_ref else [])]
    lookup = None
    if raw is not None:
        _, raw_names = _table_columns(raw)
        want = [c for c in ("source_file",) if c in raw_names]
        if not has_ref and "reference_source" in raw_names:
            want.append("reference_source")
        if want:
            lookup = RawColumns(raw, want, batch_size)
    for batch in iter_batches(corrected, batch_size, columns=cols):
        files = None
        if lookup is not None:
            extra = lookup.attach(batch)
            files = extra["source_file"] if "source_file" in extra.columns else None
            if "reference_source" in extra.columns:
                batch = batch.with_columns(extra["reference_source"])
        if "reference_source" not in batch.columns:
            batch = batch.with_columns(pl.lit(DEFAULT_REFERENCE_SOURCE, pl.String).alias("reference_source"))
        else:
            batch = batch.with_columns(pl.col("reference_source").fill_null(DEFAULT_REFERENCE_SOURCE))
        yield batch, files


def export_partition(
    corrected: str | Path,
    store,
    prefix: str,
    target: ExportTarget,
    *,
    teacher: str,
    raw: str | Path | None = None,
    dropped: str | Path | None = None,
    tokenizer: str | None = None,
    batch_size: int = DEFAULT_EXPORT_BATCH,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    scratch: str | Path | None = None,
) -> ExportReport:
    """Export one partition's corrected_traces (a local Parquet file) to ``store`` under ``prefix``."""
    t0 = time.perf_counter()
    corrected = Path(corrected)
    total, names = _table_columns(corrected)
    schema = arrow_schema(target)
    refs: Counter[str] = Counter()
    per_file: Counter[str] = Counter()
    rows = 0
    nbytes = 0
    with staging_dir(str(scratch) if scratch else None, prefix="dlcot-export-") as stage:
        hf = target.format == "hf"
        shard_root = stage / ("arrow" if hf else "out")
        # hf: one staged Arrow file, which save_to_disk shards by size
        shards = ShardWriter(shard_root, "arrow" if hf else target.format, schema, total, total if hf else shard_rows)
        try:
            for batch, files in iter_export_batches(corrected, raw, batch_size):
                table = to_arrow(batch, target)
                shards.write(table)
                rows += table.num_rows
                nbytes += table.nbytes
                refs.update(dict(batch.group_by("reference_source").len().iter_rows()))
                if files is not None:
                    per_file.update(dict(files.value_counts().iter_rows()))
        finally:
            written = shards.close()
        if rows != total:
            raise ExportError(f"{corrected}: read {rows} rows, the table has {total}")
        if hf:
            out = stage / "hf"
            written = _save_hf(shard_root / written[0], out)
        else:
            out = shard_root

        sources: list[dict[str, Any]] = []
        ingested = None
        if raw is not None:
            raw_names = _table_columns(raw)[1]
            ingested = pq.ParquetFile(raw).metadata.num_rows
            if "source_file" in raw_names:
                by_file = pl.scan_parquet(raw).group_by("source_file").len().sort("source_file").collect()
                sources = [{"file": f, "ingested": int(n), "exported": int(per_file.get(f, 0))} for f, n in by_file.iter_rows()]
        dropped_by_reason = None
        if dropped is not None:
            by_reason = pl.scan_parquet(dropped).group_by("reason").len().sort("reason").collect()
            dropped_by_reason = {str(r): int(n) for r, n in by_reason.iter_rows()}
        tokens, reduction = _stats(corrected, names)
        facts = CardFacts(
            teacher=teacher,
            target=target,
            rows=rows,
            files=[*written, CARD_NAME],
            reference_sources=dict(refs),
            num_bytes=int(nbytes),
            download_size=None if target.format == "hf" else sum((out / f).stat().st_size for f in written),
            policies=_distinct(corrected, "policy") if "policy" in names else [],
            engine_versions=_distinct(corrected, "engine_version") if "engine_version" in names else [],
            config_hashes=_distinct(corrected, "config_hash") if "config_hash" in names else [],
            ingested_rows=ingested,
            dropped_by_reason=dropped_by_reason,
            sources=sources,
            tokens=tokens,
            token_reduction_median=reduction,
            tokenizer=tokenizer,
            created=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        )
        card = facts.render()
        (out / CARD_NAME).write_text(card, encoding="utf-8")
        size = sum((out / f).stat().st_size for f in facts.files)
        uri = publish(out, facts.files, store, prefix)
    return ExportReport(
        target=target.name,
        uri=uri,
        rows=rows,
        files=facts.files,
        bytes=size,
        seconds=time.perf_counter() - t0,
        reference_sources=dict(sorted(refs.items())),
        sources=sources,
        card=card,
    )


# ------------------------------------------------------------------------------------------ stored tables


@contextmanager
def stored_table(store, key: str, scratch: str | Path | None = None) -> Iterator[Path | None]:
    """A local path to a stored asset table (the file itself for a local store, a download for S3), or None when
    nothing is stored under ``key``."""
    if isinstance(store, LocalBlobStore):
        path = Path(store.uri(key))
        yield path if path.is_file() else None
        return
    with staging_dir(str(scratch) if scratch else None, prefix="dlcot-export-in-") as tmp:
        try:
            path: Path | None = store.get_file(key, tmp / Path(key).name)
        except FileNotFoundError:
            path = None
        yield path
