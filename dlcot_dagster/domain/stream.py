"""Bounded-memory streaming of a partition: Parquet row groups in, row groups out, batches on every core.

A partition flows through ingestion and the three DLCoT stages in batches of ``batch_size`` rows:

* :class:`ParquetSink` appends batches to a staging file and renames it into place only on
  :meth:`~ParquetSink.commit`, so an interrupted or failed step never leaves a partial table. Consecutive
  batches are coalesced into row groups of about ``DLCOT_ROW_GROUP_BYTES`` (16 MB) or 65,536 rows: the
  writer keeps the metadata of every row group until it closes (about 1 KB per column chunk), so one row
  group per 256-row batch would grow by some 300 MB over a million traces and six tables;
* :func:`iter_batches` / :func:`iter_aligned` read a stored table back in batches of exactly
  ``batch_size`` rows (two tables of the same partition are read in lockstep and their ids compared);
* :class:`BatchRunner` maps a stage over the batches on a pool of worker processes, in order, with a
  bounded number of batches in flight, so peak memory depends on ``batch_size × workers``, not on the size
  of the partition. With one worker (or one batch) it runs in this process, with no pool.

Workers rebuild the rules engine from an :class:`EngineSpec` (a picklable recipe). Each worker keeps its own
answer-checker cache (``bench/bench_scale.py`` measures this against a cache shared through a manager
process). Nothing here imports dagster.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections import deque
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .budget import DEFAULT_RECORD_BUDGET_S

DEFAULT_BATCH_SIZE = 256
DEFAULT_ROW_GROUP_BYTES = 16 << 20
DEFAULT_ROW_GROUP_ROWS = 65_536


def default_row_group_bytes() -> int:
    """``DLCOT_ROW_GROUP_BYTES`` (0: one row group per written batch), else 16 MB."""
    raw = os.environ.get("DLCOT_ROW_GROUP_BYTES", "").strip()
    if not raw:
        return DEFAULT_ROW_GROUP_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"DLCOT_ROW_GROUP_BYTES must be a whole number of bytes, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"DLCOT_ROW_GROUP_BYTES must be >= 0, got {value}")
    return value


class StorageWriteError(OSError):
    """A table could not be written (disk full, permission, quota); names the table and the destination."""


# --------------------------------------------------------------------------------------------- sinks


def arrow_schema(schema: dict[str, pl.DataType]) -> pa.Schema:
    return pl.DataFrame(schema=schema).to_arrow().schema


@dataclass(frozen=True)
class StagedTable:
    """A complete Parquet file waiting to be moved into its final place (by an IO manager)."""

    path: Path
    rows: int
    bytes: int
    row_groups: int

    def scan(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.path)


class ParquetSink:
    """Appends frames to a staging file; ``commit`` renames it to ``path`` (same directory).

    Written frames are buffered (as Arrow tables) until they hold ``row_group_bytes`` or ``row_group_rows``, then
    written as one row group, so the buffer is bounded by those limits plus one frame and the number of row groups
    (whose metadata the writer keeps in memory) grows by one per ~``row_group_bytes`` of data, not per batch.
    ``row_group_bytes=0`` writes one row group per frame. ``row_group_bytes=None`` takes ``DLCOT_ROW_GROUP_BYTES``.

    Used as a context manager, an exception aborts: the staging file is removed and ``path`` is untouched.
    Every write error becomes a :class:`StorageWriteError` naming ``what`` and the destination.
    """

    def __init__(
        self,
        path: str | Path,
        schema: dict[str, pl.DataType],
        *,
        what: str = "table",
        compression: str = "zstd",
        row_group_bytes: int | None = None,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    ):
        self.path = Path(path)
        self.what = what
        self.schema = schema
        self._arrow = arrow_schema(schema)
        self.tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.part")
        self._compression = compression
        self._writer: pq.ParquetWriter | None = None
        self.row_group_bytes = default_row_group_bytes() if row_group_bytes is None else int(row_group_bytes)
        self.row_group_rows = max(1, int(row_group_rows))
        self._buf: list[pa.Table] = []
        self._buf_rows = 0
        self._buf_bytes = 0
        self.rows = 0
        self.row_groups = 0
        self.closed = False

    def _fail(self, exc: BaseException) -> StorageWriteError:
        self.abort()
        return StorageWriteError(
            getattr(exc, "errno", None) or 0,
            f"writing {self.what} to {self.path} failed: {type(exc).__name__}: {exc}; "
            "the previous version (if any) is intact",
        )

    def _open(self) -> pq.ParquetWriter:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.tmp, self._arrow, compression=self._compression)
        return self._writer

    def _flush(self) -> None:
        if not self._buf:
            return
        table = pa.concat_tables(self._buf) if len(self._buf) > 1 else self._buf[0]
        self._buf, self._buf_rows, self._buf_bytes = [], 0, 0
        self._open().write_table(table, row_group_size=max(1, table.num_rows))
        self.row_groups += 1

    def write(self, df: pl.DataFrame) -> None:
        if df.height == 0:
            return
        try:
            table = df.select(list(self.schema)).to_arrow().cast(self._arrow)
            self._buf.append(table)
            self._buf_rows += table.num_rows
            self._buf_bytes += table.nbytes
            if self._buf_bytes >= self.row_group_bytes or self._buf_rows >= self.row_group_rows:
                self._flush()
        except (OSError, pa.ArrowException) as exc:
            raise self._fail(exc) from exc
        self.rows += df.height

    def commit(self) -> StagedTable:
        try:
            self._flush()
            self._open()  # an empty table is still a valid file with the schema
            self._writer.close()
            self._writer = None
            with open(self.tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(self.tmp, self.path)
        except (OSError, pa.ArrowException) as exc:
            raise self._fail(exc) from exc
        self.closed = True
        return StagedTable(self.path, self.rows, self.path.stat().st_size, self.row_groups)

    def detach(self) -> Path:
        """Close what was written so far as a complete file beside the staging file and start over, empty (a
        second pass reads the first back and writes the final rows here). The caller deletes the returned file."""
        try:
            self._flush()
            self._open()
            self._writer.close()
            self._writer = None
            first = self.tmp.with_name(self.tmp.name + ".pass1")
            os.replace(self.tmp, first)
        except (OSError, pa.ArrowException) as exc:
            raise self._fail(exc) from exc
        self.tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.part")
        self.rows = self.row_groups = 0
        return first

    def abort(self) -> None:
        self._buf, self._buf_rows, self._buf_bytes = [], 0, 0
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
            self._writer = None
        self.tmp.unlink(missing_ok=True)
        self.closed = True

    def __enter__(self) -> "ParquetSink":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self.closed:
            self.abort()


# --------------------------------------------------------------------------------------------- readers


def rechunk(frames: Iterable[pl.DataFrame], size: int) -> Iterator[pl.DataFrame]:
    """Frames of exactly ``size`` rows (the last may be shorter) from frames of any sizes."""
    buf: list[pl.DataFrame] = []
    have = 0
    for df in frames:
        while df.height:
            take = min(size - have, df.height)
            buf.append(df.slice(0, take))
            have += take
            df = df.slice(take)
            if have == size:
                yield pl.concat(buf, how="vertical") if len(buf) > 1 else buf[0]
                buf, have = [], 0
    if have:
        yield pl.concat(buf, how="vertical") if len(buf) > 1 else buf[0]


def iter_batches(path: str | Path, batch_size: int = DEFAULT_BATCH_SIZE, columns: list[str] | None = None) -> Iterator[pl.DataFrame]:
    """A stored Parquet table in frames of exactly ``batch_size`` rows, one row group in memory at a time."""
    pf = pq.ParquetFile(path)
    if pf.metadata.num_rows == 0:
        return

    def frames():
        # one reader per row group: pyarrow's reader over a whole file keeps the buffers of every row group it has
        # read until it is closed (memory grows with the bytes read: 170 MB after a 375 MB file, pyarrow 26)
        for i in range(pf.num_row_groups):
            for rb in pf.iter_batches(batch_size=batch_size, columns=columns, row_groups=[i]):
                yield pl.from_arrow(rb)

    yield from rechunk(frames(), batch_size)


def iter_aligned(
    left: str | Path, right: str | Path, batch_size: int = DEFAULT_BATCH_SIZE, *, what: str = "stage table"
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """Two tables of one partition in lockstep; their ``id`` columns must match row for row."""
    nl, nr = pq.ParquetFile(left).metadata.num_rows, pq.ParquetFile(right).metadata.num_rows
    if nl != nr:
        raise ValueError(f"{what} is out of step with raw_traces: {nr} rows vs {nl}; re-materialize it")
    for a, b in zip(iter_batches(left, batch_size), iter_batches(right, batch_size)):
        if a["id"].to_list() != b["id"].to_list():
            bad = next(i for i, (x, y) in enumerate(zip(a["id"], b["id"])) if x != y)
            raise ValueError(
                f"{what} is out of step with raw_traces: row id {b['id'][bad]!r} where raw has {a['id'][bad]!r}; "
                "re-materialize it"
            )
        yield a, b


def iter_aligned_many(
    paths: list[str | Path], batch_size: int = DEFAULT_BATCH_SIZE, *, what: list[str] | None = None
) -> Iterator[tuple[pl.DataFrame, ...]]:
    """Several tables of one partition in lockstep (the first is raw_traces); every ``id`` column must match it."""
    what = what or [f"table {i}" for i in range(len(paths))]
    n0 = pq.ParquetFile(paths[0]).metadata.num_rows
    for p, w in zip(paths[1:], what[1:]):
        n = pq.ParquetFile(p).metadata.num_rows
        if n != n0:
            raise ValueError(f"{w} is out of step with raw_traces: {n} rows vs {n0}; re-materialize it")
    for frames in zip(*(iter_batches(p, batch_size) for p in paths)):
        ids = frames[0]["id"].to_list()
        for f, w in zip(frames[1:], what[1:]):
            other = f["id"].to_list()
            if other != ids:
                bad = next(i for i, (x, y) in enumerate(zip(ids, other)) if x != y)
                raise ValueError(
                    f"{w} is out of step with raw_traces: row id {other[bad]!r} where raw has {ids[bad]!r}; "
                    "re-materialize it"
                )
        yield frames


def num_rows(path: str | Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


# --------------------------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class EngineSpec:
    """A picklable recipe for the rules engine and token counter a worker process builds once."""

    policy: str = "default"
    answer_timeout_s: float = 2.0
    answer_cache: bool = True
    tokenizer: str | None = "qwen2"
    tokenizer_cache_dir: str | None = None
    max_seq_len: int | None = None
    max_raw_tokens: int | None = None
    record_budget_s: float | None = DEFAULT_RECORD_BUDGET_S  # None or 0: no per-record time budget
    shared_cache: Any = None  # a multiprocessing manager dict, or None for a cache per process
    decontam: Any = None  # a decontam.DecontamSpec: the benchmark index the workers match against (None: off)
    decontam_audit: bool = False  # compute the decontamination verdicts but drop nothing (bench/bench_decontam.py)

    def build_engine(self):
        from .answers import AnswerChecker
        from .dlcot import DLCoTPolicy, RulesEngine
        from .dlcot.checking import MemoChecker

        checker = AnswerChecker(timeout_s=self.answer_timeout_s, use_cache=self.answer_cache)
        if self.shared_cache is not None:
            checker = SharedCacheChecker(checker, self.shared_cache)
        # without a cache the memo only spans a few traces (the same pair is asked repeatedly inside one trace)
        memo = MemoChecker(checker, max_entries=200_000 if self.answer_cache else 256)
        return RulesEngine(DLCoTPolicy.preset(self.policy), memo)

    def build_counter(self):
        if not self.tokenizer:
            return None
        from .tokens import TokenCounter

        return TokenCounter(self.tokenizer, Path(self.tokenizer_cache_dir) if self.tokenizer_cache_dir else None)


class SharedCacheChecker:
    """An answer checker that consults a cache shared by all worker processes (a manager dict) first."""

    def __init__(self, inner: Any, shared: Any):
        self.inner = inner
        self.shared = shared

    def compare(self, gold: str, pred: str):
        from .answers.verdict import Verdict

        key = f"{len(gold)}:{gold}{pred}"
        hit = self.shared.get(key)
        if hit is not None:
            return Verdict(**hit)
        verdict = self.inner.compare(gold, pred)
        if "timeout" not in str(verdict.reason):  # a timed-out verdict depends on load: do not share it
            self.shared[key] = asdict(verdict)
        return verdict


@dataclass
class WorkerState:
    spec: EngineSpec
    engine: Any = None
    counter: Any = None
    built: bool = False

    def ensure(self) -> "WorkerState":
        if not self.built:
            self.engine = self.engine or self.spec.build_engine()
            self.counter = self.counter if self.counter is not None else self.spec.build_counter()
            self.built = True
        return self


_STATE: WorkerState | None = None


def _init_worker(spec: EngineSpec) -> None:
    global _STATE
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core per worker; the pool is the parallelism
    os.environ.setdefault("RAYON_NUM_THREADS", "1")
    _STATE = WorkerState(spec)


def _state_for(task: Callable, state: WorkerState) -> WorkerState:
    """The worker state a task gets: built (engine, token counter) unless the task needs neither (``no_engine``)."""
    return state if getattr(task, "no_engine", False) else state.ensure()


def _call(task: Callable, item: Any) -> Any:
    assert _STATE is not None, "worker not initialized"
    return task(_state_for(task, _STATE), item)


class BatchRunner:
    """Ordered map of a stage task over batches: in this process, or on ``workers`` processes.

    At most ``workers * 2`` batches are in flight, so memory stays bounded. Results come back in input order,
    so a parallel run writes exactly the same table as a serial one. ``engine``/``counter`` (in-process only)
    replace the ones built from ``spec``, e.g. an LLM engine that cannot be rebuilt in a worker.
    """

    def __init__(self, spec: EngineSpec, workers: int = 1, *, engine: Any = None, counter: Any = None, mp_context: str = "spawn"):
        if workers > 1 and engine is not None:
            raise ValueError("a prebuilt engine runs in this process only: use workers=1")
        self.spec = spec
        self.workers = max(1, int(workers))
        self.mp_context = mp_context
        self._local = WorkerState(spec, engine=engine, counter=counter)
        self._pool: ProcessPoolExecutor | None = None
        self.busy_s = 0.0

    @property
    def local(self) -> WorkerState:
        return self._local.ensure()

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=get_context(self.mp_context),
                initializer=_init_worker, initargs=(self.spec,),
            )
        return self._pool

    def map(self, task: Callable[[WorkerState, Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        if self.workers == 1:
            for item in items:
                t0 = time.perf_counter()
                out = task(_state_for(task, self._local), item)
                self.busy_s += time.perf_counter() - t0
                yield out
            return
        it = iter(items)
        try:
            first = next(it)
        except StopIteration:
            return
        try:
            second = next(it)
        except StopIteration:  # a single batch: a pool would only add its start-up time
            t0 = time.perf_counter()
            out = task(_state_for(task, self._local), first)
            self.busy_s += time.perf_counter() - t0
            yield out
            return
        import itertools

        pool = self._ensure_pool()
        window: deque = deque()
        try:
            for item in itertools.chain((first, second), it):
                window.append(pool.submit(_call, task, item))
                if len(window) >= self.workers * 2:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for fut in window:
                fut.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "BatchRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def choose_workers(requested: int, rows: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """``requested`` > 0 is taken as is; 0 means one per usable core. Never more than there are batches."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    n = requested if requested > 0 else cores
    if rows is not None:
        n = min(n, max(1, -(-rows // max(1, batch_size))))
    return max(1, n)


# --------------------------------------------------------------------------------------------- stage tasks


@dataclass
class SegmentOut:
    segmented: pl.DataFrame
    coverage_problems: list[str]
    kinds: dict[str, int]  # segments per kind


def segment_task(st: WorkerState, item: pl.DataFrame | tuple[pl.DataFrame, pl.DataFrame]) -> SegmentOut:
    """``item``: a raw batch, or (raw batch, its decontamination verdicts): dropped records are not segmented."""
    from .decontam.step import verdict_drops
    from .pipeline import coverage_problems, segment_frame

    raw, verdicts = item if isinstance(item, tuple) else (item, None)
    seg = segment_frame(raw, st.engine, record_budget_s=st.spec.record_budget_s, drops=verdict_drops(verdicts))
    kinds: dict[str, int] = {}
    for blob in seg["segments"].to_list():
        for item in json.loads(blob):
            kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
    return SegmentOut(seg, coverage_problems(raw, seg), kinds)


@dataclass
class PruneOut:
    pruned: pl.DataFrame
    segment_drop_reasons: dict[str, int]  # dropped segments per reason (the part before ":")


def prune_task(st: WorkerState, pair: tuple[pl.DataFrame, pl.DataFrame]) -> PruneOut:
    from .pipeline import prune_frame

    raw, seg = pair
    pruned = prune_frame(raw, seg, st.engine, record_budget_s=st.spec.record_budget_s)
    reasons: dict[str, int] = {}
    for blob in pruned["segments"].to_list():
        for item in json.loads(blob):
            if item.get("drop_reason"):
                key = item["drop_reason"].split(":")[0]
                reasons[key] = reasons.get(key, 0) + 1
    return PruneOut(pruned, reasons)


@dataclass
class CorrectOut:
    kept: pl.DataFrame
    dropped: pl.DataFrame
    answer_failures: list[str]
    accounting_problems: list[str]  # the batch's raw rows against kept + dropped
    benchmark_overlaps: list[str] = field(default_factory=list)  # kept rows whose problem overlaps a benchmark


def recheck_answers(kept: pl.DataFrame, timeout_s: float) -> list[str]:
    """Independent re-check of kept rows: a fresh, uncached checker on the answer extracted from the emitted text."""
    from .answers import AnswerChecker, extract_final_answer

    checker = AnswerChecker(timeout_s=timeout_s, use_cache=False)
    bad = []
    for row in kept.select("id", "reference_answer", "final_text").iter_rows(named=True):
        fa = extract_final_answer(row["final_text"] or "")
        verdict = checker.compare(row["reference_answer"], fa.text) if fa else None
        if verdict is None or verdict.equivalent is not True:
            bad.append(f"{row['id']}: {verdict.reason if verdict else 'no final answer'}")
    return bad


def correct_task(st: WorkerState, item: tuple[pl.DataFrame, ...]) -> CorrectOut:
    """``item``: (raw, pruned) or (raw, pruned, decontamination verdicts): their evidence goes to the dropped rows,
    and, with ``spec.decontam``, every kept row is re-checked against the benchmarks."""
    from .decontam.step import attach_evidence, kept_overlaps
    from .pipeline import correct_frame, dlcot_accounting_problems

    raw, pruned = item[0], item[1]
    verdicts = item[2] if len(item) > 2 else None
    counter = st.counter.memo() if st.counter is not None else None  # shared pieces of one batch's texts count once
    tables = correct_frame(
        raw, pruned, st.engine, counter, max_seq_len=st.spec.max_seq_len, record_budget_s=st.spec.record_budget_s
    )
    dropped = attach_evidence(tables.dropped, verdicts)
    return CorrectOut(
        tables.kept,
        dropped,
        recheck_answers(tables.kept, st.spec.answer_timeout_s),
        dlcot_accounting_problems(raw, tables.kept, dropped),
        kept_overlaps(tables.kept, st.spec.decontam) if st.spec.decontam is not None else [],
    )


def decontam_task(st: WorkerState, item: tuple[pl.DataFrame, list]) -> pl.DataFrame:
    """(raw batch, earlier trace id or None per row) -> the batch's decontamination verdicts."""
    from .decontam.step import decontam_frame

    raw, duplicates = item
    return decontam_frame(raw, st.spec.decontam, duplicates, audit=st.spec.decontam_audit)


decontam_task.no_engine = True  # matching needs the benchmark index only, not the DLCoT engine


def apply_token_counts(batch: pl.DataFrame, counter: Any, max_raw_tokens: int | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Fill the token columns of parsed traces; rows above ``max_raw_tokens`` become ``too_many_tokens`` rejects."""
    from .ingest.schema import REJECT_SCHEMA, RejectReason

    n = batch.height
    if counter is None or n == 0:
        return batch, pl.DataFrame(schema=REJECT_SCHEMA)
    counts = counter.count(batch["problem"].to_list() + batch["thinking"].to_list() + batch["final_response"].to_list())
    prob, think, resp = counts[:n], counts[n : 2 * n], counts[2 * n :]
    batch = batch.with_columns(
        problem_tokens=pl.Series(prob, dtype=pl.Int64),
        thinking_tokens=pl.Series(think, dtype=pl.Int64),
        response_tokens=pl.Series(resp, dtype=pl.Int64),
        raw_tokens=pl.Series([a + b for a, b in zip(think, resp)], dtype=pl.Int64),
    )
    if max_raw_tokens is None:
        return batch, pl.DataFrame(schema=REJECT_SCHEMA)
    over = pl.col("raw_tokens") > max_raw_tokens
    rejects = batch.filter(over).select(
        "teacher",
        "source_file",
        "source_line",
        pl.col("id").alias("record_id"),
        pl.lit(RejectReason.TOO_MANY_TOKENS.value).alias("reason"),
        pl.lit("thinking").alias("field"),
        pl.format("{} raw tokens exceed the ceiling of {}", "raw_tokens", pl.lit(max_raw_tokens)).alias("detail"),
        pl.lit(None, dtype=pl.String).alias("excerpt"),
        pl.col("generation"),
    )
    return batch.filter(~over), rejects


def with_own_answers(batch: pl.DataFrame) -> pl.DataFrame:
    """Rows still without a reference (``reference_source`` null) get ``_pkey`` (their normalized problem's key),
    ``_own`` and ``_own_kind`` (their own final answer): what the majority / self resolution needs. A batch with
    no such row is returned as is."""
    from .ingest.references import own_answer, problem_key

    if batch.height == 0 or batch["reference_source"].null_count() == 0:
        return batch
    keys, owns, kinds = [], [], []
    for src, problem, final, thinking in batch.select(
        "reference_source", "problem", "final_response", "thinking"
    ).iter_rows():
        if src is not None:
            keys.append(None), owns.append(None), kinds.append(None)
            continue
        own = own_answer(final, thinking)
        keys.append(problem_key(problem))
        owns.append(own[0] if own else None)
        kinds.append(own[1] if own else None)
    return batch.with_columns(
        _pkey=pl.Series(keys, dtype=pl.Int64), _own=pl.Series(owns, dtype=pl.String), _own_kind=pl.Series(kinds, dtype=pl.String)
    )


def tokenize_task(st: WorkerState, batch: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Count tokens of a batch of parsed traces; rows above the ceiling move to rejects. Rows still without a
    reference come back with their own answers (:func:`with_own_answers`)."""
    kept, rejects = apply_token_counts(batch, st.counter, st.spec.max_raw_tokens)
    return with_own_answers(kept), rejects


def own_answers_task(st: WorkerState, batch: pl.DataFrame) -> pl.DataFrame:
    return with_own_answers(batch)


@dataclass
class FusedOut:
    raw: pl.DataFrame
    rejects: pl.DataFrame
    segmented: pl.DataFrame
    pruned: pl.DataFrame
    kept: pl.DataFrame
    dropped: pl.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    decontam: pl.DataFrame | None = None  # the verdicts, when spec.decontam is set
    benchmark_overlaps: list[str] = field(default_factory=list)


def fused_task(st: WorkerState, item: pl.DataFrame | tuple[pl.DataFrame, list]) -> FusedOut:
    """Tokenize → (decontaminate) → segment → prune → correct one batch (the end-to-end benchmark's unit of work).
    ``item``: a parsed batch, or (parsed batch, earlier trace id or None per row) when ``spec.decontam`` is set."""
    from .decontam.step import decontam_frame, verdict_drops
    from .pipeline import correct_frame, prune_frame, segment_frame

    batch, duplicates = item if isinstance(item, tuple) else (item, None)
    t = {}
    t0 = time.perf_counter()
    # one piece memo for the batch: the corrected texts re-use the piece counts of their raw texts
    counter = st.counter.memo() if st.counter is not None else None
    raw, rejects = apply_token_counts(batch, counter, st.spec.max_raw_tokens)
    t["tokenize"] = time.perf_counter() - t0
    verdicts = None
    if st.spec.decontam is not None:
        t0 = time.perf_counter()
        if duplicates is not None and rejects.height:  # rows over the token ceiling left the batch
            left = set(raw["id"].to_list())
            duplicates = [d for d, rid in zip(duplicates, batch["id"].to_list()) if rid in left]
        verdicts = decontam_frame(raw, st.spec.decontam, duplicates, audit=st.spec.decontam_audit)
        t["decontam"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    budget = st.spec.record_budget_s
    seg = segment_frame(raw, st.engine, record_budget_s=budget, drops=verdict_drops(verdicts))
    t["segment"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pruned = prune_frame(raw, seg, st.engine, record_budget_s=budget)
    t["prune"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tables = correct_frame(raw, pruned, st.engine, counter, max_seq_len=st.spec.max_seq_len, record_budget_s=budget)
    t["correct"] = time.perf_counter() - t0
    dropped, overlaps = tables.dropped, []
    if verdicts is not None:
        from .decontam.step import attach_evidence, kept_overlaps

        t0 = time.perf_counter()
        dropped = attach_evidence(dropped, verdicts)
        overlaps = kept_overlaps(tables.kept, st.spec.decontam)  # what the blocking check on corrected_traces runs
        t["decontam_check"] = time.perf_counter() - t0
    return FusedOut(raw, rejects, seg, pruned, tables.kept, dropped, t, verdicts, overlaps)


# --------------------------------------------------------------------------------------------- ingestion


@dataclass
class IngestSummary:
    files: list = field(default_factory=list)  # FileStats
    records_read: int = 0
    kept: int = 0
    rejected: int = 0
    bytes_read: int = 0
    seconds: float = 0.0


def parsed_batches(
    files: Iterable[tuple[Path, str]],
    teacher: str,
    spec: Any,
    batch_size: int,
    rejects: Callable[[pl.DataFrame], None],
    stats: list,
    record_budget_s: float | None = DEFAULT_RECORD_BUDGET_S,
    resolve: bool = True,
) -> Iterator[pl.DataFrame]:
    """Parse and normalize records (no tokens yet) into frames of ``batch_size`` traces, in input order.

    Parse-time rejects go to ``rejects`` as they appear; ``stats`` collects one ``FileStats`` per file.
    ``resolve=False`` leaves traces without a per-row reference unresolved (``reference_source`` null) for a
    second pass; by default they are resolved (held back to the end, see ``ingest.iter_outcomes``).
    """
    from .ingest import iter_outcomes
    from .ingest.schema import RejectRecord, rejects_frame, traces_frame

    pending, bad = [], []
    outcomes = iter_outcomes(
        files, teacher, spec, None, max_raw_tokens=None, batch_size=batch_size, stats=stats,
        record_budget_s=record_budget_s, resolve=resolve,
    )
    for outcome in outcomes:
        if isinstance(outcome, RejectRecord):
            bad.append(outcome)
            if len(bad) >= batch_size:
                rejects(rejects_frame(bad))
                bad = []
            continue
        pending.append(outcome)
        if len(pending) >= batch_size:
            yield traces_frame(pending)
            pending = []
    if bad:
        rejects(rejects_frame(bad))
    if pending:
        yield traces_frame(pending)


class FileCounts:
    """Kept / rejected rows per source file, added up batch by batch and written into the ``FileStats`` at the end
    (a file's stats exist only once it is fully read, its batches may come back later)."""

    def __init__(self) -> None:
        self._counts: dict[str, list[int]] = {}

    def add(self, df: pl.DataFrame, *, kept: bool) -> None:
        for name, n in df.group_by("source_file").len().iter_rows():
            self._counts.setdefault(name, [0, 0])[0 if kept else 1] += n

    def move_to_rejected(self, df: pl.DataFrame) -> None:
        """Rows counted as kept that a later pass rejected."""
        for name, n in df.group_by("source_file").len().iter_rows():
            c = self._counts.setdefault(name, [0, 0])
            c[0] -= n
            c[1] += n

    def apply(self, stats: list) -> None:
        for s in stats:
            s.kept, s.rejected = self._counts.get(s.file, (0, 0))


def stream_ingest(
    files: Iterable[tuple[Path, str]],
    teacher: str,
    source_spec: Any,
    runner: BatchRunner,
    traces: ParquetSink,
    rejects: ParquetSink,
    *,
    batch_size: int,
    record_budget_s: float | None = DEFAULT_RECORD_BUDGET_S,
    checker: Any = None,
) -> list:
    """Parse in this process, count tokens on the runner, append traces and rejects to the two sinks (not
    committed). Returns one ``FileStats`` per file, with records read, kept and rejected.

    Traces without a per-row reference (given / extracted / joined) are resolved in a second pass once the
    partition is read: the first pass notes each such generation's own answer under its problem's key
    (:class:`~.ingest.references.MajorityVotes`: one entry per distinct pending problem), then the staged rows are
    read back in batches and written again with their ``majority`` / ``self`` reference, or moved to the rejects
    as ``no_reference``. A partition whose traces all have a per-row reference never takes the second pass."""
    from .ingest.references import MAJORITY, MajorityVotes
    from .ingest.sources import SourceSpec

    spec = source_spec or SourceSpec()
    stats: list = []
    counts = FileCounts()
    votes = MajorityVotes(spec.majority_k)
    pending = 0

    def on_rejects(df: pl.DataFrame) -> None:
        rejects.write(df)
        counts.add(df, kept=False)

    batches = parsed_batches(files, teacher, spec, batch_size, on_rejects, stats, record_budget_s, resolve=False)
    for kept_b, rejected_b in runner.map(tokenize_task, batches):
        traces.write(kept_b)
        counts.add(kept_b, kept=True)
        on_rejects(rejected_b)
        if "_pkey" in kept_b.columns:
            todo = kept_b.filter(pl.col("reference_source").is_null())
            pending += todo.height
            for key, own, kind in todo.select("_pkey", "_own", "_own_kind").iter_rows():
                votes.add(key, own, kind)
    if pending:
        first = traces.detach()
        try:
            winners = votes.winners(checker) if MAJORITY in spec.reference_sources else {}
            for batch in runner.map(own_answers_task, iter_batches(first, batch_size)):
                kept_b, moved = resolve_batch(batch, winners, spec)
                traces.write(kept_b)
                if moved.height:
                    rejects.write(moved)
                    counts.move_to_rejected(moved)
        finally:
            first.unlink(missing_ok=True)
    counts.apply(stats)
    return stats


def resolve_batch(batch: pl.DataFrame, winners: dict, spec: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Fill ``reference_answer`` / ``reference_source`` of the rows that have none (majority, else self); rows
    with no usable reference become ``no_reference`` rejects. Needs :func:`with_own_answers`' columns."""
    from .ingest.normalize import RecordError
    from .ingest.references import resolve_pending
    from .ingest.schema import REJECT_SCHEMA

    if "_pkey" not in batch.columns:
        return batch, pl.DataFrame(schema=REJECT_SCHEMA)
    answers, sources, keep, bad = [], [], [], []
    for row in batch.select(
        "reference_answer", "reference_source", "_pkey", "_own", "_own_kind", "teacher", "source_file", "source_line",
        "id", "generation",
    ).iter_rows(named=True):
        if row["reference_source"] is not None:
            answers.append(row["reference_answer"]), sources.append(row["reference_source"]), keep.append(True)
            continue
        own = (row["_own"], row["_own_kind"]) if row["_own"] is not None else None
        try:
            answer, source = resolve_pending(own, winners.get(row["_pkey"]), spec)
        except RecordError as err:
            answers.append(None), sources.append(None), keep.append(False)
            bad.append({
                "teacher": row["teacher"], "source_file": row["source_file"], "source_line": row["source_line"],
                "record_id": row["id"], "reason": err.reason.value, "field": err.field, "detail": err.detail,
                "excerpt": None, "generation": row["generation"],
            })
            continue
        answers.append(answer), sources.append(source), keep.append(True)
    out = batch.with_columns(
        reference_answer=pl.Series(answers, dtype=pl.String), reference_source=pl.Series(sources, dtype=pl.String)
    ).filter(pl.Series(keep, dtype=pl.Boolean))
    return out, pl.DataFrame(bad, schema=REJECT_SCHEMA)


# --------------------------------------------------------------------------------------------- end to end


@dataclass
class RunReport:
    rows_in: int = 0
    kept: int = 0
    dropped: int = 0
    rejected: int = 0
    bytes_in: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    workers: int = 1
    batch_size: int = DEFAULT_BATCH_SIZE
    outputs: dict[str, str] = field(default_factory=dict)
    benchmark_overlaps: int = 0  # kept rows the re-check found overlapping a benchmark (must stay 0)

    def as_dict(self) -> dict:
        d = self.__dict__.copy()
        d["traces_per_s"] = self.rows_in / self.seconds if self.seconds else 0.0
        d["mb_per_s"] = self.bytes_in / 1e6 / self.seconds if self.seconds else 0.0
        return d


def run_partition(
    files: list[tuple[Path, str]],
    teacher: str,
    out_dir: str | Path,
    *,
    spec: EngineSpec | None = None,
    source_spec: Any = None,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    mp_context: str = "spawn",
    runner: BatchRunner | None = None,
) -> RunReport:
    """Ingest → (decontaminate) → segment → prune → correct one partition in bounded batches, writing the six
    tables to ``out_dir`` (raw_traces, raw_trace_rejects, segmented_traces, pruned_solutions, corrected_traces,
    dropped_traces; with ``spec.decontam`` also decontam_verdicts), each as incremental Parquet row groups
    committed at the end.

    With ``spec.decontam`` the corpus boilerplate is first learned from the first ``corpus_sample`` problems
    (a parse-only pass over the files), duplicates are marked in this process (it sees the batches in order) and
    the workers match each batch against the benchmarks before segmenting it."""
    from .decontam.step import DECONTAM_SCHEMA, TraceDeduper, learn_spec
    from .pipeline import CORRECTED_SCHEMA, DROPPED_SCHEMA, PRUNED_SCHEMA, SEGMENTED_SCHEMA
    from .ingest.schema import REJECT_SCHEMA, TRACE_SCHEMA

    spec = spec or EngineSpec()
    out = Path(out_dir)
    t_start = time.perf_counter()
    report = RunReport(workers=workers, batch_size=batch_size)
    stage = {"parse": 0.0, "write": 0.0}
    names = {
        "raw": ("raw_traces", TRACE_SCHEMA), "rejects": ("raw_trace_rejects", REJECT_SCHEMA),
        "segmented": ("segmented_traces", SEGMENTED_SCHEMA), "pruned": ("pruned_solutions", PRUNED_SCHEMA),
        "kept": ("corrected_traces", CORRECTED_SCHEMA), "dropped": ("dropped_traces", DROPPED_SCHEMA),
    }
    dedup = None
    if spec.decontam is not None and runner is None:
        t0 = time.perf_counter()
        sample = parsed_batches(files, teacher, source_spec, batch_size, lambda df: None, [], spec.record_budget_s)
        spec = replace(spec, decontam=learn_spec(spec.decontam, (p for b in sample for p in b["problem"].to_list())))
        stage["decontam_learn"] = time.perf_counter() - t0
    if spec.decontam is not None:
        names["decontam"] = ("decontam_verdicts", DECONTAM_SCHEMA)
        dedup = TraceDeduper(out)
    sinks = {k: ParquetSink(out / f"{n}.parquet", s, what=n) for k, (n, s) in names.items()}
    stats: list = []
    counts = FileCounts()
    own_runner = runner is None
    runner = runner or BatchRunner(spec, workers, mp_context=mp_context)
    try:
        def on_rejects(df: pl.DataFrame) -> None:
            sinks["rejects"].write(df)
            counts.add(df, kept=False)

        def timed_parse() -> Iterator[pl.DataFrame]:
            it = parsed_batches(files, teacher, source_spec, batch_size, on_rejects, stats, spec.record_budget_s)
            while True:
                t0 = time.perf_counter()
                try:
                    b = next(it)
                except StopIteration:
                    stage["parse"] += time.perf_counter() - t0
                    return
                stage["parse"] += time.perf_counter() - t0
                if dedup is None:
                    yield b
                    continue
                t0 = time.perf_counter()
                marks = dedup.mark(b)
                stage["decontam_dedup"] = stage.get("decontam_dedup", 0.0) + time.perf_counter() - t0
                yield b, marks

        for res in runner.map(fused_task, timed_parse()):
            t0 = time.perf_counter()
            for k in ("raw", "rejects", "segmented", "pruned", "kept", "dropped"):
                sinks[k].write(getattr(res, k))
            if res.decontam is not None:
                sinks["decontam"].write(res.decontam)
                report.benchmark_overlaps += len(res.benchmark_overlaps)
            counts.add(res.raw, kept=True)
            counts.add(res.rejects, kept=False)
            stage["write"] += time.perf_counter() - t0
            for k, v in res.seconds.items():
                stage[k] = stage.get(k, 0.0) + v
            report.kept += res.kept.height
            report.dropped += res.dropped.height
        counts.apply(stats)
        t0 = time.perf_counter()
        for k, sink in sinks.items():
            report.outputs[k] = str(sink.commit().path)
        stage["write"] += time.perf_counter() - t0
    finally:
        for sink in sinks.values():
            if not sink.closed:
                sink.abort()
        if own_runner:
            runner.close()
        if dedup is not None:
            dedup.close()
    report.rows_in = sum(s.records for s in stats)  # every record read, kept or rejected
    report.rejected = sum(s.rejected for s in stats)
    report.bytes_in = sum(s.bytes for s in stats)
    report.stage_seconds = stage
    report.seconds = time.perf_counter() - t_start
    return report


@contextmanager
def staging_dir(base: str | None = None, prefix: str = "dlcot-stage-") -> Iterator[Path]:
    """A fresh private folder for a step's staging files (under ``base``, else the system temp dir), removed at
    the end: whatever an IO manager has not moved into place by then is discarded."""
    import shutil

    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base or None))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class ParquetTable:
    """A stored table handed to a stage without loading it: read it in batches or scan it lazily."""

    path: Path

    @property
    def num_rows(self) -> int:
        return num_rows(self.path)

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE, columns: list[str] | None = None) -> Iterator[pl.DataFrame]:
        return iter_batches(self.path, batch_size, columns)

    def scan(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.path)

    def read(self, columns: list[str] | None = None) -> pl.DataFrame:
        return pl.read_parquet(self.path, columns=columns)


def place_file(src: str | Path, dest: str | Path) -> Path:
    """Move a finished file into ``dest`` atomically: a rename on the same file system, else a copy through
    :func:`~.storage.atomic_write`. On failure ``dest`` keeps its previous content."""
    import shutil

    from .storage import atomic_write

    src, dest = Path(src), Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if os.stat(src).st_dev == os.stat(dest.parent).st_dev:
            os.replace(src, dest)
        else:
            atomic_write(dest, lambda tmp: shutil.copyfile(src, tmp))
            src.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageWriteError(
            getattr(exc, "errno", 0) or 0,
            f"moving {src} to {dest} failed: {type(exc).__name__}: {exc}; the previous version (if any) is intact",
        ) from exc
    return dest
