"""The production instance config (deploy/dagster.prod.yaml) on a real PostgreSQL server started on loopback.

Only the run launcher is swapped (there is no Kubernetes cluster here; its config section is validated against
dagster-k8s's own schema instead). Step logs go to the session's SeaweedFS S3 through the S3ComputeLogManager.
"""

from __future__ import annotations

import copy
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.io_managers import ParquetIOManager
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import LandingZoneResource, TokenizerResource
from dlcot_dagster.defs.settings import SAMPLES_LANDING

from .conftest import REPO_ROOT

PROD_YAML = REPO_ROOT / "deploy" / "dagster.prod.yaml"


def prod_config() -> dict:
    return yaml.safe_load(PROD_YAML.read_text())


def test_prod_config_sections_validate_against_their_schemas():
    """Every section the instance schema cannot check on its own (custom classes) is checked against the class."""
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
    from dagster_k8s import K8sRunLauncher

    cfg = prod_config()
    assert validate_config(dagster_instance_config_schema(), cfg).success
    launcher = validate_config(K8sRunLauncher.config_type(), cfg["run_launcher"]["config"])
    assert launcher.success, launcher.errors
    logs = validate_config(S3ComputeLogManager.config_type(), cfg["compute_logs"]["config"])
    assert logs.success, logs.errors
    assert cfg["run_launcher"]["class"] == "K8sRunLauncher" and cfg["run_coordinator"]["class"] == "QueuedRunCoordinator"
    # no credentials in the file: every secret-looking value comes from the environment
    pg = cfg["run_storage"]["config"]["postgres_db"]
    assert all(isinstance(v, dict) and set(v) == {"env"} for k, v in pg.items() if k != "scheme")
    # the local default instance stays SQLite (no storage sections)
    local = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    assert not {"run_storage", "event_log_storage", "schedule_storage", "storage"} & set(local)


@pytest.fixture
def prod_home(tmp_path, postgres_server, s3, monkeypatch):
    cfg = copy.deepcopy(prod_config())
    cfg["run_launcher"] = {"module": "dagster", "class": "DefaultRunLauncher"}  # no cluster here
    cfg["compute_logs"]["config"]["endpoint_url"] = s3.endpoint
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(cfg))
    for k, v in {
        "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(postgres_server.port),
        "DAGSTER_PG_USERNAME": postgres_server.USER, "DAGSTER_PG_PASSWORD": "unused-trust-auth",
        "DAGSTER_PG_DB": postgres_server.DB, "DLCOT_LOG_BUCKET": s3.BUCKET,
    }.items():
        monkeypatch.setenv(k, v)
    return home


def test_materialization_is_stored_in_postgres(prod_home, postgres_server, s3, tmp_path):
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    teacher = "demo-r1-style"
    with dg.DagsterInstance.from_config(str(prod_home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        concurrency = instance.get_concurrency_config()
        assert [(t["key"], t["value"], t["limit"]) for t in concurrency.run_queue_config.tag_concurrency_limits] == [
            ("dlcot/gpu", "true", 4)
        ]
        assert concurrency.pool_config.default_pool_limit == 4

        instance.add_dynamic_partitions(teacher_partitions.name, [teacher])
        result = dg.materialize(
            [raw_traces], partition_key=teacher, instance=instance,
            resources={"landing_zone": LandingZoneResource(root=str(SAMPLES_LANDING)), "tokenizer": TokenizerResource(),
                       "parquet_io_manager": ParquetIOManager(base_dir=str(tmp_path / "store"))},
        )
        assert result.success
        run_id = result.run_id
        # read back through the instance (PostgreSQL), not the in-memory result
        mat = instance.get_latest_materialization_event(dg.AssetKey("raw_traces"))
        assert mat is not None and mat.run_id == run_id
        assert mat.asset_materialization.partition == teacher

    # and straight from PostgreSQL, with a client of our own
    conn = postgres_server.connect()
    try:
        cur = conn.cursor()
        cur.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
        assert cur.fetchall() == [("SUCCESS",)]
        cur.execute(
            "SELECT asset_key, partition FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'"
            " ORDER BY asset_key",
            (run_id,),
        )
        assert cur.fetchall() == [('["raw_trace_rejects"]', teacher), ('["raw_traces"]', teacher)]
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_CHECK_EVALUATION'", (run_id,))
        assert cur.fetchone()[0] == 6  # raw_traces: accounting, reference sources, self share, 3 expectations
        cur.execute("SELECT partition FROM dynamic_partitions WHERE partitions_def_name = %s", (teacher_partitions.name,))
        assert cur.fetchall() == [(teacher,)]
        cur.execute("SELECT to_regclass('public.instigators') IS NOT NULL")  # schedule storage tables exist
        assert cur.fetchone()[0] is True
    finally:
        conn.close()

    # the step's captured logs went to S3 through the compute log manager of the prod config
    client = s3.client()
    logs = client.list_objects_v2(Bucket=s3.BUCKET, Prefix=f"dagster-compute-logs/storage/{run_id}/")
    assert logs.get("KeyCount", 0) > 0, logs
    assert pl.read_parquet(tmp_path / "store" / "raw_traces" / f"{teacher}.parquet").height == 4


def test_missing_postgres_is_a_failure_not_a_skip(monkeypatch):
    from . import services

    monkeypatch.setattr(services.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="ensure-test-services"):
        services.postgres_bindir()
