"""Stage 2, DLCoT: raw_traces -> segmented_traces -> pruned_solutions -> corrected_traces (+ dropped_traces)."""

import json

import dagster as dg
import polars as pl
from pydantic import Field

from ...domain.answers import AnswerChecker, extract_final_answer
from ...domain.dlcot import engine_code_version
from ...domain.llm import llm_fallbacks, llm_report
from ...domain.pipeline import (
    correct_frame,
    coverage_problems,
    dlcot_accounting_problems,
    prune_frame,
    render_removed,
    segment_frame,
)
from ...domain.stats import histogram_png, markdown_table, png_markdown, token_stats
from ..constants import (
    CHECK_ANSWERS_VERIFIED,
    CHECK_DLCOT_ACCOUNTING,
    CHECK_MAX_SEQ_LEN,
    CHECK_SEGMENT_COVERAGE,
    CHECK_TOKEN_REDUCTION,
    CHECK_TOKENS_NOT_INCREASED,
    CORRECTED_TRACES,
    DLCOT_GROUP,
    DROPPED_TRACES,
    PRUNED_SOLUTIONS,
    RAW_TRACES,
    SEGMENTED_TRACES,
)
from ..gpu import gpu_step_kwargs
from ..partitions import teacher_partitions
from ..resources import TokenizerResource
from .resources import DLCoTEngineResource

CODE_VERSION = engine_code_version()

# The three stages run the LLM steps in-process when dlcot_engine.engine is llm. Op tags are static, so a code
# location that runs vLLM inside these steps sets DLCOT_GPU_STEPS=1 at load time: they then carry the GPU pod
# tags (defs/gpu.py) and join the `gpu` pool. Left unset (rules, or llm over an HTTP endpoint) they stay CPU steps.
GPU_STEP = gpu_step_kwargs()


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
    ins={"raw_traces": dg.AssetIn(RAW_TRACES)},
    partitions_def=teacher_partitions,
    group_name=DLCOT_GROUP,
    io_manager_key="parquet_io_manager",
    code_version=CODE_VERSION,
    check_specs=[
        dg.AssetCheckSpec(CHECK_SEGMENT_COVERAGE, asset=SEGMENTED_TRACES, blocking=True,
                          description="segments tile each thinking text exactly (concatenation == original)")
    ],
    description="Each thinking split into restatement, understanding, solutions, verifications and conclusion "
    "(character spans of the original).",
    **GPU_STEP,
)
def segmented_traces(context: dg.AssetExecutionContext, raw_traces: pl.DataFrame, dlcot_engine: DLCoTEngineResource):
    engine = dlcot_engine.engine()
    out = segment_frame(raw_traces, engine)
    kinds: dict[str, int] = {}
    for blob in out["segments"].to_list():
        for seg in json.loads(blob):
            kinds[seg["kind"]] = kinds.get(seg["kind"], 0) + 1
    yield dg.Output(
        out,
        metadata={
            "dagster/row_count": out.height,
            "segments_by_kind": dg.MetadataValue.json(kinds),
            "solutions_per_trace": float(out["n_solutions"].mean() or 0),
            "verifications_per_trace": float(out["n_verifications"].mean() or 0),
            **_llm_metadata(engine, dlcot_engine),
        },
    )
    problems = coverage_problems(raw_traces, out)
    yield dg.AssetCheckResult(
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
    raw_traces: pl.DataFrame,
    segmented_traces: pl.DataFrame,
    dlcot_engine: DLCoTEngineResource,
) -> dg.Output:
    engine = dlcot_engine.engine()
    out = prune_frame(raw_traces, segmented_traces, engine)
    seg_reasons: dict[str, int] = {}
    for blob in out["segments"].to_list():
        for seg in json.loads(blob):
            if seg.get("drop_reason"):
                key = seg["drop_reason"].split(":")[0]
                seg_reasons[key] = seg_reasons.get(key, 0) + 1
    dropped = out.filter(pl.col("status") == "dropped")
    return dg.Output(
        out,
        metadata={
            "dagster/row_count": out.height,
            "policy": dlcot_engine.policy,
            "samples_kept": out.height - dropped.height,
            "samples_dropped": dropped.height,
            "labels": dg.MetadataValue.json(
                {k: int(out[f"n_{k}"].sum()) for k in ("correct", "incorrect", "incomplete")}
            ),
            "sample_drop_reasons": dg.MetadataValue.json(
                dict(dropped.group_by("reason").len().sort("reason").iter_rows()) if dropped.height else {}
            ),
            "segment_drop_reasons": dg.MetadataValue.json(dict(sorted(seg_reasons.items()))),
            "clusters_per_trace": float(out["n_clusters"].mean() or 0),
            **_llm_metadata(engine, dlcot_engine),
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
    ins={"raw_traces": dg.AssetIn(RAW_TRACES), "pruned_solutions": dg.AssetIn(PRUNED_SOLUTIONS)},
    partitions_def=teacher_partitions,
    group_name=DLCOT_GROUP,
    code_version=CODE_VERSION,
    check_specs=[
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
    raw_traces: pl.DataFrame,
    pruned_solutions: pl.DataFrame,
    dlcot_engine: DLCoTEngineResource,
    tokenizer: TokenizerResource,
):
    teacher = context.partition_key
    engine = dlcot_engine.engine()
    counter = tokenizer.counter(teacher)
    tables = correct_frame(raw_traces, pruned_solutions, engine, counter, max_seq_len=config.max_seq_len)
    kept, dropped = tables.kept, tables.dropped

    reduction = (1 - kept["corrected_tokens"] / kept["raw_tokens"]) if kept.height else pl.Series([], dtype=pl.Float64)
    red = {
        "median": float(reduction.median() or 0),
        "p10": float(reduction.quantile(0.10) or 0) if kept.height else 0.0,
        "p90": float(reduction.quantile(0.90) or 0) if kept.height else 0.0,
    }
    hist = histogram_png(
        {"raw": kept["raw_tokens"].to_list(), "corrected": kept["corrected_tokens"].to_list()},
        title=f"{teacher}: tokens before / after DLCoT",
    )
    examples = []
    raw_by_id = {r["id"]: r["thinking"] for r in raw_traces.select("id", "thinking").iter_rows(named=True)}
    if kept.height:
        top = kept.with_columns(n=pl.col("removed_spans").str.len_chars()).sort("n", descending=True).head(3)
        for row in top.iter_rows(named=True):
            spans = json.loads(row["removed_spans"])
            examples.append(
                f"### {row['id']} ({row['raw_tokens']} -> {row['corrected_tokens']} tokens, {len(spans)} removed spans)\n\n"
                + render_removed(raw_by_id[row["id"]], spans)
            )
    yield dg.Output(
        kept,
        output_name="corrected_traces",
        metadata={
            "dagster/row_count": kept.height,
            "policy": dlcot_engine.policy,
            "dropped": dropped.height,
            "token_reduction": dg.MetadataValue.json(red),
            "token_reduction_median": red["median"],
            "raw_tokens": dg.MetadataValue.json(token_stats(kept["raw_tokens"])),
            "corrected_tokens": dg.MetadataValue.json(token_stats(kept["corrected_tokens"])),
            "before_after_histogram": dg.MetadataValue.md(png_markdown(hist, "tokens before/after")),
            "examples": dg.MetadataValue.md("\n\n".join(examples) or "_(none kept)_"),
            "preview": dg.MetadataValue.md(
                markdown_table(kept.select("id", "final_answer", "raw_tokens", "corrected_tokens"))
            ),
            **_llm_metadata(engine, dlcot_engine),
        },
    )
    yield dg.Output(
        dropped,
        output_name="dropped_traces",
        metadata={
            "dagster/row_count": dropped.height,
            "by_reason": dg.MetadataValue.json(
                dict(dropped.group_by("reason").len().sort("reason").iter_rows()) if dropped.height else {}
            ),
            "by_stage": dg.MetadataValue.json(
                dict(dropped.group_by("stage").len().sort("stage").iter_rows()) if dropped.height else {}
            ),
        },
    )

    # independent re-check: a fresh checker on the answer extracted from the emitted text
    checker = AnswerChecker(timeout_s=dlcot_engine.answer_timeout_s, use_cache=False)
    bad_answers = []
    for row in kept.select("id", "reference_answer", "final_text").iter_rows(named=True):
        fa = extract_final_answer(row["final_text"] or "")
        verdict = checker.compare(row["reference_answer"], fa.text) if fa else None
        if verdict is None or verdict.equivalent is not True:
            bad_answers.append(f"{row['id']}: {verdict.reason if verdict else 'no final answer'}")
    yield dg.AssetCheckResult(
        check_name=CHECK_ANSWERS_VERIFIED,
        asset_key=CORRECTED_TRACES,
        passed=not bad_answers,
        metadata={"failures": len(bad_answers), "examples": dg.MetadataValue.json(bad_answers[:10])},
    )
    longer = kept.filter(pl.col("corrected_tokens") > pl.col("raw_tokens"))
    yield dg.AssetCheckResult(
        check_name=CHECK_TOKENS_NOT_INCREASED,
        asset_key=CORRECTED_TRACES,
        passed=longer.height == 0,
        metadata={"rows_longer_than_raw": longer.height, "examples": dg.MetadataValue.json(longer["id"].head(10).to_list())},
    )
    too_long = kept.filter(pl.col("seq_tokens") > config.max_seq_len)
    yield dg.AssetCheckResult(
        check_name=CHECK_MAX_SEQ_LEN,
        asset_key=CORRECTED_TRACES,
        passed=too_long.height == 0,
        metadata={"max_seq_len": config.max_seq_len, "longest": int(kept["seq_tokens"].max() or 0), "over": too_long.height},
    )
    problems = dlcot_accounting_problems(raw_traces, kept, dropped)
    yield dg.AssetCheckResult(
        check_name=CHECK_DLCOT_ACCOUNTING,
        asset_key=CORRECTED_TRACES,
        passed=not problems,
        metadata={
            "raw": raw_traces.height,
            "kept": kept.height,
            "dropped": dropped.height,
            "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
        },
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_TOKEN_REDUCTION,
        asset_key=CORRECTED_TRACES,
        passed=kept.height == 0 or red["median"] >= config.min_median_reduction,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"median_reduction": red["median"], "floor": config.min_median_reduction, "p10": red["p10"], "p90": red["p90"]},
    )
