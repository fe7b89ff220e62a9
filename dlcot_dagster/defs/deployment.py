"""Pick storage resources and the executor from the environment, so one code base runs on a laptop and on Kubernetes.

| variable | effect |
|---|---|
| ``DLCOT_LANDING_URL`` | ``s3://bucket/prefix`` -> ``S3LandingZoneResource``; a folder (or unset) -> local landing |
| ``DLCOT_STORAGE_URL`` | ``s3://bucket/prefix`` -> ``S3ParquetIOManager``; a folder (or unset) -> local Parquet |
| ``DLCOT_BLOB_URL`` | checkpoints / LLM caches (``blob_store``), default ``<storage>/_blobs`` |
| ``DLCOT_S3_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` | S3-compatible endpoint (MinIO, SeaweedFS...) |
| ``DLCOT_EXECUTOR`` | ``k8s`` -> ``k8s_job_executor`` (one pod per step), ``multiprocess``, ``in_process`` |

Unset, everything stays local exactly as before. Credentials are never configured here: boto3's default chain
(environment, IRSA / pod role, instance profile) provides them.
"""

from __future__ import annotations

import os

import dagster as dg
from dagster_aws.s3 import S3Resource

from ..domain.storage import is_s3_url
from .io_managers import ParquetIOManager, S3ParquetIOManager
from .resources import BlobStoreResource, LandingZoneResource, S3BlobStoreResource, S3LandingZoneResource
from .settings import blob_location, executor_kind, landing_location, s3_endpoint_url, s3_region, storage_location


def s3_resource_from_env() -> S3Resource:
    max_attempts = int(os.environ.get("DLCOT_S3_MAX_ATTEMPTS", "5"))
    return S3Resource(endpoint_url=s3_endpoint_url(), region_name=s3_region(), max_attempts=max_attempts)


def storage_resources(
    landing: str | None = None, storage: str | None = None, blobs: str | None = None, s3: S3Resource | None = None
) -> dict:
    """``landing_zone``, ``parquet_io_manager`` and ``blob_store`` (plus ``s3`` when any of them is on S3)."""
    landing = landing or landing_location()
    storage = storage or storage_location()
    blobs = blobs or blob_location()
    if any(is_s3_url(u) for u in (landing, storage, blobs)):
        s3 = s3 or s3_resource_from_env()
    out: dict = {
        "landing_zone": S3LandingZoneResource(root=landing, s3=s3) if is_s3_url(landing) else LandingZoneResource(root=landing),
        "parquet_io_manager": (
            S3ParquetIOManager(url=storage, s3=s3) if is_s3_url(storage) else ParquetIOManager(base_dir=storage)
        ),
        "blob_store": S3BlobStoreResource(url=blobs, s3=s3) if is_s3_url(blobs) else BlobStoreResource(url=blobs),
    }
    if s3 is not None:
        out["s3"] = s3
    return out


def executor_from_env() -> dg.ExecutorDefinition | None:
    """``DLCOT_EXECUTOR=k8s``: every step in its own pod (GPU steps get GPU pods from their op tags)."""
    kind = executor_kind()
    if kind in ("", "default"):
        return None
    if kind in ("k8s", "k8s_job", "kubernetes"):
        from dagster_k8s import k8s_job_executor

        cfg: dict = {}
        if os.environ.get("DLCOT_K8S_MAX_CONCURRENT_STEPS"):
            cfg["max_concurrent"] = int(os.environ["DLCOT_K8S_MAX_CONCURRENT_STEPS"])
        return k8s_job_executor.configured(cfg, name="k8s_job_executor") if cfg else k8s_job_executor
    if kind == "multiprocess":
        return dg.multiprocess_executor
    if kind in ("in_process", "inprocess"):
        return dg.in_process_executor
    raise ValueError(f"DLCOT_EXECUTOR={kind!r}: use k8s, multiprocess or in_process (or leave it unset)")
