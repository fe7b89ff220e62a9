"""raw_traces materializes through Dagster's own APIs, its checks run, and the definitions load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from dlcot_dagster.definitions import defs
from dlcot_dagster.defs.constants import (
    CHECK_ACCOUNTING,
    CORRECTED_TRACES,
    DECONTAM_VERDICTS,
    SFT_EXPORTS,
    DROPPED_TRACES,
    PRUNED_SOLUTIONS,
    SEGMENTED_TRACES,
    CHECK_NON_EMPTY_TEXT,
    CHECK_REFERENCE_SOURCES,
    CHECK_SELF_REFERENCE_SHARE,
    CHECK_TOKEN_BOUNDS,
    CHECK_UNIQUE_IDS,
    RAW_TRACE_REJECTS,
    RAW_TRACES,
    REPROCESS_JOB,
)
from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.io_managers import ParquetIOManager
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import LandingZoneResource, TokenizerResource
from dlcot_dagster.defs.settings import SAMPLES_LANDING
from dlcot_dagster.domain.quality import validate_raw_traces

from .conftest import REPO_ROOT, shared_data_dir


def resources(landing: Path, storage: Path) -> dict:
    return {
        "landing_zone": LandingZoneResource(root=str(landing)),
        "tokenizer": TokenizerResource(),
        "parquet_io_manager": ParquetIOManager(base_dir=str(storage)),
    }


def test_raw_traces_materializes_real_shared_partition(tmp_path, shared_data):
    """A landing folder that links (not copies) a real Sky-T1 dump: 500 records, one broken."""
    landing = tmp_path / "landing"
    (landing / "sky-t1-27b").mkdir(parents=True)
    src = shared_data_dir() / "traces" / "sky-t1-students" / "Sky-T1-math-correct-5K-27B__math500.jsonl"
    os.symlink(src, landing / "sky-t1-27b" / src.name)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, ["sky-t1-27b"])
        result = dg.materialize(
            [raw_traces], partition_key="sky-t1-27b", instance=instance, resources=resources(landing, tmp_path / "store")
        )
        assert result.success
        evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert set(evals) == {CHECK_ACCOUNTING, CHECK_UNIQUE_IDS, CHECK_NON_EMPTY_TEXT, CHECK_TOKEN_BOUNDS,
                              CHECK_REFERENCE_SOURCES, CHECK_SELF_REFERENCE_SHARE}
        assert all(e.passed for e in evals.values()), {k: e.metadata for k, e in evals.items()}
        # every check blocks downstream except the self-reference share, a warning
        assert {k for k, e in evals.items() if not e.blocking} == {CHECK_SELF_REFERENCE_SHARE}

        traces = pl.read_parquet(tmp_path / "store" / "raw_traces" / "sky-t1-27b.parquet")
        rejects = pl.read_parquet(tmp_path / "store" / "raw_trace_rejects" / "sky-t1-27b.parquet")
        assert (traces.height, rejects.height) == (499, 1)
        assert rejects.row(0, named=True)["reason"] == "empty_field"

        mats = result.asset_materializations_for_node("raw_traces")
        md = {m.asset_key: m.metadata for m in mats}
        meta = md[RAW_TRACES]
        assert meta["records_read"].value == 500 and meta["rejected"].value == 1
        assert meta["tokens_max"].value == traces["raw_tokens"].max()
        assert meta["tokens_median"].value == traces["raw_tokens"].median()
        assert "data:image/png;base64," in meta["token_histogram"].value
        assert meta["unclosed_thinking"].value == int((~traces["thinking_closed"]).sum()) > 0
        assert md[RAW_TRACE_REJECTS]["by_reason"].value == {"empty_field": 1}


def test_reprocess_job_runs_sample_partitions(tmp_path, monkeypatch):
    """The reprocess_teacher job itself (what the landing sensor and the schedule request), from the one
    Definitions object, on every bundled sample partition: ingestion and every DLCoT stage downstream of it, with
    their checks, and nothing of the students group."""
    monkeypatch.setenv("DLCOT_STORAGE_DIR", str(tmp_path))
    monkeypatch.delenv("DLCOT_LANDING_DIR", raising=False)  # the bundled samples
    for var in ("DLCOT_LANDING_URL", "DLCOT_STORAGE_URL", "DLCOT_BLOB_URL", "DLCOT_EXECUTOR"):
        monkeypatch.delenv(var, raising=False)
    from dlcot_dagster.definitions import build_definitions

    job = build_definitions().resolve_job_def(REPROCESS_JOB)
    expected_assets = {RAW_TRACES, RAW_TRACE_REJECTS, DECONTAM_VERDICTS, SEGMENTED_TRACES, PRUNED_SOLUTIONS,
                       CORRECTED_TRACES, DROPPED_TRACES, SFT_EXPORTS}
    assert set(job.asset_layer.executable_asset_keys) == expected_assets
    n_checks = len(job.asset_layer.asset_graph.asset_check_keys)
    assert n_checks >= 13  # raw_traces 6, segmented_traces 1, corrected_traces 6 (and any added later)
    teachers = sorted(p.name for p in SAMPLES_LANDING.iterdir() if p.is_dir())
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, teachers)
        for t in teachers:
            # one tokenizer process: a pool of workers per partition only costs start-up on these tiny dumps
            res = job.execute_in_process(partition_key=t, instance=instance,
                                         run_config={"ops": {"raw_traces": {"config": {"workers": 1}}}})
            assert res.success and res.dagster_run.job_name == REPROCESS_JOB
            mats = {e.event_specific_data.materialization.asset_key for e in res.get_asset_materialization_events()}
            assert mats == expected_assets, t
            checks = res.get_asset_check_evaluations()
            assert len(checks) == n_checks and all(c.passed for c in checks if c.check_name != "median_token_reduction"), t
            assert {e.partition for e in res.get_asset_materialization_events()} == {t}
    kept = {t: pl.read_parquet(tmp_path / "raw_traces" / f"{t}.parquet").height for t in teachers}
    rej = {t: pl.read_parquet(tmp_path / "raw_trace_rejects" / f"{t}.parquet").height for t in teachers}
    assert kept == {"demo-gemini-style": 3, "demo-r1-style": 4, "demo-sky-style": 3}
    assert rej == {"demo-gemini-style": 0, "demo-r1-style": 0, "demo-sky-style": 3}
    for t in teachers:  # every raw row made it downstream, kept or dropped with a reason
        corrected = pl.read_parquet(tmp_path / "corrected_traces" / f"{t}.parquet")
        dropped = pl.read_parquet(tmp_path / "dropped_traces" / f"{t}.parquet")
        assert corrected.height + dropped.height == kept[t] and corrected.height > 0, t


def test_great_expectations_checks_catch_bad_frames():
    bad = pl.DataFrame(
        {
            "id": ["a", "a", None],
            "problem": ["p", "  ", "p"],
            "thinking": ["t", "t", ""],
            "reference_answer": ["1", "2", "3"],
            "raw_tokens": [5, 0, 10_000],
        }
    )
    out = validate_raw_traces(bad, max_raw_tokens=1000)
    assert not out["unique_ids"].success
    assert not out["non_empty_text"].success and out["non_empty_text"].unexpected_count == 2
    assert not out["token_bounds"].success and out["token_bounds"].unexpected_count == 2
    good = validate_raw_traces(bad.slice(0, 1), max_raw_tokens=1000)
    assert all(o.success for o in good.values())


def test_parquet_io_manager_write_is_atomic(tmp_path):
    """A failing write leaves the previous file intact and no temp files behind."""
    store = ParquetIOManager(base_dir=str(tmp_path))
    ctx = dg.build_output_context(asset_key=dg.AssetKey("x"), partition_key=None)
    store.handle_output(ctx, pl.DataFrame({"a": [1, 2]}))
    with pytest.raises(TypeError):
        store.handle_output(ctx, "not a frame")  # type: ignore[arg-type]
    assert pl.read_parquet(tmp_path / "x.parquet")["a"].to_list() == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]


def test_definitions_validate():
    env = dict(os.environ, DAGSTER_HOME="")
    env.pop("DAGSTER_HOME")
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "passed validation" in (proc.stdout + proc.stderr)
    assert defs.resolve_assets_def(RAW_TRACES).partitions_def == teacher_partitions
