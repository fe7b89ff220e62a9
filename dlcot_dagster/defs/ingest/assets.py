"""Stage 1, ingest: teacher dumps in the landing zone -> ``raw_traces`` + ``raw_trace_rejects``."""


import dagster as dg
import polars as pl
from pydantic import Field

from ...domain.budget import DEFAULT_RECORD_BUDGET_S
from ...domain.ingest import DEFAULT_MAX_RAW_TOKENS, accounting_problems, reference_source_report
from ...domain.ingest.schema import REJECT_SCHEMA, TRACE_SCHEMA
from ...domain.stream import BatchRunner, EngineSpec, ParquetSink, choose_workers, staging_dir, stream_ingest
from ...domain.quality import validate_raw_traces
from ...domain.stats import histogram_png, markdown_table, png_markdown, token_stats
from ..constants import (
    CHECK_ACCOUNTING,
    CHECK_NON_EMPTY_TEXT,
    CHECK_REFERENCE_SOURCES,
    CHECK_SELF_REFERENCE_SHARE,
    CHECK_TOKEN_BOUNDS,
    CHECK_UNIQUE_IDS,
    INGEST_GROUP,
    RAW_TRACE_REJECTS,
    RAW_TRACES,
)
from ..partitions import teacher_partitions
from ..resources import LandingZoneResource, TokenizerResource
from ..settings import scratch_dir


class IngestConfig(dg.Config):
    max_raw_tokens: int = Field(
        default=DEFAULT_MAX_RAW_TOKENS,
        description="records whose thinking + response exceed this many tokens are rejected (and checked)",
    )
    batch_size: int = Field(default=512, ge=1, description="records per batch (tokenizer call and Parquet row group)")
    record_budget_s: float = Field(
        default=DEFAULT_RECORD_BUDGET_S, ge=0, description="seconds to parse one record before it is rejected as timeout; 0 = off"
    )
    workers: int = Field(default=0, ge=0, description="tokenizer worker processes: 0 = one per core, 1 = no pool")
    max_self_reference_share: float = Field(
        default=0.0, ge=0, le=1,
        description="warn when more than this share of the traces is checked only against its own answer (`self`)",
    )


_CHECKS = [
    dg.AssetCheckSpec(CHECK_ACCOUNTING, asset=RAW_TRACES, blocking=True,
                      description="kept + rejected == records read, each record exactly once"),
    dg.AssetCheckSpec(CHECK_UNIQUE_IDS, asset=RAW_TRACES, blocking=True, description="ids are unique and non-null"),
    dg.AssetCheckSpec(CHECK_NON_EMPTY_TEXT, asset=RAW_TRACES, blocking=True,
                      description="problem, thinking and reference answer are non-empty"),
    dg.AssetCheckSpec(CHECK_TOKEN_BOUNDS, asset=RAW_TRACES, blocking=True,
                      description="raw token counts are positive and at most the configured ceiling"),
    dg.AssetCheckSpec(CHECK_REFERENCE_SOURCES, asset=RAW_TRACES, blocking=True,
                      description="every trace has a reference answer from a known source "
                                  "(given | extracted | joined | majority | self); counts per source"),
    dg.AssetCheckSpec(CHECK_SELF_REFERENCE_SHARE, asset=RAW_TRACES, blocking=False,
                      description="share of traces whose reference is their own final answer (`self`): their "
                                  "correctness checks test only self-consistency"),
]


@dg.multi_asset(
    outs={
        "raw_traces": dg.AssetOut(
            key=RAW_TRACES,
            io_manager_key="parquet_io_manager",
            description="Teacher traces normalized into one schema (problem, reference, thinking, response, tokens).",
        ),
        "raw_trace_rejects": dg.AssetOut(
            key=RAW_TRACE_REJECTS,
            io_manager_key="parquet_io_manager",
            description="Every input record that could not be used, with file, line, field and reason.",
        ),
    },
    partitions_def=teacher_partitions,
    group_name=INGEST_GROUP,
    check_specs=_CHECKS,
    code_version="ingest-v1",
)
def raw_traces(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    landing_zone: LandingZoneResource,
    tokenizer: TokenizerResource,
):
    teacher = context.partition_key
    landing = landing_zone.landing(context.instance.get_dynamic_partitions(teacher_partitions.name))
    spec = landing.spec(teacher)
    files = landing.local_files(teacher)
    counter = tokenizer.counter(teacher, spec.tokenizer)
    context.log.info(f"ingesting {len(files)} file(s) for teacher {teacher!r} with tokenizer {counter.spec!r}")
    engine_spec = EngineSpec(tokenizer=counter.spec, tokenizer_cache_dir=counter.cache_dir, max_raw_tokens=config.max_raw_tokens)
    workers = choose_workers(config.workers)
    with staging_dir(scratch_dir()) as stage, BatchRunner(engine_spec, workers, counter=counter if workers == 1 else None) as runner:
        traces_sink = ParquetSink(stage / "raw.parquet", TRACE_SCHEMA, what=RAW_TRACES.to_user_string())
        rejects_sink = ParquetSink(stage / "rejects.parquet", REJECT_SCHEMA, what=RAW_TRACE_REJECTS.to_user_string())
        with traces_sink, rejects_sink:
            stats = stream_ingest(
                files, teacher, spec, runner, traces_sink, rejects_sink,
                batch_size=config.batch_size, record_budget_s=config.record_budget_s or None,
            )
            staged_traces = traces_sink.commit()
            staged_rejects = rejects_sink.commit()
        runner.close()  # the pool is not needed while the staged files are checked and moved into place
        yield from _outputs_and_checks(context, config, teacher, counter, stats, staged_traces, staged_rejects, workers)


def _outputs_and_checks(context, config, teacher, counter, stats, staged_traces, staged_rejects, workers):
    # metadata and checks read narrow columns of the staged files (bounded memory), before they move into place
    lt, lr = staged_traces.scan(), staged_rejects.scan()
    rejects_head = lr.head(20).collect()
    for row in rejects_head.iter_rows(named=True):
        context.log.warning(
            f"rejected {row['source_file']}:{row['source_line']} field={row['field']}: {row['reason']}: {row['detail']}"
        )
    tokens = lt.select("thinking_tokens", "raw_tokens").collect()
    stats_ = token_stats(tokens["raw_tokens"])
    reasons = dict(lr.group_by("reason").len().sort("reason").collect().iter_rows()) if staged_rejects.rows else {}
    hist = histogram_png(
        {"thinking": tokens["thinking_tokens"].to_list(), "raw (thinking + response)": tokens["raw_tokens"].to_list()},
        title=f"{teacher}: token lengths",
    )
    del tokens
    unclosed = lt.select((~pl.col("thinking_closed")).sum()).collect().item() if staged_traces.rows else 0
    layouts = dict(lt.group_by("layout").len().sort("layout").collect().iter_rows())
    formats = {str(k): v for k, v in lt.group_by("source_format").len().sort("source_format").collect().iter_rows()}
    ref = reference_source_report(lt, staged_traces.rows)
    preview = lt.select("id", "problem", "reference_answer", "raw_tokens", "thinking_closed").head(20).collect()
    # accounting: (file, line) of every row in both tables against the records read per file
    where_t = lt.select("teacher", "source_file", "source_line", "generation").collect()
    where_r = lr.select("teacher", "source_file", "source_line", "generation").collect()
    problems = accounting_problems(where_t, where_r, stats)
    del where_t, where_r
    # great-expectations validates a narrow pandas frame: ids, emptiness of the texts, token counts
    narrow = lt.select(
        "id",
        *(
            pl.when(pl.col(c).fill_null("").str.strip_chars().str.len_chars() > 0).then(pl.lit("x")).otherwise(pl.lit("")).alias(c)
            for c in ("problem", "thinking", "reference_answer")
        ),
        "raw_tokens",
        "source_file",
        "source_line",
    ).collect()
    outcomes = validate_raw_traces(narrow, config.max_raw_tokens)
    del narrow
    records_read = sum(s.records for s in stats)
    yield dg.Output(
        staged_traces,
        output_name="raw_traces",
        metadata={
            "dagster/row_count": staged_traces.rows,
            "records_read": records_read,
            "rejected": staged_rejects.rows,
            "files": len(stats),
            "bytes_read": sum(s.bytes for s in stats),
            "tokenizer": counter.spec,
            "workers": workers,
            "raw_tokens": dg.MetadataValue.json(stats_),
            "tokens_min": stats_["min"],
            "tokens_median": stats_["median"],
            "tokens_p95": stats_["p95"],
            "tokens_max": stats_["max"],
            "unclosed_thinking": int(unclosed or 0),
            "layouts": dg.MetadataValue.json(layouts),
            "source_formats": dg.MetadataValue.json(formats),
            "reference_sources": dg.MetadataValue.json(ref["counts"]),
            "self_reference_share": ref["self_share"],
            "preview": dg.MetadataValue.md(markdown_table(preview)),
            "token_histogram": dg.MetadataValue.md(png_markdown(hist, f"{teacher} token histogram")),
        },
    )
    yield dg.Output(
        staged_rejects,
        output_name="raw_trace_rejects",
        metadata={
            "dagster/row_count": staged_rejects.rows,
            "by_reason": dg.MetadataValue.json(reasons),
            "preview": dg.MetadataValue.md(
                markdown_table(rejects_head.select("source_file", "source_line", "reason", "field", "detail"), max_rows=10)
            ),
        },
    )
    yield from _ingest_checks(problems, outcomes, records_read, staged_traces.rows, staged_rejects.rows, ref=ref,
                              max_self_share=config.max_self_reference_share)


def _ingest_checks(problems: list[str], outcomes: dict, records_read: int, kept: int, rejected: int, *,
                   ref: dict | None = None, max_self_share: float = 1.0):
    """The checks of ``raw_traces``: accounting (``problems`` name files and lines), reference sources (``ref``, from
    :func:`reference_source_report`; blocking) and their self share (warning), and the great-expectations outcomes
    (each names its failing rows by file, line and id)."""
    if ref is None:
        ref = {"counts": {}, "unaccounted": 0, "examples": [], "problems": [], "self_share": 0.0, "self_examples": []}
    yield dg.AssetCheckResult(
        check_name=CHECK_ACCOUNTING,
        asset_key=RAW_TRACES,
        passed=not problems,
        metadata={
            "records_read": records_read,
            "kept": kept,
            "rejected": rejected,
            "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
        },
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_REFERENCE_SOURCES,
        asset_key=RAW_TRACES,
        passed=not ref["problems"],
        metadata={
            "counts": dg.MetadataValue.json(ref["counts"]),
            "unaccounted": ref["unaccounted"],
            "examples": dg.MetadataValue.json(ref["examples"]),
            "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in ref["problems"]) or "none"),
        },
    )
    over = ref["self_share"] > max_self_share
    yield dg.AssetCheckResult(
        check_name=CHECK_SELF_REFERENCE_SHARE,
        asset_key=RAW_TRACES,
        passed=not over,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{ref['counts'].get('self', 0)} of {kept} traces ({100 * ref['self_share']:.1f} %) have no "
            "reference but their own final answer: their correctness checks test only self-consistency"
            if over else None
        ),
        metadata={
            "self_share": ref["self_share"],
            "self_traces": ref["counts"].get("self", 0),
            "max_self_reference_share": max_self_share,
            "examples": dg.MetadataValue.json(ref["self_examples"]),
        },
    )
    for check_name, key in (
        (CHECK_UNIQUE_IDS, "unique_ids"),
        (CHECK_NON_EMPTY_TEXT, "non_empty_text"),
        (CHECK_TOKEN_BOUNDS, "token_bounds"),
    ):
        o = outcomes[key]
        yield dg.AssetCheckResult(
            check_name=check_name,
            asset_key=RAW_TRACES,
            passed=o.success,
            metadata={
                "unexpected_count": o.unexpected_count,
                "examples": dg.MetadataValue.json([str(x)[:200] for x in o.examples]),
                "rows": dg.MetadataValue.json(o.rows),
                "validated_with": "great_expectations",
            },
        )
