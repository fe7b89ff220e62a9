"""The landing sensor and raw_traces on S3: a real SeaweedFS server on loopback, the same Dagster code as locally."""

from __future__ import annotations

import io
import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster_aws.s3 import S3Resource

from dlcot_dagster.defs.deployment import storage_resources
from dlcot_dagster.defs.benchmarks import BenchmarksResource
from dlcot_dagster.defs.decontam.assets import decontam_verdicts
from dlcot_dagster.defs.decontam.resources import DecontamResource
from dlcot_dagster.defs.dlcot.assets import segmented_traces
from dlcot_dagster.defs.dlcot.resources import DLCoTEngineResource
from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.landing.sensors import landing_zone_sensor
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import LandingZoneResource, S3LandingZoneResource, TokenizerResource
from dlcot_dagster.defs.settings import SAMPLES_LANDING
from dlcot_dagster.domain.landing import LocalLanding
from dlcot_dagster.domain.s3_landing import S3Landing


def dump_bytes(n: int, extra: str = "") -> bytes:
    return "".join(
        json.dumps({"id": i, "problem": f"p{i}{extra}", "answer": "1", "response": "<think>t</think>1"}) + "\n"
        for i in range(n)
    ).encode()


def put(client, bucket: str, key: str, body: bytes) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=body)


def upload_tree(client, bucket: str, prefix: str, root: Path) -> list[str]:
    keys = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            key = f"{prefix}/{p.relative_to(root).as_posix()}"
            client.upload_file(str(p), bucket, key)
            keys.append(key)
    return keys


def s3_resource(s3, max_attempts: int = 2) -> S3Resource:
    return S3Resource(endpoint_url=s3.endpoint, region_name="us-east-1", max_attempts=max_attempts)


class Ticker:
    """Evaluates the sensor like the daemon does: applies partition requests, keeps the cursor, dedupes run keys."""

    def __init__(self, instance, landing_zone):
        self.instance, self.landing_zone = instance, landing_zone
        self.cursor = None
        self.run_keys: set[str] = set()

    def tick(self):
        resources = {"landing_zone": self.landing_zone}
        with dg.build_sensor_context(instance=self.instance, cursor=self.cursor, resources=resources) as ctx:
            result = landing_zone_sensor(ctx)
        added = []
        for req in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
            added += list(req.partition_keys)
        runs = [r for r in (result.run_requests or []) if r.run_key not in self.run_keys]
        self.run_keys |= {r.run_key for r in runs}
        self.cursor = result.cursor
        return sorted(added), sorted(r.partition_key for r in runs)


def test_sensor_on_s3_new_teachers_and_changed_objects(s3):
    prefix = s3.new_prefix("landing")
    client, bucket = s3.client(), s3.BUCKET
    zone = S3LandingZoneResource(root=s3.url(prefix), s3=s3_resource(s3))
    with dg.instance_for_test() as instance:
        t = Ticker(instance, zone)
        assert t.tick() == ([], [])

        put(client, bucket, f"{prefix}/qwq/a.jsonl", dump_bytes(3))
        put(client, bucket, f"{prefix}/qwq/notes.txt", b"not a dump")  # not tracked
        assert t.tick() == (["qwq"], ["qwq"])
        assert instance.get_dynamic_partitions(teacher_partitions.name) == ["qwq"]
        assert t.tick() == ([], [])

        # the same bytes uploaded again (new LastModified, same ETag): no run
        put(client, bucket, f"{prefix}/qwq/a.jsonl", dump_bytes(3))
        assert t.tick() == ([], [])
        # an untracked object changes: no run
        put(client, bucket, f"{prefix}/qwq/notes.txt", b"still not a dump")
        assert t.tick() == ([], [])

        # two objects change at once: exactly one run
        put(client, bucket, f"{prefix}/qwq/a.jsonl", dump_bytes(4))
        put(client, bucket, f"{prefix}/qwq/sub/b.jsonl", dump_bytes(2))
        assert t.tick() == ([], ["qwq"])
        assert t.tick() == ([], [])

        # same size, same second, different bytes: the ETag in the listing signature catches it
        put(client, bucket, f"{prefix}/qwq/sub/b.jsonl", dump_bytes(2, extra="x")[: len(dump_bytes(2))])
        assert t.tick() == ([], ["qwq"])

        # a new teacher prefix: a partition and a run; a bad name is ignored; a spec-only teacher gets no run
        put(client, bucket, f"{prefix}/r1/x.jsonl", dump_bytes(1))
        put(client, bucket, f"{prefix}/bad name!/x.jsonl", dump_bytes(1))
        put(client, bucket, f"{prefix}/spec-only/dlcot_source.yaml", b"layout: think_tags\n")
        assert t.tick() == (["r1", "spec-only"], ["r1"])
        landing = zone.landing()
        assert landing.invalid_folders() == ["bad name!"]

        # content goes back to an earlier state: that run key was seen, the same content never runs twice
        put(client, bucket, f"{prefix}/r1/x.jsonl", dump_bytes(2))
        assert t.tick()[1] == ["r1"]
        put(client, bucket, f"{prefix}/r1/x.jsonl", dump_bytes(1))
        assert t.tick()[1] == []

        # the endpoint is down: the tick fails with an error that says so (the daemon retries next interval)
        down = S3LandingZoneResource(root=s3.url(prefix), s3=S3Resource(endpoint_url="http://127.0.0.1:9", max_attempts=1))
        with pytest.raises(Exception, match="unreachable"):
            Ticker(instance, down).tick()


def test_s3_landing_matches_local_landing(s3, tmp_path):
    """Listing, spec and downloaded files agree with the local landing over the same tree."""
    prefix = s3.new_prefix("landing")
    client = s3.client()
    upload_tree(client, s3.BUCKET, prefix, SAMPLES_LANDING)
    remote = S3Landing.from_url(s3.url(prefix), client, scratch_dir=tmp_path / "scratch")
    local = LocalLanding(SAMPLES_LANDING)
    assert remote.teachers() == local.teachers()
    for teacher in local.teachers():
        assert [f.name for f in remote.listing(teacher)] == [f.name for f in local.listing(teacher)]
        assert [f.size for f in remote.listing(teacher)] == [f.size for f in local.listing(teacher)]
        assert all(f.etag and f.mtime_ns > 0 for f in remote.listing(teacher))
        assert remote.spec(teacher) == local.spec(teacher)
        got = remote.local_files(teacher)
        assert [n for _, n in got] == [n for _, n in local.local_files(teacher)]
        for (path, _), (lpath, _) in zip(got, local.local_files(teacher)):
            assert path.read_bytes() == lpath.read_bytes()
    assert remote.spec("demo-sky-style").response is not None  # the mapping came from S3
    # a second call reuses the downloads (ETag + size unchanged): nothing fetched again
    before = {p: p.stat().st_mtime_ns for p, _ in remote.local_files("demo-r1-style")}
    assert {p: p.stat().st_mtime_ns for p, _ in remote.local_files("demo-r1-style")} == before
    with pytest.raises(ValueError):
        remote.listing("../escape")


def read_s3_parquet(client, bucket: str, key: str) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(client.get_object(Bucket=bucket, Key=key)["Body"].read()))


def test_raw_traces_from_s3_to_s3_and_idempotent_rerun(s3, tmp_path):
    """raw_traces reads the landing zone on S3 and writes Parquet to S3; the result equals a local run, a
    downstream asset loads it back through the IO manager, and a re-run leaves the same objects and content."""
    land, store = s3.new_prefix("landing"), s3.new_prefix("store")
    client, bucket = s3.client(), s3.BUCKET
    upload_tree(client, bucket, land, SAMPLES_LANDING)
    teacher = "demo-sky-style"  # has a dlcot_source.yaml and 3 rejects
    resources = {
        **storage_resources(landing=s3.url(land), storage=s3.url(store), blobs=s3.url(store + "/_blobs"), s3=s3_resource(s3)),
        "tokenizer": TokenizerResource(),
        "dlcot_engine": DLCoTEngineResource(),
        "benchmarks": BenchmarksResource(),
        "decontam": DecontamResource(),
    }
    resources["landing_zone"] = S3LandingZoneResource(root=s3.url(land), s3=s3_resource(s3), scratch_dir=str(tmp_path / "scratch"))

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, [teacher])
        first = dg.materialize([raw_traces, decontam_verdicts, segmented_traces], partition_key=teacher, instance=instance, resources=resources)
        assert first.success
        mats = {
            e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
            for e in first.get_asset_materialization_events()
        }
        assert mats["raw_traces"]["path"].value == f"s3://{bucket}/{store}/raw_traces/{teacher}.parquet"

        def objects():
            return {o["Key"]: o["ETag"] for o in client.list_objects_v2(Bucket=bucket, Prefix=store + "/")["Contents"]}

        after_first = objects()
        assert sorted(after_first) == sorted(
            f"{store}/{a}/{teacher}.parquet"
            for a in ("raw_traces", "raw_trace_rejects", "decontam_verdicts", "segmented_traces")
        )
        traces = read_s3_parquet(client, bucket, f"{store}/raw_traces/{teacher}.parquet")
        rejects = read_s3_parquet(client, bucket, f"{store}/raw_trace_rejects/{teacher}.parquet")
        segmented = read_s3_parquet(client, bucket, f"{store}/segmented_traces/{teacher}.parquet")
        assert (traces.height, rejects.height, segmented.height) == (3, 3, 3)
        assert sorted(segmented["id"].to_list()) == sorted(traces["id"].to_list())

        # the same partition materialized from the local sample folder gives the same rows
        local = dg.materialize(
            [raw_traces], partition_key=teacher, instance=instance,
            resources={"landing_zone": LandingZoneResource(root=str(SAMPLES_LANDING)), "tokenizer": TokenizerResource(),
                       "parquet_io_manager": storage_resources(storage=str(tmp_path / "local"))["parquet_io_manager"]},
        )
        assert local.success
        assert pl.read_parquet(tmp_path / "local" / "raw_traces" / f"{teacher}.parquet").equals(traces)

        # re-run: same objects, same content, nothing added
        again = dg.materialize([raw_traces, decontam_verdicts, segmented_traces], partition_key=teacher, instance=instance, resources=resources)
        assert again.success
        assert sorted(objects()) == sorted(after_first)
        assert read_s3_parquet(client, bucket, f"{store}/raw_traces/{teacher}.parquet").equals(traces)
        assert read_s3_parquet(client, bucket, f"{store}/raw_trace_rejects/{teacher}.parquet").equals(rejects)
        assert read_s3_parquet(client, bucket, f"{store}/segmented_traces/{teacher}.parquet").equals(segmented)
