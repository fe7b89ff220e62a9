"""Shared fixtures. Real data is read from ../shared/data (or $DLCOT_SHARED_DIR); never copied here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def shared_dir() -> Path:
    """The shared data folder: $DLCOT_SHARED_DIR or <repo>/../shared."""
    return Path(os.environ.get("DLCOT_SHARED_DIR") or REPO_ROOT.parent / "shared").resolve()


def shared_data_dir() -> Path:
    return shared_dir() / "data"


def stage_resources(landing: Path, store: Path, *, dlcot_engine=None, benchmarks=None) -> dict:
    """What raw_traces -> corrected_traces need on a local landing and store: one worker (faults raised in the
    engine reach the step process) and, unless given, the bundled demo benchmark to decontaminate against."""
    from dlcot_dagster.defs.benchmarks import BenchmarksResource
    from dlcot_dagster.defs.decontam.resources import DecontamResource
    from dlcot_dagster.defs.dlcot.resources import DLCoTEngineResource
    from dlcot_dagster.defs.io_managers import ParquetIOManager
    from dlcot_dagster.defs.resources import LandingZoneResource, TokenizerResource

    return {
        "landing_zone": LandingZoneResource(root=str(landing)),
        "tokenizer": TokenizerResource(),
        "parquet_io_manager": ParquetIOManager(base_dir=str(store)),
        "dlcot_engine": dlcot_engine if dlcot_engine is not None else DLCoTEngineResource(workers=1),
        "benchmarks": benchmarks if benchmarks is not None else BenchmarksResource(),
        "decontam": DecontamResource(),
    }


def read_jsonl(path: Path) -> list[dict]:
    """Parse a JSONL file, splitting on \\n only (records contain U+2028/U+2029)."""
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line.strip()]


def trace_files() -> list[Path]:
    root = shared_data_dir() / "traces"
    return sorted(p for p in root.rglob("*") if p.suffix in (".jsonl", ".json"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if not d.is_dir():
        pytest.fail(f"shared data not found at {d}: set DLCOT_SHARED_DIR or check out ../shared beside the repo")
    return d


@pytest.fixture(scope="session")
def token_counter():
    from dlcot_dagster.domain.tokens import TokenCounter

    return TokenCounter()


# real servers on loopback for the deployment tests (SeaweedFS S3, PostgreSQL): session fixtures
from .services import postgres_server, s3, s3_server  # noqa: E402,F401


# session fixtures of the LLM tests (one vLLM engine, one OpenAI-compatible server); vLLM loads only when used
from .llm_support import small_llm, smollm2_dir, vllm_engine, vllm_server  # noqa: E402,F401
