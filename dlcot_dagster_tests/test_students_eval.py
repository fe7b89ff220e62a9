"""Benchmark loading (every shared benchmark file) and evaluation of a checkpoint on 10 GSM8K problems on the
session's shared vLLM engine (SmolLM2-135M as the checkpoint); verdicts re-checked independently."""

from __future__ import annotations

import time

import polars as pl
import pytest

from dlcot_dagster.domain.answers import AnswerChecker, extract_final_answer
from dlcot_dagster.domain.llm import Sampling
from dlcot_dagster.domain.students.benchmarks import KNOWN_FIELDS, BenchmarkSpec, file_row_count, load_benchmark, render_prompt
from dlcot_dagster.domain.students.evaluate import (
    dlcot_below_raw,
    evaluate_problems,
    per_benchmark,
    per_problem,
    problem_count_problems,
    score_range_problems,
)

from .conftest import shared_data_dir


def bench(name: str) -> BenchmarkSpec:
    return BenchmarkSpec(name=name, path=str(shared_data_dir() / "benchmarks" / f"{name}.jsonl"))


@pytest.mark.parametrize("name", sorted(KNOWN_FIELDS))
def test_every_shared_benchmark_loads(name):
    spec = bench(name)
    frame = load_benchmark(spec)
    assert frame.height == file_row_count(spec) > 0
    assert frame["id"].n_unique() == frame.height
    assert frame["problem"].str.len_chars().min() > 0 and frame["reference_answer"].str.len_chars().min() > 0
    assert "\\boxed{}" in render_prompt(frame["problem"][0])
    assert load_benchmark(spec, limit=3).height == 3


def test_gsm8k_reference_is_the_number_after_hashes():
    frame = load_benchmark(bench("gsm8k"), limit=2)
    assert frame["reference_answer"].to_list() == ["18", "3"]


def test_eval_on_gsm8k_agrees_with_checker(vllm_engine, small_llm):
    from dlcot_dagster.defs.llm.resources import LLMConfig

    client = LLMConfig(**small_llm, cache_url="").raw_client()  # same engine arguments: the session's engine
    problems = load_benchmark(bench("gsm8k"), limit=10)
    t0 = time.perf_counter()
    records, timing = evaluate_problems(client, problems, n_samples=1, sampling=Sampling(temperature=0.0, max_tokens=256))
    print(f"\neval SmolLM2 on 10 GSM8K problems: {time.perf_counter() - t0:.1f}s = {timing.problems_per_s:.2f} problems/s")
    assert records.height == 10 and records["id"].to_list() == problems["id"].to_list()
    assert (records["output_tokens"] > 0).all()
    fresh = AnswerChecker(use_cache=False)
    for r in records.iter_rows(named=True):
        fa = extract_final_answer(r["response"] or "")
        assert (fa.text if fa else None) == r["predicted_answer"]
        v = fresh.compare(r["reference_answer"], fa.text) if fa else None
        assert r["correct"] == bool(v is not None and v.equivalent is True), r
    table = per_benchmark(records)
    assert table["problems"].to_list() == [10]
    assert 0.0 <= table["pass_at_1"][0] <= 1.0
    assert per_problem(records).height == 10
    assert not score_range_problems(table)
    assert not problem_count_problems(table, {"gsm8k": 10})


def test_pass_at_1_averages_samples():
    rec = pl.DataFrame(
        {"benchmark": ["b"] * 4, "id": ["p1", "p1", "p2", "p2"], "correct": [True, False, True, True], "output_tokens": [10, 20, 30, 50]}
    )
    t = per_benchmark(rec)
    assert t["pass_at_1"][0] == pytest.approx(0.75) and t["output_tokens"][0] == pytest.approx(27.5)


def test_checks_fail_on_bad_data():
    bad = pl.DataFrame({"variant": ["dlcot", "raw"], "benchmark": ["gsm8k", "gsm8k"], "problems": [9, 10], "pass_at_1": [1.5, 0.2]})
    assert score_range_problems(bad) == ["dlcot/gsm8k: pass@1 = 1.5"]
    assert problem_count_problems(bad, {"gsm8k": 10}) == ["dlcot/gsm8k: 9 problems evaluated, expected 10"]
    assert problem_count_problems(bad, {"gsm8k": 10, "aime24": 30})[-1] == "aime24: no results"
    worse = bad.with_columns(pass_at_1=pl.Series([0.1, 0.2]))
    assert dlcot_below_raw(worse) == ["gsm8k: dlcot 0.100 < raw 0.200"]
    assert dlcot_below_raw(worse.with_columns(pass_at_1=pl.Series([0.3, 0.2]))) == []
    nan = bad.with_columns(pass_at_1=pl.Series([float("nan"), 0.5]))
    assert len(score_range_problems(nan)) == 1
