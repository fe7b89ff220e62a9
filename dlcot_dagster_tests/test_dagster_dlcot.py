"""The DLCoT stages materialize through Dagster on real shared traces, with their checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from dlcot_dagster.definitions import defs
from dlcot_dagster.defs.constants import (
    CHECK_ANSWERS_VERIFIED,
    CHECK_DLCOT_ACCOUNTING,
    CHECK_MAX_SEQ_LEN,
    CHECK_SEGMENT_COVERAGE,
    CHECK_TOKEN_REDUCTION,
    CHECK_TOKENS_NOT_INCREASED,
    CORRECTED_TRACES,
    DROPPED_TRACES,
    PRUNED_SOLUTIONS,
    RAW_TRACES,
    REPROCESS_JOB,
    SEGMENTED_TRACES,
)
from dlcot_dagster.defs.constants import DECONTAM_VERDICTS
from dlcot_dagster.defs.decontam.assets import decontam_verdicts
from dlcot_dagster.defs.dlcot.assets import corrected_traces, pruned_solutions, segmented_traces
from dlcot_dagster.defs.dlcot.resources import DLCoTEngineResource
from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.domain.dlcot import ENGINE_VERSION

from .conftest import shared_data_dir, stage_resources

ASSETS = [raw_traces, decontam_verdicts, segmented_traces, pruned_solutions, corrected_traces]


def link(landing: Path, teacher: str, src: Path) -> None:
    (landing / teacher).mkdir(parents=True, exist_ok=True)
    os.symlink(src, landing / teacher / src.name)


def materialize(landing: Path, store: Path, teacher: str, instance, policy: str = "default", run_config=None):
    return dg.materialize(
        ASSETS,
        partition_key=teacher,
        instance=instance,
        run_config=run_config,
        resources=stage_resources(landing, store, dlcot_engine=DLCoTEngineResource(policy=policy)),
    )


@pytest.fixture(scope="module")
def landing(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("landing")
    t = shared_data_dir() / "traces"
    link(root, "r1", t / "math500_deepseek-r1.jsonl")
    link(root, "sky-wrong", t / "sky-t1-students" / "Sky-T1-math-wrong-5K-27B__amc23.jsonl")
    return root


@pytest.mark.parametrize("teacher", ["r1", "sky-wrong"])
def test_dlcot_stages_materialize_with_checks(landing, tmp_path, teacher):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, [teacher])
        result = materialize(landing, tmp_path, teacher, instance)
        assert result.success
        evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
        for name in (CHECK_SEGMENT_COVERAGE, CHECK_ANSWERS_VERIFIED, CHECK_TOKENS_NOT_INCREASED,
                     CHECK_MAX_SEQ_LEN, CHECK_DLCOT_ACCOUNTING):
            assert evals[name].passed, (name, evals[name].metadata)
        assert CHECK_TOKEN_REDUCTION in evals

    raw = pl.read_parquet(tmp_path / "raw_traces" / f"{teacher}.parquet")
    kept = pl.read_parquet(tmp_path / "corrected_traces" / f"{teacher}.parquet")
    dropped = pl.read_parquet(tmp_path / "dropped_traces" / f"{teacher}.parquet")
    pruned = pl.read_parquet(tmp_path / "pruned_solutions" / f"{teacher}.parquet")
    assert kept.height + dropped.height == raw.height
    assert set(kept["id"]) | set(dropped["id"]) == set(raw["id"])
    assert dropped["reason"].is_not_null().all()
    assert (kept["corrected_tokens"] <= kept["raw_tokens"]).all()
    assert kept["answer_equivalent"].all()
    # SFT-ready chat records
    for row in kept.head(5).iter_rows(named=True):
        user, assistant = row["messages"]
        assert user == {"role": "user", "content": row["problem"]}
        assert assistant["role"] == "assistant"
        assert assistant["content"].startswith("<think>\n") and "\n</think>\n\n" in assistant["content"]
        assert row["corrected_thinking"] in assistant["content"]
    assert set(pruned["status"]) <= {"kept", "dropped"}
    if teacher == "sky-wrong":
        # the "wrong" students: most samples have no correct solution and are dropped, with reasons
        assert dropped.height > raw.height // 2
        assert {"no_correct_solution", "no_answer_found"} & set(dropped["reason"])
    else:
        # the structure metadata of the UI, recomputed here from the stored segments
        meta = result.asset_materializations_for_node("pruned_solutions")[0].metadata
        segs = [json.loads(b) for b in pruned["segments"].to_list()]
        checks = [[s for s in t if s["kind"] == "verification"] for t in segs]
        redundant = sum(1 for t in checks for s in t if (s["drop_reason"] or "").startswith("redundant_repeat_of"))
        assert redundant > 0
        assert meta["redundant_checks_removed"].value == redundant
        assert meta["checks_per_trace"].value == pytest.approx(sum(map(len, checks)) / len(segs), abs=1e-3)
        leaders = sum(
            1 for t in segs for s in t
            if s["kind"] in ("solution", "verification") and s["kept"] and s["cluster"] in (None, s["idx"])
        )
        assert meta["distinct_methods_kept"].value == leaders > 0
        cmeta = result.asset_materializations_for_node("corrected_traces")[0].metadata
        assert cmeta["error_spans_removed"].value == int(kept["n_error_spans"].sum())
        assert "~~" in cmeta["examples"].value  # removed spans marked in the examples


def test_policies_order_token_counts(landing, tmp_path):
    totals = {}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, ["r1"])
        for policy in ("none", "default", "first_correct_only"):
            store = tmp_path / policy
            assert materialize(landing, store, "r1", instance, policy=policy).success
            kept = pl.read_parquet(store / "corrected_traces" / "r1.parquet")
            totals[policy] = dict(zip(kept["id"], kept["corrected_tokens"]))
    common = set(totals["none"]) & set(totals["default"]) & set(totals["first_correct_only"])
    assert len(common) >= 15
    for i in common:
        assert totals["first_correct_only"][i] <= totals["default"][i] <= totals["none"][i], i


def test_output_is_deterministic(landing, tmp_path):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, ["r1"])
        a = materialize(landing, tmp_path / "a", "r1", instance)
        b = materialize(landing, tmp_path / "b", "r1", instance)
        assert a.success and b.success
    for asset in ("segmented_traces", "pruned_solutions", "corrected_traces", "dropped_traces"):
        fa = pl.read_parquet(tmp_path / "a" / asset / "r1.parquet")
        fb = pl.read_parquet(tmp_path / "b" / asset / "r1.parquet")
        assert fa.equals(fb), asset


def test_code_versions_track_engine_and_lineage():
    graph = defs.resolve_asset_graph()
    for key in (SEGMENTED_TRACES, PRUNED_SOLUTIONS, CORRECTED_TRACES, DROPPED_TRACES):
        node = graph.get(key)
        assert node.code_version and node.code_version.startswith(ENGINE_VERSION)
        assert node.partitions_def == teacher_partitions
    assert graph.get(CORRECTED_TRACES).parent_keys == {RAW_TRACES, PRUNED_SOLUTIONS, DECONTAM_VERDICTS}
    assert graph.get(SEGMENTED_TRACES).parent_keys == {RAW_TRACES, DECONTAM_VERDICTS}
    job = defs.resolve_job_def(REPROCESS_JOB)
    assert {SEGMENTED_TRACES, PRUNED_SOLUTIONS, CORRECTED_TRACES, DROPPED_TRACES} <= set(
        job.asset_layer.executable_asset_keys
    )


def test_inspect_reports_dlcot_fields(capsys):
    from dlcot_dagster.cli import main
    from dlcot_dagster.defs.settings import SAMPLES_LANDING

    assert main(["inspect", str(SAMPLES_LANDING / "demo-sky-style"), "--teacher", "sky", "--with-text"]) == 0
    out = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [o["status"] for o in out] == ["kept", "kept", "dropped", "rejected", "rejected", "rejected"]
    assert out[2]["reason"] == "no_answer_found"
    for o in out[:2]:
        assert o["answer_equivalent"] is True and o["final_answer"]
        assert o["corrected_tokens"] <= o["raw_tokens"]
        kinds = {s["kind"] for s in o["segments"]}
        assert kinds <= {"question_restatement", "problem_understanding", "solution", "verification", "conclusion"}
        assert o["segments"][0]["start"] == 0 and o["segments"][-1]["end"] == len(o["thinking"])
        assert set(o["segments"][0]) == {"kind", "start", "end", "label", "cluster", "kept"}
        assert len(o["corrected_thinking"]) <= len(o["thinking"])
    assert main(["inspect", str(SAMPLES_LANDING / "demo-sky-style"), "--teacher", "sky", "--policy", "none"]) == 0
    none = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert all(s["kept"] for s in none[0]["segments"])
