"""Access to the shared third-party traces (``<shared>/data/traces``) for tests and benches, as
:class:`TraceInput` values produced by the project's ingestion."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from .types import TraceInput


def shared_dir() -> Path | None:
    """``$DLCOT_SHARED_DIR`` or ``<repo root>/../shared``, if it exists."""
    env = os.environ.get("DLCOT_SHARED_DIR")
    cands = [Path(env)] if env else []
    repo = Path(__file__).resolve().parents[3]
    cands.append(repo.parent / "shared")
    for c in cands:
        if (c / "data" / "traces").is_dir():
            return c
    return None


def traces_dir(shared: Path | None = None) -> Path | None:
    s = shared or shared_dir()
    return None if s is None else s / "data" / "traces"


def read_trace_file(path: Path) -> list[TraceInput]:
    """Records of one shared trace file, read through the project's own ingestion (every layout auto-detected),
    so the engine is tested on exactly what the pipeline feeds it."""
    from ..ingest import ingest_path

    path = Path(path)
    result = ingest_path(path, path.stem, None)
    return [TraceInput.of(r) for r in result.traces.iter_rows(named=True)]


def trace_files(shared: Path | None = None) -> list[Path]:
    d = traces_dir(shared)
    if d is None:
        return []
    return sorted(p for p in d.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json"))


def iter_all_traces(shared: Path | None = None) -> Iterator[tuple[Path, TraceInput]]:
    for p in trace_files(shared):
        for rec in read_trace_file(p):
            yield p, rec
