"""Ingest one teacher's dump files into the kept-traces and rejects tables.

``iter_outcomes`` yields, in input order, one ``TraceRecord`` or one
``RejectRecord`` per record unit (see :mod:`.readers`); ``ingest_files``
collects them into Polars frames with per-file accounting.

Each record's normalization runs under a time budget (``record_budget_s``,
see :mod:`.budget`); a record that overruns it becomes a ``timeout`` reject
naming its file, line and largest field, and the rest of the file goes on.
Reading / JSON-decoding a line and the batched token count are outside the
budget (both are linear-time C / Rust code).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import polars as pl

from ..budget import DEFAULT_RECORD_BUDGET_S, RecordTimeout, record_budget
from .normalize import Normalized, RecordError, clean_text, normalize_record, record_id
from .readers import Unit, is_data_file, iter_units
from .seen_ids import SeenIds
from .schema import RejectReason, RejectRecord, TraceRecord, rejects_frame, traces_frame
from .sources import ID_FIELDS, SourceSpec, find_field
from ..tokens import TokenCounter

SPEC_FILENAME = "dlcot_source.yaml"
DEFAULT_MAX_RAW_TOKENS = 131_072


@dataclass
class FileStats:
    file: str
    records: int = 0
    kept: int = 0
    rejected: int = 0
    bytes: int = 0


@dataclass
class IngestResult:
    teacher: str
    traces: pl.DataFrame
    rejects: pl.DataFrame
    files: list[FileStats] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def records_read(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def bytes_read(self) -> int:
        return sum(f.bytes for f in self.files)


def list_data_files(folder: Path) -> list[Path]:
    """Data files under a teacher folder, recursively, in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_data_file(p) and not p.name.startswith("."))


def named_files(path: Path) -> list[tuple[Path, str]]:
    """``(local path, recorded name)`` pairs for a single dump file or a teacher folder (names relative to it)."""
    path = Path(path)
    if path.is_file():
        return [(path, path.name)]
    return [(p, p.relative_to(path).as_posix()) for p in list_data_files(path)]  # none for a missing folder


def load_spec(folder: Path | None) -> SourceSpec:
    """The teacher folder's ``dlcot_source.yaml`` if present, else auto-detection."""
    if folder is not None and (folder / SPEC_FILENAME).is_file():
        return SourceSpec.from_yaml(folder / SPEC_FILENAME)
    return SourceSpec()


def _reject(teacher: str, name: str, unit: Unit, err: RecordError, rid: str | None = None) -> RejectRecord:
    return RejectRecord(
        teacher=teacher,
        source_file=name,
        source_line=unit.line,
        record_id=clean_text(rid),
        reason=err.reason,
        field=clean_text(err.field),
        detail=clean_text(err.detail) or "",
        excerpt=clean_text(unit.excerpt),
    )


def _raw_id(obj: object, spec: SourceSpec) -> str | None:
    if not isinstance(obj, dict):
        return None
    _name, value = find_field(obj, spec.id, ID_FIELDS)
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def _largest_field(obj: object) -> str | None:
    """The top-level field with the most text: the likely culprit of a slow record."""
    if not isinstance(obj, dict):
        return None
    best, size = None, -1
    for k, v in obj.items():
        n = len(v) if isinstance(v, str) else len(repr(v)) if isinstance(v, (list, dict)) else 0
        if n > size:
            best, size = str(k), n
    return best


def _timeout_error(obj: object, seconds: float | None) -> RecordError:
    name = _largest_field(obj)
    size = len(obj[name]) if name is not None and isinstance(obj.get(name), str) else None  # type: ignore[union-attr]
    where = f"; largest field {name!r}" + (f" ({size} characters)" if size is not None else "") if name else ""
    budget = f"the {seconds:g} s budget" if seconds else "its budget"
    return RecordError(RejectReason.TIMEOUT, f"normalizing the record took longer than {budget}{where}", name)


class _Batcher:
    """Collects normalized records and counts their tokens in one batch call."""

    def __init__(self, counter: TokenCounter | None, max_raw_tokens: int | None):
        self.counter = counter
        self.max_raw_tokens = max_raw_tokens
        self.pending: list[tuple[str, str, Unit, str, Normalized]] = []

    def flush(self, teacher: str) -> Iterator[TraceRecord | RejectRecord]:
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        n = len(pending)
        if self.counter is not None:
            counts = self.counter.count(
                [p[4].problem for p in pending] + [p[4].thinking for p in pending] + [p[4].final_response for p in pending]
            )
            prob, think, resp = counts[:n], counts[n : 2 * n], counts[2 * n :]
        else:
            prob = think = resp = [0] * n
        for i, (name, _stem, unit, rid, norm) in enumerate(pending):
            raw = think[i] + resp[i]
            if self.max_raw_tokens is not None and raw > self.max_raw_tokens:
                yield _reject(
                    teacher,
                    name,
                    unit,
                    RecordError(
                        RejectReason.TOO_MANY_TOKENS,
                        f"{raw} raw tokens exceed the ceiling of {self.max_raw_tokens}",
                        "thinking",
                    ),
                    rid,
                )
                continue
            yield TraceRecord(
                id=rid,
                teacher=teacher,
                problem=norm.problem,
                reference_answer=norm.reference_answer,
                thinking=norm.thinking,
                final_response=norm.final_response,
                source_file=name,
                source_line=unit.line,
                layout=norm.layout,
                thinking_closed=norm.thinking_closed,
                problem_tokens=prob[i],
                thinking_tokens=think[i],
                response_tokens=resp[i],
                raw_tokens=raw,
            )


def iter_outcomes(
    files: Iterable[tuple[Path, str]],
    teacher: str,
    spec: SourceSpec | None = None,
    counter: TokenCounter | None = None,
    *,
    max_raw_tokens: int | None = DEFAULT_MAX_RAW_TOKENS,
    batch_size: int = 512,
    stats: list[FileStats] | None = None,
    record_budget_s: float | None = DEFAULT_RECORD_BUDGET_S,
) -> Iterator[TraceRecord | RejectRecord]:
    """One outcome per record unit, in input order.

    ``files`` are ``(local path, name to record)`` pairs; the name is what the
    tables show as ``source_file`` (a path relative to the landing folder or an
    object key). Token counting is batched; ``counter=None`` skips it.
    ``record_budget_s`` bounds each record's normalization (``None``/``0``: no
    budget); an overrun is a ``timeout`` reject.
    """
    spec = spec or SourceSpec()
    seen = SeenIds()  # 48-96 bytes per id: the one part of ingestion that grows with the partition
    batcher = _Batcher(counter, max_raw_tokens)
    for path, name in files:
        fstats = FileStats(file=name)
        try:
            fstats.bytes = path.stat().st_size
        except OSError:
            pass
        stem = Path(name).stem
        for unit in iter_units(path):
            fstats.records += 1
            if unit.error is not None:
                yield from batcher.flush(teacher)
                yield _reject(teacher, name, unit, unit.error)
                continue
            try:
                try:
                    with record_budget(record_budget_s):
                        norm = normalize_record(unit.obj, spec)
                except RecordTimeout:
                    raise _timeout_error(unit.obj, record_budget_s) from None
            except RecordError as err:
                yield from batcher.flush(teacher)
                yield _reject(teacher, name, unit, err, _raw_id(unit.obj, spec))
                continue
            rid = record_id(norm.raw_id, stem, unit.line, spec.id_scope)
            first = seen.first_seen(rid, name, unit.line)
            if first is not None:
                first_file, first_line = first
                yield from batcher.flush(teacher)
                yield _reject(
                    teacher,
                    name,
                    unit,
                    RecordError(
                        RejectReason.DUPLICATE_ID,
                        f"id {rid!r} already used by {first_file}:{first_line}",
                        spec.id or "id",
                    ),
                    rid,
                )
                continue
            batcher.pending.append((name, stem, unit, rid, norm))
            if len(batcher.pending) >= batch_size:
                yield from batcher.flush(teacher)
        yield from batcher.flush(teacher)
        if stats is not None:
            stats.append(fstats)
    yield from batcher.flush(teacher)


def ingest_files(
    files: Iterable[tuple[Path, str]],
    teacher: str,
    spec: SourceSpec | None = None,
    counter: TokenCounter | None = None,
    *,
    max_raw_tokens: int | None = DEFAULT_MAX_RAW_TOKENS,
    batch_size: int = 512,
    record_budget_s: float | None = DEFAULT_RECORD_BUDGET_S,
) -> IngestResult:
    """Ingest files into (traces, rejects) frames; every unit lands in exactly one of them."""
    t0 = time.perf_counter()
    stats: list[FileStats] = []
    kept: list[TraceRecord] = []
    rejected: list[RejectRecord] = []
    for outcome in iter_outcomes(
        files,
        teacher,
        spec,
        counter,
        max_raw_tokens=max_raw_tokens,
        batch_size=batch_size,
        stats=stats,
        record_budget_s=record_budget_s,
    ):
        (kept if isinstance(outcome, TraceRecord) else rejected).append(outcome)
    # kept/rejected per file from the outcomes themselves (token-ceiling rejects are decided late)
    by_file = {s.file: s for s in stats}
    for r in kept:
        by_file[r.source_file].kept += 1
    for r in rejected:
        by_file[r.source_file].rejected += 1
    return IngestResult(
        teacher=teacher,
        traces=traces_frame(kept),
        rejects=rejects_frame(rejected),
        files=stats,
        seconds=time.perf_counter() - t0,
    )


def ingest_folder(
    folder: Path,
    teacher: str,
    counter: TokenCounter | None = None,
    spec: SourceSpec | None = None,
    **kw,
) -> IngestResult:
    """Ingest every data file of one teacher folder (names relative to the folder)."""
    folder = Path(folder)
    spec = spec or load_spec(folder)
    return ingest_files(named_files(folder), teacher, spec, counter, **kw)


def ingest_path(path: Path, teacher: str, counter: TokenCounter | None = None, spec: SourceSpec | None = None, **kw) -> IngestResult:
    """A teacher folder or a single dump file."""
    path = Path(path)
    if path.is_dir():
        return ingest_folder(path, teacher, counter, spec, **kw)
    spec = spec or load_spec(path.parent)
    return ingest_files([(path, path.name)], teacher, spec, counter, **kw)


def accounting_problems(traces: pl.DataFrame, rejects: pl.DataFrame, files: list[FileStats]) -> list[str]:
    """Every record read is in exactly one table: no unit twice, none missing. Empty list = OK."""
    problems: list[str] = []
    both = pl.concat(
        [traces.select("source_file", "source_line"), rejects.select("source_file", "source_line")], how="vertical"
    )
    dup = both.group_by("source_file", "source_line").len().filter(pl.col("len") > 1)
    for f, line, n in dup.head(10).iter_rows():
        problems.append(f"{f}:{line} appears {n} times across the kept and rejects tables")
    per_file = dict(both.group_by("source_file").len().iter_rows())
    for s in files:
        got = per_file.pop(s.file, 0)
        if got != s.records:
            problems.append(f"{s.file}: {s.records} records read but {got} in kept + rejects")
    for f, n in per_file.items():
        problems.append(f"{f}: {n} rows in the tables but the file was not read")
    total = traces.height + rejects.height
    read = sum(s.records for s in files)
    if total != read:
        problems.append(f"kept {traces.height} + rejected {rejects.height} = {total} != {read} records read")
    return problems
