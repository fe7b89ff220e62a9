"""Ingest one teacher's dump files into the kept-traces and rejects tables.

``iter_outcomes`` yields one ``TraceRecord`` or ``RejectRecord`` per generation of every record unit (see
:mod:`.readers`; a row with several generations gives one outcome each, ids ``<row id>#<k>``; a row-level error
gives one reject), in input order, except that traces waiting for a ``majority`` / ``self`` reference come at
the end, once every generation of their problem is known (:mod:`.references`). ``ingest_files`` collects them
into Polars frames with per-file accounting.

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
from ..tokens import TokenCounter
from .formats import Generation, Row, analyze_row
from .normalize import RecordError, Split, check_surrogates, clean_text, record_id, split_generation
from .readers import Unit, is_data_file, iter_units
from .references import MAJORITY, MajorityVotes, Resolver, own_answer, problem_key, resolve_pending
from .schema import REFERENCE_SOURCES, RejectReason, RejectRecord, TraceRecord, rejects_frame, traces_frame
from .seen_ids import SeenIds
from .sources import ID_FIELDS, SourceSpec, find_field

SPEC_FILENAME = "dlcot_source.yaml"
DEFAULT_MAX_RAW_TOKENS = 131_072
GROUP_SEP = ":"  # <folder>:<teacher group>: the partition of one teacher's columns in a multi-teacher dump


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
    """Data files under a teacher folder, recursively, in a stable order (the spec's problems file excluded)."""
    folder = Path(folder)
    skip = _problems_path(folder)
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and is_data_file(p) and not p.name.startswith(".") and (skip is None or p.resolve() != skip)
    )


def _problems_path(folder: Path) -> Path | None:
    """The problems file a folder's spec joins (it is reference data, not traces), if it lies in the folder."""
    spec_path = folder / SPEC_FILENAME
    if not spec_path.is_file():
        return None
    try:
        spec = SourceSpec.from_yaml(spec_path)
    except ValueError:
        return None
    return Path(spec.problems.path).resolve() if spec.problems is not None else None


def named_files(path: Path) -> list[tuple[Path, str]]:
    """``(local path, recorded name)`` pairs for a single dump file or a teacher folder (names relative to it)."""
    path = Path(path)
    if path.is_file():
        return [(path, path.name)]
    return [(p, p.relative_to(path).as_posix()) for p in list_data_files(path)]  # none for a missing folder


_GROUPS_CACHE: dict[tuple, list[str]] = {}


def teacher_groups(files: list[Path], spec: SourceSpec) -> list[str]:
    """Teacher column groups of a folder's dumps (from its first data file's first record, or the spec): each
    is a partition ``<folder>:<group>``. Cached per (file, size, mtime), so a sensor tick re-reads nothing."""
    from .formats import group_names
    from .readers import peek_keys

    if spec.teachers:
        return list(spec.teachers)
    if spec.thinking or spec.response or spec.messages or not files:
        return []
    first = files[0]
    try:
        st = first.stat()
        key = (str(first), st.st_size, st.st_mtime_ns)
    except OSError:
        return []
    hit = _GROUPS_CACHE.get(key)
    if hit is None:
        hit = group_names(peek_keys(first), spec)
        if len(_GROUPS_CACHE) > 1024:
            _GROUPS_CACHE.clear()
        _GROUPS_CACHE[key] = hit
    return hit


def split_group_key(key: str) -> tuple[str, str | None]:
    """``"s1k:deepseek"`` -> ``("s1k", "deepseek")``; ``"qwq"`` -> ``("qwq", None)``."""
    folder, sep, group = key.partition(GROUP_SEP)
    return (folder, group) if sep else (key, None)


def load_spec(folder: Path | None) -> SourceSpec:
    """The teacher folder's ``dlcot_source.yaml`` if present, else auto-detection."""
    if folder is not None and (folder / SPEC_FILENAME).is_file():
        return SourceSpec.from_yaml(folder / SPEC_FILENAME)
    return SourceSpec()


def _reject(
    teacher: str, name: str, unit: Unit, err: RecordError, rid: str | None = None, generation: int | None = None
) -> RejectRecord:
    return RejectRecord(
        teacher=teacher,
        source_file=name,
        source_line=unit.line,
        record_id=clean_text(rid),
        reason=err.reason,
        field=clean_text(err.field),
        detail=clean_text(err.detail) or "",
        excerpt=clean_text(unit.excerpt),
        generation=generation,
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


@dataclass
class _Parsed:
    """One generation, split and with its reference (or None: waiting for majority / self), before tokens."""

    teacher: str
    name: str
    unit: Unit
    rid: str
    problem: str
    split: Split
    gen: Generation
    ref: tuple[str, str] | None
    fmt: str


class _Batcher:
    """Collects parsed generations and counts their tokens in one batch call."""

    def __init__(self, counter: TokenCounter | None, max_raw_tokens: int | None):
        self.counter = counter
        self.max_raw_tokens = max_raw_tokens
        self.pending: list[_Parsed] = []

    def flush(self) -> Iterator[TraceRecord | RejectRecord]:
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        n = len(pending)
        if self.counter is not None:
            counts = self.counter.count(
                [p.problem for p in pending] + [p.split.thinking for p in pending] + [p.split.final_response for p in pending]
            )
            prob, think, resp = counts[:n], counts[n : 2 * n], counts[2 * n :]
        else:
            prob = think = resp = [0] * n
        for i, p in enumerate(pending):
            raw = think[i] + resp[i]
            if self.max_raw_tokens is not None and raw > self.max_raw_tokens:
                yield _reject(
                    p.teacher, p.name, p.unit,
                    RecordError(
                        RejectReason.TOO_MANY_TOKENS, f"{raw} raw tokens exceed the ceiling of {self.max_raw_tokens}", "thinking"
                    ),
                    p.rid, p.gen.k,
                )
                continue
            yield trace_record(p, prob[i], think[i], resp[i])


def trace_record(p: _Parsed, prob: int = 0, think: int = 0, resp: int = 0) -> TraceRecord:
    return TraceRecord(
        id=p.rid,
        teacher=p.teacher,
        problem=p.problem,
        reference_answer=p.ref[0] if p.ref else "",
        thinking=p.split.thinking,
        final_response=p.split.final_response,
        source_file=p.name,
        source_line=p.unit.line,
        layout=p.split.layout,
        thinking_closed=p.split.closed,
        problem_tokens=prob,
        thinking_tokens=think,
        response_tokens=resp,
        raw_tokens=think + resp,
        reference_source=p.ref[1] if p.ref else None,
        generation=p.gen.k,
        source_label=p.gen.label,
        finish_reason=p.gen.finish_reason,
        reasoning_complete=p.gen.complete,
        source_format=p.fmt,
    )


def _row_outcomes(
    obj: object, spec: SourceSpec, resolver: Resolver, teacher: str, name: str, stem: str, unit: Unit
) -> list[_Parsed | RejectRecord]:
    """Every generation of one record: parsed, or rejected naming the field (one reject for a row-level fault)."""
    if not isinstance(obj, dict):
        raise RecordError(RejectReason.NOT_AN_OBJECT, f"expected a JSON object, got {type(obj).__name__}")
    row: Row = analyze_row(obj, spec)
    rid_row = record_id(row.raw_id, stem, unit.line, spec.id_scope)
    gens = row.generations
    single = len(gens) == 1 and gens[0].k is None and gens[0].group is None
    splits: list[Split | RecordError] = []
    if single:  # the order of the one-trace checks: the text first, then problem, then reference
        splits.append(split_generation(gens[0], spec.layout, row.reasoning_off))
    if row.problem_error is not None:
        raise row.problem_error
    ref = resolver.inline(row)
    if not single:
        for g in gens:
            try:
                splits.append(split_generation(g, spec.layout, row.reasoning_off))
            except RecordError as err:
                splits.append(err)
    out: list[_Parsed | RejectRecord] = []
    for g, sp in zip(gens, splits):
        t = teacher if g.group is None or spec.group is not None else f"{teacher}{GROUP_SEP}{g.group}"
        rid = rid_row if g.k is None else f"{rid_row}#{g.k}"
        if isinstance(sp, RecordError):
            out.append(_reject(t, name, unit, sp, rid, g.k))
            continue
        try:
            check_surrogates([(row.id_field, row.raw_id), ("problem", row.problem),
                              ("reference_answer", ref[0] if ref else None),
                              ("thinking", sp.thinking), ("response", sp.final_response)])
        except RecordError as err:
            if single:
                raise
            out.append(_reject(t, name, unit, err, rid, g.k))
            continue
        out.append(_Parsed(t, name, unit, rid, row.problem, sp, g, ref, row.format))
    return out


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
    resolve: bool = True,
) -> Iterator[TraceRecord | RejectRecord]:
    """One outcome per generation of every record unit.

    ``files`` are ``(local path, name to record)`` pairs; the name is what the
    tables show as ``source_file`` (a path relative to the landing folder or an
    object key). Token counting is batched; ``counter=None`` skips it.
    ``record_budget_s`` bounds each record's normalization (``None``/``0``: no
    budget); an overrun is a ``timeout`` reject.

    ``resolve=False`` yields traces that have no per-row reference (no answer field, worked solution or joined
    problem) with ``reference_source=None`` and an empty ``reference_answer``, for a caller that resolves them in
    a second pass (:func:`..stream.stream_ingest`); by default they are held back (only they) and resolved to
    ``majority`` / ``self`` (or rejected ``no_reference``) after the last file.
    """
    spec = spec or SourceSpec()
    resolver = Resolver(spec)
    seen = SeenIds()  # 48-96 bytes per id: the one part of ingestion that grows with the partition
    batcher = _Batcher(counter, max_raw_tokens)
    held: list[TraceRecord] = []
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
                yield from _drain(batcher, held, resolve)
                yield _reject(teacher, name, unit, unit.error)
                continue
            try:
                try:
                    with record_budget(record_budget_s):
                        parsed = _row_outcomes(unit.obj, spec, resolver, teacher, name, stem, unit)
                except RecordTimeout:
                    raise _timeout_error(unit.obj, record_budget_s) from None
            except RecordError as err:
                yield from _drain(batcher, held, resolve)
                yield _reject(teacher, name, unit, err, _raw_id(unit.obj, spec))
                continue
            for p in parsed:
                if isinstance(p, RejectRecord):
                    yield from _drain(batcher, held, resolve)
                    yield p
                    continue
                key = p.rid if p.teacher == teacher else f"{p.teacher}\0{p.rid}"
                first = seen.first_seen(key, name, unit.line)
                if first is not None:
                    first_file, first_line = first
                    yield from _drain(batcher, held, resolve)
                    yield _reject(
                        p.teacher, name, unit,
                        RecordError(RejectReason.DUPLICATE_ID, f"id {p.rid!r} already used by {first_file}:{first_line}",
                                    spec.id or "id"),
                        p.rid, p.gen.k,
                    )
                    continue
                batcher.pending.append(p)
                if len(batcher.pending) >= batch_size:
                    yield from _drain(batcher, held, resolve)
        yield from _drain(batcher, held, resolve)
        if stats is not None:
            stats.append(fstats)
    yield from _drain(batcher, held, resolve)
    if held:
        yield from resolve_held(held, spec)


def _drain(batcher: _Batcher, held: list[TraceRecord], resolve: bool) -> Iterator[TraceRecord | RejectRecord]:
    for o in batcher.flush():
        if resolve and isinstance(o, TraceRecord) and o.reference_source is None:
            held.append(o)
        else:
            yield o


def resolve_held(held: list[TraceRecord], spec: SourceSpec, checker=None) -> Iterator[TraceRecord | RejectRecord]:
    """Majority / self references for traces without a per-row one (or ``no_reference`` rejects)."""
    owns = [own_answer(r.final_response, r.thinking) for r in held]
    keys = [(r.teacher, problem_key(r.problem)) for r in held]  # votes never mix teachers (one partition each)
    winners: dict = {}
    if MAJORITY in spec.reference_sources:
        votes = MajorityVotes(spec.majority_k)
        for key, own in zip(keys, owns):
            votes.add(key, *(own or (None, None)))
        winners = votes.winners(checker)
    for r, key, own in zip(held, keys, owns):
        try:
            answer, source = resolve_pending(own, winners.get(key), spec)
        except RecordError as err:
            yield reject_trace(r, err)
            continue
        yield r.model_copy(update={"reference_answer": answer, "reference_source": source})


def reject_trace(r: TraceRecord, err: RecordError) -> RejectRecord:
    return RejectRecord(
        teacher=r.teacher, source_file=r.source_file, source_line=r.source_line, record_id=r.id, reason=err.reason,
        field=err.field, detail=clean_text(err.detail) or "", excerpt=None, generation=r.generation,
    )


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
    """Ingest files into (traces, rejects) frames; every generation lands in exactly one of them."""
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
    """Every record read is in the tables, each generation exactly once: no generation twice, no record missing,
    no row-level reject beside traces of the same row. Empty list = OK.

    The frames need ``source_file`` and ``source_line``; ``generation`` and ``teacher`` are used when present (a
    multi-teacher row has one outcome per teacher)."""
    problems: list[str] = []

    def where(df: pl.DataFrame) -> pl.DataFrame:
        cols = [
            pl.col("teacher") if "teacher" in df.columns else pl.lit("", dtype=pl.String).alias("teacher"),
            pl.col("source_file"),
            pl.col("source_line"),
            pl.col("generation") if "generation" in df.columns else pl.lit(None, dtype=pl.Int64).alias("generation"),
        ]
        return df.select(cols)

    both = pl.concat([where(traces), where(rejects)], how="vertical")
    dup = (
        both.group_by("teacher", "source_file", "source_line", "generation").len().filter(pl.col("len") > 1)
        .sort("source_file", "source_line", "generation", "teacher", nulls_last=False)
    )
    for t, f, line, gen, n in dup.head(10).iter_rows():
        g = "" if gen is None else f" generation {gen}"
        problems.append(f"{f}:{line}{g} appears {n} times across the kept and rejects tables" + (f" ({t})" if t else ""))
    mixed = (
        both.group_by("teacher", "source_file", "source_line")
        .agg(rowlevel=pl.col("generation").is_null().sum(), n=pl.len())
        .filter((pl.col("rowlevel") > 0) & (pl.col("n") > 1))
        .sort("source_file", "source_line", "teacher")
    )
    for t, f, line, _r, n in mixed.head(10).iter_rows():
        problems.append(f"{f}:{line} has a row-level outcome and {n - 1} other(s)" + (f" ({t})" if t else ""))
    lines = both.select("source_file", "source_line").unique()
    per_file = dict(lines.group_by("source_file").len().iter_rows())
    for s in files:
        got = per_file.pop(s.file, 0)
        if got != s.records:
            problems.append(f"{s.file}: {s.records} records read but {got} in kept + rejects")
    for f, n in per_file.items():
        problems.append(f"{f}: {n} rows in the tables but the file was not read")
    read = sum(s.records for s in files)
    if lines.height != read:
        problems.append(
            f"kept {traces.height} + rejected {rejects.height} cover {lines.height} records != {read} records read"
        )
    return problems


def reference_source_report(lt: pl.LazyFrame, rows: int, limit: int = 10) -> dict:
    """Counts per reference source, and the rows a check fails on: an unknown or missing source, or an empty
    reference answer (ids, file and line, first ``limit``); the share and first ids of ``self`` rows."""
    counts = {
        str(k): v for k, v in lt.group_by("reference_source").len().sort("reference_source").collect().iter_rows()
    }
    bad = lt.filter(
        ~pl.col("reference_source").is_in(list(REFERENCE_SOURCES)).fill_null(False)
        | (pl.col("reference_answer").fill_null("").str.strip_chars().str.len_chars() == 0)
    ).select("id", "source_file", "source_line", "reference_source")
    n_bad = bad.select(pl.len()).collect().item() if rows else 0
    examples = [
        f"{r['id']} ({r['source_file']}:{r['source_line']}): source {r['reference_source']!r}"
        for r in bad.head(limit).collect().iter_rows(named=True)
    ] if n_bad else []
    problems = []
    if n_bad:
        problems.append(f"{n_bad} trace(s) without a reference from a known source: " + "; ".join(examples))
    if sum(v for k, v in counts.items() if k in REFERENCE_SOURCES) + n_bad < rows:
        problems.append("per-source counts do not add up to the rows")
    n_self = counts.get("self", 0)
    self_examples = (
        lt.filter(pl.col("reference_source") == "self").select("id").head(limit).collect()["id"].to_list() if n_self else []
    )
    return {
        "counts": counts,
        "unaccounted": n_bad,
        "examples": examples,
        "problems": problems,
        "self_share": n_self / rows if rows else 0.0,
        "self_examples": self_examples,
    }
