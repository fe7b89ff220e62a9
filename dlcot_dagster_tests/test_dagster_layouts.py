"""Public dataset layouts through the Dagster raw_traces asset: generations, teacher partitions from one
multi-teacher dump, reference sources in metadata and checks, the self-share warning and the blocking
reference-source check that stops the downstream stages."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import polars as pl

from dlcot_dagster.defs.constants import (
    CHECK_ACCOUNTING,
    CHECK_REFERENCE_SOURCES,
    CHECK_SELF_REFERENCE_SHARE,
    CORRECTED_TRACES,
    RAW_TRACES,
    SEGMENTED_TRACES,
)
from dlcot_dagster.defs.dlcot.assets import corrected_traces, pruned_solutions, segmented_traces
from dlcot_dagster.defs.decontam.assets import decontam_verdicts
from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import LandingZoneResource
from dlcot_dagster.domain.landing import LocalLanding

from .conftest import stage_resources

FIX = Path(__file__).parent / "fixtures" / "layouts"


def resources(landing: Path, store: Path) -> dict:
    return stage_resources(landing, store)


def put(landing: Path, teacher: str, *names: str) -> None:
    (landing / teacher).mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copy(FIX / n, landing / teacher / n)


def checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_openr1_generations_and_multi_teacher_partitions_through_dagster(tmp_path):
    landing, store = tmp_path / "landing", tmp_path / "store"
    put(landing, "openr1", "openr1_math.parquet")
    put(landing, "s1k", "s1k_1_1.parquet")
    keys = LocalLanding(landing).teachers()
    assert keys == ["openr1", "s1k:deepseek", "s1k:gemini"]  # one dump, two teacher partitions
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, keys)
        for key in keys:
            r = dg.materialize([raw_traces], partition_key=key, instance=instance, resources=resources(landing, store))
            assert r.success
            ev = checks(r)
            assert all(e.passed for e in ev.values()), {k: e.metadata for k, e in ev.items() if not e.passed}
            meta = {m.asset_key: m.metadata for m in r.asset_materializations_for_node("raw_traces")}[RAW_TRACES]
            t = pl.read_parquet(store / "raw_traces" / f"{key}.parquet")
            assert set(t["teacher"]) == {key}
            assert meta["reference_sources"].value == dict(t.group_by("reference_source").len().iter_rows())
            assert ev[CHECK_REFERENCE_SOURCES].metadata["counts"].value == meta["reference_sources"].value
        o = pl.read_parquet(store / "raw_traces" / "openr1.parquet")
        assert o.height == 5 and o["generation"].to_list() == [0, 1, 0, 1, 2]
        assert o["source_label"].to_list() == [True, False, True, False, True]
        g = pl.read_parquet(store / "raw_traces" / "s1k:gemini.parquet")
        d = pl.read_parquet(store / "raw_traces" / "s1k:deepseek.parquet")
        assert g["source_label"].to_list() == [True, True] and d["source_label"].to_list() == [False, False]
        assert g["thinking"].to_list() != d["thinking"].to_list()


def test_self_share_warns_and_reference_sources_reach_corrected_traces(tmp_path):
    landing, store = tmp_path / "landing", tmp_path / "store"
    put(landing, "ot", "openthoughts_114k.jsonl")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, ["ot"])
        r = dg.materialize([raw_traces, decontam_verdicts, segmented_traces, pruned_solutions, corrected_traces], partition_key="ot",
                           instance=instance, resources=resources(landing, store))
        assert r.success  # a warning does not stop the run
        ev = checks(r)
        warn = ev[CHECK_SELF_REFERENCE_SHARE]
        assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
        assert abs(warn.metadata["self_share"].value - 1 / 3) < 1e-9
        assert warn.metadata["examples"].value == ["openthoughts_114k/L3"]  # names the rows
        assert ev[CHECK_REFERENCE_SOURCES].passed and ev[CHECK_ACCOUNTING].passed
        raw = pl.read_parquet(store / "raw_traces" / "ot.parquet")
        kept = pl.read_parquet(store / "corrected_traces" / "ot.parquet")
        dropped = pl.read_parquet(store / "dropped_traces" / "ot.parquet")
        both = pl.concat([kept.select("id", "reference_source"), dropped.select("id", "reference_source")])
        assert sorted(both.rows()) == sorted(raw.select("id", "reference_source").rows())
        meta = {m.asset_key: m.metadata for m in r.asset_materializations_for_node("corrected_traces")}
        assert meta[CORRECTED_TRACES]["reference_sources"].value == dict(kept.group_by("reference_source").len().iter_rows())
        # a higher tolerance makes the same data pass
        ok = dg.materialize([raw_traces], partition_key="ot", instance=instance, resources=resources(landing, store),
                            run_config={"ops": {"raw_traces": {"config": {"max_self_reference_share": 0.5}}}})
        assert checks(ok)[CHECK_SELF_REFERENCE_SHARE].passed


def test_unaccounted_reference_source_fails_the_blocking_check_and_stops_downstream(tmp_path, monkeypatch):
    """A resolver fault (simulated: the second pass writes an unknown source and an empty answer) must not reach
    the DLCoT stages."""
    import dlcot_dagster.domain.stream as stream

    real = stream.resolve_batch

    def faulty(batch, winners, spec):
        kept, moved = real(batch, winners, spec)
        return kept.with_columns(
            reference_source=pl.when(pl.col("source_line") == 3).then(pl.lit("guessed")).otherwise(pl.col("reference_source")),
            reference_answer=pl.when(pl.col("source_line") == 1).then(pl.lit("")).otherwise(pl.col("reference_answer")),
        ), moved

    monkeypatch.setattr(stream, "resolve_batch", faulty)
    landing, store = tmp_path / "landing", tmp_path / "store"
    put(landing, "ot", "openthoughts_114k.jsonl")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, ["ot"])
        r = dg.materialize([raw_traces, decontam_verdicts, segmented_traces], partition_key="ot", instance=instance,
                           resources=resources(landing, store), raise_on_error=False)
        assert not r.success
        ev = checks(r)[CHECK_REFERENCE_SOURCES]
        assert not ev.passed and ev.metadata["unaccounted"].value == 2
        examples = " ".join(ev.metadata["examples"].value)
        assert "openthoughts_114k/L3" in examples and "'guessed'" in examples and "openthoughts_114k/L1" in examples
        assert not (store / "segmented_traces" / "ot.parquet").exists()
        assert instance.get_latest_materialization_event(SEGMENTED_TRACES) is None


def test_landing_groups_and_problems_file_local_and_s3_agree(s3, tmp_path):
    """A multi-teacher JSONL dump gives <folder>:<group> keys and a spec's problems file is joined, not ingested,
    on a local landing and on S3 alike."""
    from dlcot_dagster.domain.ingest import ingest_files
    from dlcot_dagster.domain.s3_landing import S3Landing

    root = tmp_path / "landing"
    (root / "s1k").mkdir(parents=True)
    pl.read_parquet(FIX / "s1k_1_1.parquet").write_ndjson(root / "s1k" / "train.jsonl")
    (root / "mot").mkdir()
    shutil.copy(FIX / "mixture_of_thoughts.parquet", root / "mot")
    (root / "mot" / "refs.jsonl").write_text(
        '{"problem": "Compute 15 + 27.", "answer": "42"}\n{"problem": "What is 100 - 37?", "answer": "63"}\n')
    (root / "mot" / "dlcot_source.yaml").write_text("problems:\n  path: refs.jsonl\n")
    prefix = s3.new_prefix("layouts")
    client = s3.client()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            client.upload_file(str(p), s3.BUCKET, f"{prefix}/{p.relative_to(root).as_posix()}")
    local = LocalLanding(root)
    remote = S3Landing.from_url(s3.url(prefix), client, scratch_dir=tmp_path / "scratch")
    assert local.teachers() == remote.teachers() == ["mot", "s1k:deepseek", "s1k:gemini"]
    for landing in (local, remote):
        assert [n for _, n in landing.local_files("mot")] == ["mixture_of_thoughts.parquet"]
        assert "refs.jsonl" in [f.name for f in landing.listing("mot")]  # a change of the references re-runs it
        r = ingest_files(landing.local_files("mot"), "mot", landing.spec("mot"))
        assert r.traces.select("reference_answer", "reference_source").rows() == [("42", "joined"), ("63", "joined")]
        spec = landing.spec("s1k:gemini")
        assert spec.group == "gemini"
        g = ingest_files(landing.local_files("s1k:gemini"), "s1k:gemini", spec)
        assert set(g.traces["teacher"]) == {"s1k:gemini"} and g.traces["source_label"].to_list() == [True, True]


def test_sensor_adds_one_partition_per_teacher_of_a_multi_teacher_dump(tmp_path):
    from dlcot_dagster.defs.landing.sensors import landing_zone_sensor

    landing = tmp_path / "landing"
    put(landing, "s1k", "s1k_1_1.parquet")
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources={"landing_zone": LandingZoneResource(root=str(landing))})
        result = landing_zone_sensor(ctx)
        added = [k for req in result.dynamic_partitions_requests or [] for k in req.partition_keys]
        assert added == ["s1k:deepseek", "s1k:gemini"]
        assert sorted(r.partition_key for r in result.run_requests) == ["s1k:deepseek", "s1k:gemini"]
        assert len({r.run_key for r in result.run_requests}) == 2
