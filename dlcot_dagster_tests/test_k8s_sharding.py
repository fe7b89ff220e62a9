"""Sharding: a large teacher fans out into <teacher>~shard-NNN partitions (one run, hence pods, per shard)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster_aws.s3 import S3Resource

from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.io_managers import ParquetIOManager
from dlcot_dagster.defs.landing.sensors import landing_zone_sensor
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import LandingZoneResource, S3LandingZoneResource, TokenizerResource
from dlcot_dagster.domain.landing import LocalLanding
from dlcot_dagster.domain.sharding import ShardedLanding, shard_of, shard_partition_key, split_partition_key

N_FILES, N_SHARDS = 12, 4


def write_dump(path: Path, n: int, tag: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(
        json.dumps({"id": i, "problem": f"{tag} {i}", "answer": str(i), "response": f"<think>{tag}</think>{i}"}) + "\n"
        for i in range(n)
    ))


@pytest.fixture
def landing(tmp_path) -> Path:
    root = tmp_path / "landing"
    for i in range(N_FILES):
        write_dump(root / "big" / f"part-{i:02d}.jsonl", 3 + i % 4, f"big{i}")
    write_dump(root / "small" / "a.jsonl", 2, "small")
    return root


def test_keys_and_assignment():
    assert shard_partition_key("qwq-32b", 7) == "qwq-32b~shard-007"
    assert split_partition_key("qwq-32b~shard-007") == ("qwq-32b", 7)
    assert split_partition_key("qwq-32b") == ("qwq-32b", None)
    with pytest.raises(ValueError):
        split_partition_key("qwq~oops")
    names = [f"dir/part-{i:04d}.jsonl" for i in range(400)]
    counts = [sum(shard_of(n, 8) == s for n in names) for s in range(8)]
    assert all(30 <= c <= 70 for c in counts), counts  # spread out
    assert [shard_of(n, 8) for n in names] == [shard_of(n, 8) for n in names]  # deterministic


def test_sensor_requests_one_run_per_changed_shard(landing):
    zone = LandingZoneResource(root=str(landing), shards={"big": N_SHARDS})
    with dg.instance_for_test() as instance:
        cursor, seen = None, set()

        def tick():
            nonlocal cursor
            with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"landing_zone": zone}) as ctx:
                res = landing_zone_sensor(ctx)
            for req in res.dynamic_partitions_requests or []:
                instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
            runs = [r for r in res.run_requests or [] if r.run_key not in seen]
            seen.update(r.run_key for r in runs)
            cursor = res.cursor
            return sorted(r.partition_key for r in runs)

        used = sorted({shard_of(f"part-{i:02d}.jsonl", N_SHARDS) for i in range(N_FILES)})
        expected = [shard_partition_key("big", s) for s in used] + ["small"]
        assert tick() == expected
        assert sorted(instance.get_dynamic_partitions(teacher_partitions.name)) == expected
        assert tick() == []
        # one file changes: only its shard runs
        write_dump(landing / "big" / "part-05.jsonl", 9, "changed")
        assert tick() == [shard_partition_key("big", shard_of("part-05.jsonl", N_SHARDS))]
        # a mapping change concerns every shard of the teacher
        (landing / "big" / "dlcot_source.yaml").write_text("id_scope: file\nlayout: think_tags\n")
        assert tick() == [shard_partition_key("big", s) for s in used]


def test_shards_together_equal_the_unsharded_partition(landing, tmp_path):
    sharded = ShardedLanding(LocalLanding(landing), {"big": N_SHARDS})
    keys = [k for k in sharded.teachers() if k.startswith("big~")]
    assert len(keys) > 1
    files = [n for k in keys for _, n in sharded.local_files(k)]
    assert sorted(files) == sorted(n for _, n in LocalLanding(landing).local_files("big"))  # each file exactly once

    def run(key: str, shards: dict, store: Path) -> pl.DataFrame:
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(teacher_partitions.name, [key])
            res = dg.materialize(
                [raw_traces], partition_key=key, instance=instance,
                resources={"landing_zone": LandingZoneResource(root=str(landing), shards=shards),
                           "tokenizer": TokenizerResource(), "parquet_io_manager": ParquetIOManager(base_dir=str(store))},
            )
            assert res.success
        return pl.read_parquet(store / "raw_traces" / f"{key}.parquet")

    union = pl.concat([run(k, {"big": N_SHARDS}, tmp_path / "sharded") for k in keys])
    whole = run("big", {}, tmp_path / "whole")
    assert union.height == whole.height and union["id"].n_unique() == union.height
    cols = [c for c in whole.columns if c != "teacher"]  # the teacher column holds the partition key
    assert union.select(cols).sort("id").equals(whole.select(cols).sort("id"))
    assert set(union["teacher"].unique()) == set(keys)


def test_s3_shard_downloads_only_its_files(s3, landing, tmp_path):
    prefix = s3.new_prefix("landing")
    client = s3.client()
    for p in sorted((landing / "big").iterdir()):
        client.upload_file(str(p), s3.BUCKET, f"{prefix}/big/{p.name}")
    zone = S3LandingZoneResource(
        root=s3.url(prefix), s3=S3Resource(endpoint_url=s3.endpoint, region_name="us-east-1"),
        scratch_dir=str(tmp_path / "scratch"), shards={"big": N_SHARDS},
    )
    sharded = zone.landing()
    key = sharded.teachers()[0]
    _, index = split_partition_key(key)
    got = sharded.local_files(key)
    expected = sorted(f"part-{i:02d}.jsonl" for i in range(N_FILES) if shard_of(f"part-{i:02d}.jsonl", N_SHARDS) == index)
    assert [n for _, n in got] == expected
    downloaded = sorted(p.name for p in (tmp_path / "scratch").rglob("*.jsonl"))
    assert downloaded == expected  # nothing else was fetched
    # the shard's content hash uses the ETags (no download) and changes only with its own objects
    before = sharded.content_hash(key)
    other = next(f"part-{i:02d}.jsonl" for i in range(N_FILES) if shard_of(f"part-{i:02d}.jsonl", N_SHARDS) != index)
    client.put_object(Bucket=s3.BUCKET, Key=f"{prefix}/big/{other}", Body=b'{"id": 1}\n')
    assert sharded.content_hash(key) == before
    client.put_object(Bucket=s3.BUCKET, Key=f"{prefix}/big/{expected[0]}", Body=b'{"id": 1}\n')
    assert sharded.content_hash(key) != before
