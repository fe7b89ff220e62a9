"""Streaming in bounded batches: row-group sinks, exact-size batch readers, and a process pool that writes
exactly what a serial run writes (domain level and through Dagster)."""

from __future__ import annotations

import os

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcot_dagster.defs.benchmarks import BenchmarksResource
from dlcot_dagster.defs.decontam.resources import DecontamResource
from dlcot_dagster.defs.dlcot.resources import DLCoTEngineResource
from dlcot_dagster.defs.io_managers import ParquetIOManager
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import LandingZoneResource, TokenizerResource
from dlcot_dagster.domain.ingest.schema import TRACE_SCHEMA
from dlcot_dagster.domain.stream import (
    BatchRunner,
    EngineSpec,
    ParquetSink,
    StorageWriteError,
    iter_aligned,
    iter_batches,
    rechunk,
    run_partition,
)

from .conftest import shared_data_dir
from .test_dagster_dlcot import ASSETS, link

SCHEMA = {"id": pl.String(), "n": pl.Int64()}
TABLES = ["raw_traces", "raw_trace_rejects", "segmented_traces", "pruned_solutions", "corrected_traces", "dropped_traces"]


def frame(lo: int, hi: int) -> pl.DataFrame:
    return pl.DataFrame({"id": [f"r{i}" for i in range(lo, hi)], "n": list(range(lo, hi))}, schema=SCHEMA)


def test_sink_writes_one_row_group_per_batch_and_commits_atomically(tmp_path):
    dest = tmp_path / "t.parquet"
    with ParquetSink(dest, SCHEMA, row_group_bytes=0) as sink:
        for lo in range(0, 100, 30):
            sink.write(frame(lo, min(lo + 30, 100)))
            assert not dest.exists()  # nothing visible before commit
        staged = sink.commit()
    assert staged.rows == 100 and staged.row_groups == 4
    assert pq.ParquetFile(dest).metadata.num_row_groups == 4
    assert pl.read_parquet(dest).equals(frame(0, 100))
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]  # no staging file left


def test_sink_coalesces_batches_into_bounded_row_groups(tmp_path, monkeypatch):
    dest = tmp_path / "t.parquet"
    with ParquetSink(dest, SCHEMA, row_group_rows=50) as sink:  # 30-row frames: 60 | 40 (flushed at commit)
        for lo in range(0, 100, 30):
            sink.write(frame(lo, min(lo + 30, 100)))
        assert sink.row_groups == 1 and not dest.exists()
        staged = sink.commit()
    assert staged.row_groups == 2
    assert [pq.ParquetFile(dest).metadata.row_group(i).num_rows for i in range(2)] == [60, 40]
    assert pl.read_parquet(dest).equals(frame(0, 100))
    # a byte limit: every frame of 30 rows is well over 64 bytes, so each is its own row group
    with ParquetSink(tmp_path / "b.parquet", SCHEMA, row_group_bytes=64) as sink:
        for lo in range(0, 90, 30):
            sink.write(frame(lo, lo + 30))
        assert sink.commit().row_groups == 3
    monkeypatch.setenv("DLCOT_ROW_GROUP_BYTES", "0")
    assert ParquetSink(tmp_path / "c.parquet", SCHEMA).row_group_bytes == 0
    monkeypatch.setenv("DLCOT_ROW_GROUP_BYTES", "lots")
    with pytest.raises(ValueError, match="DLCOT_ROW_GROUP_BYTES"):
        ParquetSink(tmp_path / "c.parquet", SCHEMA)


def test_sink_failure_keeps_previous_version(tmp_path):
    dest = tmp_path / "t.parquet"
    frame(0, 5).write_parquet(dest)
    before = dest.read_bytes()
    with pytest.raises(RuntimeError):
        with ParquetSink(dest, SCHEMA) as sink:
            sink.write(frame(0, 50))
            raise RuntimeError("step interrupted")
    assert dest.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]
    with pytest.raises(StorageWriteError, match="t.parquet"):  # a frame that does not fit the schema
        with ParquetSink(dest, SCHEMA, what="t") as sink:
            sink.write(pl.DataFrame({"id": ["x"], "n": ["not a number"]}))
    assert dest.read_bytes() == before


def test_empty_commit_is_a_valid_table(tmp_path):
    with ParquetSink(tmp_path / "e.parquet", TRACE_SCHEMA) as sink:
        staged = sink.commit()
    df = pl.read_parquet(staged.path)
    assert df.height == 0 and df.schema == pl.Schema(TRACE_SCHEMA)
    assert list(iter_batches(staged.path, 10)) == []


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), max_size=12), size=st.integers(1, 25))
def test_rechunk_gives_exact_batches_in_order(sizes, size):
    frames, lo = [], 0
    for n in sizes:
        frames.append(frame(lo, lo + n))
        lo += n
    out = list(rechunk(frames, size))
    assert all(b.height == size for b in out[:-1])
    assert not out or 0 < out[-1].height <= size
    assert sum(b.height for b in out) == lo
    if out:
        assert pl.concat(out).equals(frame(0, lo))


def test_aligned_reader_checks_ids(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    for path, parts in ((a, [(0, 7), (7, 20)]), (b, [(0, 3), (3, 20)])):  # different row groups, same rows
        with ParquetSink(path, SCHEMA) as sink:
            for lo, hi in parts:
                sink.write(frame(lo, hi))
            sink.commit()
    pairs = list(iter_aligned(a, b, 6))
    assert [len(x) for x, _ in pairs] == [6, 6, 6, 2]
    frame(0, 20).with_columns(id=pl.col("id").reverse()).write_parquet(b)
    with pytest.raises(ValueError, match="out of step"):
        list(iter_aligned(a, b, 6))
    frame(0, 19).write_parquet(b)
    with pytest.raises(ValueError, match="19 rows vs 20"):
        list(iter_aligned(a, b, 6))


def _double(state, df: pl.DataFrame) -> tuple[int, pl.DataFrame]:
    return os.getpid(), df.with_columns(n=pl.col("n") * 2)


def test_runner_pool_keeps_order_and_uses_other_processes():
    batches = [frame(i * 10, i * 10 + 10) for i in range(8)]
    with BatchRunner(EngineSpec(tokenizer=None), workers=2) as runner:
        out = list(runner.map(_double, batches))
    assert pl.concat([df for _, df in out])["n"].to_list() == [2 * i for i in range(80)]
    assert os.getpid() not in {pid for pid, _ in out}
    with BatchRunner(EngineSpec(tokenizer=None), workers=2) as runner:  # one batch: no pool is started
        [(pid, _)] = list(runner.map(_double, batches[:1]))
    assert pid == os.getpid() and runner._pool is None


@pytest.fixture(scope="module")
def trace_files(shared_data):
    t = shared_data_dir() / "traces"
    return [(t / "math500_deepseek-r1.jsonl", "math500_deepseek-r1.jsonl"),
            (t / "sky-t1-students" / "Sky-T1-math-wrong-5K-27B__amc23.jsonl", "sky.jsonl")]


def test_run_partition_pool_equals_serial(tmp_path, trace_files, monkeypatch):
    monkeypatch.setenv("DLCOT_ROW_GROUP_BYTES", "0")  # one row group per batch
    spec = EngineSpec(max_raw_tokens=32_768)
    serial = run_partition(trace_files, "t", tmp_path / "serial", spec=spec, workers=1, batch_size=8)
    pooled = run_partition(trace_files, "t", tmp_path / "pooled", spec=spec, workers=2, batch_size=8)
    assert serial.rows_in == pooled.rows_in == 60
    assert serial.kept + serial.dropped + serial.rejected == 60
    for name in TABLES:
        a = pl.read_parquet(tmp_path / "serial" / f"{name}.parquet")
        b = pl.read_parquet(tmp_path / "pooled" / f"{name}.parquet")
        assert a.equals(b), name
    raw = pq.ParquetFile(tmp_path / "serial" / "raw_traces.parquet")
    assert raw.metadata.num_row_groups == -(-raw.metadata.num_rows // 8)  # written batch by batch
    kept = pl.read_parquet(tmp_path / "serial" / "corrected_traces.parquet", columns=["id"])["id"]
    dropped = pl.read_parquet(tmp_path / "serial" / "dropped_traces.parquet", columns=["id"])["id"]
    raw_ids = pl.read_parquet(tmp_path / "serial" / "raw_traces.parquet", columns=["id"])["id"]
    assert sorted(kept.to_list() + dropped.to_list()) == sorted(raw_ids.to_list())


def test_run_partition_with_decontamination_pool_equals_serial(tmp_path, trace_files, monkeypatch):
    """Decontamination in the streaming runner: duplicates marked in this process, matching on the workers; the
    20 MATH-500 traces dropped at stage decontam; a pool writes what a serial run writes; kept + dropped == raw."""
    from dlcot_dagster.domain.decontam import DecontamSpec
    from dlcot_dagster.domain.students.benchmarks import BenchmarkSpec

    monkeypatch.setenv("DLCOT_ROW_GROUP_BYTES", "0")
    m500 = BenchmarkSpec("math500", str(shared_data_dir() / "benchmarks" / "math500.jsonl"))
    spec = EngineSpec(max_raw_tokens=32_768, decontam=DecontamSpec((m500,)))
    serial = run_partition(trace_files, "t", tmp_path / "serial", spec=spec, workers=1, batch_size=8)
    pooled = run_partition(trace_files, "t", tmp_path / "pooled", spec=spec, workers=2, batch_size=8)
    assert serial.benchmark_overlaps == pooled.benchmark_overlaps == 0
    assert {"decontam", "decontam_check", "decontam_learn"} <= set(serial.stage_seconds)
    for name in [*TABLES, "decontam_verdicts"]:
        a = pl.read_parquet(tmp_path / "serial" / f"{name}.parquet")
        b = pl.read_parquet(tmp_path / "pooled" / f"{name}.parquet")
        assert a.equals(b), name
    raw = pl.read_parquet(tmp_path / "serial" / "raw_traces.parquet")
    kept = pl.read_parquet(tmp_path / "serial" / "corrected_traces.parquet")
    dropped = pl.read_parquet(tmp_path / "serial" / "dropped_traces.parquet")
    assert sorted(kept["id"].to_list() + dropped["id"].to_list()) == sorted(raw["id"].to_list())
    decontam = dropped.filter(pl.col("stage") == "decontam")
    assert decontam.height == 20 and set(decontam["reason"]) == {"benchmark_overlap:math500"}
    assert decontam["id"].str.starts_with("math500_deepseek-r1").all() and decontam["matched_id"].is_not_null().all()


def _materialize(landing, store, instance, workers: int, batch_size: int):
    return dg.materialize(
        ASSETS,
        partition_key="r1",
        instance=instance,
        run_config={"ops": {"raw_traces": {"config": {"batch_size": batch_size, "workers": workers}}}},
        resources={
            "landing_zone": LandingZoneResource(root=str(landing)),
            "tokenizer": TokenizerResource(),
            "parquet_io_manager": ParquetIOManager(base_dir=str(store)),
            "dlcot_engine": DLCoTEngineResource(batch_size=batch_size, workers=workers),
            "benchmarks": BenchmarksResource(),
            "decontam": DecontamResource(),
        },
    )


def test_dagster_stages_on_a_pool_write_what_a_serial_run_writes(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("DLCOT_ROW_GROUP_BYTES", "0")  # one row group per batch
    landing = tmp_path / "landing"
    link(landing, "r1", shared_data_dir() / "traces" / "math500_deepseek-r1.jsonl")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, ["r1"])
        one = _materialize(landing, tmp_path / "one", instance, workers=1, batch_size=64)
        two = _materialize(landing, tmp_path / "two", instance, workers=2, batch_size=6)
        assert one.success and two.success
        assert all(e.passed for e in two.get_asset_check_evaluations() if e.severity == dg.AssetCheckSeverity.ERROR)
        mats = {m.asset_key.to_user_string(): m.metadata for m in two.get_asset_materialization_events() and
                [e.event_specific_data.materialization for e in two.get_asset_materialization_events()]}
        assert mats["segmented_traces"]["workers"].value == 2
    for name in ["raw_traces", "decontam_verdicts", "segmented_traces", "pruned_solutions", "corrected_traces",
                 "dropped_traces"]:
        a = pl.read_parquet(tmp_path / "one" / name / "r1.parquet")
        b = pl.read_parquet(tmp_path / "two" / name / "r1.parquet")
        assert a.equals(b), name
        assert pq.ParquetFile(tmp_path / "two" / name / "r1.parquet").metadata.num_row_groups >= min(3, b.height)


def test_seq_tokens_bound_the_joined_sft_text(tmp_path, trace_files, token_counter):
    """seq_tokens (sum of counted parts + tags) is never below the joined text's count, and at most 2 above."""
    run_partition(trace_files, "t", tmp_path, spec=EngineSpec(max_raw_tokens=32_768), workers=1, batch_size=32)
    kept = pl.read_parquet(tmp_path / "corrected_traces.parquet", columns=["messages", "seq_tokens"])
    assert kept.height > 20
    joined = ["".join(m["content"] for m in msgs) for msgs in kept["messages"].to_list()]
    exact = token_counter.count(joined)
    gaps = [s - e for s, e in zip(kept["seq_tokens"].to_list(), exact)]
    assert min(gaps) >= 0 and max(gaps) <= 2, sorted(set(gaps))
