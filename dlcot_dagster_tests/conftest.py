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
