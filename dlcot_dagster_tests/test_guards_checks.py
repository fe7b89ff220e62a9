"""The check builders of the assets on small tables, both sides of every rule (fast: no materialization).

``test_guards_ingest.py`` / ``test_guards_dlcot.py`` show each blocking check failing through Dagster and
stopping the downstream assets; these pin the pass/fail rule and the rows each check names, boundaries included,
quickly enough to run under mutation testing (``make mutate``).
"""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest

from dlcot_dagster.defs.constants import (
    CHECK_ACCOUNTING,
    CHECK_ANSWERS_VERIFIED,
    CHECK_DLCOT_ACCOUNTING,
    CHECK_MAX_SEQ_LEN,
    CHECK_NON_EMPTY_TEXT,
    CHECK_REFERENCE_SOURCES,
    CHECK_SEGMENT_COVERAGE,
    CHECK_SELF_REFERENCE_SHARE,
    CHECK_TOKEN_BOUNDS,
    CHECK_TOKEN_REDUCTION,
    CHECK_TOKENS_NOT_INCREASED,
    CHECK_UNIQUE_IDS,
)
from dlcot_dagster.defs.dlcot.assets import CorrectConfig, _corrected_checks, _coverage_check
from dlcot_dagster.defs.ingest.assets import _ingest_checks
from dlcot_dagster.domain.ingest import reference_source_report
from dlcot_dagster.defs.students.assets import (
    CHECK_DLCOT_NOT_BELOW_RAW,
    CHECK_PROBLEM_COUNTS,
    CHECK_SCORES_IN_RANGE,
    _score_checks,
)
from dlcot_dagster.domain.quality import ExpectationOutcome

# ------------------------------------------------------------------------------------------ corrected_traces

KEPT = {"id": ["a", "b", "c"], "raw_tokens": [100, 100, 100], "corrected_tokens": [80, 100, 90], "seq_tokens": [120, 150, 130]}
DROPPED = {"id": ["d"], "reason": ["no_correct_solution"]}
CFG = CorrectConfig(max_seq_len=150, min_median_reduction=0.1)


def corrected(kept=None, dropped=None, raw_rows=4, cfg=CFG, bad=(), problems=(), red=0.1) -> dict[str, dg.AssetCheckResult]:
    k = pl.DataFrame({**KEPT, **(kept or {})})
    d = pl.DataFrame({**DROPPED, **(dropped or {})}, schema_overrides={"reason": pl.String()})
    out = _corrected_checks(
        k.lazy(), d.lazy(), raw_rows, cfg, n_bad_answers=len(bad), bad_answers=list(bad), problems=list(problems),
        reduction={"median": red, "p10": 0.0, "p90": 0.2},
    )
    assert all(r.asset_key.to_user_string() == "corrected_traces" for r in out)
    return {r.check_name: r for r in out}


def failing(checks: dict[str, dg.AssetCheckResult]) -> set[str]:
    return {n for n, r in checks.items() if not r.passed}


def test_corrected_checks_pass_at_their_boundaries():
    """corrected == raw, seq == max_seq_len, median == floor: all allowed."""
    checks = corrected()
    assert failing(checks) == set()
    md = {n: {k: v.value for k, v in r.metadata.items()} for n, r in checks.items()}
    assert md[CHECK_MAX_SEQ_LEN] == {"max_seq_len": 150, "longest": 150, "over": 0, "examples": []}
    assert md[CHECK_TOKENS_NOT_INCREASED] == {"rows_longer_than_raw": 0, "examples": []}
    assert md[CHECK_DLCOT_ACCOUNTING] == {"raw": 4, "kept": 3, "dropped": 1, "problems": "none"}
    assert md[CHECK_ANSWERS_VERIFIED] == {"failures": 0, "examples": []}
    assert md[CHECK_TOKEN_REDUCTION] == {"median_reduction": 0.1, "floor": 0.1, "p10": 0.0, "p90": 0.2}
    assert checks[CHECK_TOKEN_REDUCTION].severity == dg.AssetCheckSeverity.WARN
    assert all(checks[n].severity == dg.AssetCheckSeverity.ERROR for n in checks if n != CHECK_TOKEN_REDUCTION)


def test_tokens_not_increased_names_the_longer_rows():
    checks = corrected(kept={"corrected_tokens": [101, 100, 190]})
    assert failing(checks) == {CHECK_TOKENS_NOT_INCREASED}
    md = checks[CHECK_TOKENS_NOT_INCREASED].metadata
    assert md["rows_longer_than_raw"].value == 2 and md["examples"].value == ["a", "c"]


def test_max_seq_len_names_the_rows_over():
    checks = corrected(kept={"seq_tokens": [151, 150, 149]})
    assert failing(checks) == {CHECK_MAX_SEQ_LEN}
    md = {k: v.value for k, v in checks[CHECK_MAX_SEQ_LEN].metadata.items()}
    assert md == {"max_seq_len": 150, "longest": 151, "over": 1, "examples": ["a: 151 tokens"]}


def test_answers_verified_fails_on_any_failure_and_lists_them():
    checks = corrected(bad=[f"r{i}: not_equivalent" for i in range(12)])
    assert failing(checks) == {CHECK_ANSWERS_VERIFIED}
    md = checks[CHECK_ANSWERS_VERIFIED].metadata
    assert md["failures"].value == 12 and md["examples"].value == [f"r{i}: not_equivalent" for i in range(10)]


@pytest.mark.parametrize(
    ("kw", "problem"),
    [
        ({"raw_rows": 5}, "kept 3 + dropped 1 != 5 raw rows"),
        ({"raw_rows": 3}, "kept 3 + dropped 1 != 3 raw rows"),
        ({"dropped": {"reason": [""]}}, "1 dropped rows without a reason, e.g. ['d']"),
        ({"dropped": {"reason": [None]}}, "1 dropped rows without a reason, e.g. ['d']"),
        ({"problems": ["1 raw ids neither kept nor dropped, e.g. ['x']"]}, "1 raw ids neither kept nor dropped, e.g. ['x']"),
    ],
)
def test_accounting_fails_and_names_the_problem(kw, problem):
    checks = corrected(**kw)
    assert failing(checks) == {CHECK_DLCOT_ACCOUNTING}
    assert checks[CHECK_DLCOT_ACCOUNTING].metadata["problems"].value == f"- {problem}"


def test_accounting_lists_at_most_ten_problems():
    checks = corrected(problems=[f"p{i}" for i in range(12)], raw_rows=5)
    assert checks[CHECK_DLCOT_ACCOUNTING].metadata["problems"].value.splitlines() == [f"- p{i}" for i in range(10)]


def test_median_reduction_warns_below_the_floor_but_not_on_an_empty_table():
    assert failing(corrected(red=0.0999)) == {CHECK_TOKEN_REDUCTION}
    empty = corrected(kept={k: [] for k in KEPT}, raw_rows=1, red=0.0)
    assert failing(empty) == set()


# ------------------------------------------------------------------------------------------ segmented_traces


def test_coverage_check_fails_on_any_problem_and_lists_them():
    ok = _coverage_check([])
    assert ok.passed and ok.check_name == CHECK_SEGMENT_COVERAGE and ok.metadata["problems"].value == "none"
    bad = _coverage_check(["a: segments end at 9 of 10 characters", "b: segment 2 starts at 5, expected 4"])
    assert not bad.passed
    assert bad.metadata["problems"].value == "- a: segments end at 9 of 10 characters\n- b: segment 2 starts at 5, expected 4"


# ------------------------------------------------------------------------------------------ raw_traces


def _outcomes(**failed: list[str]) -> dict[str, ExpectationOutcome]:
    return {
        k: ExpectationOutcome(k, k not in failed, len(failed.get(k, [])), examples=[], rows=failed.get(k, []))
        for k in ("unique_ids", "non_empty_text", "token_bounds")
    }


def test_ingest_checks_follow_accounting_and_each_expectation():
    ok = {r.check_name: r for r in _ingest_checks([], _outcomes(), 5, 4, 1)}
    assert set(ok) == {CHECK_ACCOUNTING, CHECK_REFERENCE_SOURCES, CHECK_SELF_REFERENCE_SHARE, CHECK_UNIQUE_IDS,
                       CHECK_NON_EMPTY_TEXT, CHECK_TOKEN_BOUNDS}
    assert all(r.passed for r in ok.values())
    assert {k: v.value for k, v in ok[CHECK_ACCOUNTING].metadata.items()} == {
        "records_read": 5, "kept": 4, "rejected": 1, "problems": "none"}
    acc = {r.check_name: r for r in _ingest_checks(["f.jsonl: 5 records read but 4 in kept + rejects"], _outcomes(), 5, 3, 1)}
    assert failing(acc) == {CHECK_ACCOUNTING}
    assert acc[CHECK_ACCOUNTING].metadata["problems"].value == "- f.jsonl: 5 records read but 4 in kept + rejects"
    for key, name in (("unique_ids", CHECK_UNIQUE_IDS), ("non_empty_text", CHECK_NON_EMPTY_TEXT),
                      ("token_bounds", CHECK_TOKEN_BOUNDS)):
        got = {r.check_name: r for r in _ingest_checks([], _outcomes(**{key: ["f.jsonl:3 id=x"]}), 5, 4, 1)}
        assert failing(got) == {name}
        md = got[name].metadata
        assert md["rows"].value == ["f.jsonl:3 id=x"] and md["unexpected_count"].value == 1
        assert all(r.asset_key.to_user_string() == "raw_traces" for r in got.values())


def _ref_report(sources: list[str | None], answers: list[str]) -> dict:
    lt = pl.LazyFrame({"id": [f"t{i}" for i in range(len(sources))], "source_file": ["f.jsonl"] * len(sources),
                       "source_line": list(range(1, len(sources) + 1)), "reference_source": sources,
                       "reference_answer": answers}, schema_overrides={"reference_source": pl.String()})
    return reference_source_report(lt, len(sources))


def test_reference_source_checks_fail_on_unknown_or_empty_references_and_warn_on_self_share():
    good = _ref_report(["given", "majority", "self", "extracted"], ["1", "2", "3", "4"])
    ok = {r.check_name: r for r in _ingest_checks([], _outcomes(), 4, 4, 0, ref=good, max_self_share=0.5)}
    assert not failing(ok) and ok[CHECK_REFERENCE_SOURCES].metadata["counts"].value == {
        "extracted": 1, "given": 1, "majority": 1, "self": 1}
    # an unknown source, a missing one, and an empty answer from a known source: blocking, each row named
    bad = _ref_report(["given", "guessed", None, "joined"], ["1", "2", "3", " "])
    assert bad["unaccounted"] == 3
    got = {r.check_name: r for r in _ingest_checks([], _outcomes(), 4, 4, 0, ref=bad, max_self_share=0.5)}
    assert failing(got) == {CHECK_REFERENCE_SOURCES}
    examples = got[CHECK_REFERENCE_SOURCES].metadata["examples"].value
    assert [e.split(" ")[0] for e in examples] == ["t1", "t2", "t3"] and "(f.jsonl:2): source 'guessed'" in examples[0]
    # self share above the ceiling: a warning (not blocking), with the self rows named
    selfish = _ref_report(["self", "self", "given"], ["1", "2", "3"])
    warn = {r.check_name: r for r in _ingest_checks([], _outcomes(), 3, 3, 0, ref=selfish, max_self_share=0.5)}
    w = warn[CHECK_SELF_REFERENCE_SHARE]
    assert failing(warn) == {CHECK_SELF_REFERENCE_SHARE} and w.severity == dg.AssetCheckSeverity.WARN
    assert w.metadata["examples"].value == ["t0", "t1"] and w.metadata["self_traces"].value == 2
    assert "2 of 3 traces" in (w.description or "")


# ------------------------------------------------------------------------------------------ benchmark_scores


def _table(rows: list[tuple[str, str, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["variant", "benchmark", "problems", "pass_at_1"], orient="row")


def test_score_checks_both_sides():
    good = _table([("dlcot", "gsm8k", 5, 0.6), ("raw", "gsm8k", 5, 0.4)])
    checks = {r.check_name: r for r in _score_checks(good, ["dlcot", "raw"], {"gsm8k": 5})}
    assert failing(checks) == set() and checks[CHECK_DLCOT_NOT_BELOW_RAW].severity == dg.AssetCheckSeverity.WARN
    bad = _table([("dlcot", "gsm8k", 4, 0.2), ("raw", "gsm8k", 5, 1.5)])
    checks = {r.check_name: r for r in _score_checks(bad, ["dlcot", "raw"], {"gsm8k": 5})}
    assert failing(checks) == {CHECK_SCORES_IN_RANGE, CHECK_PROBLEM_COUNTS, CHECK_DLCOT_NOT_BELOW_RAW}
    assert checks[CHECK_SCORES_IN_RANGE].metadata["problems"].value == ["raw/gsm8k: pass@1 = 1.5"]
    assert checks[CHECK_PROBLEM_COUNTS].metadata["problems"].value == ["dlcot/gsm8k: 4 problems evaluated, expected 5"]
    assert checks[CHECK_PROBLEM_COUNTS].metadata["expected"].value == {"gsm8k": 5}
    assert checks[CHECK_DLCOT_NOT_BELOW_RAW].metadata["benchmarks"].value == ["gsm8k: dlcot 0.200 < raw 1.500"]
    # a variant with no row for a configured benchmark is caught per variant
    missing = _table([("dlcot", "gsm8k", 5, 0.5)])
    checks = {r.check_name: r for r in _score_checks(missing, ["dlcot", "raw"], {"gsm8k": 5})}
    assert checks[CHECK_PROBLEM_COUNTS].metadata["problems"].value == ["gsm8k: no results"]


def test_reference_source_report_and_checks_name_everything():
    # a null answer counts as empty; the problems list the rows (at most `limit`) and nothing else
    rep = _ref_report(["given", "given", "guessed"], [None, "2", "3"])
    assert rep["unaccounted"] == 2 and rep["counts"] == {"given": 2, "guessed": 1}
    assert rep["problems"] == [
        "2 trace(s) without a reference from a known source: t0 (f.jsonl:1): source 'given'; "
        "t2 (f.jsonl:3): source 'guessed'"
    ]
    lt = pl.LazyFrame({"id": ["a", "b", "c"], "source_file": ["f"] * 3, "source_line": [1, 2, 3],
                       "reference_source": ["x", "y", "self"], "reference_answer": ["1", "2", "3"]})
    few = reference_source_report(lt, 3, limit=1)
    assert few["examples"] == ["a (f:1): source 'x'"] and few["unaccounted"] == 2 and few["self_examples"] == ["c"]
    assert reference_source_report(lt.head(0), 0) == {"counts": {}, "unaccounted": 0, "examples": [], "problems": [],
                                                      "self_share": 0.0, "self_examples": []}
    # the checks: problems as markdown, "none" when clean; no description below the ceiling; the ceiling inclusive
    bad = {r.check_name: r for r in _ingest_checks([], _outcomes(), 3, 3, 0, ref=rep, max_self_share=0.5)}
    assert bad[CHECK_REFERENCE_SOURCES].metadata["problems"].value == "- " + rep["problems"][0]
    assert bad[CHECK_REFERENCE_SOURCES].metadata["unaccounted"].value == 2
    half = _ref_report(["self", "given"], ["1", "2"])
    at = {r.check_name: r for r in _ingest_checks([], _outcomes(), 2, 2, 0, ref=half, max_self_share=0.5)}
    s = at[CHECK_SELF_REFERENCE_SHARE]
    assert s.passed and s.description is None and at[CHECK_REFERENCE_SOURCES].metadata["problems"].value == "none"
    assert {k: v.value for k, v in s.metadata.items()} == {
        "self_share": 0.5, "self_traces": 1, "max_self_reference_share": 0.5, "examples": ["t0"]}
    above = {r.check_name: r for r in _ingest_checks([], _outcomes(), 2, 2, 0, ref=half, max_self_share=0.49)}
    assert above[CHECK_SELF_REFERENCE_SHARE].description == (
        "1 of 2 traces (50.0 %) have no reference but their own final answer: their correctness checks test only "
        "self-consistency")
    # without a report (a caller that has none) both reference checks pass with zero counts
    plain = {r.check_name: r for r in _ingest_checks([], _outcomes(), 1, 1, 0)}
    assert plain[CHECK_SELF_REFERENCE_SHARE].passed and plain[CHECK_REFERENCE_SOURCES].passed
    assert plain[CHECK_REFERENCE_SOURCES].metadata["unaccounted"].value == 0
    assert plain[CHECK_SELF_REFERENCE_SHARE].metadata["self_traces"].value == 0
    # the expectation checks carry their examples and say what validated them
    got = {r.check_name: r for r in _ingest_checks([], _outcomes(), 1, 1, 0)}
    assert got[CHECK_UNIQUE_IDS].metadata["validated_with"].value == "great_expectations"
