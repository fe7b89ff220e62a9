"""Faults: a materialization killed mid-partition leaves no partial table and a re-run writes exactly what an
uninterrupted run writes; a write error (the kernel's file-size limit, as on a full disk) fails the step with a
clear error and leaves the previous materialization byte for byte intact."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from .conftest import shared_data_dir
from .test_dagster_dlcot import link

TEACHER = "r1x3"
TABLES = ["raw_traces", "raw_trace_rejects", "segmented_traces", "pruned_solutions", "corrected_traces", "dropped_traces"]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def landing(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("landing")
    t = shared_data_dir() / "traces"
    for name in ("math500_deepseek-r1.jsonl", "math500_deepseek-r1-distill-qwen-7b.jsonl",
                 "math500_deepseek-r1-distill-llama-8b.jsonl"):
        link(root, TEACHER, t / name)
    return root


def child(landing: Path, store: Path, scratch: Path, *args: str) -> subprocess.Popen:
    """Runs in its own empty ``scratch`` (a killed run leaves its staging files behind, never in the store)."""
    assert not scratch.exists() or not any(scratch.iterdir()), "use a fresh scratch folder per child"
    # one row group per batch, so the kill lands while row groups are being appended
    env = {**os.environ, "DLCOT_SCRATCH_DIR": str(scratch), "HF_HUB_OFFLINE": "1", "DLCOT_ROW_GROUP_BYTES": "0"}
    scratch.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "dlcot_dagster_tests.fault_child", str(landing), str(store), TEACHER, *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def run(landing: Path, store: Path, scratch: Path, *args: str, timeout: float = 600) -> tuple[int, str]:
    p = child(landing, store, scratch, *args)
    out, _ = p.communicate(timeout=timeout)
    return p.returncode, out


def tables(store: Path) -> dict[str, pl.DataFrame]:
    return {n: pl.read_parquet(store / n / f"{TEACHER}.parquet") for n in TABLES}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def partial_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # renamed into place meanwhile
        return 0


def kill_when_staging(p: subprocess.Popen, scratch: Path, stem: str, timeout: float = 300) -> None:
    """SIGKILL the child (and its group) once the stage staging ``stem`` has written at least one row group."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            pytest.fail(f"the child finished before it could be interrupted:\n{p.stdout.read()}")
        if any(_size(f) > 0 for f in scratch.rglob(f".{stem}.parquet.*.part")):
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            return
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    pytest.fail("the stage never started writing")


@pytest.fixture(scope="module")
def reference(landing, tmp_path_factory):
    store = tmp_path_factory.mktemp("reference")
    rc, out = run(landing, store, tmp_path_factory.mktemp("reference-scratch"))
    assert rc == 0, out
    return tables(store)


def test_interrupted_run_reruns_identically_and_keeps_previous(landing, reference, tmp_path):
    store = tmp_path / "store"
    # 1. killed while corrected_traces is being written batch by batch: nothing partial is visible
    p = child(landing, store, tmp_path / "s1")
    kill_when_staging(p, tmp_path / "s1", "kept")
    assert not (store / "corrected_traces" / f"{TEACHER}.parquet").exists()
    assert not (store / "dropped_traces" / f"{TEACHER}.parquet").exists()
    assert partial_files(store) == []
    assert (store / "pruned_solutions" / f"{TEACHER}.parquet").exists()  # the stages before it completed

    # 2. the re-run writes exactly what an uninterrupted run writes: no duplicates, no gaps
    rc, out = run(landing, store, tmp_path / "s2")
    assert rc == 0, out
    got = tables(store)
    for name in TABLES:
        assert got[name].equals(reference[name]), name
    raw_ids = got["raw_traces"]["id"]
    out_ids = pl.concat([got["corrected_traces"]["id"], got["dropped_traces"]["id"]])
    assert out_ids.n_unique() == out_ids.len() == raw_ids.len() == 60
    assert set(out_ids) == set(raw_ids)

    # 3. killed again mid-stage: the previous materialization stays byte for byte
    before = {n: digest(store / n / f"{TEACHER}.parquet") for n in TABLES}
    p = child(landing, store, tmp_path / "s3", "--only", "corrected_traces,dropped_traces")
    kill_when_staging(p, tmp_path / "s3", "kept")
    assert {n: digest(store / n / f"{TEACHER}.parquet") for n in TABLES} == before
    assert partial_files(store) == []


def test_write_error_fails_clearly_and_keeps_previous(landing, reference, tmp_path):
    store, scratch = tmp_path / "store", tmp_path / "scratch"
    rc, out = run(landing, store, tmp_path / "s0")
    assert rc == 0, out
    target = store / "corrected_traces" / f"{TEACHER}.parquet"
    before = {n: digest(store / n / f"{TEACHER}.parquet") for n in TABLES}
    limit = target.stat().st_size // 3  # far below what the table needs, above everything else the step writes

    rc, out = run(landing, store, scratch, "--only", "corrected_traces,dropped_traces", "--fsize", str(limit))
    assert rc == 1 and "SUCCESS False" in out, out
    assert "File too large" in out and "corrected_traces" in out, out
    assert "previous version (if any) is intact" in out, out
    assert {n: digest(store / n / f"{TEACHER}.parquet") for n in TABLES} == before
    assert partial_files(store) == [] and partial_files(scratch) == []
    assert pl.read_parquet(target).equals(reference["corrected_traces"])
