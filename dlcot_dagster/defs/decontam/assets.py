"""Decontamination, before the DLCoT stages: raw_traces -> decontam_verdicts (-> segmented_traces, corrected_traces).

``decontam_verdicts`` has one row per raw row: ``kept``, or ``dropped`` with reason ``benchmark_overlap:<benchmark>``
(the matched benchmark problem and the evidence) or ``duplicate_trace`` (the earlier trace). The DLCoT stages carry
dropped rows through unsegmented and ``corrected_traces`` writes them to ``dropped_traces`` with stage ``decontam`` and
the evidence columns; its blocking check ``no_benchmark_overlap`` re-matches every kept row. ``cross_teacher_problems``
(on demand, every teacher partition) reports problems several teachers share: reported, never dropped, since several
teachers on one problem is intended.
"""

import dagster as dg
import numpy as np
import polars as pl

from ...domain.decontam import DECONTAM_SCHEMA, DecontamReport, TraceDeduper, learn_spec, shared_problems
from ...domain.decontam.step import problem_keys
from ...domain.stats import markdown_table
from ...domain.stream import BatchRunner, EngineSpec, ParquetSink, ParquetTable, choose_workers, decontam_task, staging_dir
from ..benchmarks import BenchmarksResource
from ..constants import CROSS_TEACHER_PROBLEMS, DECONTAM_GROUP, DECONTAM_VERDICTS, RAW_TRACES
from ..dlcot.resources import DLCoTEngineResource
from ..partitions import teacher_partitions
from ..settings import scratch_dir
from .resources import DecontamResource

DECONTAM_VERSION = "decontam-1"


def learned_spec(raw_traces: ParquetTable, benchmarks: BenchmarksResource, decontam: DecontamResource, batch_size: int):
    """The partition's spec: the listed benchmarks, the settings, and the boilerplate learned from the first
    ``corpus_sample`` problems (deterministic: the check on corrected_traces learns the same list)."""
    spec = decontam.spec(benchmarks)
    problems = (p for b in raw_traces.batches(batch_size, columns=["problem"]) for p in b["problem"].to_list())
    return learn_spec(spec, problems)


@dg.asset(
    key=DECONTAM_VERDICTS,
    ins={"raw_traces": dg.AssetIn(RAW_TRACES)},
    partitions_def=teacher_partitions,
    group_name=DECONTAM_GROUP,
    io_manager_key="parquet_io_manager",
    code_version=DECONTAM_VERSION,
    description="One verdict per raw trace: kept, or dropped as a benchmark problem (benchmark_overlap:<benchmark>, "
    "with the matched problem and the evidence) or a duplicate trace (duplicate_trace).",
)
def decontam_verdicts(
    context: dg.AssetExecutionContext,
    raw_traces: ParquetTable,
    dlcot_engine: DLCoTEngineResource,
    benchmarks: BenchmarksResource,
    decontam: DecontamResource,
):
    bs = dlcot_engine.batch_size
    spec = learned_spec(raw_traces, benchmarks, decontam, bs)
    index = spec.base_index()
    bench_text = {p.id: p.problem for p in index.problems}
    report = DecontamReport()
    workers = choose_workers(dlcot_engine.workers, raw_traces.num_rows, bs)
    columns = ["id", "teacher", "problem", "thinking"]
    with staging_dir(scratch_dir()) as stage, BatchRunner(EngineSpec(tokenizer=None, decontam=spec), workers) as runner:
        with TraceDeduper(stage) as dedup:
            # duplicates are marked here, in the step process, which sees the batches in order; matching runs on
            # the workers
            items = ((b, dedup.mark(b)) for b in raw_traces.batches(bs, columns=columns))
            with ParquetSink(stage / "verdicts.parquet", DECONTAM_SCHEMA, what=DECONTAM_VERDICTS.to_user_string()) as sink:
                for verdicts in runner.map(decontam_task, items):
                    sink.write(verdicts)
                    report.add(verdicts, bench_text)
                staged = sink.commit()
            dedup_bytes = dedup.nbytes
        pair_ids = [p["id"] for p in report.pairs]
        if pair_ids:
            problems = dict(raw_traces.scan().filter(pl.col("id").is_in(pair_ids)).select("id", "problem").collect().iter_rows())
            for p in report.pairs:
                p["training"] = problems.get(p["id"], "")
        per_benchmark = report.per_benchmark()
        table = pl.DataFrame(
            [{"benchmark": b, "rows dropped": v["rows"], "benchmark problems hit": v["problems"]} for b, v in per_benchmark.items()],
            schema={"benchmark": pl.String, "rows dropped": pl.Int64, "benchmark problems hit": pl.Int64},
        )
        n_dropped = sum(report.dropped.values())
        yield dg.Output(
            staged,
            metadata={
                "dagster/row_count": staged.rows,
                "kept": staged.rows - n_dropped,
                "dropped": n_dropped,
                "by_reason": dg.MetadataValue.json(dict(sorted(report.dropped.items()))),
                "per_benchmark": dg.MetadataValue.json(per_benchmark),
                "problems_hit_per_benchmark": dg.MetadataValue.md(
                    markdown_table(table) if table.height else "_(no benchmark overlap)_"
                ),
                "match_kinds": dg.MetadataValue.json(dict(sorted(report.kinds.items()))),
                "pairs": dg.MetadataValue.md(report.pairs_markdown()),
                "benchmarks": dg.MetadataValue.json({b.name: b.path for b in spec.benchmarks}),
                "benchmark_problems": len(index),
                "corpus_boilerplate_ngrams": len(spec.corpus_boilerplate),
                "corpus_boilerplate_examples": dg.MetadataValue.json(list(spec.corpus_boilerplate[:10])),
                "benchmark_boilerplate_ngrams": int(index.boiler_bench.sum()),
                "config_hash": spec.config_hash(),
                "dedup_index_bytes": int(dedup_bytes),
                "workers": runner.workers,
            },
        )


@dg.asset(
    key=CROSS_TEACHER_PROBLEMS,
    ins={"decontam_verdicts": dg.AssetIn(DECONTAM_VERDICTS, partition_mapping=dg.AllPartitionMapping())},
    group_name=DECONTAM_GROUP,
    io_manager_key="parquet_io_manager",
    description="Problems several teachers share (same normalized problem): reported, not dropped. On demand.",
)
def cross_teacher_problems(context: dg.AssetExecutionContext, decontam_verdicts: dict[str, ParquetTable]):
    keys = {t: problem_keys(table.batches(65_536, columns=["problem_key"])) for t, table in sorted(decontam_verdicts.items())}
    rows = []
    for teacher, mine in keys.items():
        others = {t: k for t, k in keys.items() if t != teacher}
        for other, n in shared_problems(mine, others).items():
            if teacher < other and n:
                rows.append({"teacher": teacher, "other_teacher": other, "shared_problems": n,
                             "problems": int(len(mine)), "other_problems": int(len(keys[other]))})
    out = pl.DataFrame(rows, schema={"teacher": pl.String, "other_teacher": pl.String, "shared_problems": pl.Int64,
                                     "problems": pl.Int64, "other_problems": pl.Int64})
    all_keys = np.concatenate(list(keys.values())) if keys else np.empty(0, dtype=np.uint64)
    uniq, counts = np.unique(all_keys, return_counts=True)
    # a few problems shared by the most teachers, with the id each teacher gives it
    top = uniq[np.argsort(-counts, kind="stable")][: min(10, int((counts > 1).sum()))]
    wanted = {f"{int(k):016x}" for k in top}
    examples: dict[str, dict[str, str]] = {}
    for teacher, table in sorted(decontam_verdicts.items()):
        hit = table.scan().filter(pl.col("problem_key").is_in(list(wanted))).select("problem_key", "id").collect()
        for key, rid in hit.iter_rows():
            examples.setdefault(key, {}).setdefault(teacher, rid)
    return dg.Output(
        out,
        metadata={
            "dagster/row_count": out.height,
            "teachers": len(keys),
            "distinct_problems": int(len(uniq)),
            "problems_in_several_teachers": int((counts > 1).sum()),
            "pairs": dg.MetadataValue.md(markdown_table(out, max_rows=100) if out.height else "_(no shared problems)_"),
            "examples": dg.MetadataValue.json(examples),
        },
    )
