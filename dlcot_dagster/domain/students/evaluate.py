"""Evaluation of a checkpoint on benchmark problems through an :class:`~..llm.LLMClient` (vLLM or HTTP).

``n_samples`` completions per problem; a sample is correct when :class:`~..answers.AnswerChecker` finds its
extracted final answer equivalent to the reference; pass@1 of a problem = the share of its samples that are
correct, pass@1 of a benchmark = the mean over its problems. Output tokens are the completion tokens the engine
reports, averaged over samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import polars as pl

from ..answers import AnswerChecker, extract_final_answer
from ..llm import ChatRequest, Sampling
from .benchmarks import DEFAULT_TEMPLATE, render_prompt

RECORD_SCHEMA = {
    "benchmark": pl.String(),
    "id": pl.String(),
    "sample": pl.Int64(),
    "reference_answer": pl.String(),
    "response": pl.String(),
    "predicted_answer": pl.String(),
    "correct": pl.Boolean(),
    "verdict_reason": pl.String(),
    "output_tokens": pl.Int64(),
    "finish_reason": pl.String(),
    "error": pl.String(),
}


@dataclass
class EvalTiming:
    problems: int
    samples: int
    seconds: float

    @property
    def problems_per_s(self) -> float:
        return self.problems / self.seconds if self.seconds else 0.0


def evaluate_problems(
    client,
    problems: pl.DataFrame,
    *,
    n_samples: int = 1,
    sampling: Sampling | None = None,
    checker: AnswerChecker | None = None,
    template: str = DEFAULT_TEMPLATE,
    system: str | None = None,
) -> tuple[pl.DataFrame, EvalTiming]:
    """Per-sample records (``RECORD_SCHEMA``) of every problem in ``problems`` (a :func:`load_benchmark` frame)."""
    sampling = sampling or Sampling(temperature=0.0, max_tokens=1024)
    checker = checker or AnswerChecker()
    reqs, meta = [], []
    for row in problems.iter_rows(named=True):
        msgs = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": render_prompt(row["problem"], template)}
        ]
        for k in range(n_samples):
            seed = None if sampling.seed is None else sampling.seed + k
            reqs.append(ChatRequest(messages=msgs, sampling=sampling.model_copy(update={"seed": seed}), tag="eval"))
            meta.append((row, k))
    t0 = time.perf_counter()
    replies = client.chat_batch(reqs)
    seconds = time.perf_counter() - t0
    out = []
    for (row, k), rep in zip(meta, replies):
        text = rep.text or ""
        fa = extract_final_answer(text) if text else None
        verdict = checker.compare(row["reference_answer"], fa.text) if fa else None
        out.append(
            {
                "benchmark": row["benchmark"],
                "id": row["id"],
                "sample": k,
                "reference_answer": row["reference_answer"],
                "response": rep.text,
                "predicted_answer": fa.text if fa else None,
                "correct": bool(verdict is not None and verdict.equivalent is True),
                "verdict_reason": verdict.reason if verdict else ("no_answer" if rep.ok else "generation_failed"),
                "output_tokens": int(rep.completion_tokens),
                "finish_reason": rep.finish_reason,
                "error": rep.error,
            }
        )
    return pl.DataFrame(out, schema=RECORD_SCHEMA), EvalTiming(problems.height, len(reqs), seconds)


def per_problem(records: pl.DataFrame) -> pl.DataFrame:
    """One row per (benchmark, id): pass@1 over samples and mean output tokens."""
    return (
        records.group_by("benchmark", "id", maintain_order=True)
        .agg(
            pass_at_1=pl.col("correct").cast(pl.Float64).mean(),
            samples=pl.len(),
            output_tokens=pl.col("output_tokens").cast(pl.Float64).mean(),
        )
    )


def per_benchmark(records: pl.DataFrame) -> pl.DataFrame:
    """One row per benchmark: problems, pass@1 (mean over problems of the mean over samples), mean output tokens."""
    pp = per_problem(records)
    return (
        pp.group_by("benchmark", maintain_order=True)
        .agg(problems=pl.len(), pass_at_1=pl.col("pass_at_1").mean(), output_tokens=pl.col("output_tokens").mean())
        .sort("benchmark")
    )


# -------------------------------------------------------------------------------------------- checks (pure)


def score_range_problems(table: pl.DataFrame) -> list[str]:
    """Scores outside [0, 1] (or NaN / null)."""
    bad = table.filter(pl.col("pass_at_1").is_null() | pl.col("pass_at_1").is_nan() | (pl.col("pass_at_1") < 0) | (pl.col("pass_at_1") > 1))
    return [f"{r.get('variant', '')}/{r['benchmark']}: pass@1 = {r['pass_at_1']}" for r in bad.iter_rows(named=True)]


def problem_count_problems(table: pl.DataFrame, expected: dict[str, int]) -> list[str]:
    """Benchmarks whose evaluated problem count differs from the expected (file rows, or the limit)."""
    out = []
    for r in table.iter_rows(named=True):
        want = expected.get(r["benchmark"])
        if want is None:
            out.append(f"{r['benchmark']}: not configured")
        elif r["problems"] != want:
            out.append(f"{r.get('variant', '')}/{r['benchmark']}: {r['problems']} problems evaluated, expected {want}")
    for name in expected:
        if name not in set(table["benchmark"].to_list()):
            out.append(f"{name}: no results")
    return out


def dlcot_below_raw(table: pl.DataFrame, tolerance: float = 0.0) -> list[str]:
    """Benchmarks where the DLCoT student's pass@1 is below the raw-trace student's (table has a ``variant``)."""
    piv = {(r["variant"], r["benchmark"]): r["pass_at_1"] for r in table.iter_rows(named=True)}
    out = []
    for (variant, bench), score in piv.items():
        if variant != "dlcot" or ("raw", bench) not in piv:
            continue
        if score < piv[("raw", bench)] - tolerance:
            out.append(f"{bench}: dlcot {score:.3f} < raw {piv[('raw', bench)]:.3f}")
    return out
