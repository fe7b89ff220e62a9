"""Failures on the S3 path: a run SIGKILLed half-way through a partition, and the S3 endpoint dying mid-run.

Both use the session's SeaweedFS server on loopback; the outage test stops and restarts its S3 gateway process.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource

from dlcot_dagster.defs.deployment import storage_resources
from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import S3LandingZoneResource, TokenizerResource
from dlcot_dagster.domain import s3_landing

from .conftest import REPO_ROOT

TEACHER = "qwq-big"

# The child materializes raw_traces on S3 and parks itself right before its Nth object upload, after writing a
# marker, so the parent can SIGKILL it at a known point: between the partition's two outputs.
CHILD = r"""
import os, sys, time
from pathlib import Path
import dagster as dg
from dagster_aws.s3 import S3Resource
from dlcot_dagster.defs.deployment import storage_resources
from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import TokenizerResource
from dlcot_dagster.domain import storage

marker, kill_at = Path(os.environ["KILL_MARKER"]), int(os.environ["KILL_AT_PUT"])
orig, calls = storage.S3BlobStore.put_file, []
def parked_put(self, key, path):
    calls.append(key)
    if len(calls) == kill_at:
        marker.write_text(key)
        time.sleep(300)
    return orig(self, key, path)
storage.S3BlobStore.put_file = parked_put

s3 = S3Resource(endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1", max_attempts=2)
res = storage_resources(landing=os.environ["LANDING"], storage=os.environ["STORE"], blobs=os.environ["STORE"] + "/_blobs", s3=s3)
with dg.instance_for_test() as instance:
    instance.add_dynamic_partitions(teacher_partitions.name, [os.environ["TEACHER"]])
    dg.materialize([raw_traces], partition_key=os.environ["TEACHER"], instance=instance,
                   resources={**res, "tokenizer": TokenizerResource()})
print("child finished without being killed", flush=True)
"""


def dump(n: int, tag: str, bad: int = 0) -> bytes:
    lines = [
        json.dumps({"id": i, "problem": f"{tag} problem {i}", "answer": str(i), "response": f"<think>{tag} {i}</think>{i}"})
        for i in range(n)
    ]
    lines += ["{not json"] * bad
    return ("\n".join(lines) + "\n").encode()


def s3_resource(s3) -> S3Resource:
    return S3Resource(endpoint_url=s3.endpoint, region_name="us-east-1", max_attempts=2)


def resources(s3, land: str, store: str, scratch: Path) -> dict:
    out = storage_resources(landing=s3.url(land), storage=s3.url(store), blobs=s3.url(store + "/_blobs"), s3=s3_resource(s3))
    out["landing_zone"] = S3LandingZoneResource(root=s3.url(land), s3=s3_resource(s3), scratch_dir=str(scratch))
    return {**out, "tokenizer": TokenizerResource()}


def materialize(res: dict, **kw) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, [TEACHER])
        return dg.materialize([raw_traces], partition_key=TEACHER, instance=instance, resources=res, **kw)


def read(client, bucket: str, key: str) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(client.get_object(Bucket=bucket, Key=key)["Body"].read()))


def keys(client, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", []))


def test_sigkill_mid_partition_then_rerun_loses_nothing_and_duplicates_nothing(s3, tmp_path):
    client, bucket = s3.client(), s3.BUCKET
    land, store, clean_store = s3.new_prefix("landing"), s3.new_prefix("store"), s3.new_prefix("clean")
    client.put_object(Bucket=bucket, Key=f"{land}/{TEACHER}/part-0.jsonl", Body=dump(5, "v1"))
    assert materialize(resources(s3, land, store, tmp_path / "scratch")).success  # an earlier version is stored

    # new data lands; the run that ingests it is SIGKILLed after raw_traces was uploaded, before the rejects were
    client.put_object(Bucket=bucket, Key=f"{land}/{TEACHER}/part-0.jsonl", Body=dump(400, "v2", bad=3))
    client.put_object(Bucket=bucket, Key=f"{land}/{TEACHER}/part-1.jsonl", Body=dump(250, "v2b", bad=2))
    marker = tmp_path / "parked"
    env = dict(os.environ, KILL_MARKER=str(marker), KILL_AT_PUT="2", S3_ENDPOINT=s3.endpoint, TEACHER=TEACHER,
               LANDING=s3.url(land), STORE=s3.url(store), DLCOT_SCRATCH_DIR=str(tmp_path / "child-scratch"))
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert child.poll() is None, child.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the child never reached its second upload"
            time.sleep(0.1)
        assert marker.read_text().endswith(f"raw_trace_rejects/{TEACHER}.parquet")
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        output = child.stdout.read().decode()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL, output[-2000:]
    assert "child finished" not in output

    # the kill left the partition half-updated: new traces, old (v1) rejects
    assert read(client, bucket, f"{store}/raw_traces/{TEACHER}.parquet").height == 650
    assert read(client, bucket, f"{store}/raw_trace_rejects/{TEACHER}.parquet").height == 0

    # re-run the partition, and compare it to a clean run into a fresh prefix
    assert materialize(resources(s3, land, store, tmp_path / "scratch")).success
    assert materialize(resources(s3, land, clean_store, tmp_path / "scratch-clean")).success
    traces = read(client, bucket, f"{store}/raw_traces/{TEACHER}.parquet")
    rejects = read(client, bucket, f"{store}/raw_trace_rejects/{TEACHER}.parquet")
    assert traces.height == 650 and rejects.height == 5  # 400 + 250 good records kept, 5 broken lines rejected
    assert traces["id"].n_unique() == traces.height  # no duplicate rows
    assert traces.equals(read(client, bucket, f"{clean_store}/raw_traces/{TEACHER}.parquet"))
    assert rejects.equals(read(client, bucket, f"{clean_store}/raw_trace_rejects/{TEACHER}.parquet"))
    # nothing stray: exactly the two objects, no temporary or partial uploads
    assert keys(client, bucket, store) == [f"{store}/raw_trace_rejects/{TEACHER}.parquet", f"{store}/raw_traces/{TEACHER}.parquet"]
    mpu = client.list_multipart_uploads(Bucket=bucket, Prefix=store + "/").get("Uploads", [])
    assert mpu == []


def test_s3_outage_mid_run_fails_clearly_and_retry_succeeds(s3, tmp_path, monkeypatch):
    client, bucket = s3.client(), s3.BUCKET
    land, store = s3.new_prefix("landing"), s3.new_prefix("store")
    client.put_object(Bucket=bucket, Key=f"{land}/{TEACHER}/part-0.jsonl", Body=dump(50, "x", bad=1))

    # the dumps are read from S3, then the S3 endpoint dies before the outputs are written
    orig = s3_landing.S3Landing.local_files

    def read_then_outage(self, teacher):
        files = orig(self, teacher)
        s3.stop_gateway()
        return files

    monkeypatch.setattr(s3_landing.S3Landing, "local_files", read_then_outage)
    t0 = time.perf_counter()
    failed = materialize(resources(s3, land, store, tmp_path / "scratch"), raise_on_error=False)
    fail_seconds = time.perf_counter() - t0
    assert not failed.success
    errors = "\n".join(e.event_specific_data.error.to_string() for e in failed.get_step_failure_events())
    assert "StorageUnavailableError" in errors and f"S3 endpoint {s3.endpoint} unreachable" in errors, errors[-3000:]
    assert f"s3://{bucket}/{store}/raw_traces/{TEACHER}.parquet" in errors  # names what it was writing
    s3.start_gateway(wait=True)
    assert keys(client, bucket, store) == []  # nothing half-written

    # the server is back: a retry of the same partition succeeds and stores everything
    monkeypatch.setattr(s3_landing.S3Landing, "local_files", orig)
    assert materialize(resources(s3, land, store, tmp_path / "scratch")).success
    assert read(client, bucket, f"{store}/raw_traces/{TEACHER}.parquet").height == 50
    assert read(client, bucket, f"{store}/raw_trace_rejects/{TEACHER}.parquet").height == 1
    print(f"\nS3 outage: the step failed after {fail_seconds:.1f}s (boto3 max_attempts=2)")
