"""Blob stores (local and S3) and the S3 Parquet IO manager, against a real SeaweedFS S3 server on loopback."""

from __future__ import annotations

import os
import time

import dagster as dg
import polars as pl
import pytest
from dagster_aws.s3 import S3Resource

from dlcot_dagster.defs.deployment import storage_resources
from dlcot_dagster.defs.io_managers import ParquetIOManager, S3ParquetIOManager
from dlcot_dagster.defs.resources import (
    BlobStoreResource,
    LandingZoneResource,
    S3BlobStoreResource,
    S3LandingZoneResource,
)
from dlcot_dagster.domain.storage import (
    LocalBlobStore,
    S3BlobStore,
    StorageUnavailableError,
    blob_store_from_url,
    parse_s3_url,
)


def s3_resource(s3, max_attempts: int = 2) -> S3Resource:
    return S3Resource(endpoint_url=s3.endpoint, region_name="us-east-1", max_attempts=max_attempts)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    s3 = request.getfixturevalue("s3")
    return blob_store_from_url(s3.url(s3.new_prefix("blobs")), s3.client())


def test_parse_s3_url():
    u = parse_s3_url("s3://bucket/a/b/")
    assert (u.bucket, u.prefix, u.key("x", "y.parquet")) == ("bucket", "a/b", "a/b/x/y.parquet")
    assert parse_s3_url("s3://bucket").prefix == ""
    with pytest.raises(ValueError):
        parse_s3_url("/local/path")
    with pytest.raises(ValueError):
        parse_s3_url("s3:///no-bucket")


def test_blob_store_contract(store, tmp_path):
    """The same behaviour on a folder and on S3: what checkpoint and cache code may rely on."""
    assert not store.exists("ckpt/qwq/step-1.bin")
    with pytest.raises(FileNotFoundError):
        store.get_bytes("ckpt/qwq/step-1.bin")
    uri = store.put_bytes("ckpt/qwq/step-1.bin", b"\x00weights")
    assert uri.endswith("ckpt/qwq/step-1.bin") and store.exists("ckpt/qwq/step-1.bin")
    assert store.get_bytes("ckpt/qwq/step-1.bin") == b"\x00weights"
    store.put_bytes("ckpt/qwq/step-1.bin", b"v2")  # overwrite
    assert store.get_bytes("ckpt/qwq/step-1.bin") == b"v2"

    src = tmp_path / "cache.sqlite"
    src.write_bytes(os.urandom(300_000))
    store.put_file("llm-cache/qwq.sqlite", src)
    got = store.get_file("llm-cache/qwq.sqlite", tmp_path / "out" / "cache.sqlite")
    assert got.read_bytes() == src.read_bytes()
    assert [p.name for p in got.parent.iterdir()] == ["cache.sqlite"]  # no partial download left behind

    assert store.list_keys() == ["ckpt/qwq/step-1.bin", "llm-cache/qwq.sqlite"]
    assert store.list_keys("llm-cache/") == ["llm-cache/qwq.sqlite"]
    store.delete("ckpt/qwq/step-1.bin")
    assert not store.exists("ckpt/qwq/step-1.bin")
    for bad in ("", "/abs", "a/../b", "a//b", "./a"):
        with pytest.raises(ValueError):
            store.put_bytes(bad, b"x")


def test_s3_round_trip_figures(s3, tmp_path):
    """Measured, not assumed: PUT/GET latency and throughput on the loopback SeaweedFS (printed with -s)."""
    store = S3BlobStore.from_url(s3.url(s3.new_prefix("bench")), s3.client())
    small = b"x" * 1024
    t0 = time.perf_counter()
    for i in range(20):
        store.put_bytes(f"small/{i}", small)
    put_ms = (time.perf_counter() - t0) / 20 * 1000
    t0 = time.perf_counter()
    for i in range(20):
        assert store.get_bytes(f"small/{i}") == small
    get_ms = (time.perf_counter() - t0) / 20 * 1000
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(32 << 20))
    t0 = time.perf_counter()
    store.put_file("big.bin", big)  # multipart (> 8 MiB)
    up = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = store.get_file("big.bin", tmp_path / "big.out")
    down = time.perf_counter() - t0
    assert out.stat().st_size == 32 << 20 and out.read_bytes() == big.read_bytes()
    print(
        f"\nS3 (SeaweedFS, loopback): started in {s3.start_seconds:.1f}s; 1 KiB PUT {put_ms:.1f} ms, GET {get_ms:.1f} ms; "
        f"32 MiB upload {32 / up:.0f} MiB/s ({up:.2f}s), download {32 / down:.0f} MiB/s ({down:.2f}s)"
    )


def _ctx(key: str, partition: str | None):
    return dg.build_output_context(asset_key=dg.AssetKey(key), partition_key=partition)


def test_s3_parquet_io_manager_layout_and_atomicity(s3):
    prefix = s3.new_prefix("store")
    io = S3ParquetIOManager(url=s3.url(prefix), s3=s3_resource(s3))
    out_ctx = _ctx("raw_traces", "qwq-32b")
    frame = pl.DataFrame({"id": ["a", "b"], "n": [1, 2]})
    io.handle_output(out_ctx, frame)
    client = s3.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3.BUCKET, Prefix=prefix)["Contents"]]
    assert keys == [f"{prefix}/raw_traces/qwq-32b.parquet"]  # the local layout, nothing else
    in_ctx = dg.build_input_context(asset_key=dg.AssetKey("raw_traces"), partition_key="qwq-32b")
    assert io.load_input(in_ctx).equals(frame)

    # a failing write (not a frame) leaves the stored object intact
    with pytest.raises(TypeError):
        io.handle_output(out_ctx, "not a frame")  # type: ignore[arg-type]
    # the endpoint goes away during a write: a clear error, and the previous object is still the stored one
    s3.stop_gateway()
    try:
        with pytest.raises(StorageUnavailableError, match="unreachable"):
            io.handle_output(out_ctx, pl.DataFrame({"id": ["z"], "n": [9]}))
    finally:
        s3.start_gateway(wait=True)
    assert io.load_input(in_ctx).equals(frame)
    with pytest.raises(FileNotFoundError, match="materialize it first"):
        io.load_input(dg.build_input_context(asset_key=dg.AssetKey("raw_traces"), partition_key="nope"))


def test_storage_selected_by_environment(monkeypatch, tmp_path):
    """No code change: DLCOT_*_URL pick S3 resources, the endpoint comes from the environment, defaults stay local."""
    for name in ("DLCOT_LANDING_URL", "DLCOT_STORAGE_URL", "DLCOT_BLOB_URL", "DLCOT_LANDING_DIR", "DLCOT_STORAGE_DIR",
                 "DLCOT_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DLCOT_STORAGE_DIR", str(tmp_path / "store"))
    local = storage_resources()
    assert type(local["landing_zone"]) is LandingZoneResource
    assert type(local["parquet_io_manager"]) is ParquetIOManager
    assert local["parquet_io_manager"].base_dir == str(tmp_path / "store")
    assert type(local["blob_store"]) is BlobStoreResource and local["blob_store"].url == str(tmp_path / "store/_blobs")
    assert "s3" not in local

    monkeypatch.setenv("DLCOT_LANDING_URL", "s3://landing-bucket/dumps")
    monkeypatch.setenv("DLCOT_STORAGE_URL", "s3://data-bucket/dlcot")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("DLCOT_S3_ENDPOINT_URL", "http://127.0.0.1:8333")
    remote = storage_resources()
    assert isinstance(remote["landing_zone"], S3LandingZoneResource) and remote["landing_zone"].root == "s3://landing-bucket/dumps"
    assert isinstance(remote["parquet_io_manager"], S3ParquetIOManager) and remote["parquet_io_manager"].url == "s3://data-bucket/dlcot"
    assert isinstance(remote["blob_store"], S3BlobStoreResource) and remote["blob_store"].url == "s3://data-bucket/dlcot/_blobs"
    assert remote["s3"].endpoint_url == "http://127.0.0.1:8333"  # DLCOT_S3_ENDPOINT_URL wins over AWS_ENDPOINT_URL

    import dlcot_dagster.definitions as definitions

    defs = definitions.build_definitions()
    assert isinstance(defs.resources["parquet_io_manager"], S3ParquetIOManager)
    assert isinstance(defs.resources["landing_zone"], S3LandingZoneResource)
    defs.resolve_implicit_global_asset_job_def()  # the definitions still resolve with the S3 resources bound
    with pytest.raises(ValueError, match="S3LandingZoneResource"):
        LandingZoneResource(root="s3://landing-bucket/dumps").landing()


def test_executor_selected_by_environment(monkeypatch):
    import dlcot_dagster.definitions as definitions

    monkeypatch.delenv("DLCOT_EXECUTOR", raising=False)
    assert definitions.build_definitions().executor is None
    monkeypatch.setenv("DLCOT_EXECUTOR", "k8s")
    defs = definitions.build_definitions()
    assert defs.executor.name == "k8s"
    assert defs.resolve_job_def("reprocess_teacher").executor_def.name == "k8s"
    monkeypatch.setenv("DLCOT_EXECUTOR", "celery")
    with pytest.raises(ValueError, match="DLCOT_EXECUTOR"):
        definitions.build_definitions()
