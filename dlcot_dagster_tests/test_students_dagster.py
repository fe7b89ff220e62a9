"""student_checkpoints (teacher x variant) and benchmark_scores materialize through Dagster with their checks.

A tiny random Qwen2 (SmolLM2 tokenizer) is the student, the bundled demo-r1-style teacher the data, two GSM8K
problems from ../shared the benchmark; each checkpoint is evaluated on its own small vLLM engine, released after.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from dlcot_dagster.defs.benchmarks import BenchmarksResource
from dlcot_dagster.defs.constants import CORRECTED_TRACES, RAW_TRACES, REPROCESS_JOB
from dlcot_dagster.defs.decontam.assets import decontam_verdicts
from dlcot_dagster.defs.decontam.resources import DecontamResource
from dlcot_dagster.defs.dlcot.assets import corrected_traces, pruned_solutions, segmented_traces
from dlcot_dagster.defs.dlcot.resources import DLCoTEngineResource
from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.io_managers import ParquetIOManager
from dlcot_dagster.defs.llm.resources import LLMResource
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import BlobStoreResource, LandingZoneResource, TokenizerResource
from dlcot_dagster.defs.settings import SAMPLES_LANDING
from dlcot_dagster.defs.students.assets import (
    BENCHMARK_SCORES,
    CHECK_CHECKPOINT_GENERATES,
    CHECK_DLCOT_NOT_BELOW_RAW,
    CHECK_PROBLEM_COUNTS,
    CHECK_SCORES_IN_RANGE,
    STUDENT_CHECKPOINTS,
    benchmark_scores,
    student_checkpoints,
    student_partitions,
)
from dlcot_dagster.domain.students.sft import tiny_model

from .conftest import shared_data_dir

TEACHER = "demo-r1-style"
UPSTREAM = [raw_traces, decontam_verdicts, segmented_traces, pruned_solutions, corrected_traces]


def test_partitioning_and_graph():
    from dlcot_dagster.definitions import build_definitions

    assert isinstance(student_checkpoints.partitions_def, dg.MultiPartitionsDefinition)
    dims = {d.name: d.partitions_def for d in student_partitions.partitions_defs}
    assert dims["teacher"] == teacher_partitions
    assert dims["variant"].get_partition_keys() == ["dlcot", "raw"]
    assert benchmark_scores.partitions_def == teacher_partitions
    for up in (RAW_TRACES, CORRECTED_TRACES):
        m = student_checkpoints.get_partition_mapping(up)
        assert isinstance(m, dg.MultiToSingleDimensionPartitionMapping) and m.partition_dimension_name == "teacher"
    assert isinstance(benchmark_scores.get_partition_mapping(STUDENT_CHECKPOINTS), dg.MultiToSingleDimensionPartitionMapping)
    for a in (student_checkpoints, benchmark_scores):
        assert a.op.tags.get("dlcot/gpu") == "true" and a.op.pool == "gpu"
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    assert {STUDENT_CHECKPOINTS, BENCHMARK_SCORES} <= set(graph.get_all_asset_keys())
    job = defs.resolve_job_def(REPROCESS_JOB)
    selected = set(job.asset_layer.executable_asset_keys)
    assert CORRECTED_TRACES in selected and not selected & {STUDENT_CHECKPOINTS, BENCHMARK_SCORES}


@pytest.fixture(scope="module")
def tiny_base(smollm2_dir, tmp_path_factory):
    return tiny_model(smollm2_dir, tmp_path_factory.mktemp("tiny") / "base")


def test_students_materialize_with_checks(tmp_path, tiny_base, small_llm):
    parquet = ParquetIOManager(base_dir=str(tmp_path / "store"))
    blobs = BlobStoreResource(url=str(tmp_path / "blobs"))
    sft = {"base_model": str(tiny_base), "max_steps": 2, "max_seq_len": 128, "per_device_train_batch_size": 2,
           "gradient_accumulation_steps": 1, "learning_rate": 1e-3, "warmup_steps": 0.0}
    gsm8k = str(shared_data_dir() / "benchmarks" / "gsm8k.jsonl")
    llm = LLMResource(**{**small_llm, "model": "unused", "kv_cache_memory_bytes": 64 << 20, "max_model_len": 1024, "cache_url": ""})
    with dg.instance_for_test() as instance, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance.add_dynamic_partitions(teacher_partitions.name, [TEACHER])
        res = {"landing_zone": LandingZoneResource(root=str(SAMPLES_LANDING)), "tokenizer": TokenizerResource(),
               "parquet_io_manager": parquet, "dlcot_engine": DLCoTEngineResource(), "blob_store": blobs, "llm": llm,
               "benchmarks": BenchmarksResource(benchmarks=[{"name": "gsm8k", "path": gsm8k}]),
               "decontam": DecontamResource()}
        assert dg.materialize(UPSTREAM, partition_key=TEACHER, instance=instance, resources=res).success
        for variant in ("dlcot", "raw"):
            r = dg.materialize(
                [student_checkpoints, *UPSTREAM], selection=[STUDENT_CHECKPOINTS],
                partition_key=dg.MultiPartitionKey({"teacher": TEACHER, "variant": variant}),
                instance=instance, resources=res,
                run_config={"ops": {"student_checkpoints": {"config": sft}}},
            )
            assert r.success
            md = r.asset_materializations_for_node("student_checkpoints")[0].metadata
            assert md["steps"].value == 2 and md["train_tokens"].value > 0 and md["variant"].value == variant
            assert md["loss_curve"].value.startswith("![training loss](data:image/png;base64,")
            assert Path(md["uri"].value, "manifest.json").is_file()
            checks = {c.check_name: c for c in r.get_asset_check_evaluations()}
            assert checks[CHECK_CHECKPOINT_GENERATES].passed
        ev = {"limit": 2, "max_tokens": 16, "include_base_model": True}  # on the `benchmarks` resource: gsm8k
        r = dg.materialize(
            [benchmark_scores, student_checkpoints, *UPSTREAM], selection=[BENCHMARK_SCORES], partition_key=TEACHER,
            instance=instance, resources=res, run_config={"ops": {"benchmark_scores": {"config": ev}}},
        )
        assert r.success
        checks = {c.check_name: c for c in r.get_asset_check_evaluations()}
        assert checks[CHECK_SCORES_IN_RANGE].passed and checks[CHECK_PROBLEM_COUNTS].passed
        assert CHECK_DLCOT_NOT_BELOW_RAW in checks
        records = pl.read_parquet(tmp_path / "store" / "benchmark_scores" / f"{TEACHER}.parquet")
        assert records.height == 6 and sorted(set(records["variant"])) == ["base", "dlcot", "raw"]  # base: real vLLM
        table = json.loads((tmp_path / "blobs" / "scores" / TEACHER / "per_benchmark.json").read_text())
        assert {(t["variant"], t["problems"]) for t in table} == {("dlcot", 2), ("raw", 2), ("base", 2)}



def test_checks_fail_on_bad_data(tmp_path, tiny_base, small_llm, monkeypatch):
    """A checkpoint that does not generate fails its blocking check; an evaluation that lost a problem fails the
    blocking count check (evaluation replaced by a stub that drops the last problem: no engine needed)."""
    import dlcot_dagster.defs.students.assets as students
    from dlcot_dagster.domain.students.evaluate import evaluate_problems as real_eval

    parquet = ParquetIOManager(base_dir=str(tmp_path / "store"))
    blobs = BlobStoreResource(url=str(tmp_path / "blobs"))
    sft = {"base_model": str(tiny_base), "max_steps": 1, "max_seq_len": 64, "per_device_train_batch_size": 1,
           "gradient_accumulation_steps": 1, "limit": 1, "warmup_steps": 0.0}
    llm = LLMResource(**{**small_llm, "model": "unused", "cache_url": ""})

    class StubClient:
        model_id, stats = "stub", None

        def chat_batch(self, requests, on_reply=None):
            from dlcot_dagster.domain.llm import ChatReply

            return [ChatReply(text="The answer is \\boxed{18}.", finish_reason="stop", completion_tokens=7) for _ in requests]

    def lossy_eval(client, problems, **kw):
        return real_eval(StubClient(), problems.head(problems.height - 1), **kw)

    with dg.instance_for_test() as instance, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance.add_dynamic_partitions(teacher_partitions.name, [TEACHER])
        res = {"landing_zone": LandingZoneResource(root=str(SAMPLES_LANDING)), "tokenizer": TokenizerResource(),
               "parquet_io_manager": parquet, "dlcot_engine": DLCoTEngineResource(), "blob_store": blobs, "llm": llm,
               "benchmarks": BenchmarksResource(benchmarks=[{"name": "gsm8k", "path": str(shared_data_dir() / "benchmarks" / "gsm8k.jsonl")}]),
               "decontam": DecontamResource()}
        assert dg.materialize(UPSTREAM, partition_key=TEACHER, instance=instance, resources=res).success
        for variant in ("dlcot", "raw"):
            assert dg.materialize(
                [student_checkpoints, *UPSTREAM], selection=[STUDENT_CHECKPOINTS],
                partition_key=dg.MultiPartitionKey({"teacher": TEACHER, "variant": variant}),
                instance=instance, resources=res, run_config={"ops": {"student_checkpoints": {"config": sft}}},
            ).success

        def broken(*a, **kw):
            raise RuntimeError("weights are garbage")

        monkeypatch.setattr(students, "smoke_generate", broken)
        r = dg.materialize(
            [student_checkpoints, *UPSTREAM], selection=[STUDENT_CHECKPOINTS],
            partition_key=dg.MultiPartitionKey({"teacher": TEACHER, "variant": "raw"}),
            instance=instance, resources=res, run_config={"ops": {"student_checkpoints": {"config": sft}}},
            raise_on_error=False,
        )
        assert not r.success  # a failed blocking check fails the step, so benchmark_scores would not run
        check = {c.check_name: c for c in r.get_asset_check_evaluations()}[CHECK_CHECKPOINT_GENERATES]
        assert not check.passed and "weights are garbage" in check.metadata["error"].value
        pointer = json.loads((tmp_path / "blobs" / "students" / TEACHER / "raw" / "latest.json").read_text())
        assert pointer == {"prefix": pointer["prefix"]} and Path(tmp_path / "blobs" / pointer["prefix"]).is_dir()

        monkeypatch.setattr(students, "smoke_generate", lambda *a, **kw: "ok")
        monkeypatch.setattr(students, "evaluate_problems", lossy_eval)
        ev = {"limit": 3}
        r = dg.materialize(
            [benchmark_scores, student_checkpoints, *UPSTREAM], selection=[BENCHMARK_SCORES], partition_key=TEACHER,
            instance=instance, resources=res, run_config={"ops": {"benchmark_scores": {"config": ev}}},
            raise_on_error=False,
        )
        assert not r.success
        checks = {c.check_name: c for c in r.get_asset_check_evaluations()}
        assert checks[CHECK_SCORES_IN_RANGE].passed
        assert not checks[CHECK_PROBLEM_COUNTS].passed
        assert "2 problems evaluated, expected 3" in json.dumps(checks[CHECK_PROBLEM_COUNTS].metadata["problems"].value)
