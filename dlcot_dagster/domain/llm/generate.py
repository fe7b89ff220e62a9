"""Teacher generation: long-CoT traces for a problem set, written as a landing-zone teacher folder.

A problem set is JSONL, a JSON list or Parquet with a problem and a reference answer per record (field names
configurable). Every (problem, sample) pair is one chat request (the sample index shifts the seed, so samples
differ and each has its own cache key); all of them go to the client in one batch. The output file uses the
layout the readers auto-detect for R1-style dumps (``id``, ``problem``, ``answer``, ``response``), so the landing
sensor picks the folder up as a new teacher partition.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .client import ChatRequest, LLMClient, Sampling
from ..storage import atomic_write

DEFAULT_TEMPLATE = "{problem}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}."


def read_problems(
    path: str | os.PathLike,
    *,
    problem_field: str = "problem",
    answer_field: str = "answer",
    id_field: str | None = "id",
    limit: int | None = None,
) -> list[dict[str, str]]:
    """``[{"id", "problem", "answer"}]`` from JSONL / JSON list / Parquet; ids default to the record number."""
    p = Path(path)
    if p.suffix == ".parquet":
        import polars as pl

        rows: list[dict[str, Any]] = pl.read_parquet(p).to_dicts()
    elif p.suffix == ".json":
        rows = json.loads(p.read_text(encoding="utf-8"))
    else:
        rows = [json.loads(line) for line in p.read_bytes().split(b"\n") if line.strip()]
    out = []
    for i, r in enumerate(rows[:limit] if limit else rows):
        if problem_field not in r or answer_field not in r:
            raise ValueError(f"{p}: record {i} lacks {problem_field!r} or {answer_field!r}")
        rid = r.get(id_field) if id_field else None
        out.append({"id": str(rid if rid is not None else i), "problem": str(r[problem_field]), "answer": str(r[answer_field])})
    return out


def generate_traces(
    client: LLMClient,
    problems: list[dict[str, str]],
    *,
    sampling: Sampling,
    samples_per_problem: int = 1,
    template: str = DEFAULT_TEMPLATE,
    system: str | None = None,
) -> list[dict[str, Any]]:
    """One record per (problem, sample): ``id``, ``problem``, ``answer``, ``response``, ``finish_reason``,
    ``completion_tokens``; failed requests come back with ``response=None`` and their ``error``."""
    pairs = [(p, k) for p in problems for k in range(samples_per_problem)]
    reqs = []
    for p, k in pairs:
        msgs = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": template.format(problem=p["problem"])}
        ]
        seed = None if sampling.seed is None else sampling.seed + k
        reqs.append(ChatRequest(msgs, None, sampling.model_copy(update={"seed": seed}), "generate"))
    out = []
    for (p, k), rep in zip(pairs, client.chat_batch(reqs)):
        out.append(
            {
                "id": p["id"] if samples_per_problem == 1 else f"{p['id']}#{k}",
                "problem": p["problem"],
                "answer": p["answer"],
                "response": rep.text if rep.ok else None,
                "finish_reason": rep.finish_reason,
                "completion_tokens": rep.completion_tokens,
                "error": rep.error,
            }
        )
    return out


def write_teacher_folder(rows: list[dict[str, Any]], folder: str | os.PathLike, name: str = "generations.jsonl") -> Path:
    """Write the generated records (those with a response) as ``<folder>/<name>``, atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(
        json.dumps({k: r[k] for k in ("id", "problem", "answer", "response")}, ensure_ascii=False) + "\n"
        for r in rows
        if r["response"] is not None
    )
    path = atomic_write(folder / name, lambda tmp: tmp.write_text(lines, encoding="utf-8"))
    return path
