"""Minimal readers for the shared third-party traces (``<shared>/data/traces``), for tests and benches.

Kept deliberately small and independent of the ingestion code
(:mod:`dlcot_dagster.domain.ingest`), so the engine's tests do not move when
ingestion changes; records are plain :class:`TraceInput` values. JSONL is
split on ``\\n`` only (records contain U+2028/U+2029).
"""

from __future__ import annotations

import json
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


def _jsonl(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def _split_think(resp: str, open_tag: str, close_tag: str) -> tuple[str, str | None, bool]:
    body = resp
    i = body.find(open_tag)
    if i != -1:
        body = body[i + len(open_tag) :]
    j = body.find(close_tag)
    if j == -1:
        return body.strip("\n"), None, False
    return body[:j].strip("\n"), body[j + len(close_tag) :].strip() or None, True


def _sky_split(resp: str) -> tuple[str, str | None, bool]:
    thinking, rest, closed = _split_think(resp, "<|begin_of_thought|>", "<|end_of_thought|>")
    if rest is not None:
        rest = rest.replace("<|begin_of_solution|>", "").replace("<|end_of_solution|>", "").strip() or None
    return thinking, rest, closed


def read_trace_file(path: Path) -> list[TraceInput]:
    """Records of one shared trace file, mapped by its known layout."""
    path = Path(path)
    name = path.name
    teacher = path.stem
    out: list[TraceInput] = []
    if name.endswith(".json"):
        rows = json.loads(path.read_text(encoding="utf-8"))
    else:
        rows = _jsonl(path)
    for n, r in enumerate(rows):
        if "deepseek-reasoner (response)" in r:  # SAT
            th, fr, closed = _split_think(r["deepseek-reasoner (response)"], "<think>", "</think>")
            out.append(TraceInput(id=f"{teacher}/{r.get('Question ID', n)}", teacher=teacher, problem=r["Instruction"],
                                  reference_answer=str(r["Correct Answer"]), thinking=th, final_response=fr,
                                  thinking_closed=closed))
        elif "code" in r and isinstance(r.get("code"), list):  # Sky-T1 students
            th, fr, closed = _sky_split(r["code"][0] if r["code"] else "")
            out.append(TraceInput(id=f"{teacher}/{r.get('idx', n)}", teacher=teacher, problem=r["question"],
                                  reference_answer=str(r["gt"]), thinking=th, final_response=fr,
                                  thinking_closed=closed))
        elif "full_response" in r:  # MATH-500 runs
            th, fr, closed = _split_think(r["full_response"], "<think>", "</think>")
            out.append(TraceInput(id=f"{teacher}/{r.get('item_id', n)}", teacher=teacher, problem=r["problem"],
                                  reference_answer=str(r["ground_truth"]), thinking=th, final_response=fr,
                                  thinking_closed=closed))
        elif "reasoning" in r:  # Gemini AIME
            out.append(TraceInput(id=f"{teacher}/{r.get('id', n)}", teacher=teacher, problem=r["question"],
                                  reference_answer=str(r["gold_answer"]), thinking=r["reasoning"].strip("\n"),
                                  final_response=(r.get("solution") or None), thinking_closed=True))
        else:  # LIMO layouts: the thinking (tags stripped) ends with **Final Answer**
            out.append(TraceInput(id=f"{teacher}/{r.get('id', n)}", teacher=teacher, problem=r["question"],
                                  reference_answer=str(r["gold_answer"]), thinking=r["solution"],
                                  final_response=None, thinking_closed=True))
    return out


def trace_files(shared: Path | None = None) -> list[Path]:
    d = traces_dir(shared)
    if d is None:
        return []
    return sorted(p for p in d.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json"))


def iter_all_traces(shared: Path | None = None) -> Iterator[tuple[Path, TraceInput]]:
    for p in trace_files(shared):
        for rec in read_trace_file(p):
            yield p, rec
