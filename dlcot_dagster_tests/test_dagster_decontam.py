"""Decontamination through Dagster: the drop with reason and evidence, the blocking check on corrected_traces (it
fails on bad data and stops downstream), duplicates, the cross-teacher report, the one benchmarks resource that
benchmark_scores evaluates on, and the inspect CLI."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from dlcot_dagster.defs.benchmarks import BenchmarksResource, default_benchmarks
from dlcot_dagster.defs.constants import (
    CHECK_DLCOT_ACCOUNTING,
    CHECK_NO_BENCHMARK_OVERLAP,
    CORRECTED_TRACES,
    CROSS_TEACHER_PROBLEMS,
    DECONTAM_VERDICTS,
)
from dlcot_dagster.defs.decontam.assets import cross_teacher_problems, decontam_verdicts
from dlcot_dagster.defs.dlcot.assets import corrected_traces, pruned_solutions, segmented_traces
from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.io_managers import ParquetIOManager
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.settings import SAMPLES_BENCHMARKS, SAMPLES_LANDING

from .conftest import read_jsonl, shared_data_dir, stage_resources

TEACHER = "mix"
ASSETS = [raw_traces, decontam_verdicts, segmented_traces, pruned_solutions, corrected_traces]


@dg.asset(partitions_def=teacher_partitions, ins={"corrected_traces": dg.AssetIn(CORRECTED_TRACES)})
def sft_consumer(corrected_traces: pl.DataFrame) -> None:
    """Stands in for everything downstream of corrected_traces (SFT export, students)."""


def benchmarks(*names: str) -> BenchmarksResource:
    return BenchmarksResource(
        benchmarks=[{"name": n, "path": str(shared_data_dir() / "benchmarks" / f"{n}.jsonl")} for n in names]
    )


def resources(landing: Path, store: Path, bench: BenchmarksResource) -> dict:
    return stage_resources(landing, store, benchmarks=bench)


@pytest.fixture(scope="module")
def landing(tmp_path_factory, shared_data):
    """One teacher folder: the 20 MATH-500 traces of DeepSeek-R1, the bundled demo traces (not in any benchmark),
    and a copy of one demo trace under another id (a duplicate trace)."""
    root = tmp_path_factory.mktemp("landing")
    (root / TEACHER).mkdir()
    os.symlink(shared_data_dir() / "traces" / "math500_deepseek-r1.jsonl", root / TEACHER / "math500_deepseek-r1.jsonl")
    demo = (SAMPLES_LANDING / "demo-r1-style" / "traces.jsonl").read_text().strip().split("\n")
    (root / TEACHER / "demo.jsonl").write_text("\n".join(demo) + "\n")
    copy = json.loads(demo[0]) | {"id": "sq-sum-again"}
    (root / TEACHER / "zz-copy.jsonl").write_text(json.dumps(copy) + "\n")
    return root


@pytest.fixture(scope="module")
def run(landing, tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, [TEACHER])
        result = dg.materialize([*ASSETS, sft_consumer], partition_key=TEACHER, instance=instance,
                                resources=resources(landing, store, benchmarks("math500", "aime24")))
        yield result, store


def test_benchmark_problems_are_dropped_with_evidence(run):
    result, store = run
    assert result.success
    raw = pl.read_parquet(store / "raw_traces" / f"{TEACHER}.parquet")
    dropped = pl.read_parquet(store / "dropped_traces" / f"{TEACHER}.parquet")
    kept = pl.read_parquet(store / "corrected_traces" / f"{TEACHER}.parquet")
    assert kept.height + dropped.height == raw.height
    bench_ids = {r["problem"]: f"math500-{r['unique_id']}" for r in read_jsonl(shared_data_dir() / "benchmarks" / "math500.jsonl")}
    over = dropped.filter(pl.col("reason") == "benchmark_overlap:math500")
    assert over.height == 20 and set(over["stage"]) == {"decontam"}
    problems = dict(raw.select("id", "problem").iter_rows())
    for row in over.iter_rows(named=True):
        assert row["benchmark"] == "math500" and row["matched_id"] == bench_ids[problems[row["id"]]]
        assert row["match_kind"] in ("exact", "ngram", "contained") and row["match_score"] >= 0.5 and row["evidence"]
    assert not set(kept["id"]) & set(over["id"])
    # the duplicate: the later copy goes, naming the first
    dup = dropped.filter(pl.col("reason") == "duplicate_trace").row(0, named=True)
    assert dup["stage"] == "decontam" and dup["match_kind"] == "duplicate" and dup["matched_id"].endswith("sq-sum")
    assert dup["id"].endswith("sq-sum-again") and dup["benchmark"] is None
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks[CHECK_NO_BENCHMARK_OVERLAP].passed and checks[CHECK_DLCOT_ACCOUNTING].passed
    assert checks[CHECK_NO_BENCHMARK_OVERLAP].metadata["benchmarks"].value == ["aime24", "math500"]
    assert result.asset_materializations_for_node("sft_consumer")
    # one row per raw row in every stage
    for table in ("decontam_verdicts", "segmented_traces", "pruned_solutions"):
        assert pl.read_parquet(store / table / f"{TEACHER}.parquet")["id"].to_list() == raw["id"].to_list()


def test_per_partition_report(run):
    result, _ = run
    md = result.asset_materializations_for_node("decontam_verdicts")[0].metadata
    assert md["per_benchmark"].value == {"math500": {"rows": 20, "problems": 20}}
    assert md["by_reason"].value == {"benchmark_overlap:math500": 20, "duplicate_trace": 1}
    assert md["dropped"].value == 21 and md["benchmark_problems"].value == 530
    pairs = md["pairs"].value
    assert pairs.startswith("| training problem | benchmark problem | match |") and pairs.count("math500-test/") >= 3
    assert "Convert the point" in pairs  # training and benchmark text side by side
    assert "| math500 | 20 | 20 |" in md["problems_hit_per_benchmark"].value
    dropped_md = result.asset_materializations_for_node("corrected_traces")
    by_stage = [m for m in dropped_md if m.asset_key.path == ["dropped_traces"]][0].metadata["by_stage"].value
    assert by_stage["decontam"] == 21


def test_blocking_check_fails_on_overlap_and_stops_downstream(landing, tmp_path):
    """decontam_verdicts materialized while the benchmark list was empty; then MATH-500 is listed: the kept rows
    overlap it, the check fails, the step fails and nothing downstream runs."""
    with dg.instance_for_test() as instance, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance.add_dynamic_partitions(teacher_partitions.name, [TEACHER])
        stale = resources(landing, tmp_path, BenchmarksResource(benchmarks=[]))
        assert dg.materialize([raw_traces, decontam_verdicts], partition_key=TEACHER, instance=instance, resources=stale).success
        r = dg.materialize(
            [*ASSETS, sft_consumer], selection=[segmented_traces.key, pruned_solutions.key, *corrected_traces.keys, sft_consumer.key],
            partition_key=TEACHER, instance=instance, resources=resources(landing, tmp_path, benchmarks("math500")),
            raise_on_error=False,
        )
        assert not r.success
        check = {c.check_name: c for c in r.get_asset_check_evaluations()}[CHECK_NO_BENCHMARK_OVERLAP]
        # every kept row of the MATH-500 file overlaps (all 20 but one DLCoT drops: math500_0018 never reaches 28)
        kept = pl.read_parquet(tmp_path / "corrected_traces" / f"{TEACHER}.parquet")
        from_math500 = kept.filter(pl.col("id").str.starts_with("math500_deepseek-r1/")).height
        assert from_math500 >= 19
        assert not check.passed and check.metadata["overlapping_rows"].value == from_math500
        assert any("math500-test/" in e for e in check.metadata["examples"].value)
        assert not r.asset_materializations_for_node("sft_consumer")


def test_cross_teacher_problems_are_reported(tmp_path, shared_data):
    root = tmp_path / "landing"
    for teacher, name in (("r1", "math500_deepseek-r1.jsonl"), ("r1-8b", "math500_deepseek-r1-distill-llama-8b.jsonl")):
        (root / teacher).mkdir(parents=True)
        os.symlink(shared_data_dir() / "traces" / name, root / teacher / name)
    res = resources(root, tmp_path / "store", BenchmarksResource())
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, ["r1", "r1-8b"])
        for t in ("r1", "r1-8b"):
            assert dg.materialize([raw_traces, decontam_verdicts], partition_key=t, instance=instance, resources=res).success
        r = dg.materialize([raw_traces, decontam_verdicts, cross_teacher_problems], selection=[CROSS_TEACHER_PROBLEMS],
                           instance=instance, resources=res)
    assert r.success
    out = pl.read_parquet(tmp_path / "store" / "cross_teacher_problems.parquet")
    assert out.to_dicts() == [{"teacher": "r1", "other_teacher": "r1-8b", "shared_problems": 20, "problems": 20,
                               "other_problems": 20}]
    md = r.asset_materializations_for_node("cross_teacher_problems")[0].metadata
    assert md["problems_in_several_teachers"].value == 20
    ex = md["examples"].value
    assert len(ex) == 10 and all(set(v) == {"r1", "r1-8b"} for v in ex.values())
    # reported, not dropped: nothing of either teacher was dropped (no benchmark listed overlaps, no duplicates)
    for t in ("r1", "r1-8b"):
        v = pl.read_parquet(tmp_path / "store" / "decontam_verdicts" / f"{t}.parquet")
        assert set(v["status"]) == {"kept"}


def test_benchmark_scores_evaluates_the_same_list(tmp_path, monkeypatch):
    """benchmark_scores takes its problems from the `benchmarks` resource (evaluation stubbed, no engine)."""
    import dlcot_dagster.defs.students.assets as students
    from dlcot_dagster.defs.resources import BlobStoreResource
    from dlcot_dagster.defs.llm.resources import LLMResource
    from dlcot_dagster.domain.llm import ChatReply
    from dlcot_dagster.domain.storage import LocalBlobStore
    from dlcot_dagster.domain.students.evaluate import evaluate_problems as real_eval
    from dlcot_dagster.domain.students.sft import store_checkpoint

    store = LocalBlobStore(tmp_path / "blobs")
    for variant in ("dlcot", "raw"):
        folder = tmp_path / "ckpt" / variant
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        prefix = f"{students.checkpoint_prefix('t', variant)}/x{variant}"
        store_checkpoint(store, prefix, folder, {"content_hash": f"h-{variant}", "base_model": "b"})
        store.put_bytes(f"{students.checkpoint_prefix('t', variant)}/latest.json", json.dumps({"prefix": prefix}).encode())
    seen: list[set] = []

    class Stub:
        model_id, stats = "stub", None

        def chat_batch(self, requests, on_reply=None):
            return [ChatReply(text="\\boxed{42}", finish_reason="stop", completion_tokens=2) for _ in requests]

    def stub_eval(client, problems, **kw):
        seen.append(set(problems["benchmark"]))
        return real_eval(Stub(), problems, **kw)

    monkeypatch.setattr(students, "smoke_generate", lambda *a, **kw: "ok")
    monkeypatch.setattr(students, "evaluate_problems", stub_eval)
    listed = BenchmarksResource(benchmarks=[
        {"name": "demo_arithmetic", "path": str(SAMPLES_BENCHMARKS / "demo_arithmetic.jsonl")},
        {"name": "aime24", "path": str(shared_data_dir() / "benchmarks" / "aime24.jsonl")},
    ])
    with dg.instance_for_test() as instance, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance.add_dynamic_partitions(teacher_partitions.name, ["t"])
        r = dg.materialize(
            [students.benchmark_scores], partition_key="t", instance=instance,
            resources={"parquet_io_manager": ParquetIOManager(base_dir=str(tmp_path / "store")),
                       "blob_store": BlobStoreResource(url=str(tmp_path / "blobs")), "benchmarks": listed,
                       "llm": LLMResource(backend="openai", base_url="http://127.0.0.1:9/v1", model="m", cache_url="")},
            run_config={"ops": {"benchmark_scores": {"config": {"limit": 3}}}},
        )
    assert r.success and seen == [{"demo_arithmetic", "aime24"}] * 2
    # the run config no longer lists files: a second list could drift from what decontamination guards against
    assert "benchmarks" not in students.EvalConfig.model_fields


def test_default_benchmarks(monkeypatch, tmp_path):
    monkeypatch.delenv("DLCOT_BENCHMARKS_DIR", raising=False)
    assert [b.name for b in default_benchmarks()] == ["demo_arithmetic"]
    monkeypatch.setenv("DLCOT_BENCHMARKS_DIR", str(shared_data_dir() / "benchmarks"))
    assert [b.name for b in default_benchmarks()] == [
        "math500", "aime24", "aime25", "amc23", "gsm8k", "minerva_math", "olympiadbench"]
    monkeypatch.setenv("DLCOT_BENCHMARKS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="holds none of"):
        default_benchmarks()
    with pytest.raises(ValueError, match="more than once"):
        benchmarks("math500", "math500").specs()


def test_inspect_drops_benchmark_problems_and_duplicates(capsys, landing, shared_data):
    from dlcot_dagster.cli import main

    m500 = str(shared_data_dir() / "benchmarks" / "math500.jsonl")
    assert main(["inspect", str(landing / TEACHER), "--teacher", TEACHER, "--benchmark", f"math500={m500}",
                 "--benchmark", f"aime24={shared_data_dir() / 'benchmarks' / 'aime24.jsonl'}"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    over = [o for o in out if o["reason"] == "benchmark_overlap:math500"]
    assert len(over) == 20 and all(o["status"] == "dropped" and o["stage"] == "decontam" for o in over)
    assert all(o["matched_id"].startswith("math500-test/") and o["evidence"] for o in over)
    dup = [o for o in out if o["reason"] == "duplicate_trace"]
    assert len(dup) == 1 and dup[0]["matched_id"].endswith("sq-sum")
    assert {o["status"] for o in out if o["reason"] is None} == {"kept"}
    # --no-decontam: the MATH-500 traces go through the stages
    assert main(["inspect", str(landing / TEACHER), "--teacher", TEACHER, "--no-decontam"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert not [o for o in out if (o["reason"] or "").startswith(("benchmark_overlap", "duplicate"))]
    assert main(["inspect", str(landing / TEACHER), "--teacher", TEACHER, "--benchmark", "math500"]) == 2
    assert "NAME=PATH" in capsys.readouterr().err
