"""Stage 1, ingest: teacher dumps in the landing zone -> ``raw_traces`` + ``raw_trace_rejects``."""


import dagster as dg
import polars as pl
from pydantic import Field

from ...domain.ingest import DEFAULT_MAX_RAW_TOKENS, accounting_problems, ingest_files
from ...domain.quality import validate_raw_traces
from ...domain.stats import histogram_png, markdown_table, png_markdown, token_stats
from ..constants import (
    CHECK_ACCOUNTING,
    CHECK_NON_EMPTY_TEXT,
    CHECK_TOKEN_BOUNDS,
    CHECK_UNIQUE_IDS,
    INGEST_GROUP,
    RAW_TRACE_REJECTS,
    RAW_TRACES,
)
from ..partitions import teacher_partitions
from ..resources import LandingZoneResource, TokenizerResource


class IngestConfig(dg.Config):
    max_raw_tokens: int = Field(
        default=DEFAULT_MAX_RAW_TOKENS,
        description="records whose thinking + response exceed this many tokens are rejected (and checked)",
    )
    batch_size: int = Field(default=512, description="records per tokenizer batch")


_CHECKS = [
    dg.AssetCheckSpec(CHECK_ACCOUNTING, asset=RAW_TRACES, blocking=True,
                      description="kept + rejected == records read, each record exactly once"),
    dg.AssetCheckSpec(CHECK_UNIQUE_IDS, asset=RAW_TRACES, blocking=True, description="ids are unique and non-null"),
    dg.AssetCheckSpec(CHECK_NON_EMPTY_TEXT, asset=RAW_TRACES, blocking=True,
                      description="problem, thinking and reference answer are non-empty"),
    dg.AssetCheckSpec(CHECK_TOKEN_BOUNDS, asset=RAW_TRACES, blocking=True,
                      description="raw token counts are positive and below the configured ceiling"),
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
    landing = landing_zone.landing()
    spec = landing.spec(teacher)
    files = landing.local_files(teacher)
    counter = tokenizer.counter(teacher, spec.tokenizer)
    context.log.info(f"ingesting {len(files)} file(s) for teacher {teacher!r} with tokenizer {counter.spec!r}")
    result = ingest_files(
        files, teacher, spec, counter, max_raw_tokens=config.max_raw_tokens, batch_size=config.batch_size
    )
    traces, rejects = result.traces, result.rejects
    for row in rejects.head(20).iter_rows(named=True):
        context.log.warning(
            f"rejected {row['source_file']}:{row['source_line']} field={row['field']}: {row['reason']}: {row['detail']}"
        )

    stats = token_stats(traces["raw_tokens"])
    reasons = dict(rejects.group_by("reason").len().sort("reason").iter_rows()) if rejects.height else {}
    hist = histogram_png(
        {"thinking": traces["thinking_tokens"].to_list(), "raw (thinking + response)": traces["raw_tokens"].to_list()},
        title=f"{teacher}: token lengths",
    )
    yield dg.Output(
        traces,
        output_name="raw_traces",
        metadata={
            "dagster/row_count": traces.height,
            "records_read": result.records_read,
            "rejected": rejects.height,
            "files": len(result.files),
            "bytes_read": result.bytes_read,
            "tokenizer": counter.spec,
            "raw_tokens": dg.MetadataValue.json(stats),
            "tokens_min": stats["min"],
            "tokens_median": stats["median"],
            "tokens_p95": stats["p95"],
            "tokens_max": stats["max"],
            "unclosed_thinking": int((~traces["thinking_closed"]).sum()) if traces.height else 0,
            "layouts": dg.MetadataValue.json(dict(traces.group_by("layout").len().sort("layout").iter_rows())),
            "preview": dg.MetadataValue.md(
                markdown_table(traces.select("id", "problem", "reference_answer", "raw_tokens", "thinking_closed"))
            ),
            "token_histogram": dg.MetadataValue.md(png_markdown(hist, f"{teacher} token histogram")),
        },
    )
    yield dg.Output(
        rejects,
        output_name="raw_trace_rejects",
        metadata={
            "dagster/row_count": rejects.height,
            "by_reason": dg.MetadataValue.json(reasons),
            "preview": dg.MetadataValue.md(
                markdown_table(rejects.select("source_file", "source_line", "reason", "field", "detail"), max_rows=10)
            ),
        },
    )

    problems = accounting_problems(traces, rejects, result.files)
    yield dg.AssetCheckResult(
        check_name=CHECK_ACCOUNTING,
        asset_key=RAW_TRACES,
        passed=not problems,
        metadata={
            "records_read": result.records_read,
            "kept": traces.height,
            "rejected": rejects.height,
            "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
        },
    )
    outcomes = validate_raw_traces(traces, config.max_raw_tokens)
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
                "validated_with": "great_expectations",
            },
        )
