"""Stage 2, DLCoT: raw_traces -> segmented_traces -> pruned_solutions -> corrected_traces (+ dropped_traces).

``decontam_verdicts`` (defs/decontam) comes first: the records it dropped are carried through unsegmented and land in
``dropped_traces`` with stage ``decontam`` and their evidence; the blocking check ``no_benchmark_overlap`` re-matches
every kept row against the ``benchmarks`` list.
"""

import json

import dagster as dg
import polars as pl
from pydantic import Field

from ...domain.dlcot import engine_code_version
from ...domain.llm import llm_fallbacks, llm_report
from ...domain.pipeline import (
    CORRECTED_SCHEMA,
    DROPPED_SCHEMA,
    PRUNED_SCHEMA,
    SEGMENTED_SCHEMA,
    render_removed,
)
from ...domain.stream import (
    ParquetSink,
    ParquetTable,
    correct_task,
    iter_aligned,
    iter_aligned_many,
    prune_task,
    segment_task,
    staging_dir,
)
from ...domain.stats import histogram_png, markdown_table, png_markdown, token_stats
from ..benchmarks import BenchmarksResource
from ..constants import (
    CHECK_ANSWERS_VERIFIED,
    CHECK_DLCOT_ACCOUNTING,
    CHECK_MAX_SEQ_LEN,
    CHECK_NO_BENCHMARK_OVERLAP,
    CHECK_SEGMENT_COVERAGE,
    CHECK_TOKEN_REDUCTION,
    CHECK_TOKENS_NOT_INCREASED,
    CORRECTED_TRACES,
    DECONTAM_VERDICTS,
    DLCOT_GROUP,
    DROPPED_TRACES,
    PRUNED_SOLUTIONS,
    RAW_TRACES,
    SEGMENTED_TRACES,
)
from ..decontam.assets import learned_spec
from ..decontam.resources import DecontamResource
from ..gpu import gpu_step_kwargs
from ..partitions import teacher_partitions
from ..resources import TokenizerResource
from ..settings import scratch_dir
from .resources import DLCoTEngineResource

CODE_VERSION = engine_code_version()

# The three stages run the LLM steps in-process when dlcot_engine.engine is llm. Op tags are static, so a code
# location that runs vLLM inside these steps sets DLCOT_GPU_STEPS=1 at load time: they then carry the GPU pod
# tags (defs/gpu.py) and join the `gpu` pool. Left unset (rules, or llm over an HTTP endpoint) they stay CPU steps.
GPU_STEP = gpu_step_kwargs()


def staging():
    """The step's staging folder; each staged file is moved or uploaded by the IO manager when its output is
    yielded, so outputs are yielded inside this block."""
    return staging_dir(scratch_dir())


def _run_metadata(runner, dlcot_engine: DLCoTEngineResource) -> dict:
    """Workers, batch size and the engine mode (in llm mode, the in-process engine's LLM step report)."""
    engine = runner.local.engine if dlcot_engine.engine_kind == "llm" else None
    return {"workers": runner.workers, "batch_size": dlcot_engine.batch_size, **_llm_metadata(engine, dlcot_engine)}


def _llm_metadata(engine, dlcot_engine: DLCoTEngineResource) -> dict:
    """Engine mode and, in llm mode, the LLM steps' acceptance and fallbacks per reason."""
    if dlcot_engine.engine_kind != "llm":
        return {"engine": "rules"}
    report = {name: st for name, st in llm_report(engine).items() if st["records"]}  # the steps this stage ran
    fallbacks = {k: n for k, n in llm_fallbacks(engine).items() if k.split(":")[0] in report}
    client = getattr(engine, "llm_client", None)
    asked = sum(st["records"] - sum(st["skipped"].values()) for st in report.values())
    return {
        "engine": "llm",
        "llm_model": dlcot_engine.llm.model,
        "llm_steps": dg.MetadataValue.json(report),
        "llm_fallbacks": dg.MetadataValue.json(fallbacks),
        "llm_fallback_count": sum(fallbacks.values()),
        "llm_fallback_rate": round(sum(fallbacks.values()) / asked, 4) if asked else 0.0,
        "llm_client": dg.MetadataValue.json(client.stats.as_dict() if client is not None else {}),
    }


@dg.asset(
    key=SEGMENTED_TRACES,
    ins={"raw_traces": dg.AssetIn(RAW_TRACES), "decontam_verdicts": dg.AssetIn(DECONTAM_VERDICTS)},
    partitions_def=teacher_partitions,
    group_name=DLCOT_GROUP,
    io_manager_key="parquet_io_manager",
    code_version=CODE_VERSION,
    check_specs=[
        dg.AssetCheckSpec(CHECK_SEGMENT_COVERAGE, asset=SEGMENTED_TRACES, blocking=True,
                          description="segments tile each thinking text exactly (concatenation == original)")
    ],
    description="Each thinking split into restatement, understanding, solutions, verifications and conclusion "
    "(character spans of the original); records the decontamination step dropped are carried, unsegmented.",
    **GPU_STEP,
)
def segmented_traces(
    context: dg.AssetExecutionContext,
    raw_traces: ParquetTable,
    decontam_verdicts: ParquetTable,
    dlcot_engine: DLCoTEngineResource,
):
    bs = dlcot_engine.batch_size
    kinds: dict[str, int] = {}
    problems: list[str] = []
    with staging() as stage, dlcot_engine.runner(raw_traces.num_rows) as runner:
        pairs = iter_aligned(raw_traces.path, decontam_verdicts.path, bs, what=DECONTAM_VERDICTS.to_user_string())
        with ParquetSink(stage / "segmented.parquet", SEGMENTED_SCHEMA, what=SEGMENTED_TRACES.to_user_string()) as sink:
            for out in runner.map(segment_task, pairs):
                sink.write(out.segmented)
                problems.extend(out.coverage_problems[: max(0, 10 - len(problems))])
                for kind, n in out.kinds.items():
                    kinds[kind] = kinds.get(kind, 0) + n
            staged = sink.commit()
        means = staged.scan().select(pl.col("n_solutions").mean(), pl.col("n_verifications").mean()).collect()
        yield dg.Output(
            staged,
            metadata={
                "dagster/row_count": staged.rows,
                "segments_by_kind": dg.MetadataValue.json(kinds),
                "solutions_per_trace": float(means["n_solutions"][0] or 0),
                "verifications_per_trace": float(means["n_verifications"][0] or 0),
                **_run_metadata(runner, dlcot_engine),
            },
        )
    yield _coverage_check(problems)


def _coverage_check(problems: list[str]) -> dg.AssetCheckResult:
    """``segments_cover_thinking`` from the batches' coverage problems (each names its trace id)."""
    return dg.AssetCheckResult(
        check_name=CHECK_SEGMENT_COVERAGE,
        passed=not problems,
        metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none")},
    )


@dg.asset(
    key=PRUNED_SOLUTIONS,
    ins={"raw_traces": dg.AssetIn(RAW_TRACES), "segmented_traces": dg.AssetIn(SEGMENTED_TRACES)},
    partitions_def=teacher_partitions,
    group_name=DLCOT_GROUP,
    io_manager_key="parquet_io_manager",
    code_version=CODE_VERSION,
    description="Solutions and checks labelled correct/incorrect/incomplete, clustered, and pruned by the policy; "
    "every dropped sample and segment keeps its reason.",
    **GPU_STEP,
)
def pruned_solutions(
    context: dg.AssetExecutionContext,
    raw_traces: ParquetTable,
    segmented_traces: ParquetTable,
    dlcot_engine: DLCoTEngineResource,
):
    bs = dlcot_engine.batch_size
    seg_reasons: dict[str, int] = {}
    with staging() as stage, dlcot_engine.runner(raw_traces.num_rows) as runner:
        pairs = iter_aligned(raw_traces.path, segmented_traces.path, bs, what=SEGMENTED_TRACES.to_user_string())
        with ParquetSink(stage / "pruned.parquet", PRUNED_SCHEMA, what=PRUNED_SOLUTIONS.to_user_string()) as sink:
            for out in runner.map(prune_task, pairs):
                sink.write(out.pruned)
                for reason, n in out.segment_drop_reasons.items():
                    seg_reasons[reason] = seg_reasons.get(reason, 0) + n
            staged = sink.commit()
        lf = staged.scan()
        dropped = lf.filter(pl.col("status") == "dropped").group_by("reason").len().sort("reason").collect()
        sums = lf.select(
            *(pl.col(f"n_{k}").sum() for k in ("correct", "incorrect", "incomplete")), pl.col("n_clusters").mean()
        ).collect()
        structure = lf.select(
            checks_per_trace=pl.col("n_checks").mean(),
            redundant_checks_removed=pl.col("n_redundant_checks").sum(),
            distinct_methods_kept=pl.col("n_distinct_methods").sum(),
            distinct_methods_per_trace=pl.col("n_distinct_methods").mean(),
        ).collect()
        n_dropped = int(dropped["len"].sum()) if dropped.height else 0
        # yielded (not returned) inside the staging block: the IO manager moves the file before it is removed
        yield dg.Output(
            staged,
            metadata={
                "dagster/row_count": staged.rows,
                "policy": dlcot_engine.policy,
                "samples_kept": staged.rows - n_dropped,
                "samples_dropped": n_dropped,
                "labels": dg.MetadataValue.json(
                    {k: int(sums[f"n_{k}"][0] or 0) for k in ("correct", "incorrect", "incomplete")}
                ),
                "sample_drop_reasons": dg.MetadataValue.json(dict(dropped.iter_rows()) if dropped.height else {}),
                "segment_drop_reasons": dg.MetadataValue.json(dict(sorted(seg_reasons.items()))),
                "clusters_per_trace": float(sums["n_clusters"][0] or 0),
                "checks_per_trace": round(float(structure["checks_per_trace"][0] or 0), 3),
                "redundant_checks_removed": int(structure["redundant_checks_removed"][0] or 0),
                "distinct_methods_kept": int(structure["distinct_methods_kept"][0] or 0),
                "distinct_methods_per_trace": round(float(structure["distinct_methods_per_trace"][0] or 0), 3),
                **_run_metadata(runner, dlcot_engine),
            },
        )


class CorrectConfig(dg.Config):
    max_seq_len: int = Field(default=32_768, description="longest SFT sample (problem + assistant turn), in tokens")
    min_median_reduction: float = Field(
        default=0.05, description="warn when the median token reduction falls below this share"
    )


@dg.multi_asset(
    outs={
        "corrected_traces": dg.AssetOut(
            key=CORRECTED_TRACES,
            io_manager_key="parquet_io_manager",
            description="SFT-ready records: chat messages with <think>corrected thinking</think> + final answer.",
        ),
        "dropped_traces": dg.AssetOut(
            key=DROPPED_TRACES,
            io_manager_key="parquet_io_manager",
            description="Every raw trace that did not make it into corrected_traces, with stage and reason.",
        ),
    },
    ins={
        "raw_traces": dg.AssetIn(RAW_TRACES),
        "pruned_solutions": dg.AssetIn(PRUNED_SOLUTIONS),
        "decontam_verdicts": dg.AssetIn(DECONTAM_VERDICTS),
    },
    partitions_def=teacher_partitions,
    group_name=DLCOT_GROUP,
    code_version=CODE_VERSION,
    check_specs=[
        dg.AssetCheckSpec(CHECK_NO_BENCHMARK_OVERLAP, asset=CORRECTED_TRACES, blocking=True,
                          description="no kept row's problem overlaps a problem of the `benchmarks` list"),
        dg.AssetCheckSpec(CHECK_ANSWERS_VERIFIED, asset=CORRECTED_TRACES, blocking=True,
                          description="every corrected trace's final answer is equivalent to its reference"),
        dg.AssetCheckSpec(CHECK_TOKENS_NOT_INCREASED, asset=CORRECTED_TRACES, blocking=True,
                          description="corrected tokens <= raw tokens on every row"),
        dg.AssetCheckSpec(CHECK_MAX_SEQ_LEN, asset=CORRECTED_TRACES, blocking=True,
                          description="no sample exceeds the configured maximum sequence length"),
        dg.AssetCheckSpec(CHECK_DLCOT_ACCOUNTING, asset=CORRECTED_TRACES, blocking=True,
                          description="kept + dropped-with-reason == raw rows"),
        dg.AssetCheckSpec(CHECK_TOKEN_REDUCTION, asset=CORRECTED_TRACES, blocking=False,
                          description="median token reduction per teacher, warning below the floor"),
    ],
    **GPU_STEP,
)
def corrected_traces(
    context: dg.AssetExecutionContext,
    config: CorrectConfig,
    raw_traces: ParquetTable,
    pruned_solutions: ParquetTable,
    decontam_verdicts: ParquetTable,
    dlcot_engine: DLCoTEngineResource,
    tokenizer: TokenizerResource,
    benchmarks: BenchmarksResource,
    decontam: DecontamResource,
):
    teacher = context.partition_key
    bs = dlcot_engine.batch_size
    counter = tokenizer.counter(teacher)
    bad_answers: list[str] = []
    n_bad_answers = 0
    problems: list[str] = []
    overlaps: list[str] = []
    n_overlaps = 0
    # the check re-matches kept rows with the spec decontamination used (same list, settings, learned boilerplate)
    dspec = learned_spec(raw_traces, benchmarks, decontam, bs)
    runner_ctx = dlcot_engine.runner(raw_traces.num_rows, counter, max_seq_len=config.max_seq_len, decontam=dspec)
    with staging() as stage, runner_ctx as runner:
        pairs = iter_aligned_many(
            [raw_traces.path, pruned_solutions.path, decontam_verdicts.path], bs,
            what=["raw_traces", PRUNED_SOLUTIONS.to_user_string(), DECONTAM_VERDICTS.to_user_string()],
        )
        kept_sink = ParquetSink(stage / "kept.parquet", CORRECTED_SCHEMA, what=CORRECTED_TRACES.to_user_string())
        dropped_sink = ParquetSink(stage / "dropped.parquet", DROPPED_SCHEMA, what=DROPPED_TRACES.to_user_string())
        with kept_sink, dropped_sink:
            for out in runner.map(correct_task, pairs):
                kept_sink.write(out.kept)
                dropped_sink.write(out.dropped)
                n_bad_answers += len(out.answer_failures)
                bad_answers.extend(out.answer_failures[: max(0, 10 - len(bad_answers))])
                problems.extend(out.accounting_problems[: max(0, 10 - len(problems))])
                n_overlaps += len(out.benchmark_overlaps)
                overlaps.extend(out.benchmark_overlaps[: max(0, 10 - len(overlaps))])
            kept = kept_sink.commit()
            dropped = dropped_sink.commit()

        # everything the metadata and checks need is read from the staged files before they move into place
        lk = kept.scan()
        red_q = lk.select(
            r=1 - pl.col("corrected_tokens") / pl.col("raw_tokens")
        ).select(
            median=pl.col("r").median(), p10=pl.col("r").quantile(0.10), p90=pl.col("r").quantile(0.90)
        ).collect()
        red = {k: float(red_q[k][0] or 0) if kept.rows else 0.0 for k in ("median", "p10", "p90")}
        tokens = lk.select("raw_tokens", "corrected_tokens").collect()
        top = (
            lk.with_columns(n=pl.col("removed_spans").str.len_chars())
            .top_k(3, by="n")
            .select("id", "raw_tokens", "corrected_tokens", "removed_spans", "edits")
            .collect()
        )
        n_error_spans = lk.select(pl.col("n_error_spans").sum()).collect().item() or 0
        preview = lk.select("id", "final_answer", "raw_tokens", "corrected_tokens").head(20).collect()
        kept_sources = dict(lk.group_by("reference_source").len().sort("reference_source").collect().iter_rows())
        ld = dropped.scan()
        by_reason = ld.group_by("reason").len().sort("reason").collect()
        by_stage = ld.group_by("stage").len().sort("stage").collect()
        by_benchmark = ld.filter(pl.col("benchmark").is_not_null()).group_by("benchmark").len().sort("benchmark").collect()
        checks = _corrected_checks(
            lk, ld, raw_traces.num_rows, config, n_bad_answers=n_bad_answers, bad_answers=bad_answers,
            problems=problems, reduction=red,
        )

        hist = histogram_png(
            {"raw": tokens["raw_tokens"].to_list(), "corrected": tokens["corrected_tokens"].to_list()},
            title=f"{teacher}: tokens before / after DLCoT",
        )
        del tokens
        examples = []
        if top.height:
            thinking = dict(
                raw_traces.scan().filter(pl.col("id").is_in(top["id"].to_list())).select("id", "thinking").collect().iter_rows()
            )
            for row in top.iter_rows(named=True):
                spans = json.loads(row["removed_spans"])
                examples.append(
                    f"### {row['id']} ({row['raw_tokens']} -> {row['corrected_tokens']} tokens, {len(spans)} removed spans)\n\n"
                    + render_removed(thinking[row["id"]], spans, edits=json.loads(row["edits"] or "[]"))
                )
        yield dg.Output(
            kept,
            output_name="corrected_traces",
            metadata={
                "dagster/row_count": kept.rows,
                "policy": dlcot_engine.policy,
                "dropped": dropped.rows,
                "token_reduction": dg.MetadataValue.json(red),
                "token_reduction_median": red["median"],
                "error_spans_removed": int(n_error_spans),
                "raw_tokens": dg.MetadataValue.json(token_stats(lk.select("raw_tokens").collect()["raw_tokens"])),
                "corrected_tokens": dg.MetadataValue.json(
                    token_stats(lk.select("corrected_tokens").collect()["corrected_tokens"])
                ),
                "reference_sources": dg.MetadataValue.json({str(k): v for k, v in kept_sources.items()}),
                "before_after_histogram": dg.MetadataValue.md(png_markdown(hist, "tokens before/after")),
                "examples": dg.MetadataValue.md("\n\n".join(examples) or "_(none kept)_"),
                "preview": dg.MetadataValue.md(markdown_table(preview)),
                **_run_metadata(runner, dlcot_engine),
            },
        )
        yield dg.Output(
            dropped,
            output_name="dropped_traces",
            metadata={
                "dagster/row_count": dropped.rows,
                "by_reason": dg.MetadataValue.json(dict(by_reason.iter_rows()) if by_reason.height else {}),
                "by_stage": dg.MetadataValue.json(dict(by_stage.iter_rows()) if by_stage.height else {}),
                "by_benchmark": dg.MetadataValue.json(dict(by_benchmark.iter_rows()) if by_benchmark.height else {}),
            },
        )

    yield dg.AssetCheckResult(
        check_name=CHECK_NO_BENCHMARK_OVERLAP,
        asset_key=CORRECTED_TRACES,
        passed=n_overlaps == 0,
        metadata={
            "overlapping_rows": n_overlaps,
            "benchmarks": dg.MetadataValue.json(sorted(b.name for b in dspec.benchmarks)),
            "benchmark_problems": len(dspec.base_index()) if dspec.benchmarks else 0,
            "config_hash": dspec.config_hash(),
            "examples": dg.MetadataValue.json(overlaps[:10]),
        },
    )
    yield from checks


def _corrected_checks(
    kept: pl.LazyFrame,
    dropped: pl.LazyFrame,
    raw_rows: int,
    config: CorrectConfig,
    *,
    n_bad_answers: int,
    bad_answers: list[str],
    problems: list[str],
    reduction: dict[str, float],
) -> list[dg.AssetCheckResult]:
    """The checks of ``corrected_traces``, read from its staged kept and dropped tables (before they move into
    place). ``bad_answers`` / ``problems`` come from the batches (answer re-check, accounting by id); every
    failing check names rows (ids) in its metadata."""
    kept_rows = kept.select(pl.len()).collect().item()
    dropped_rows = dropped.select(pl.len()).collect().item()
    longer = kept.filter(pl.col("corrected_tokens") > pl.col("raw_tokens")).select("id").collect()
    over = kept.filter(pl.col("seq_tokens") > config.max_seq_len).select("id", "seq_tokens").collect()
    longest = kept.select(pl.col("seq_tokens").max()).collect().item() or 0
    no_reason = dropped.filter(pl.col("reason").is_null() | (pl.col("reason") == "")).select("id").collect()
    problems = list(problems)
    if kept_rows + dropped_rows != raw_rows:
        problems.append(f"kept {kept_rows} + dropped {dropped_rows} != {raw_rows} raw rows")
    if no_reason.height:
        problems.append(f"{no_reason.height} dropped rows without a reason, e.g. {no_reason['id'].head(3).to_list()}")
    return [
        dg.AssetCheckResult(
            check_name=CHECK_ANSWERS_VERIFIED,
            asset_key=CORRECTED_TRACES,
            passed=n_bad_answers == 0,
            metadata={"failures": n_bad_answers, "examples": dg.MetadataValue.json(bad_answers[:10])},
        ),
        dg.AssetCheckResult(
            check_name=CHECK_TOKENS_NOT_INCREASED,
            asset_key=CORRECTED_TRACES,
            passed=longer.height == 0,
            metadata={"rows_longer_than_raw": longer.height, "examples": dg.MetadataValue.json(longer["id"].head(10).to_list())},
        ),
        dg.AssetCheckResult(
            check_name=CHECK_MAX_SEQ_LEN,
            asset_key=CORRECTED_TRACES,
            passed=over.height == 0,
            metadata={
                "max_seq_len": config.max_seq_len,
                "longest": int(longest),
                "over": over.height,
                "examples": dg.MetadataValue.json([f"{i}: {n} tokens" for i, n in over.head(10).iter_rows()]),
            },
        ),
        dg.AssetCheckResult(
            check_name=CHECK_DLCOT_ACCOUNTING,
            asset_key=CORRECTED_TRACES,
            passed=not problems,
            metadata={
                "raw": raw_rows,
                "kept": kept_rows,
                "dropped": dropped_rows,
                "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems[:10]) or "none"),
            },
        ),
        dg.AssetCheckResult(
            check_name=CHECK_TOKEN_REDUCTION,
            asset_key=CORRECTED_TRACES,
            passed=kept_rows == 0 or reduction["median"] >= config.min_median_reduction,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "median_reduction": reduction["median"],
                "floor": config.min_median_reduction,
                "p10": reduction["p10"],
                "p90": reduction["p90"],
            },
        ),
    ]
